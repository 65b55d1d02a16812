//! v2 `cpu` controller: `cpu.weight` from the request, `cpu.max` from the limit.

use std::path::Path;

use crate::fs::{flat_keyed_value, CgroupFs, FsError};
use crate::limits::{cpu_bandwidth, cpu_weight, CPU_WEIGHT_PER_CPU};
use crate::usage::{saturating_u32, usecs_to_secs};
use crate::{ContainerLimits, Usage};

pub(super) fn apply(
    fs: &CgroupFs,
    dir: &Path,
    limits: &ContainerLimits,
    enable_cfs: bool,
) -> Result<(), FsError> {
    fs.write(
        &dir.join("cpu.weight"),
        &cpu_weight(limits.cpus).to_string(),
    )?;
    fs.write(
        &dir.join("cpu.max"),
        &cpu_bandwidth(limits, enable_cfs).cpu_max(),
    )
}

/// Fills the cpu fields from `cpu.stat` (present even without the cpu controller) and,
/// with the controller, the limit from `cpu.max` or `cpu.weight`.
pub(super) fn usage(
    fs: &CgroupFs,
    dir: &Path,
    controller: bool,
    usage: &mut Usage,
) -> Result<(), FsError> {
    if let Some(stat) = fs.read_opt(&dir.join("cpu.stat"))? {
        let value = |key| flat_keyed_value(&stat, key);
        usage.cpus_user_time_secs = value("user_usec").map(usecs_to_secs);
        usage.cpus_system_time_secs = value("system_usec").map(usecs_to_secs);
        usage.cpus_nr_periods = value("nr_periods").map(saturating_u32);
        usage.cpus_nr_throttled = value("nr_throttled").map(saturating_u32);
        usage.cpus_throttled_time_secs = value("throttled_usec").map(usecs_to_secs);
    }
    if controller {
        usage.cpus_limit = cpus_limit(fs, dir)?;
    }
    Ok(())
}

/// The cap from `cpu.max` (`quota period`), or the weight in cpus when uncapped.
fn cpus_limit(fs: &CgroupFs, dir: &Path) -> Result<Option<f64>, FsError> {
    let path = dir.join("cpu.max");
    let max = fs.read(&path)?;
    let mut fields = max.split_whitespace();
    let quota = fields.next();
    let period = fields.next().and_then(|p| p.parse::<u64>().ok());
    match (quota, period) {
        (Some("max"), _) => {
            let weight = fs.read_u64_or_max(&dir.join("cpu.weight"))?;
            Ok(weight.map(|w| w as f64 / CPU_WEIGHT_PER_CPU))
        }
        (Some(quota), Some(period)) if period > 0 => match quota.parse::<u64>() {
            Ok(quota) => Ok(Some(quota as f64 / period as f64)),
            Err(_) => Err(FsError::Parse { path, content: max }),
        },
        _ => Err(FsError::Parse { path, content: max }),
    }
}
