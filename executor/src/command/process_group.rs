//! The task's process group: the unit the command executor signals, so a
//! kill reaches every process the command forked (Mesos's `os::killtree`
//! walks the tree; a group gets the same processes without racing forks).

use nix::errno::Errno;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

/// A process group, named by its leader's pid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProcessGroup(Pid);

impl ProcessGroup {
    /// The group led by `pid` (a child spawned with `process_group(0)`).
    pub(crate) fn led_by(pid: u32) -> Option<Self> {
        i32::try_from(pid).ok().map(|pid| Self(Pid::from_raw(pid)))
    }

    /// The group id.
    pub(crate) fn id(self) -> i32 {
        self.0.as_raw()
    }

    /// Sends `signal` to every member. A group that is already gone is not an
    /// error: that is what the signal was for.
    pub(crate) fn signal(self, signal: Signal) {
        match killpg(self.0, signal) {
            Ok(()) => tracing::info!("sent {signal} to process group {}", self.0),
            Err(Errno::ESRCH) => {}
            Err(e) => tracing::error!("cannot send {signal} to process group {}: {e}", self.0),
        }
    }
}
