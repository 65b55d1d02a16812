//! The cgroups v1 driver (legacy and hybrid hosts).
//!
//! A container gets a cgroup in each hierarchy it uses, nested below the agent's own
//! cgroup there (`<mount>/<own path>/<root>/<id>`): on the CI host the agent's memory
//! cgroup is not the root, and the v1 roots need not be writable or empty. On hybrid
//! hosts the controller-less cgroup2 tree gets the same sub-tree; it tracks the
//! container's processes, takes the `clone3(CLONE_INTO_CGROUP)` clone, and kills with
//! `cgroup.kill`. Without it (legacy, or kernels before 5.14) the freezer does.

mod cpu;
mod freezer;
mod memory;
mod oom;
mod pids;

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::fs::CgroupFs;
use crate::kill;
use crate::layout::{CgroupMount, HostInfo};
use crate::{CgroupsConfig, ContainerLimits, Controllers, IsolatorError, Limitation, Usage};

/// One directory per role; `cpu` and `cpuacct` coincide when co-mounted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Dirs {
    cpu: Option<PathBuf>,
    cpuacct: Option<PathBuf>,
    memory: Option<PathBuf>,
    pids: Option<PathBuf>,
    freezer: Option<PathBuf>,
    /// The cgroup2 tracking tree on hybrid hosts.
    unified: Option<PathBuf>,
}

impl Dirs {
    /// Every distinct directory.
    fn all(&self) -> Vec<&PathBuf> {
        let mut all: Vec<&PathBuf> = [
            &self.cpu,
            &self.cpuacct,
            &self.memory,
            &self.pids,
            &self.freezer,
            &self.unified,
        ]
        .into_iter()
        .flatten()
        .collect();
        all.sort();
        all.dedup();
        all
    }

    /// The same roles, one level down.
    fn join(&self, name: &str) -> Dirs {
        let join = |dir: &Option<PathBuf>| dir.as_ref().map(|d| d.join(name));
        Dirs {
            cpu: join(&self.cpu),
            cpuacct: join(&self.cpuacct),
            memory: join(&self.memory),
            pids: join(&self.pids),
            freezer: join(&self.freezer),
            unified: join(&self.unified),
        }
    }
}

/// The v1 driver: the `<root>` directory in each hierarchy used.
#[derive(Debug)]
pub(crate) struct Driver {
    fs: CgroupFs,
    roots: Dirs,
    controllers: Controllers,
    config: Arc<CgroupsConfig>,
}

impl Driver {
    /// Finds the hierarchies, creates `<root>` in each.
    pub fn new(
        fs: CgroupFs,
        host: &HostInfo,
        config: Arc<CgroupsConfig>,
        controllers: Controllers,
    ) -> Result<Self, IsolatorError> {
        let hierarchy = &config.hierarchy;
        let root_in = |mount: &CgroupMount| -> Result<PathBuf, IsolatorError> {
            Ok(host.own_dir(mount)?.join(&config.root))
        };
        let needed = |controller: &'static str, isolator: &'static str| {
            let mount = host.cgroup1_mount(hierarchy, controller).ok_or_else(|| {
                IsolatorError::ControllerUnavailable {
                    controller,
                    isolator,
                    detail: format!(
                        "no cgroup v1 hierarchy with it is mounted under {}",
                        hierarchy.display()
                    ),
                }
            })?;
            root_in(&mount)
        };
        let mut roots = Dirs::default();
        if controllers.cpu {
            roots.cpu = Some(needed("cpu", "cgroups/cpu")?);
            roots.cpuacct = Some(needed("cpuacct", "cgroups/cpu")?);
        }
        if controllers.memory {
            roots.memory = Some(needed("memory", "cgroups/mem")?);
        }
        if controllers.pids {
            roots.pids = Some(needed("pids", "cgroups/pids")?);
        }
        if let Some(mount) = host.cgroup2_mount(hierarchy) {
            roots.unified = Some(root_in(&mount)?);
        }
        for dir in roots.all() {
            fs.mkdir_all(dir)?;
        }
        // cgroup.kill exists in every non-root cgroup2 directory since Linux 5.14.
        let can_kill = roots
            .unified
            .as_ref()
            .is_some_and(|dir| fs.supports(&dir.join("cgroup.kill")));
        if !can_kill {
            roots.freezer = host
                .cgroup1_mount(hierarchy, "freezer")
                .map(|mount| root_in(&mount))
                .transpose()?;
            match &roots.freezer {
                Some(dir) => fs.mkdir_all(dir)?,
                None => tracing::warn!(
                    "neither cgroup.kill nor a freezer hierarchy is available: \
                     containers are killed pid by pid, racing with forks"
                ),
            }
        }
        if roots.all().is_empty() {
            return Err(IsolatorError::Config(format!(
                "no cgroup hierarchy under {} can track container processes",
                hierarchy.display()
            )));
        }
        Ok(Driver {
            fs,
            roots,
            controllers,
            config,
        })
    }

    /// `<root>` in each hierarchy.
    pub fn roots(&self) -> Vec<&PathBuf> {
        self.roots.all()
    }

    /// Creates the container's cgroups, applies the limits, opens the tracking cgroup.
    pub fn prepare(&self, id: &str, limits: &ContainerLimits) -> Result<Container, IsolatorError> {
        let dirs = self.roots.join(id);
        if let Some(existing) = dirs.all().into_iter().find(|d| self.fs.exists(d)) {
            return Err(IsolatorError::AlreadyExists {
                id: id.to_owned(),
                path: existing.clone(),
            });
        }
        let container = self.create(id, dirs.clone(), limits);
        if container.is_err() {
            for dir in dirs.all() {
                if let Err(error) = self.fs.remove_tree_blocking(dir) {
                    tracing::warn!(%error, container = id, "cleaning up after a failed prepare");
                }
            }
        }
        container
    }

    fn create(
        &self,
        id: &str,
        dirs: Dirs,
        limits: &ContainerLimits,
    ) -> Result<Container, IsolatorError> {
        for dir in dirs.all() {
            self.fs.mkdir(dir)?;
        }
        let container = self.open_dirs(id, dirs)?;
        if let Some(memory) = &container.dirs.memory {
            memory::enable_oom_killer(&self.fs, memory)?;
        }
        container.apply(limits, true)?;
        Ok(container)
    }

    /// Reopens an existing container (recovery), recreating cgroups missing in some
    /// hierarchy (e.g. after an agent crash in the middle of `prepare`).
    pub fn open(&self, id: &str) -> Result<Container, IsolatorError> {
        let dirs = self.roots.join(id);
        if dirs.all().iter().all(|d| !self.fs.exists(d)) {
            return Err(IsolatorError::NotFound {
                id: id.to_owned(),
                path: self
                    .roots
                    .all()
                    .first()
                    .map(|d| d.join(id))
                    .unwrap_or_default(),
            });
        }
        for dir in dirs.all() {
            if !self.fs.exists(dir) {
                self.fs.mkdir(dir)?;
            }
        }
        self.open_dirs(id, dirs)
    }

    fn open_dirs(&self, id: &str, dirs: Dirs) -> Result<Container, IsolatorError> {
        let unified_fd = dirs
            .unified
            .as_ref()
            .map(|dir| self.fs.open_dir(dir))
            .transpose()?;
        Ok(Container {
            fs: self.fs,
            id: id.to_owned(),
            dirs,
            unified_fd,
            controllers: self.controllers,
            config: Arc::clone(&self.config),
        })
    }

    /// Container IDs found under `<root>` in any hierarchy.
    pub fn container_ids(&self) -> Result<Vec<String>, IsolatorError> {
        let mut ids = Vec::new();
        for root in self.roots.all() {
            ids.extend(self.fs.subdirs(root)?);
        }
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    /// Removes `<root>` in every hierarchy.
    pub async fn remove_root(&self) -> Result<(), IsolatorError> {
        for root in self.roots.all() {
            self.fs.remove_tree(root).await?;
        }
        Ok(())
    }
}

/// One container's cgroups.
#[derive(Debug)]
pub(crate) struct Container {
    fs: CgroupFs,
    id: String,
    dirs: Dirs,
    unified_fd: Option<OwnedFd>,
    controllers: Controllers,
    config: Arc<CgroupsConfig>,
}

impl Container {
    /// Every cgroup directory of the container.
    pub fn paths(&self) -> Vec<&PathBuf> {
        self.dirs.all()
    }

    pub fn fs(&self) -> CgroupFs {
        self.fs
    }

    pub fn clone_into_fd(&self) -> Option<BorrowedFd<'_>> {
        self.unified_fd.as_ref().map(AsFd::as_fd)
    }

    /// Writes `pid` into every hierarchy (a no-op where a clone already put it).
    pub fn attach(&self, pid: i32) -> Result<(), IsolatorError> {
        for dir in self.dirs.all() {
            self.fs.write(&dir.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    /// Writes the limits of every enabled controller. `initial` allows lowering the
    /// hard memory limit (it starts out unlimited).
    pub fn apply(&self, limits: &ContainerLimits, initial: bool) -> Result<(), IsolatorError> {
        if let Some(dir) = self.dirs.cpu.as_ref().filter(|_| self.controllers.cpu) {
            cpu::apply(&self.fs, dir, limits, self.config.enable_cfs)?;
        }
        if let Some(dir) = self
            .dirs
            .memory
            .as_ref()
            .filter(|_| self.controllers.memory)
        {
            memory::apply(&self.fs, dir, limits, self.config.limit_swap, initial)?;
        }
        if let Some(dir) = self.dirs.pids.as_ref().filter(|_| self.controllers.pids) {
            pids::apply(&self.fs, dir, limits, self.config.pids_max)?;
        }
        Ok(())
    }

    pub fn usage(&self) -> Result<Usage, IsolatorError> {
        let mut usage = Usage::now();
        usage.processes = Some(crate::usage::process_count(&self.pids()?));
        match (&self.dirs.cpuacct, &self.dirs.unified) {
            (Some(cpuacct), _) => cpu::cpuacct_usage(&self.fs, cpuacct, &mut usage)?,
            // The tracking tree's core cpu.stat still accounts CPU time.
            (None, Some(unified)) => cpu::unified_usage(&self.fs, unified, &mut usage)?,
            (None, None) => {}
        }
        if let Some(dir) = &self.dirs.cpu {
            cpu::usage(&self.fs, dir, &mut usage)?;
        }
        if let Some(dir) = &self.dirs.memory {
            memory::usage(&self.fs, dir, &mut usage)?;
        }
        Ok(usage)
    }

    /// The memory cgroup [`watch_oom`] watches, if memory is limited.
    pub fn memory_dir(&self) -> Option<&Path> {
        self.dirs.memory.as_deref()
    }

    /// The container's pids, across all hierarchies.
    pub fn pids(&self) -> Result<Vec<i32>, IsolatorError> {
        let mut pids = Vec::new();
        for dir in self.dirs.all() {
            pids.extend(self.fs.procs_recursive(dir)?);
        }
        pids.sort_unstable();
        pids.dedup();
        Ok(pids)
    }

    /// `cgroup.kill` on the tracking tree when available, else the freezer, else
    /// SIGKILL pid by pid. Pids outside the tracking tree (attached to v1 only) get a
    /// SIGKILL too.
    pub fn kill(&self) -> Result<(), IsolatorError> {
        let kill_file = self.dirs.unified.as_ref().map(|d| d.join("cgroup.kill"));
        match (kill_file, &self.dirs.freezer) {
            (Some(file), _) if self.fs.supports(&file) => self.fs.write(&file, "1")?,
            (_, Some(freezer)) => {
                return freezer::kill_frozen(&self.fs, freezer, || {
                    kill::sigkill_all(&self.id, &self.pids()?)
                })
            }
            _ => {}
        }
        kill::sigkill_all(&self.id, &self.pids()?)
    }

    /// Kills, waits for every hierarchy to empty, removes the cgroups bottom-up.
    pub async fn destroy(self) -> Result<(), IsolatorError> {
        self.kill()?;
        let timeout = self.config.destroy_timeout;
        kill::wait_until_empty(&self.id, timeout, || self.pids(), || self.kill()).await?;
        let Container { fs, dirs, .. } = self;
        for dir in dirs.all() {
            fs.remove_tree(dir).await?;
        }
        Ok(())
    }
}

/// Resolves on an OOM in the memory cgroup `dir`; stays pending once the cgroup is
/// gone.
pub(crate) async fn watch_oom(fs: CgroupFs, dir: &Path) -> Result<Limitation, IsolatorError> {
    oom::wait_for_oom(&fs, dir).await?;
    Ok(memory::oom_limitation(&fs, dir))
}

#[cfg(test)]
mod tests;
