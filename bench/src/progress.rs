//! Progress bars for long runs (on stderr; indicatif hides them when stderr
//! is not a terminal, so logs and CI output stay clean).

use indicatif::{ProgressBar, ProgressStyle};

/// A bar of `len` steps labelled `what`.
pub fn bar(len: u64, what: &str) -> ProgressBar {
    let style = ProgressStyle::with_template(
        "{prefix:>12} [{bar:40}] {pos}/{len} {msg} ({elapsed}, eta {eta})",
    )
    .expect("constant template is valid")
    .progress_chars("=> ");
    ProgressBar::new(len)
        .with_style(style)
        .with_prefix(what.to_owned())
}

/// A spinner for steps of unknown length.
pub fn spinner(what: &str) -> ProgressBar {
    let style = ProgressStyle::with_template("{prefix:>12} {spinner} {msg} ({elapsed})")
        .expect("constant template is valid");
    let spinner = ProgressBar::new_spinner()
        .with_style(style)
        .with_prefix(what.to_owned());
    spinner.enable_steady_tick(std::time::Duration::from_millis(120));
    spinner
}
