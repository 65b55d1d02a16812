//! Resource usage of a container, named like Mesos's `ResourceStatistics` so the
//! agent's `/monitor/statistics` can copy the fields one to one.

use std::time::{SystemTime, UNIX_EPOCH};

/// A usage sample. Fields a driver cannot provide (controller not enabled, kernel too
/// old) are `None` and must be left unset in `ResourceStatistics`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Usage {
    /// Seconds since the epoch when the sample was taken.
    pub timestamp: f64,
    /// Processes in the container.
    pub processes: Option<u32>,
    /// CPU time in user mode.
    pub cpus_user_time_secs: Option<f64>,
    /// CPU time in kernel mode.
    pub cpus_system_time_secs: Option<f64>,
    /// The CFS cap in cpus, or the cpus share when uncapped.
    pub cpus_limit: Option<f64>,
    /// CFS periods in which the container was runnable.
    pub cpus_nr_periods: Option<u32>,
    /// CFS periods in which the container was throttled.
    pub cpus_nr_throttled: Option<u32>,
    /// Total time the container was throttled.
    pub cpus_throttled_time_secs: Option<f64>,
    /// Memory charged to the container (v2 `memory.current`, v1 `memory.usage_in_bytes`).
    pub mem_total_bytes: Option<u64>,
    /// Anonymous memory (v2 `anon`, v1 `total_rss`).
    pub mem_anon_bytes: Option<u64>,
    /// Page cache (v2 `file`, v1 `total_cache`).
    pub mem_file_bytes: Option<u64>,
    /// The hard memory limit; `None` when unlimited.
    pub mem_limit_bytes: Option<u64>,
    /// The soft limit (v2 `memory.low`, v1 `memory.soft_limit_in_bytes`).
    pub mem_low_bytes: Option<u64>,
}

impl Usage {
    /// An empty sample stamped with the current time.
    pub(crate) fn now() -> Self {
        Usage {
            timestamp: unix_timestamp(),
            ..Usage::default()
        }
    }
}

/// Seconds since the epoch, as Mesos's `process::Clock::now().secs()`.
fn unix_timestamp() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Narrows a kernel counter to the `uint32` of `ResourceStatistics`, saturating.
pub(crate) fn saturating_u32(value: u64) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

/// Converts a v2 `*_usec` counter to seconds.
pub(crate) fn usecs_to_secs(usecs: u64) -> f64 {
    usecs as f64 / 1e6
}

/// Converts a v1 nanosecond counter to seconds.
pub(crate) fn nsecs_to_secs(nsecs: u64) -> f64 {
    nsecs as f64 / 1e9
}

/// Counts processes, saturating.
pub(crate) fn process_count(pids: &[i32]) -> u32 {
    u32::try_from(pids.len()).unwrap_or(u32::MAX)
}
