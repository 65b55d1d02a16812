//! Waiting for a process to exit through its pidfd.
//!
//! The pidfd comes from `clone3(CLONE_PIDFD)`, so the wait is registered
//! before the child can run: no SIGCHLD handler, no race with pid reuse. A
//! pidfd becomes readable when the process exits; `waitid(P_PIDFD)` then reaps
//! our own children. Processes adopted after an agent restart are not our
//! children: their exit is seen, but their status is not ours to collect.

use std::os::fd::{AsRawFd, OwnedFd};

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExitStatus {
    /// The exit code, if it exited.
    pub code: Option<i32>,
    /// The signal, if a signal killed it.
    pub signal: Option<i32>,
}

impl ExitStatus {
    /// The `wait(2)`-style status word Mesos reports (`WEXITSTATUS << 8` or
    /// the signal number), if known.
    pub fn raw(&self) -> Option<i32> {
        match (self.code, self.signal) {
            (Some(code), _) => Some((code & 0xff) << 8),
            (None, Some(signal)) => Some(signal & 0x7f),
            (None, None) => None,
        }
    }
}

/// Waits until the process behind `pidfd` has exited and reaps it if it is
/// our child. Returns `ExitStatus::default()` (nothing known) for a process
/// that is not our child.
pub async fn wait(pidfd: OwnedFd) -> std::io::Result<ExitStatus> {
    // SAFETY: the OwnedFd moves into the AsyncFd, so the fd stays open and
    // refers to the same file description for the AsyncFd's whole lifetime.
    let fd = unsafe { AsyncFd::register_with_interest(pidfd, Interest::READABLE) }
        .map_err(std::io::Error::from)?;
    loop {
        let mut guard = fd.readable().await?;
        match reap(fd.get_ref(), libc::WNOHANG) {
            Ok(Some(status)) => return Ok(status),
            // Readable means exited; a spurious wake-up just waits again.
            Ok(None) => guard.clear_ready(),
            Err(error) if error.raw_os_error() == Some(libc::ECHILD) => {
                return Ok(ExitStatus::default())
            }
            Err(error) => return Err(error),
        }
    }
}

/// Blocking wait, for cleaning up a child that failed to launch.
pub fn wait_blocking(pidfd: &OwnedFd) -> std::io::Result<ExitStatus> {
    loop {
        match reap(pidfd, 0) {
            Ok(Some(status)) => return Ok(status),
            Ok(None) => continue,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        }
    }
}

/// `waitid(P_PIDFD, pidfd, WEXITED | extra)`; `Ok(None)` if not exited yet.
fn reap(pidfd: &OwnedFd, extra: libc::c_int) -> std::io::Result<Option<ExitStatus>> {
    // SAFETY: siginfo_t is plain old data; all-zero is a valid value and lets
    // us detect "no child changed state" (si_pid stays 0) under WNOHANG.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: `info` is valid for writes; P_PIDFD takes the fd as the id.
    let ret = unsafe {
        libc::waitid(
            libc::P_PIDFD,
            // A fd number is non-negative.
            pidfd.as_raw_fd() as libc::id_t,
            &mut info,
            libc::WEXITED | extra,
        )
    };
    if ret < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: waitid filled `info` for a SIGCHLD, so the child fields are the
    // active union members.
    let (pid, status) = unsafe { (info.si_pid(), info.si_status()) };
    if pid == 0 {
        return Ok(None);
    }
    Ok(Some(match info.si_code {
        libc::CLD_EXITED => ExitStatus {
            code: Some(status),
            signal: None,
        },
        _ => ExitStatus {
            code: None,
            signal: Some(status),
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_status_matches_wait_encoding() {
        let exited = ExitStatus {
            code: Some(3),
            signal: None,
        };
        assert_eq!(exited.raw(), Some(3 << 8));
        let killed = ExitStatus {
            code: None,
            signal: Some(libc::SIGKILL),
        };
        assert_eq!(killed.raw(), Some(9));
        assert_eq!(ExitStatus::default().raw(), None);
    }

    #[tokio::test]
    async fn waits_for_a_real_child_exit_code() {
        let child = std::process::Command::new("/bin/sh")
            .args(["-c", "exit 7"])
            .spawn()
            .expect("spawn sh");
        // The child may already have exited: a pidfd of a zombie is readable.
        let pidfd = crate::clone::pidfd_open(child.id() as i32).expect("pidfd_open");
        let status = wait(pidfd).await.expect("wait");
        assert_eq!(status.code, Some(7));
        std::mem::forget(child);
    }

    #[tokio::test]
    async fn exit_of_a_process_that_is_not_our_child_is_seen_without_status() {
        // The shell exits at once; its background sleep is reparented away
        // from us, like an executor adopted after an agent restart.
        let output = std::process::Command::new("/bin/sh")
            .args(["-c", "sleep 0.3 >/dev/null 2>&1 & echo $!"])
            .output()
            .expect("run sh");
        let pid: i32 = String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse()
            .expect("pid");
        let pidfd = crate::clone::pidfd_open(pid).expect("pidfd_open");
        let status = tokio::time::timeout(std::time::Duration::from_secs(10), wait(pidfd))
            .await
            .expect("the exit is seen")
            .expect("wait");
        assert_eq!(status, ExitStatus::default());
    }
}
