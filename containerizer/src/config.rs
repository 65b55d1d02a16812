//! The containerizer's settings, from the agent's flags.

use std::path::{Path, PathBuf};

use mesos_isolator::{Isolation, Isolator, IsolatorKind};

use crate::image::ImageProvider;
use crate::namespaces::Namespaces;

/// The name of the launch helper binary in `--launcher_dir`.
pub const HELPER_BINARY: &str = "mesos-containerizer";

/// Settings of a [`crate::Containerizer`].
#[derive(Debug)]
pub struct ContainerizerConfig {
    /// `--work_dir`: sandboxes, meta checkpoints, the provisioner.
    pub work_dir: PathBuf,
    /// `--runtime_dir`: `containers/<id>/{config.json,pid}`.
    pub runtime_dir: PathBuf,
    /// `--launcher_dir`: holds the `mesos-containerizer` launch helper (and
    /// `mesos-executor`, which the agent names in the command it launches).
    pub launcher_dir: PathBuf,
    /// The cgroup isolator; its `--isolation` also decides the namespaces.
    pub isolator: Isolator,
    /// `--switch_user`: run tasks as their user (else as the agent's user).
    pub switch_user: bool,
    /// `--sandbox_directory`: the sandbox inside an image rootfs.
    pub sandbox_directory: PathBuf,
    /// `--image_providers` (empty: images are refused).
    pub image_providers: Vec<ImageProvider>,
    /// `--oci_store_dir`; `None` means `<work_dir>/store/oci`.
    pub oci_store_dir: Option<PathBuf>,
    /// The namespaces every container gets; see [`ContainerizerConfig::new`].
    pub namespaces: Namespaces,
}

impl ContainerizerConfig {
    /// Mesos's defaults: `--switch_user`, `/mnt/mesos/sandbox`, no image
    /// providers, and namespaces from the isolator's `--isolation`
    /// ([`namespaces_for`]).
    pub fn new(
        work_dir: impl Into<PathBuf>,
        runtime_dir: impl Into<PathBuf>,
        launcher_dir: impl Into<PathBuf>,
        isolator: Isolator,
    ) -> Self {
        let namespaces = namespaces_for(isolator.isolation(), isolator.driver() == "cgroups2");
        ContainerizerConfig {
            work_dir: work_dir.into(),
            runtime_dir: runtime_dir.into(),
            launcher_dir: launcher_dir.into(),
            isolator,
            switch_user: true,
            sandbox_directory: PathBuf::from("/mnt/mesos/sandbox"),
            image_providers: Vec::new(),
            oci_store_dir: None,
            namespaces,
        }
    }

    /// The OCI store directory in force.
    pub fn oci_store_dir(&self) -> PathBuf {
        self.oci_store_dir
            .clone()
            .unwrap_or_else(|| default_oci_store_dir(&self.work_dir))
    }

    /// `<launcher_dir>/mesos-containerizer`.
    pub fn helper_path(&self) -> PathBuf {
        self.launcher_dir.join(HELPER_BINARY)
    }
}

/// `<work_dir>/store/oci`.
pub fn default_oci_store_dir(work_dir: &Path) -> PathBuf {
    work_dir.join("store").join("oci")
}

/// The namespaces implied by `--isolation`: `namespaces/pid` → pid,
/// `namespaces/ipc` → ipc, `filesystem/linux` → mount **and uts** (the
/// hostname becomes the container id unless the task names one; Mesos does
/// this only with `network/cni`, so set `uts = false` for Mesos's exact
/// behaviour). A cgroup namespace only with the v2 driver: on a hybrid host
/// it would root the v1 hierarchies at the agent's cgroups, not the
/// container's. Never a network namespace (host networking, like Mesos
/// without `network/cni`).
pub fn namespaces_for(isolation: &Isolation, cgroups_v2: bool) -> Namespaces {
    let mount = isolation.contains(IsolatorKind::FilesystemLinux);
    Namespaces {
        pid: isolation.contains(IsolatorKind::NamespacesPid),
        ipc: isolation.contains(IsolatorKind::NamespacesIpc),
        mount,
        uts: mount,
        net: false,
        cgroup: cgroups_v2 && mount,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isolation_flags_select_namespaces() {
        let isolation: Isolation = "filesystem/linux,namespaces/pid,namespaces/ipc"
            .parse()
            .expect("valid");
        let hybrid = namespaces_for(&isolation, false);
        assert_eq!(
            hybrid,
            Namespaces {
                cgroup: false,
                ..Namespaces::isolated()
            }
        );
        assert!(namespaces_for(&isolation, true).cgroup);
        let posix = namespaces_for(&Isolation::default(), true);
        assert_eq!(posix, Namespaces::default());
    }
}
