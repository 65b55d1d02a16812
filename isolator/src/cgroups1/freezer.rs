//! v1 `freezer`: kill a container whose processes cannot fork away meanwhile.

use std::path::Path;
use std::time::Duration;

use crate::fs::CgroupFs;
use crate::kill::poll_blocking;
use crate::IsolatorError;

/// How long to wait for FREEZING to become FROZEN (a task in uninterruptible sleep can
/// hold it up; killing anyway is still right, the destroy loop retries).
const FREEZE_WAIT: Duration = Duration::from_millis(100);

/// Freezes the cgroup, runs `kill` (SIGKILL to every pid; delivered on thaw), thaws.
/// Thaws even when `kill` fails, so no container stays frozen.
pub(super) fn kill_frozen(
    fs: &CgroupFs,
    dir: &Path,
    kill: impl FnOnce() -> Result<(), IsolatorError>,
) -> Result<(), IsolatorError> {
    let state = dir.join("freezer.state");
    fs.write(&state, "FROZEN")?;
    let frozen = poll_blocking(FREEZE_WAIT, || {
        fs.read_opt(&state).ok().flatten().as_deref().map(str::trim) == Some("FROZEN")
    });
    if !frozen {
        tracing::warn!(cgroup = %dir.display(), "freezer did not reach FROZEN in {FREEZE_WAIT:?}; killing anyway");
    }
    let killed = kill();
    fs.write(&state, "THAWED")?;
    killed
}
