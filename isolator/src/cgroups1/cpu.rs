//! v1 `cpu` and `cpuacct` controllers: `cpu.shares` from the request, the CFS quota
//! from the limit; CPU time from `cpuacct.stat`, throttling from `cpu.stat`.

use std::path::Path;

use crate::fs::{flat_keyed_value, CgroupFs, FsError};
use crate::limits::{cpu_bandwidth, cpu_shares, CPU_CFS_PERIOD_US, CPU_SHARES_PER_CPU};
use crate::usage::{nsecs_to_secs, saturating_u32, usecs_to_secs};
use crate::{ContainerLimits, Usage};

pub(super) fn apply(
    fs: &CgroupFs,
    dir: &Path,
    limits: &ContainerLimits,
    enable_cfs: bool,
) -> Result<(), FsError> {
    fs.write(
        &dir.join("cpu.shares"),
        &cpu_shares(limits.cpus).to_string(),
    )?;
    // The period first: the kernel validates the quota against it.
    fs.write(
        &dir.join("cpu.cfs_period_us"),
        &CPU_CFS_PERIOD_US.to_string(),
    )?;
    fs.write(
        &dir.join("cpu.cfs_quota_us"),
        &cpu_bandwidth(limits, enable_cfs).cfs_quota_us(),
    )
}

/// User and system time from `cpuacct.stat`, which counts in USER_HZ ticks.
pub(super) fn cpuacct_usage(fs: &CgroupFs, dir: &Path, usage: &mut Usage) -> Result<(), FsError> {
    let stat = fs.read(&dir.join("cpuacct.stat"))?;
    let ticks_per_sec = user_hz();
    let secs = |key| flat_keyed_value(&stat, key).map(|ticks| ticks as f64 / ticks_per_sec);
    usage.cpus_user_time_secs = secs("user");
    usage.cpus_system_time_secs = secs("system");
    Ok(())
}

/// User and system time from a cgroup2 directory's core `cpu.stat`.
pub(super) fn unified_usage(fs: &CgroupFs, dir: &Path, usage: &mut Usage) -> Result<(), FsError> {
    if let Some(stat) = fs.read_opt(&dir.join("cpu.stat"))? {
        usage.cpus_user_time_secs = flat_keyed_value(&stat, "user_usec").map(usecs_to_secs);
        usage.cpus_system_time_secs = flat_keyed_value(&stat, "system_usec").map(usecs_to_secs);
    }
    Ok(())
}

/// Throttling counters and the cpu limit (CFS quota, or shares when uncapped).
pub(super) fn usage(fs: &CgroupFs, dir: &Path, usage: &mut Usage) -> Result<(), FsError> {
    if let Some(stat) = fs.read_opt(&dir.join("cpu.stat"))? {
        let value = |key| flat_keyed_value(&stat, key);
        usage.cpus_nr_periods = value("nr_periods").map(saturating_u32);
        usage.cpus_nr_throttled = value("nr_throttled").map(saturating_u32);
        usage.cpus_throttled_time_secs = value("throttled_time").map(nsecs_to_secs);
    }
    let quota = fs.read_i64(&dir.join("cpu.cfs_quota_us"))?;
    let period = fs.read_i64(&dir.join("cpu.cfs_period_us"))?;
    usage.cpus_limit = if quota > 0 && period > 0 {
        Some(quota as f64 / period as f64)
    } else {
        let shares = fs.read_i64(&dir.join("cpu.shares"))?;
        Some(shares as f64 / CPU_SHARES_PER_CPU)
    };
    Ok(())
}

/// USER_HZ, the unit of `cpuacct.stat` (100 on Linux).
fn user_hz() -> f64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 {
        hz as f64
    } else {
        100.0
    }
}
