//! The final exec of the executor, with exactly the spec's argv and
//! environment. Bare names are looked up in the spec's `PATH` (execvpe
//! semantics: EACCES wins over ENOENT, other errors stop the search).

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use oci_spec::runtime::Spec;

use super::{Failure, Reporter};
use crate::clone::CStringArray;
use crate::spec::{annotations, DEFAULT_PATH};
use crate::step::Step;

/// Execs the executor; on failure reports [`Step::Exec`] and exits.
pub(super) fn exec(report: &Reporter, spec: &Spec) -> ! {
    let prepared = prepare(spec);
    let (candidates, argv, envp, program) = match prepared {
        Ok(prepared) => prepared,
        Err(failure) => report.fail(Step::Exec, &failure),
    };
    // Announce the exec: end-of-file after this record means it happened.
    crate::status_pipe::write_record(report.status_fd, false, Step::Exec, 0, b"");
    let mut errno = Errno::ENOENT;
    for candidate in &candidates {
        let Ok(path) = std::ffi::CString::new(candidate.as_os_str().as_bytes()) else {
            continue;
        };
        // SAFETY: path, argv and envp are NUL-terminated and the arrays
        // null-terminated; they outlive the call, which only returns on error.
        unsafe {
            libc::execve(
                path.as_ptr(),
                argv.as_ptrs().as_ptr(),
                envp.as_ptrs().as_ptr(),
            )
        };
        match Errno::last() {
            Errno::EACCES => errno = Errno::EACCES,
            Errno::ENOENT | Errno::ENOTDIR => {}
            other => {
                errno = other;
                break;
            }
        }
    }
    report.fail(
        Step::Exec,
        &Failure::sys(errno, format!("exec '{program}'")),
    )
}

type Prepared = (Vec<PathBuf>, CStringArray, CStringArray, String);

fn prepare(spec: &Spec) -> Result<Prepared, Failure> {
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| Failure::msg("config.json has no 'process'"))?;
    let args = process.args().as_deref().unwrap_or_default();
    let program = spec
        .annotations()
        .as_ref()
        .and_then(|a| a.get(annotations::EXECUTABLE))
        .or_else(|| args.first())
        .ok_or_else(|| Failure::msg("config.json has no 'process.args'"))?
        .clone();
    let env = process.env().as_deref().unwrap_or_default();
    let nul = |what: &str| Failure::msg(format!("{what} contains a NUL byte"));
    let argv =
        CStringArray::new(args.iter().map(String::as_bytes)).map_err(|_| nul("an argument"))?;
    let envp = CStringArray::new(env.iter().map(String::as_bytes))
        .map_err(|_| nul("an environment variable"))?;
    Ok((candidates(&program, search_path(env)), argv, envp, program))
}

fn search_path(env: &[String]) -> &str {
    env.iter()
        .find_map(|entry| entry.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH)
}

/// The files to try for `program`: itself if it has a '/', else each `PATH`
/// entry joined with it (an empty entry means the current directory).
pub(crate) fn candidates(program: &str, path: &str) -> Vec<PathBuf> {
    if program.contains('/') {
        return vec![PathBuf::from(program)];
    }
    path.split(':')
        .map(|dir| {
            if dir.is_empty() {
                Path::new(".")
            } else {
                Path::new(OsStr::new(dir))
            }
        })
        .map(|dir| dir.join(program))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_names_search_path_and_paths_do_not() {
        assert_eq!(candidates("/bin/true", "/x"), [PathBuf::from("/bin/true")]);
        assert_eq!(candidates("./run", "/x"), [PathBuf::from("./run")]);
        assert_eq!(
            candidates("true", "/usr/bin::/bin"),
            [
                PathBuf::from("/usr/bin/true"),
                PathBuf::from("./true"),
                PathBuf::from("/bin/true")
            ]
        );
    }

    #[test]
    fn path_defaults_when_the_environment_has_none() {
        assert_eq!(search_path(&["A=1".into()]), DEFAULT_PATH);
        assert_eq!(search_path(&["PATH=/opt".into()]), "/opt");
    }
}
