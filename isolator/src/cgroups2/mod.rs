//! The cgroups v2 driver, laid out as Mesos's cgroups2 isolator (isolation.md §3.3):
//!
//! ```text
//! <base>/<root>/agent/leaf     the agent (moved there by `move_agent_to_leaf`)
//! <base>/<root>/<id>           container limits; controllers enabled in subtree_control
//! <base>/<root>/<id>/leaf      container processes (no-internal-process rule)
//! ```
//!
//! `<base>` is the agent's own cgroup when the agent has it to itself (a systemd unit
//! with `Delegate=yes`, or the cgroup2 root on a fresh host), found from
//! `/proc/self/cgroup` with a trailing `<root>/agent/leaf` removed so the tree stays
//! put after the agent moved itself. When other processes share the agent's cgroup
//! (an agent started from a login shell or an ssh session), that cgroup can never
//! hand controllers down (no-internal-process rule), so `<base>` is the cgroup2 root,
//! where Mesos's cgroups2 isolator always puts `<root>`.

mod cpu;
mod memory;
mod oom;
mod pids;

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::fs::{CgroupFs, FsError};
use crate::kill::{self, poll_blocking};
use crate::layout::{CgroupMount, HostInfo};
use crate::{CgroupsConfig, ContainerLimits, Controllers, IsolatorError, Limitation, Usage};

/// The directory the agent moves itself into, below `<root>`.
const AGENT_DIR: &str = "agent";
/// Processes of a cgroup with controllers enabled live in this child.
const LEAF: &str = "leaf";
/// How long `kill` waits for `cgroup.freeze` to take effect when `cgroup.kill` is
/// missing (kernels before 5.14).
const FREEZE_WAIT: Duration = Duration::from_millis(100);

/// The v2 driver: one cgroup2 tree.
#[derive(Debug)]
pub(crate) struct Driver {
    fs: CgroupFs,
    /// The cgroup2 mount point.
    mount: PathBuf,
    /// `<base>/<root>`.
    root: PathBuf,
    controllers: Controllers,
    config: Arc<CgroupsConfig>,
}

impl Driver {
    /// Opens the tree at `mount`, checks that the controllers are available there, and
    /// creates `<root>`.
    pub fn new(
        fs: CgroupFs,
        host: &HostInfo,
        mount: &CgroupMount,
        config: Arc<CgroupsConfig>,
        controllers: Controllers,
    ) -> Result<Self, IsolatorError> {
        let own = host.own_dir(mount)?;
        let base = choose_base(&fs, &mount.mount_point, &own, &config.root);
        let available = available_controllers(&fs, &mount.mount_point)?;
        for (controller, isolator) in controllers.v2_names() {
            if !available.iter().any(|c| c == controller) {
                return Err(IsolatorError::ControllerUnavailable {
                    controller,
                    isolator,
                    detail: format!(
                        "{} lists only [{}]",
                        mount.mount_point.join("cgroup.controllers").display(),
                        available.join(" ")
                    ),
                });
            }
        }
        let root = base.join(&config.root);
        fs.mkdir_all(&root)?;
        Ok(Driver {
            fs,
            mount: mount.mount_point.clone(),
            root,
            controllers,
            config,
        })
    }

    /// `<base>/<root>`.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `<root>/agent/leaf`.
    pub fn agent_leaf(&self) -> PathBuf {
        self.root.join(AGENT_DIR).join(LEAF)
    }

    /// Moves `pid` (the agent) into `<root>/agent/leaf`, then enables the controllers
    /// from the cgroup2 root down to `<root>`. The move comes first: a cgroup holding
    /// processes cannot enable controllers for its children (EBUSY), and before the
    /// move the agent sits in `<base>`.
    pub fn move_agent_to_leaf(&self, pid: i32) -> Result<(), IsolatorError> {
        let leaf = self.agent_leaf();
        self.fs.mkdir_all(&leaf)?;
        self.fs
            .write(&leaf.join("cgroup.procs"), &pid.to_string())?;
        self.enable_controllers_to_root()
    }

    /// Enables the controllers in `subtree_control` of every cgroup from the mount down
    /// to `<root>`, so that `<root>/<id>` gets them. Only missing ones are written.
    fn enable_controllers_to_root(&self) -> Result<(), IsolatorError> {
        let names = self.controllers.v2_names();
        if names.is_empty() {
            return Ok(());
        }
        let mut chain: Vec<&Path> = self
            .root
            .ancestors()
            .take_while(|p| p.starts_with(&self.mount))
            .collect();
        chain.reverse();
        for dir in chain {
            enable_controllers(&self.fs, dir, &names)?;
        }
        Ok(())
    }

    /// Creates `<root>/<id>` and its leaf, applies the limits, opens the leaf.
    pub fn prepare(&self, id: &str, limits: &ContainerLimits) -> Result<Container, IsolatorError> {
        self.enable_controllers_to_root()?;
        let path = self.root.join(id);
        if self.fs.exists(&path) {
            return Err(IsolatorError::AlreadyExists {
                id: id.to_owned(),
                path,
            });
        }
        self.fs.mkdir(&path)?;
        let container = self.create_in(id, path.clone(), limits);
        if container.is_err() {
            if let Err(error) = self.fs.remove_tree_blocking(&path) {
                tracing::warn!(%error, container = id, "cleaning up after a failed prepare");
            }
        }
        container
    }

    fn create_in(
        &self,
        id: &str,
        path: PathBuf,
        limits: &ContainerLimits,
    ) -> Result<Container, IsolatorError> {
        // Enable the controllers for the leaf too, as Mesos does: nested containers
        // later hang below `<id>` with their own limits.
        enable_controllers(&self.fs, &path, &self.controllers.v2_names())?;
        self.fs.mkdir(&path.join(LEAF))?;
        let container = self.open_at(id, path)?;
        container.apply(limits, true)?;
        Ok(container)
    }

    /// Reopens an existing container (recovery).
    pub fn open(&self, id: &str) -> Result<Container, IsolatorError> {
        let path = self.root.join(id);
        if !self.fs.exists(&path) {
            return Err(IsolatorError::NotFound {
                id: id.to_owned(),
                path,
            });
        }
        let leaf = path.join(LEAF);
        if !self.fs.exists(&leaf) {
            self.fs.mkdir(&leaf)?;
        }
        self.open_at(id, path)
    }

    fn open_at(&self, id: &str, path: PathBuf) -> Result<Container, IsolatorError> {
        let leaf = path.join(LEAF);
        let leaf_fd = self.fs.open_dir(&leaf)?;
        Ok(Container {
            fs: self.fs,
            id: id.to_owned(),
            path,
            leaf,
            leaf_fd,
            controllers: self.controllers,
            config: Arc::clone(&self.config),
        })
    }

    /// The container IDs under `<root>` (everything but `agent`).
    pub fn container_ids(&self) -> Result<Vec<String>, IsolatorError> {
        let mut ids = self.fs.subdirs(&self.root)?;
        ids.retain(|id| id != AGENT_DIR);
        Ok(ids)
    }

    /// Removes `<root>` once no container is left, unless the agent lives in it.
    pub async fn remove_root(&self) -> Result<(), IsolatorError> {
        let agent = self.root.join(AGENT_DIR);
        if !self.fs.procs_recursive(&agent)?.is_empty() {
            return Ok(());
        }
        self.fs.remove_tree(&self.root).await?;
        Ok(())
    }
}

/// One container's cgroup in the v2 tree.
#[derive(Debug)]
pub(crate) struct Container {
    fs: CgroupFs,
    id: String,
    /// `<root>/<id>`: limits, stats, events.
    path: PathBuf,
    /// `<root>/<id>/leaf`: processes.
    leaf: PathBuf,
    leaf_fd: OwnedFd,
    controllers: Controllers,
    config: Arc<CgroupsConfig>,
}

impl Container {
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn fs(&self) -> CgroupFs {
        self.fs
    }

    pub fn clone_into_fd(&self) -> BorrowedFd<'_> {
        self.leaf_fd.as_fd()
    }

    /// Writes `pid` into the leaf (a no-op for a process cloned there).
    pub fn attach(&self, pid: i32) -> Result<(), IsolatorError> {
        self.fs
            .write(&self.leaf.join("cgroup.procs"), &pid.to_string())?;
        Ok(())
    }

    /// Writes the limits of every enabled controller. `initial` allows lowering the
    /// hard memory limit (it starts out unlimited).
    pub fn apply(&self, limits: &ContainerLimits, initial: bool) -> Result<(), IsolatorError> {
        if self.controllers.cpu {
            cpu::apply(&self.fs, &self.path, limits, self.config.enable_cfs)?;
        }
        if self.controllers.memory {
            memory::apply(
                &self.fs,
                &self.path,
                limits,
                self.config.limit_swap,
                initial,
            )?;
        }
        if self.controllers.pids {
            pids::apply(&self.fs, &self.path, limits, self.config.pids_max)?;
        }
        Ok(())
    }

    pub fn usage(&self) -> Result<Usage, IsolatorError> {
        let mut usage = Usage::now();
        usage.processes = Some(crate::usage::process_count(&self.pids()?));
        // cpu.stat's usage fields exist without the cpu controller (core accounting).
        cpu::usage(&self.fs, &self.path, self.controllers.cpu, &mut usage)?;
        if self.controllers.memory {
            memory::usage(&self.fs, &self.path, &mut usage)?;
        }
        Ok(usage)
    }

    /// The cgroup whose OOM kills [`watch_oom`] watches, if memory is limited.
    pub fn memory_dir(&self) -> Option<&Path> {
        self.controllers.memory.then_some(self.path.as_path())
    }

    pub fn pids(&self) -> Result<Vec<i32>, IsolatorError> {
        Ok(self.fs.procs_recursive(&self.path)?)
    }

    /// `cgroup.kill` (Linux 5.14+) kills the whole subtree atomically, forks included.
    /// Without it: freeze, SIGKILL every pid, thaw.
    pub fn kill(&self) -> Result<(), IsolatorError> {
        let kill_file = self.path.join("cgroup.kill");
        if self.fs.supports(&kill_file) {
            self.fs.write(&kill_file, "1")?;
            return Ok(());
        }
        let freeze = self.path.join("cgroup.freeze");
        self.fs.write(&freeze, "1")?;
        let events = self.path.join("cgroup.events");
        let frozen = poll_blocking(FREEZE_WAIT, || {
            self.fs
                .read_opt(&events)
                .ok()
                .flatten()
                .and_then(|text| crate::fs::flat_keyed_value(&text, "frozen"))
                == Some(1)
        });
        if !frozen {
            tracing::warn!(container = %self.id, "cgroup did not freeze in {FREEZE_WAIT:?}; killing anyway");
        }
        let killed = kill::sigkill_all(&self.id, &self.pids()?);
        self.fs.write(&freeze, "0")?;
        killed
    }

    /// Kills, waits for the cgroup to empty, removes it bottom-up.
    pub async fn destroy(self) -> Result<(), IsolatorError> {
        self.kill()?;
        let timeout = self.config.destroy_timeout;
        kill::wait_until_empty(&self.id, timeout, || self.pids(), || self.kill()).await?;
        // Close our handle on the leaf before removing it.
        let Container { fs, path, .. } = self;
        fs.remove_tree(&path).await?;
        Ok(())
    }
}

/// Resolves on an OOM kill in the container cgroup `dir`; stays pending once the
/// cgroup is gone.
pub(crate) async fn watch_oom(fs: CgroupFs, dir: &Path) -> Result<Limitation, IsolatorError> {
    oom::wait_for_oom_kill(&dir.join("memory.events")).await?;
    Ok(memory::oom_limitation(&fs, dir))
}

/// `<own>` without a trailing `<root>/agent/leaf`.
/// Where `<root>` goes: see the module docs.
fn choose_base(fs: &CgroupFs, mount: &Path, own: &Path, root: &str) -> PathBuf {
    let base = strip_agent_leaf(own, root);
    if base != own || own == mount {
        // Already moved into our leaf, or at the root: the tree is ours.
        return base;
    }
    let me = std::process::id().to_string();
    let shared = fs
        .read(&own.join("cgroup.procs"))
        .map(|procs| procs.lines().any(|pid| pid.trim() != me))
        .unwrap_or(true);
    if shared {
        tracing::info!(
            cgroup = %own.display(),
            "the agent's cgroup holds other processes; containers go under the cgroup2 root"
        );
        mount.to_owned()
    } else {
        base
    }
}

fn strip_agent_leaf(own: &Path, root: &str) -> PathBuf {
    let suffix = Path::new(root).join(AGENT_DIR).join(LEAF);
    if own.ends_with(&suffix) {
        if let Some(base) = own.ancestors().nth(suffix.components().count()) {
            return base.to_owned();
        }
    }
    own.to_owned()
}

/// The controllers listed in a cgroup's `cgroup.controllers`.
fn available_controllers(fs: &CgroupFs, dir: &Path) -> Result<Vec<String>, FsError> {
    let text = fs.read(&dir.join("cgroup.controllers"))?;
    Ok(text.split_whitespace().map(str::to_owned).collect())
}

/// Writes the missing ones of `names` into `dir/cgroup.subtree_control`.
fn enable_controllers(
    fs: &CgroupFs,
    dir: &Path,
    names: &[(&'static str, &'static str)],
) -> Result<(), IsolatorError> {
    if names.is_empty() {
        return Ok(());
    }
    let path = dir.join("cgroup.subtree_control");
    let enabled = fs.read_opt(&path)?.unwrap_or_default();
    // The fake cgroupfs keeps what was written, `+cpu`; the kernel lists `cpu`.
    let enabled: Vec<&str> = enabled
        .split_whitespace()
        .map(|c| c.trim_start_matches('+'))
        .collect();
    let missing: Vec<String> = names
        .iter()
        .filter(|(name, _)| !enabled.contains(name))
        .map(|(name, _)| format!("+{name}"))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let value = missing.join(" ");
    fs.write(&path, &value).map_err(|source| {
        let hint = if source.raw_os_error() == Some(libc::EBUSY) {
            " (the cgroup holds processes; the agent must move itself into <root>/agent/leaf first)"
        } else {
            ""
        };
        IsolatorError::EnableControllers {
            path: path.clone(),
            controllers: value.clone(),
            source,
            hint,
        }
    })
}

#[cfg(test)]
mod tests;
