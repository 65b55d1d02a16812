//! v2 `memory` controller: `memory.low` from the request, `memory.max` from the limit
//! (only ever raised once set), swap off, whole-container OOM kills.

use std::path::Path;

use crate::fs::{flat_keyed_value, CgroupFs, FsError};
use crate::limitation::select_stats;
use crate::limits::{memory_hard_limit, memory_limit_may_change, memory_max, memory_soft_limit};
use crate::{ContainerLimits, Limitation, Usage};

/// `memory.stat` keys quoted in an OOM message (Mesos: anon, file, kernel).
const OOM_STATS: [&str; 3] = ["anon", "file", "kernel"];

pub(super) fn apply(
    fs: &CgroupFs,
    dir: &Path,
    limits: &ContainerLimits,
    limit_swap: bool,
    initial: bool,
) -> Result<(), FsError> {
    fs.write(
        &dir.join("memory.low"),
        &memory_soft_limit(limits).to_string(),
    )?;
    let hard = memory_hard_limit(limits);
    let max_path = dir.join("memory.max");
    let may_change = initial || memory_limit_may_change(fs.read_u64_or_max(&max_path)?, hard);
    if may_change {
        fs.write(&max_path, &memory_max(hard))?;
    }
    if initial {
        // memory.swap.max exists only with swap accounting; 0 makes memory.max the
        // container's total budget, as v1's memsw limit does.
        let swap = dir.join("memory.swap.max");
        if limit_swap && fs.supports(&swap) {
            fs.write(&swap, "0")?;
        }
        // Kill the whole container on OOM (kubelet does the same); the task is failed
        // anyway, and half-killed process trees confuse executors.
        let group = dir.join("memory.oom.group");
        if fs.supports(&group) {
            fs.write(&group, "1")?;
        }
    }
    Ok(())
}

pub(super) fn usage(fs: &CgroupFs, dir: &Path, usage: &mut Usage) -> Result<(), FsError> {
    usage.mem_total_bytes = fs.read_u64_or_max(&dir.join("memory.current"))?;
    let stat = fs.read(&dir.join("memory.stat"))?;
    usage.mem_anon_bytes = flat_keyed_value(&stat, "anon");
    usage.mem_file_bytes = flat_keyed_value(&stat, "file");
    usage.mem_limit_bytes = fs.read_u64_or_max(&dir.join("memory.max"))?;
    usage.mem_low_bytes = fs.read_u64_or_max(&dir.join("memory.low"))?;
    Ok(())
}

/// The limitation for an OOM kill: limit, peak use (`memory.peak`, Linux 5.19+, else
/// the current use), and the main `memory.stat` lines. Unreadable figures are logged
/// and left out: the kill happened and must be reported regardless.
pub(super) fn oom_limitation(fs: &CgroupFs, dir: &Path) -> Limitation {
    let limit = logged(fs.read_u64_or_max(&dir.join("memory.max"))).flatten();
    let peak_path = dir.join("memory.peak");
    let peak_path = if fs.exists(&peak_path) {
        peak_path
    } else {
        dir.join("memory.current")
    };
    let peak = logged(fs.read_u64_or_max(&peak_path)).flatten();
    let stat = logged(fs.read(&dir.join("memory.stat"))).unwrap_or_default();
    Limitation::memory(limit, peak, &select_stats(&stat, &OOM_STATS))
}

fn logged<T>(result: Result<T, FsError>) -> Option<T> {
    result
        .map_err(|error| tracing::warn!(%error, "reading OOM statistics"))
        .ok()
}
