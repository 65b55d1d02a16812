//! Enforces what the master offered: puts each container in cgroups with CPU, memory
//! and pids limits, reports OOM kills as container limitations, accounts usage, and
//! kills and removes containers.
//!
//! The agent builds one [`Isolator`] at start-up from `--isolation` ([`Isolation`])
//! and the `--cgroups_*` flags ([`CgroupsConfig`]). It detects the host's cgroup
//! layout ([`detect_layout`]) and picks a driver: **cgroups v2** on a unified host
//! (Mesos's cgroups2 layout, `<root>/<id>/leaf`), **cgroups v1** on legacy and hybrid
//! hosts, where the controller-less cgroup2 tree still tracks processes, takes
//! `clone3(CLONE_INTO_CGROUP)` and provides `cgroup.kill`. [`Isolator::prepare`]
//! returns a [`ContainerCgroup`] for the containerizer (clone into it, `attach`,
//! `update`, `usage`, `limitation`, `destroy`).
//!
//! # Why not cgroups-rs
//!
//! cgroups-rs 0.5.1 is in the user's package list, and the issue suggested it for the
//! v1 controllers. This crate writes both drivers directly, behind one small cgroupfs
//! layer ([`CgroupFs`]), because (crates.md §6):
//! - the v2 driver, every kill path, the OOM watchers, `rmdir` retries and the hybrid
//!   tracking tree had to be written here anyway: cgroups-rs cannot address the
//!   cgroup2 tree of a hybrid host (it hard-codes `/sys/fs/cgroup`), has no `kill` on
//!   v1, no v2 `memory.events` watcher, and does not retry `rmdir` on EBUSY;
//! - what it would do for v1 is write eight small files (`cpu.shares`,
//!   `cpu.cfs_{period,quota}_us`, `memory.{soft_,memsw.,}limit_in_bytes`,
//!   `memory.oom_control`, `pids.max`); going through [`CgroupFs`] makes those writes
//!   unit-testable on a fake cgroupfs in a temporary directory, which cgroups-rs
//!   (discovering hierarchies from the real mount table) does not allow;
//! - its cost: about 60 extra crates including a non-optional zbus D-Bus stack and a
//!   second `nix`, ~36 s more per clean build on the 2-core CI host, and ~70
//!   `unwrap()`s in its cgroupfs code, i.e. agent panics where we want errors that
//!   name the cgroup file.
//!
//! # Layout
//!
//! Containers live below the agent's own cgroup in each hierarchy, read from
//! `/proc/self/cgroup` (`<mount>/<own path>/<--cgroups_root>/<id>`): the v1 roots need
//! not be writable or empty, and under systemd this keeps the tree inside the agent's
//! delegated unit. On v2 the agent may move itself into `<root>/agent/leaf`
//! ([`Isolator::move_agent_to_leaf`]) so that controllers can be enabled above the
//! containers (no-internal-process rule).

mod cgroups1;
mod cgroups2;
mod config;
mod error;
mod fs;
mod isolation;
mod kill;
mod layout;
mod limitation;
mod limits;
mod usage;

use std::os::fd::BorrowedFd;
use std::path::PathBuf;
use std::sync::Arc;

pub use config::CgroupsConfig;
pub use error::IsolatorError;
pub use fs::{CgroupFs, FsError};
pub use isolation::{Isolation, IsolationError, IsolatorKind, Namespaces};
pub use layout::{detect_layout, HostInfo, Layout, LayoutError};
pub use limitation::{format_bytes, Limitation, LimitationReason};
pub use limits::{
    cpu_bandwidth, cpu_shares, cpu_weight, memory_hard_limit, memory_soft_limit, ContainerLimits,
    CpuBandwidth, MIN_MEMORY_BYTES,
};
pub use usage::Usage;

/// The cgroup controllers an [`Isolation`] asks for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Controllers {
    pub cpu: bool,
    pub memory: bool,
    pub pids: bool,
}

impl Controllers {
    fn from_isolation(isolation: &Isolation) -> Self {
        Controllers {
            cpu: isolation.cgroups_cpu(),
            memory: isolation.cgroups_mem(),
            pids: isolation.cgroups_pids(),
        }
    }

    /// `(v2 controller, the isolator that needs it)` for each enabled one.
    pub(crate) fn v2_names(&self) -> Vec<(&'static str, &'static str)> {
        [
            (self.cpu, "cpu", "cgroups/cpu"),
            (self.memory, "memory", "cgroups/mem"),
            (self.pids, "pids", "cgroups/pids"),
        ]
        .into_iter()
        .filter(|(on, _, _)| *on)
        .map(|(_, controller, isolator)| (controller, isolator))
        .collect()
    }
}

/// The driver chosen for the host.
#[derive(Debug)]
enum Driver {
    V2(cgroups2::Driver),
    V1(cgroups1::Driver),
}

/// The agent's cgroup isolator: creates, recovers and tracks container cgroups.
#[derive(Debug)]
pub struct Isolator {
    driver: Driver,
    layout: Layout,
    isolation: Isolation,
    config: Arc<CgroupsConfig>,
}

impl Isolator {
    /// Detects this host's layout and builds the matching driver.
    pub fn new(config: CgroupsConfig, isolation: Isolation) -> Result<Self, IsolatorError> {
        Self::with_host(config, isolation, &HostInfo::read()?, CgroupFs::kernel())
    }

    /// Like [`Isolator::new`] with a given mount table and cgroup membership, and a
    /// given cgroupfs (tests use [`CgroupFs::fake`] on a temporary directory).
    pub fn with_host(
        config: CgroupsConfig,
        isolation: Isolation,
        host: &HostInfo,
        fs: CgroupFs,
    ) -> Result<Self, IsolatorError> {
        config.validate().map_err(IsolatorError::Config)?;
        if config.pids_max.is_some() && !isolation.cgroups_pids() {
            return Err(IsolatorError::Config(
                "--cgroups_pids_max needs cgroups/pids (or cgroups/all) in --isolation".to_owned(),
            ));
        }
        let config = Arc::new(config);
        let controllers = Controllers::from_isolation(&isolation);
        let layout = detect_layout(&host.mountinfo, &config.hierarchy)?;
        let driver = select_driver(layout, host, fs, &config, controllers)?;
        let isolator = Isolator {
            driver,
            layout,
            isolation,
            config,
        };
        tracing::info!(
            layout = %isolator.layout,
            driver = isolator.driver(),
            isolation = %isolator.isolation,
            roots = ?isolator.roots(),
            "cgroups isolator ready"
        );
        Ok(isolator)
    }

    /// `"cgroups2"` or `"cgroups1"`.
    pub fn driver(&self) -> &'static str {
        match self.driver {
            Driver::V2(_) => "cgroups2",
            Driver::V1(_) => "cgroups1",
        }
    }

    /// The host layout detected at start-up.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// The `--isolation` value in force.
    pub fn isolation(&self) -> &Isolation {
        &self.isolation
    }

    /// The `--cgroups_*` settings in force.
    pub fn config(&self) -> &CgroupsConfig {
        &self.config
    }

    /// The `<root>` directory in each hierarchy used.
    pub fn roots(&self) -> Vec<PathBuf> {
        match &self.driver {
            Driver::V2(d) => vec![d.root().to_owned()],
            Driver::V1(d) => d.roots().into_iter().cloned().collect(),
        }
    }

    /// Where the agent belongs on v2 (`<root>/agent/leaf`); `None` on v1, where the
    /// agent stays in its own cgroup.
    pub fn agent_cgroup(&self) -> Option<PathBuf> {
        match &self.driver {
            Driver::V2(d) => Some(d.agent_leaf()),
            Driver::V1(_) => None,
        }
    }

    /// On v2, moves `pid` (the agent's own pid, normally) into `<root>/agent/leaf` and
    /// enables the controllers from the cgroup2 root down to `<root>`. Needed when the
    /// agent's cgroup is not the cgroup2 root: a cgroup holding processes cannot hand
    /// controllers to its children. A no-op on v1.
    pub fn move_agent_to_leaf(&self, pid: i32) -> Result<(), IsolatorError> {
        match &self.driver {
            Driver::V2(d) => d.move_agent_to_leaf(pid),
            Driver::V1(_) => Ok(()),
        }
    }

    /// Creates the container's cgroups and applies `limits`. The containerizer then
    /// clones the task into [`ContainerCgroup::clone_into_fd`] and calls
    /// [`ContainerCgroup::attach`] before letting it exec.
    pub fn prepare(
        &self,
        container_id: &str,
        limits: &ContainerLimits,
    ) -> Result<ContainerCgroup, IsolatorError> {
        validate_container_id(container_id)?;
        validate_limits(container_id, limits)?;
        let inner = match &self.driver {
            Driver::V2(d) => Container::V2(d.prepare(container_id, limits)?),
            Driver::V1(d) => Container::V1(d.prepare(container_id, limits)?),
        };
        tracing::info!(
            container = container_id,
            ?limits,
            "prepared container cgroups"
        );
        Ok(ContainerCgroup {
            id: container_id.to_owned(),
            inner,
        })
    }

    /// After an agent restart: reopens the cgroups of the `known` containers (from the
    /// agent's checkpoint) and destroys every other container found under `<root>`.
    pub async fn recover(&self, known: &[String]) -> Result<Recovered, IsolatorError> {
        let found = self.container_ids()?;
        let mut recovered = Recovered::default();
        for id in known {
            if !found.contains(id) {
                recovered.missing.push(id.clone());
                continue;
            }
            recovered.containers.push(self.open(id)?);
        }
        for id in found.into_iter().filter(|id| !known.contains(id)) {
            let result = match self.open(&id) {
                Ok(orphan) => orphan.destroy().await,
                Err(error) => Err(error),
            };
            match result {
                Ok(()) => {
                    tracing::info!(container = %id, "destroyed orphan container");
                    recovered.orphans_destroyed.push(id);
                }
                Err(error) => {
                    tracing::warn!(container = %id, %error, "failed to destroy orphan container");
                    recovered.orphans_failed.push((id, error));
                }
            }
        }
        Ok(recovered)
    }

    /// Destroys every container under `<root>` and removes `<root>` (kept on v2 while
    /// the agent lives in `<root>/agent/leaf`). For `--recover=cleanup`-style shutdowns
    /// and test clean-up.
    pub async fn destroy_all(&self) -> Result<(), IsolatorError> {
        let recovered = self.recover(&[]).await?;
        if let Some((_, error)) = recovered.orphans_failed.into_iter().next() {
            return Err(error);
        }
        match &self.driver {
            Driver::V2(d) => d.remove_root().await,
            Driver::V1(d) => d.remove_root().await,
        }
    }

    fn container_ids(&self) -> Result<Vec<String>, IsolatorError> {
        match &self.driver {
            Driver::V2(d) => d.container_ids(),
            Driver::V1(d) => d.container_ids(),
        }
    }

    fn open(&self, id: &str) -> Result<ContainerCgroup, IsolatorError> {
        let inner = match &self.driver {
            Driver::V2(d) => Container::V2(d.open(id)?),
            Driver::V1(d) => Container::V1(d.open(id)?),
        };
        Ok(ContainerCgroup {
            id: id.to_owned(),
            inner,
        })
    }
}

/// Unified: v2. Hybrid: v2 on the cgroup2 tree only if it has every controller the
/// isolation needs (it normally has none), else v1. Legacy: v1.
fn select_driver(
    layout: Layout,
    host: &HostInfo,
    fs: CgroupFs,
    config: &Arc<CgroupsConfig>,
    controllers: Controllers,
) -> Result<Driver, IsolatorError> {
    let cgroup2 = host.cgroup2_mount(&config.hierarchy);
    let v2_mount = match (layout, cgroup2) {
        (Layout::Unified, Some(mount)) => Some(mount),
        (Layout::Hybrid, Some(mount)) => {
            let listed = fs
                .read_opt(&mount.mount_point.join("cgroup.controllers"))?
                .unwrap_or_default();
            let available: Vec<&str> = listed.split_whitespace().collect();
            let needed = controllers.v2_names();
            let all = !needed.is_empty() && needed.iter().all(|(c, _)| available.contains(c));
            all.then_some(mount)
        }
        _ => None,
    };
    Ok(match v2_mount {
        Some(mount) => Driver::V2(cgroups2::Driver::new(
            fs,
            host,
            &mount,
            Arc::clone(config),
            controllers,
        )?),
        None => Driver::V1(cgroups1::Driver::new(
            fs,
            host,
            Arc::clone(config),
            controllers,
        )?),
    })
}

/// Container IDs become directory names.
fn validate_container_id(id: &str) -> Result<(), IsolatorError> {
    let reason = if id.is_empty() {
        Some("empty")
    } else if id == "." || id == ".." {
        Some("'.' and '..' are not cgroup names")
    } else if id.contains('/') || id.contains('\0') {
        Some("contains '/' or NUL")
    } else if id == "agent" {
        Some("'agent' is reserved for the agent's own cgroup")
    } else if id.len() > 255 {
        Some("longer than 255 bytes")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(IsolatorError::InvalidContainerId {
            id: id.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

fn validate_limits(id: &str, limits: &ContainerLimits) -> Result<(), IsolatorError> {
    limits
        .validate()
        .map_err(|reason| IsolatorError::InvalidLimits {
            id: id.to_owned(),
            reason,
        })
}

/// What [`Isolator::recover`] found.
#[derive(Debug, Default)]
pub struct Recovered {
    /// The known containers whose cgroups exist, reopened.
    pub containers: Vec<ContainerCgroup>,
    /// Known containers without a cgroup (gone while the agent was down).
    pub missing: Vec<String>,
    /// Unknown containers that were destroyed.
    pub orphans_destroyed: Vec<String>,
    /// Unknown containers that could not be destroyed.
    pub orphans_failed: Vec<(String, IsolatorError)>,
}

/// A container's OOM watch, detached from the [`ContainerCgroup`] borrow.
#[derive(Debug, Clone)]
pub struct LimitationWatch {
    id: String,
    fs: CgroupFs,
    /// The watched memory cgroup; `None` without `cgroups/mem`.
    memory: Option<(WatchDriver, PathBuf)>,
}

#[derive(Debug, Clone, Copy)]
enum WatchDriver {
    V2,
    V1,
}

impl LimitationWatch {
    /// See [`ContainerCgroup::limitation`].
    pub async fn wait(self) -> Limitation {
        kill::pending_on_error("cannot watch for OOM kills", self.try_wait()).await
    }

    /// See [`ContainerCgroup::watch_limitation`].
    pub async fn try_wait(self) -> Result<Limitation, IsolatorError> {
        let Some((driver, dir)) = &self.memory else {
            return std::future::pending().await;
        };
        let limitation = match driver {
            WatchDriver::V2 => cgroups2::watch_oom(self.fs, dir).await?,
            WatchDriver::V1 => cgroups1::watch_oom(self.fs, dir).await?,
        };
        tracing::info!(container = %self.id, message = %limitation.message, "OOM detected");
        Ok(limitation)
    }
}

#[derive(Debug)]
enum Container {
    V2(cgroups2::Container),
    V1(cgroups1::Container),
}

/// One container's cgroups (one per hierarchy on v1, one tree on v2). Dropping the
/// handle leaves the cgroups in place (a restarted agent recovers them);
/// [`ContainerCgroup::destroy`] removes them.
#[derive(Debug)]
pub struct ContainerCgroup {
    id: String,
    inner: Container,
}

impl ContainerCgroup {
    /// The container ID.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Every cgroup directory of the container (v2: `<root>/<id>`).
    pub fn paths(&self) -> Vec<PathBuf> {
        match &self.inner {
            Container::V2(c) => vec![c.path().to_owned()],
            Container::V1(c) => c.paths().into_iter().cloned().collect(),
        }
    }

    /// A directory fd of the container's cgroup2 leaf for `clone3(CLONE_INTO_CGROUP)`
    /// (`CLONE_INTO_CGROUP` = `0x2_0000_0000`; libc's constant is broken): on unified
    /// hosts `<root>/<id>/leaf`, on hybrid hosts the container's cgroup in the
    /// controller-less tracking tree. `None` on legacy hosts.
    pub fn clone_into_fd(&self) -> Option<BorrowedFd<'_>> {
        match &self.inner {
            Container::V2(c) => Some(c.clone_into_fd()),
            Container::V1(c) => c.clone_into_fd(),
        }
    }

    /// Puts `pid` into every hierarchy the clone did not cover (all v1 controllers).
    /// Idempotent, so it is always safe to call after the clone.
    pub fn attach(&self, pid: i32) -> Result<(), IsolatorError> {
        match &self.inner {
            Container::V2(c) => c.attach(pid),
            Container::V1(c) => c.attach(pid),
        }
    }

    /// Applies new limits (an executor's resources changed). The hard memory limit is
    /// only ever raised: lowering it under running processes would OOM-kill them.
    pub fn update(&self, limits: &ContainerLimits) -> Result<(), IsolatorError> {
        validate_limits(&self.id, limits)?;
        match &self.inner {
            Container::V2(c) => c.apply(limits, false),
            Container::V1(c) => c.apply(limits, false),
        }
    }

    /// A usage sample for `/monitor/statistics`.
    pub fn usage(&self) -> Result<Usage, IsolatorError> {
        match &self.inner {
            Container::V2(c) => c.usage(),
            Container::V1(c) => c.usage(),
        }
    }

    /// Resolves when the kernel OOM-kills inside the container, with
    /// [`LimitationReason::Memory`] (the agent's `REASON_CONTAINER_LIMITATION_MEMORY`).
    /// Never resolves without `cgroups/mem` or after the cgroup is destroyed; a watch
    /// that cannot be armed is logged and never resolves either (use
    /// [`ContainerCgroup::watch_limitation`] to see the error). Cancel-safe; may be
    /// awaited any number of times. To await it from a spawned task while keeping the
    /// container (to destroy it), use [`ContainerCgroup::limitation_watch`].
    pub async fn limitation(&self) -> Limitation {
        self.limitation_watch().wait().await
    }

    /// [`ContainerCgroup::limitation`], failing if the watch cannot be armed.
    pub async fn watch_limitation(&self) -> Result<Limitation, IsolatorError> {
        self.limitation_watch().try_wait().await
    }

    /// An owned (`'static`, `Send`) handle on the container's OOM watch, e.g. for
    /// `tokio::spawn(cgroup.limitation_watch().wait())`.
    pub fn limitation_watch(&self) -> LimitationWatch {
        let (fs, driver, dir) = match &self.inner {
            Container::V2(c) => (c.fs(), WatchDriver::V2, c.memory_dir()),
            Container::V1(c) => (c.fs(), WatchDriver::V1, c.memory_dir()),
        };
        LimitationWatch {
            id: self.id.clone(),
            fs,
            memory: dir.map(|dir| (driver, dir.to_owned())),
        }
    }

    /// The container's processes.
    pub fn pids(&self) -> Result<Vec<i32>, IsolatorError> {
        match &self.inner {
            Container::V2(c) => c.pids(),
            Container::V1(c) => c.pids(),
        }
    }

    /// Kills every process of the container: `cgroup.kill` where available (v2, or
    /// the tracking tree on hybrid hosts), else freeze, SIGKILL each pid, thaw.
    pub fn kill(&self) -> Result<(), IsolatorError> {
        match &self.inner {
            Container::V2(c) => c.kill(),
            Container::V1(c) => c.kill(),
        }
    }

    /// Kills the container, waits until its cgroups are empty (at most
    /// `--cgroups_destroy_timeout`), and removes them bottom-up, retrying `rmdir` on
    /// EBUSY. The caller must reap its own child meanwhile.
    pub async fn destroy(self) -> Result<(), IsolatorError> {
        let id = self.id;
        match self.inner {
            Container::V2(c) => c.destroy().await?,
            Container::V1(c) => c.destroy().await?,
        }
        tracing::info!(container = %id, "destroyed container cgroups");
        Ok(())
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod testutil;
