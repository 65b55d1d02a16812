//! A container's resource requests and limits, and the pure formulas that turn them
//! into cgroup values (Mesos parity: isolation.md §3.4, Mesos
//! isolators/cgroups{,2}/constants.hpp and controllers/{cpu,memory}.cpp).

/// Mesos's minimum memory for a container (`MIN_MEMORY`, `CGROUPS2_MIN_MEMORY`).
pub const MIN_MEMORY_BYTES: u64 = 32 * 1024 * 1024;
/// CFS period, 100 ms (`CPU_CFS_PERIOD`).
pub const CPU_CFS_PERIOD_US: u64 = 100_000;
/// Smallest CFS quota, 1 ms (`MIN_CPU_CFS_QUOTA`).
pub const MIN_CPU_CFS_QUOTA_US: u64 = 1_000;
/// v2 `cpu.weight` per requested cpu (`CPU_WEIGHT_PER_CPU`).
pub const CPU_WEIGHT_PER_CPU: f64 = 100.0;
/// The kernel's `cpu.weight` range.
pub const CPU_WEIGHT_RANGE: (u64, u64) = (1, 10_000);
/// v1 `cpu.shares` per requested cpu (`CPU_SHARES_PER_CPU`).
pub const CPU_SHARES_PER_CPU: f64 = 1024.0;
/// The kernel's `cpu.shares` range (`MIN_SHARES`, `MAX_SHARES`); Mesos's minimum is 2.
pub const CPU_SHARES_RANGE: (u64, u64) = (2, 262_144);

/// What a container asked for: requests (the offered resources) and optional limits
/// (`TaskInfo.limits`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ContainerLimits {
    /// Requested cpus (`cpus` resource).
    pub cpus: f64,
    /// Requested memory in bytes (`mem` resource, MB × 2^20).
    pub mem_bytes: u64,
    /// `TaskInfo.limits["cpus"]`; `f64::INFINITY` means unlimited.
    pub cpus_limit: Option<f64>,
    /// `TaskInfo.limits["mem"]` in bytes; `u64::MAX` means unlimited.
    pub mem_limit_bytes: Option<u64>,
    /// A `pids` resource; overrides `--cgroups_pids_max`.
    pub pids: Option<u64>,
}

impl ContainerLimits {
    /// Requests only, no limits.
    pub fn new(cpus: f64, mem_bytes: u64) -> Self {
        ContainerLimits {
            cpus,
            mem_bytes,
            cpus_limit: None,
            mem_limit_bytes: None,
            pids: None,
        }
    }

    /// Rejects values no formula can use; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        if !self.cpus.is_finite() || self.cpus < 0.0 {
            return Err(format!(
                "cpus must be a finite number >= 0, got {}",
                self.cpus
            ));
        }
        if let Some(limit) = self.cpus_limit {
            if limit.is_nan() || limit < 0.0 {
                return Err(format!("cpus limit must be >= 0 or infinite, got {limit}"));
            }
        }
        Ok(())
    }
}

/// CFS bandwidth for a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpuBandwidth {
    /// No hard cap.
    Unlimited,
    /// At most `quota_us` of CPU time every `period_us`.
    Quota { quota_us: u64, period_us: u64 },
}

impl CpuBandwidth {
    /// The v2 `cpu.max` value.
    pub fn cpu_max(self) -> String {
        match self {
            CpuBandwidth::Unlimited => format!("max {CPU_CFS_PERIOD_US}"),
            CpuBandwidth::Quota {
                quota_us,
                period_us,
            } => format!("{quota_us} {period_us}"),
        }
    }

    /// The v1 `cpu.cfs_quota_us` value (-1 is unlimited).
    pub fn cfs_quota_us(self) -> String {
        match self {
            CpuBandwidth::Unlimited => "-1".to_owned(),
            CpuBandwidth::Quota { quota_us, .. } => quota_us.to_string(),
        }
    }

    /// The cap in cpus, if any.
    pub fn cpus(self) -> Option<f64> {
        match self {
            CpuBandwidth::Unlimited => None,
            CpuBandwidth::Quota {
                quota_us,
                period_us,
            } => Some(quota_us as f64 / period_us as f64),
        }
    }
}

/// Mesos's bandwidth rule: the cpus limit if given (infinite: unlimited), else the
/// request when `--cgroups_enable_cfs`, else unlimited. Quota is at least 1 ms.
pub fn cpu_bandwidth(limits: &ContainerLimits, enable_cfs: bool) -> CpuBandwidth {
    let cpus = match limits.cpus_limit {
        Some(limit) if limit.is_infinite() => return CpuBandwidth::Unlimited,
        Some(limit) => limit,
        None if enable_cfs => limits.cpus,
        None => return CpuBandwidth::Unlimited,
    };
    // `as` truncates like Mesos's static_cast<uint64_t> and saturates on overflow.
    let quota_us = (cpus * CPU_CFS_PERIOD_US as f64) as u64;
    CpuBandwidth::Quota {
        quota_us: quota_us.max(MIN_CPU_CFS_QUOTA_US),
        period_us: CPU_CFS_PERIOD_US,
    }
}

/// v2 `cpu.weight` = clamp(floor(100 × cpus), 1, 10000). Mesos does not clamp the top,
/// but the kernel rejects weights above 10000 with ERANGE.
pub fn cpu_weight(cpus: f64) -> u64 {
    let (min, max) = CPU_WEIGHT_RANGE;
    ((CPU_WEIGHT_PER_CPU * cpus) as u64).clamp(min, max)
}

/// v1 `cpu.shares` = max(floor(1024 × cpus), 2), capped at the kernel's 262144 (which
/// the kernel would apply silently).
pub fn cpu_shares(cpus: f64) -> u64 {
    let (min, max) = CPU_SHARES_RANGE;
    ((CPU_SHARES_PER_CPU * cpus) as u64).clamp(min, max)
}

/// The soft limit (v2 `memory.low`, v1 `memory.soft_limit_in_bytes`): the request, at
/// least 32 MB.
pub fn memory_soft_limit(limits: &ContainerLimits) -> u64 {
    limits.mem_bytes.max(MIN_MEMORY_BYTES)
}

/// The hard limit (v2 `memory.max`, v1 `memory.limit_in_bytes`): the mem limit if
/// given (at least 32 MB; `u64::MAX` is unlimited, `None` here), else the soft limit.
pub fn memory_hard_limit(limits: &ContainerLimits) -> Option<u64> {
    match limits.mem_limit_bytes {
        Some(u64::MAX) => None,
        Some(limit) => Some(limit.max(MIN_MEMORY_BYTES)),
        None => Some(memory_soft_limit(limits)),
    }
}

/// The v2 rendering of a hard limit.
pub fn memory_max(hard_limit: Option<u64>) -> String {
    hard_limit.map_or_else(|| "max".to_owned(), |b| b.to_string())
}

/// `pids.max`: the container's `pids` resource, else `--cgroups_pids_max`.
pub fn pids_max(limits: &ContainerLimits, flag: Option<u64>) -> Option<u64> {
    limits.pids.or(flag)
}

/// Whether a new hard memory limit may be written over `current` (`None` is
/// unlimited). Mesos only ever raises it once set: lowering it below the usage of
/// running processes would trigger an OOM kill.
pub fn memory_limit_may_change(current: Option<u64>, new: Option<u64>) -> bool {
    match (current, new) {
        (_, None) => true,
        (None, Some(_)) => false,
        (Some(current), Some(new)) => new > current,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: u64 = 1024 * 1024;

    #[test]
    fn tiny_cpu_request_hits_every_minimum() {
        // 0.01 cpus: weight 1, shares 10, and the quota floor of 1 ms.
        let limits = ContainerLimits::new(0.01, 64 * MB);
        assert_eq!(cpu_weight(0.01), 1);
        assert_eq!(cpu_shares(0.01), 10);
        assert_eq!(cpu_shares(0.001), 2);
        assert_eq!(cpu_weight(0.0), 1);
        assert_eq!(
            cpu_bandwidth(&limits, true),
            CpuBandwidth::Quota {
                quota_us: 1_000,
                period_us: 100_000
            }
        );
        let tinier = ContainerLimits::new(0.001, 64 * MB);
        assert_eq!(cpu_bandwidth(&tinier, true).cpu_max(), "1000 100000");
    }

    #[test]
    fn huge_cpu_request_is_clamped_to_kernel_ranges() {
        assert_eq!(cpu_weight(10_000.0), 10_000);
        assert_eq!(cpu_weight(100.0), 10_000);
        assert_eq!(cpu_weight(99.5), 9_950);
        assert_eq!(cpu_shares(10_000.0), 262_144);
        let limits = ContainerLimits::new(10_000.0, 64 * MB);
        assert_eq!(cpu_bandwidth(&limits, true).cpu_max(), "1000000000 100000");
    }

    #[test]
    fn common_requests() {
        assert_eq!(cpu_weight(1.0), 100);
        assert_eq!(cpu_weight(2.5), 250);
        assert_eq!(cpu_shares(0.5), 512);
        assert_eq!(cpu_shares(1.0), 1024);
    }

    #[test]
    fn bandwidth_follows_limit_then_cfs_flag() {
        let mut limits = ContainerLimits::new(0.5, 64 * MB);
        assert_eq!(cpu_bandwidth(&limits, false), CpuBandwidth::Unlimited);
        assert_eq!(cpu_bandwidth(&limits, false).cpu_max(), "max 100000");
        assert_eq!(cpu_bandwidth(&limits, false).cfs_quota_us(), "-1");
        assert_eq!(cpu_bandwidth(&limits, true).cpu_max(), "50000 100000");
        // A limit wins over the request, with or without --cgroups_enable_cfs.
        limits.cpus_limit = Some(2.0);
        assert_eq!(cpu_bandwidth(&limits, false).cpu_max(), "200000 100000");
        assert_eq!(cpu_bandwidth(&limits, true).cfs_quota_us(), "200000");
        assert_eq!(cpu_bandwidth(&limits, true).cpus(), Some(2.0));
        // An infinite limit lifts the cap even when CFS is on.
        limits.cpus_limit = Some(f64::INFINITY);
        assert_eq!(cpu_bandwidth(&limits, true), CpuBandwidth::Unlimited);
    }

    #[test]
    fn memory_below_minimum_is_raised_to_32mb() {
        let limits = ContainerLimits::new(0.1, 16 * MB);
        assert_eq!(memory_soft_limit(&limits), 32 * MB);
        assert_eq!(memory_hard_limit(&limits), Some(32 * MB));
        assert_eq!(memory_soft_limit(&ContainerLimits::new(0.1, 0)), 32 * MB);
    }

    #[test]
    fn memory_limit_vs_request() {
        let mut limits = ContainerLimits::new(0.1, 128 * MB);
        assert_eq!(memory_soft_limit(&limits), 128 * MB);
        assert_eq!(memory_hard_limit(&limits), Some(128 * MB));
        limits.mem_limit_bytes = Some(512 * MB);
        assert_eq!(memory_soft_limit(&limits), 128 * MB);
        assert_eq!(memory_hard_limit(&limits), Some(512 * MB));
        limits.mem_limit_bytes = Some(MB);
        assert_eq!(memory_hard_limit(&limits), Some(32 * MB));
        limits.mem_limit_bytes = Some(u64::MAX);
        assert_eq!(memory_hard_limit(&limits), None);
        assert_eq!(memory_max(memory_hard_limit(&limits)), "max");
    }

    #[test]
    fn memory_limit_only_grows() {
        assert!(memory_limit_may_change(Some(64 * MB), Some(128 * MB)));
        assert!(!memory_limit_may_change(Some(64 * MB), Some(32 * MB)));
        assert!(!memory_limit_may_change(Some(64 * MB), Some(64 * MB)));
        assert!(memory_limit_may_change(Some(64 * MB), None));
        assert!(!memory_limit_may_change(None, Some(64 * MB)));
    }

    #[test]
    fn pids_resource_overrides_flag() {
        let mut limits = ContainerLimits::new(1.0, 64 * MB);
        assert_eq!(pids_max(&limits, Some(100)), Some(100));
        limits.pids = Some(10);
        assert_eq!(pids_max(&limits, Some(100)), Some(10));
        assert_eq!(pids_max(&ContainerLimits::new(1.0, 0), None), None);
    }

    #[test]
    fn invalid_limits_are_named() {
        let err = ContainerLimits::new(f64::NAN, 0).validate().unwrap_err();
        assert!(err.contains("cpus"), "{err}");
        let mut limits = ContainerLimits::new(1.0, 0);
        limits.cpus_limit = Some(-1.0);
        assert!(limits.validate().unwrap_err().contains("cpus limit"));
        limits.cpus_limit = Some(f64::INFINITY);
        assert!(limits.validate().is_ok());
    }
}
