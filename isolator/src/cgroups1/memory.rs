//! v1 `memory` controller (Mesos isolators/cgroups/subsystems/memory.cpp): the soft
//! limit from the request, the hard limit (and memsw) from the limit, only ever raised
//! once set.

use std::path::Path;

use crate::fs::{flat_keyed_value, CgroupFs, FsError};
use crate::limitation::select_stats;
use crate::limits::{memory_hard_limit, memory_limit_may_change, memory_soft_limit};
use crate::{ContainerLimits, Limitation, Usage};

/// v1 reports "unlimited" as `PAGE_COUNTER_MAX` pages, 9223372036854771712 on x86-64.
const UNLIMITED_THRESHOLD: u64 = 1 << 62;
/// `memory.stat` keys quoted in an OOM message.
const OOM_STATS: [&str; 3] = ["total_rss", "total_cache", "total_mapped_file"];

/// Makes sure the kernel OOM killer acts in this cgroup (Mesos: "the Mesos OOM
/// handler ... is not capable of handling the oom condition by itself").
pub(super) fn enable_oom_killer(fs: &CgroupFs, dir: &Path) -> Result<(), FsError> {
    fs.write(&dir.join("memory.oom_control"), "0")
}

pub(super) fn apply(
    fs: &CgroupFs,
    dir: &Path,
    limits: &ContainerLimits,
    limit_swap: bool,
    initial: bool,
) -> Result<(), FsError> {
    let soft = memory_soft_limit(limits);
    fs.write(&dir.join("memory.soft_limit_in_bytes"), &soft.to_string())?;

    let hard = memory_hard_limit(limits);
    let limit_path = dir.join("memory.limit_in_bytes");
    if !initial && !memory_limit_may_change(read_limit(fs, &limit_path)?, hard) {
        return Ok(());
    }
    let value = hard.map_or_else(|| "-1".to_owned(), |b| b.to_string());
    let memsw = dir.join("memory.memsw.limit_in_bytes");
    let memsw = (limit_swap && fs.supports(&memsw)).then_some(memsw);
    // The kernel requires limit_in_bytes <= memsw.limit_in_bytes at all times (EINVAL
    // otherwise, MESOS-7237): lowering from unlimited sets the limit first, raising
    // sets memsw first.
    if initial {
        fs.write(&limit_path, &value)?;
        memsw.map_or(Ok(()), |memsw| fs.write(&memsw, &value))
    } else {
        memsw.map_or(Ok(()), |memsw| fs.write(&memsw, &value))?;
        fs.write(&limit_path, &value)
    }
}

/// A v1 limit file, with the "unlimited" sentinel as `None`.
fn read_limit(fs: &CgroupFs, path: &Path) -> Result<Option<u64>, FsError> {
    let value = fs.read_i64(path)?;
    Ok(u64::try_from(value)
        .ok()
        .filter(|v| *v < UNLIMITED_THRESHOLD))
}

pub(super) fn usage(fs: &CgroupFs, dir: &Path, usage: &mut Usage) -> Result<(), FsError> {
    usage.mem_total_bytes = read_limit(fs, &dir.join("memory.usage_in_bytes"))?;
    let stat = fs.read(&dir.join("memory.stat"))?;
    // Mesos uses the hierarchical totals: they include child cgroups.
    usage.mem_anon_bytes = flat_keyed_value(&stat, "total_rss");
    usage.mem_file_bytes = flat_keyed_value(&stat, "total_cache");
    usage.mem_limit_bytes = read_limit(fs, &dir.join("memory.limit_in_bytes"))?;
    usage.mem_low_bytes = read_limit(fs, &dir.join("memory.soft_limit_in_bytes"))?;
    Ok(())
}

/// The limitation for an OOM: limit, `memory.max_usage_in_bytes`, and the main
/// `memory.stat` lines. Unreadable figures are logged and left out: the OOM happened
/// and must be reported regardless.
pub(super) fn oom_limitation(fs: &CgroupFs, dir: &Path) -> Limitation {
    let limit = logged(read_limit(fs, &dir.join("memory.limit_in_bytes"))).flatten();
    let max_used = logged(read_limit(fs, &dir.join("memory.max_usage_in_bytes"))).flatten();
    let stat = logged(fs.read(&dir.join("memory.stat"))).unwrap_or_default();
    Limitation::memory(limit, max_used, &select_stats(&stat, &OOM_STATS))
}

fn logged<T>(result: Result<T, FsError>) -> Option<T> {
    result
        .map_err(|error| tracing::warn!(%error, "reading OOM statistics"))
        .ok()
}
