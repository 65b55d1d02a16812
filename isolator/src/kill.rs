//! Killing a container's processes and waiting for them to leave its cgroups; shared
//! by both drivers.

use std::future::Future;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::IsolatorError;

/// How often `destroy` re-checks `cgroup.procs` at first, and at most.
const POLL_START: Duration = Duration::from_millis(1);
const POLL_MAX: Duration = Duration::from_millis(20);
/// How often `destroy` kills again, catching processes forked during the first kill.
const REKILL_INTERVAL: Duration = Duration::from_millis(100);

/// Sends SIGKILL to each pid; a pid that already exited is fine. Pids read from
/// `cgroup.procs` can be recycled by the time they are signalled (v1 has no better
/// option without the freezer); callers freeze first or use `cgroup.kill` when possible.
pub(crate) fn sigkill_all(id: &str, pids: &[i32]) -> Result<(), IsolatorError> {
    for &pid in pids {
        match kill(Pid::from_raw(pid), Signal::SIGKILL) {
            Ok(()) | Err(Errno::ESRCH) => {}
            Err(source) => {
                return Err(IsolatorError::Signal {
                    id: id.to_owned(),
                    pid,
                    source,
                })
            }
        }
    }
    Ok(())
}

/// Polls `pids` until it is empty, calling `rekill` every 100 ms, for at most `timeout`.
pub(crate) async fn wait_until_empty<P, K>(
    id: &str,
    timeout: Duration,
    mut pids: P,
    mut rekill: K,
) -> Result<(), IsolatorError>
where
    P: FnMut() -> Result<Vec<i32>, IsolatorError>,
    K: FnMut() -> Result<(), IsolatorError>,
{
    let start = Instant::now();
    let mut last_kill = start;
    let mut poll = POLL_START;
    loop {
        let remaining = pids()?;
        if remaining.is_empty() {
            return Ok(());
        }
        if start.elapsed() >= timeout {
            return Err(IsolatorError::DestroyTimeout {
                id: id.to_owned(),
                pids: remaining,
                timeout,
            });
        }
        if last_kill.elapsed() >= REKILL_INTERVAL {
            rekill()?;
            last_kill = Instant::now();
        }
        tokio::time::sleep(poll).await;
        poll = (poll * 2).min(POLL_MAX);
    }
}

/// Polls a condition every millisecond for at most `limit`; true if it became true.
/// Used to wait for a freezer to reach FROZEN, which takes a scheduler tick or two.
pub(crate) fn poll_blocking(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if condition() {
            return true;
        }
        if start.elapsed() >= limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Awaits a future that reports an error by never completing: logs the error once and
/// stays pending, so `select!`-ing callers simply never see a limitation.
pub(crate) async fn pending_on_error<T>(
    what: &str,
    future: impl Future<Output = Result<T, IsolatorError>>,
) -> T {
    match future.await {
        Ok(value) => value,
        Err(error) => {
            tracing::error!(%error, "{what}; no limitation will be reported");
            std::future::pending().await
        }
    }
}

/// tokio's `AsyncFd` panics outside a runtime; turn that into an error instead.
pub(crate) fn require_runtime(path: &std::path::Path) -> Result<(), IsolatorError> {
    tokio::runtime::Handle::try_current()
        .map(drop)
        .map_err(|e| IsolatorError::watch(path, std::io::Error::other(e)))
}
