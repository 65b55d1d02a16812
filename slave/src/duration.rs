//! `StoutDuration`, the type of the agent's duration flags (`--gc_delay=1weeks`):
//! stout's text form, parsed and printed by the shared `mesos_proto::duration`.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

pub use mesos_proto::duration::DurationError;

/// A duration flag value; prints the way stout does (`5secs`, `1.5mins`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct StoutDuration(pub Duration);

impl StoutDuration {
    /// `secs` seconds.
    pub const fn from_secs(secs: u64) -> Self {
        Self(Duration::from_secs(secs))
    }

    /// The duration.
    pub const fn get(self) -> Duration {
        self.0
    }
}

impl FromStr for StoutDuration {
    type Err = DurationError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        mesos_proto::duration::parse(text).map(Self)
    }
}

impl fmt::Display for StoutDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&mesos_proto::duration::format(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Duration, DurationError> {
        text.parse::<StoutDuration>().map(StoutDuration::get)
    }

    #[test]
    fn parses_every_stout_unit() {
        assert_eq!(parse("10ns").unwrap(), Duration::from_nanos(10));
        assert_eq!(parse("10us").unwrap(), Duration::from_micros(10));
        assert_eq!(parse("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse("5secs").unwrap(), Duration::from_secs(5));
        assert_eq!(parse("1mins").unwrap(), Duration::from_secs(60));
        assert_eq!(parse("2hrs").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse("1days").unwrap(), Duration::from_secs(86_400));
        assert_eq!(parse("1weeks").unwrap(), Duration::from_secs(604_800));
        assert_eq!(parse("1.5secs").unwrap(), Duration::from_millis(1500));
    }

    #[test]
    fn rejects_unknown_units_and_missing_numbers() {
        assert!(matches!(parse("5s"), Err(DurationError::UnknownUnit { unit, .. }) if unit == "s"));
        assert!(
            matches!(parse("5"), Err(DurationError::UnknownUnit { unit, .. }) if unit.is_empty())
        );
        assert!(matches!(parse("secs"), Err(DurationError::BadNumber(_))));
        assert!(matches!(parse("-5secs"), Err(DurationError::BadNumber(_))));
    }

    #[test]
    fn prints_like_stout_and_round_trips() {
        for (d, text) in [
            (Duration::from_secs(5), "5secs"),
            (Duration::from_secs(60), "1mins"),
            (Duration::from_secs(90), "1.5mins"),
            (Duration::from_millis(100), "100ms"),
            (Duration::from_secs(604_800), "1weeks"),
            (Duration::ZERO, "0ns"),
        ] {
            assert_eq!(StoutDuration(d).to_string(), text);
            assert_eq!(parse(text).unwrap(), d);
        }
    }
}
