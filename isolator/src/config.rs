//! The agent's `--cgroups_*` flags.

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

/// Cgroup settings, from the agent flags of the same names.
#[derive(Debug, Clone, PartialEq)]
pub struct CgroupsConfig {
    /// `--cgroups_hierarchy`: where cgroup filesystems are mounted (`/sys/fs/cgroup`).
    pub hierarchy: PathBuf,
    /// `--cgroups_root`: the sub-tree holding containers (`mesos`), created below the
    /// agent's own cgroup in each hierarchy.
    pub root: String,
    /// `--cgroups_enable_cfs`: cap CPU at the request when a task sets no cpus limit.
    pub enable_cfs: bool,
    /// `--cgroups_limit_swap`: the memory limit also bounds swap (v2
    /// `memory.swap.max = 0`, v1 `memory.memsw.limit_in_bytes` = the limit, where those
    /// files exist). Defaults to **true**, unlike Mesos (false), because a limit a task
    /// can escape into swap is not enforcement; `false` leaves swap untouched.
    pub limit_swap: bool,
    /// `--cgroups_pids_max`: `pids.max` for containers without a `pids` resource.
    pub pids_max: Option<u64>,
    /// `--cgroups_destroy_timeout`: how long `destroy` waits for a killed container's
    /// processes to disappear (Mesos default 1 minute).
    pub destroy_timeout: Duration,
}

impl Default for CgroupsConfig {
    fn default() -> Self {
        CgroupsConfig {
            hierarchy: PathBuf::from("/sys/fs/cgroup"),
            root: "mesos".to_owned(),
            enable_cfs: false,
            limit_swap: true,
            pids_max: None,
            destroy_timeout: Duration::from_secs(60),
        }
    }
}

impl CgroupsConfig {
    /// Checks `--cgroups_root`: a relative path of plain components.
    pub(crate) fn validate(&self) -> Result<(), String> {
        let root = Path::new(&self.root);
        let plain = root.components().all(|c| matches!(c, Component::Normal(_)));
        if self.root.is_empty() || !plain {
            return Err(format!(
                "--cgroups_root must be a relative path without '.' or '..', got {:?}",
                self.root
            ));
        }
        if self.destroy_timeout.is_zero() {
            return Err("--cgroups_destroy_timeout must be positive".to_owned());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_mesos_flags() {
        let config = CgroupsConfig::default();
        assert_eq!(config.hierarchy, Path::new("/sys/fs/cgroup"));
        assert_eq!(config.root, "mesos");
        assert!(!config.enable_cfs);
        assert!(config.validate().is_ok());
    }

    #[test]
    fn root_must_be_relative_and_plain() {
        for bad in ["", "/mesos", "../mesos", "mesos/../x", "."] {
            let config = CgroupsConfig {
                root: bad.to_owned(),
                ..CgroupsConfig::default()
            };
            let err = config.validate().unwrap_err();
            assert!(err.contains("--cgroups_root"), "{bad}: {err}");
        }
        let nested = CgroupsConfig {
            root: "mesos/agent1".to_owned(),
            ..CgroupsConfig::default()
        };
        assert!(nested.validate().is_ok());
    }
}
