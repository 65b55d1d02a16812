//! v2 `pids` controller.

use std::path::Path;

use crate::fs::{CgroupFs, FsError};
use crate::limits::pids_max;
use crate::ContainerLimits;

/// Writes `pids.max`: the container's `pids` resource, else `--cgroups_pids_max`, else
/// `max`.
pub(super) fn apply(
    fs: &CgroupFs,
    dir: &Path,
    limits: &ContainerLimits,
    flag: Option<u64>,
) -> Result<(), FsError> {
    let value = pids_max(limits, flag).map_or_else(|| "max".to_owned(), |n| n.to_string());
    fs.write(&dir.join("pids.max"), &value)
}
