//! v2 OOM detection: inotify on `memory.events`, whose `oom_kill` counter the kernel
//! bumps (and notifies, at most every 10 ms) when it kills inside the cgroup. This is
//! runc's and Mesos's method (isolation.md §3.5, §5).

use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::path::Path;

use nix::errno::Errno;
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use crate::fs::flat_keyed_value;
use crate::IsolatorError;

/// `Inotify` implements `AsFd`; tokio's `AsyncFd` wants `AsRawFd`.
struct InotifyFd(Inotify);

impl AsRawFd for InotifyFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

/// Resolves once `memory.events` shows `oom_kill > 0`. Stays pending if the file
/// disappears (the cgroup was destroyed). Cancel-safe: dropping the future closes the
/// inotify instance.
pub(super) async fn wait_for_oom_kill(events: &Path) -> Result<(), IsolatorError> {
    let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)
        .map_err(|e| IsolatorError::watch(events, e))?;
    match inotify.add_watch(events, AddWatchFlags::IN_MODIFY) {
        Ok(_) => {}
        Err(Errno::ENOENT) => return std::future::pending().await,
        Err(e) => return Err(IsolatorError::watch(events, e)),
    }
    crate::kill::require_runtime(events)?;
    // SAFETY: `InotifyFd` owns the inotify fd, so the raw fd stays open and refers to
    // the same inotify instance until the `AsyncFd` (which owns it) is dropped.
    let fd = unsafe { AsyncFd::register_with_interest(InotifyFd(inotify), Interest::READABLE) }
        .map_err(|e| IsolatorError::watch(events, e))?;
    loop {
        // Read after arming so a kill between prepare and the watch is not missed.
        match std::fs::read_to_string(events) {
            Ok(text) if flat_keyed_value(&text, "oom_kill").unwrap_or(0) > 0 => return Ok(()),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return std::future::pending().await
            }
            Err(e) => return Err(IsolatorError::watch(events, e)),
        }
        let mut guard = fd
            .readable()
            .await
            .map_err(|e| IsolatorError::watch(events, e))?;
        loop {
            match guard.get_inner().0.read_events() {
                Ok(_) => continue,
                Err(Errno::EAGAIN) => {
                    guard.clear_ready();
                    break;
                }
                Err(e) => return Err(IsolatorError::watch(events, e)),
            }
        }
    }
}
