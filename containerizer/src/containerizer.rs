//! The containerizer: launches containers, supervises their executors, and
//! destroys and recovers them.
//!
//! Each running container has a supervisor task owning the executor's pidfd:
//! it resolves the container's [`Termination`] when the executor exits, or
//! when the isolator reports a limitation (an OOM kill), in which case it
//! kills the whole container first.

use std::collections::{HashMap, HashSet};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use mesos_isolator::{ContainerCgroup, ContainerLimits, IsolatorError, Limitation, Usage};
use tokio::sync::watch;

use crate::config::ContainerizerConfig;
use crate::image::{ImageProvider, OciStore};
use crate::launch::{self, LaunchContext, LaunchRequest, Partial};
use crate::reaper::{self, ExitStatus};
use crate::status_pipe::{self, monotonic_ns};
use crate::step::{LaunchError, Step};
use crate::{checkpoint, clone, paths, spec};

/// A launched container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launched {
    /// The executor's pid (in the agent's pid namespace).
    pub pid: i32,
    /// The sandbox on the host (`MESOS_DIRECTORY`).
    pub sandbox: PathBuf,
    /// When each step started.
    pub timings: LaunchTimings,
}

/// When each launch step started, in `CLOCK_MONOTONIC` nanoseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchTimings {
    /// When `launch` was called.
    pub called: u64,
    /// The parent's steps, in order.
    pub parent: Vec<(Step, u64)>,
    /// The helper's steps, in order (the first ones overlap the parent's).
    pub helper: Vec<(Step, u64)>,
    /// When the parent learnt that the exec happened.
    pub confirmed: u64,
}

impl LaunchTimings {
    /// Every step, ordered by start time.
    pub fn steps(&self) -> Vec<(Step, u64)> {
        let mut steps: Vec<_> = self.parent.iter().chain(&self.helper).copied().collect();
        steps.sort_by_key(|(_, at)| *at);
        steps
    }

    /// When `step` started, if it ran.
    pub fn started(&self, step: Step) -> Option<u64> {
        self.parent
            .iter()
            .chain(&self.helper)
            .find(|(s, _)| *s == step)
            .map(|(_, at)| *at)
    }

    /// From the call to the helper's `execve` of the executor.
    pub fn to_exec(&self) -> Duration {
        let exec = self.started(Step::Exec).unwrap_or(self.confirmed);
        Duration::from_nanos(exec.saturating_sub(self.called))
    }

    /// From the call until `launch` knew the exec happened.
    pub fn to_confirmed(&self) -> Duration {
        Duration::from_nanos(self.confirmed.saturating_sub(self.called))
    }

    /// How long each step took: `dispatch` (call → first step, i.e. getting
    /// a blocking thread), then each parent step until the next one, the
    /// release until the helper's next step after the go byte (its wake-up),
    /// each helper step until the next, and the exec until the parent saw it.
    pub fn durations(&self) -> Vec<(&'static str, Duration)> {
        let span = |from: u64, to: u64| Duration::from_nanos(to.saturating_sub(from));
        let mut out = Vec::new();
        if let Some((_, first)) = self.parent.first() {
            out.push(("dispatch", span(self.called, *first)));
        }
        let released = self.parent.last().map_or(0, |(_, at)| *at);
        let woke = self
            .helper
            .iter()
            .find(|(_, at)| *at > released)
            .map_or(self.confirmed, |(_, at)| *at);
        let parent_ends = self.parent.iter().skip(1).map(|(_, at)| *at).chain([woke]);
        for ((step, start), end) in self.parent.iter().zip(parent_ends) {
            out.push((step.name(), span(*start, end)));
        }
        let helper_ends = self
            .helper
            .iter()
            .skip(1)
            .map(|(_, at)| *at)
            .chain([self.confirmed]);
        for ((step, start), end) in self.helper.iter().zip(helper_ends) {
            out.push((step.name(), span(*start, end)));
        }
        out
    }
}

/// How a container ended (Mesos `ContainerTermination`).
#[derive(Debug, Clone, PartialEq)]
pub struct Termination {
    /// The `wait(2)` status word of the executor, if known (it is not for
    /// executors adopted after an agent restart).
    pub status: Option<i32>,
    /// The executor's exit code, if it exited.
    pub exit_code: Option<i32>,
    /// The signal that killed the executor, if one did.
    pub signal: Option<i32>,
    /// The limitation that ended the container (an OOM kill), if any; the
    /// agent reports `REASON_CONTAINER_LIMITATION_MEMORY` for it.
    pub limitation: Option<Limitation>,
    /// Human-readable summary.
    pub message: String,
}

impl Termination {
    fn new(exit: ExitStatus, limitation: Option<Limitation>) -> Self {
        let message = match (&limitation, exit.code, exit.signal) {
            (Some(limitation), _, _) => limitation.message.clone(),
            (None, Some(code), _) => format!("Executor exited with status {code}"),
            (None, None, Some(signal)) => format!(
                "Executor terminated by signal {}",
                nix::sys::signal::Signal::try_from(signal)
                    .map_or_else(|_| signal.to_string(), |s| s.to_string())
            ),
            (None, None, None) => {
                "Executor exited; its exit status is unknown (adopted after an agent restart)"
                    .to_owned()
            }
        };
        Termination {
            status: exit.raw(),
            exit_code: exit.code,
            signal: exit.signal,
            limitation,
            message,
        }
    }
}

/// A container found by [`Containerizer::recover`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveredContainer {
    /// The container id.
    pub container_id: String,
    /// The executor's pid, from the checkpoint.
    pub pid: Option<i32>,
    /// The sandbox, from config.json.
    pub sandbox: Option<PathBuf>,
    /// Whether the executor is still running (else [`Containerizer::wait`]
    /// returns at once; destroy it to clean up).
    pub running: bool,
}

/// Failures of operations on existing containers.
#[derive(Debug, thiserror::Error)]
pub enum ContainerizerError {
    /// No such container (never launched, or destroyed).
    #[error("unknown container '{0}'")]
    UnknownContainer(String),
    /// The isolator failed.
    #[error("container '{id}': {source}")]
    Isolator {
        /// The container.
        id: String,
        /// The failure.
        #[source]
        source: Box<IsolatorError>,
    },
    /// The executor did not exit after the container was killed.
    #[error(
        "container '{id}': the executor (pid {pid:?}) is still running {timeout:?} after the kill"
    )]
    DestroyTimeout {
        /// The container.
        id: String,
        /// The executor's pid.
        pid: Option<i32>,
        /// How long we waited.
        timeout: Duration,
    },
    /// The supervisor of the container went away without a termination.
    #[error("container '{0}': its supervisor ended without recording a termination")]
    Supervisor(String),
    /// A file or directory of the containerizer is unusable.
    #[error("{action} '{}': {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The failure.
        #[source]
        source: std::io::Error,
    },
    /// The configuration is unusable.
    #[error("{0}")]
    Config(String),
}

/// One supervised container.
#[derive(Debug)]
struct Container {
    pid: Option<i32>,
    sandbox: Option<PathBuf>,
    /// Taken by destroy; the supervisor holds a clone until the executor exits.
    cgroup: Mutex<Option<Arc<ContainerCgroup>>>,
    termination: watch::Receiver<Option<Termination>>,
    /// Serializes destroys; true once destroyed.
    destroyed: tokio::sync::Mutex<bool>,
    runtime_dir: PathBuf,
    provisioner_dir: PathBuf,
}

#[derive(Debug)]
struct Inner {
    ctx: LaunchContext,
    isolator: mesos_isolator::Isolator,
    containers: Mutex<HashMap<String, Arc<Container>>>,
    launching: Mutex<HashSet<String>>,
    /// Notified whenever a launch finishes, for destroy and wait calls that
    /// arrived during it.
    settled: tokio::sync::Notify,
}

/// The Mesos containerizer: see the crate documentation.
#[derive(Debug, Clone)]
pub struct Containerizer {
    inner: Arc<Inner>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding these locks leaves plain maps in a valid state.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Containerizer {
    /// Checks the launch helper and creates the runtime directory.
    pub fn new(config: ContainerizerConfig) -> Result<Self, ContainerizerError> {
        let helper = config.helper_path();
        check_helper(&helper)?;
        let containers = paths::runtime_containers_dir(&config.runtime_dir);
        std::fs::create_dir_all(&containers).map_err(|source| ContainerizerError::Io {
            action: "create --runtime_dir",
            path: containers.clone(),
            source,
        })?;
        let store = config
            .image_providers
            .contains(&ImageProvider::Oci)
            .then(|| {
                OciStore::new(
                    config.oci_store_dir(),
                    paths::layer_cache_dir(&config.work_dir),
                )
            });
        let ctx = LaunchContext {
            helper,
            store,
            switch_user: config.switch_user,
            sandbox_directory: config.sandbox_directory,
            namespaces: config.namespaces,
            work_dir: config.work_dir,
            runtime_dir: config.runtime_dir,
        };
        Ok(Containerizer {
            inner: Arc::new(Inner {
                ctx,
                isolator: config.isolator,
                containers: Mutex::new(HashMap::new()),
                launching: Mutex::new(HashSet::new()),
                settled: tokio::sync::Notify::new(),
            }),
        })
    }

    /// The isolator.
    pub fn isolator(&self) -> &mesos_isolator::Isolator {
        &self.inner.isolator
    }

    /// Ids of the containers currently known (launched or recovered, not
    /// destroyed).
    pub fn containers(&self) -> Vec<String> {
        lock(&self.inner.containers).keys().cloned().collect()
    }

    /// Launches a container; resolves once the executor has been exec'd.
    ///
    /// The launch runs in its own task: if the caller stops waiting, the
    /// container is still launched (or cleaned up) and can be destroyed by id.
    pub async fn launch(&self, request: LaunchRequest) -> Result<Launched, LaunchError> {
        let called = monotonic_ns();
        let id = request.container_id.clone();
        self.reserve(&id)?;
        let this = self.clone();
        let task = tokio::spawn(async move {
            let result = this.launch_reserved(request, called).await;
            lock(&this.inner.launching).remove(&id);
            this.inner.settled.notify_waiters();
            match &result {
                Ok(launched) => tracing::info!(
                    container = %id,
                    pid = launched.pid,
                    to_exec_us = launched.timings.to_exec().as_micros() as u64,
                    "launched container"
                ),
                Err(error) => tracing::warn!(container = %id, %error, "container launch failed"),
            }
            result
        });
        task.await.unwrap_or_else(|e| {
            Err(LaunchError::new(
                Step::Validate,
                format!("the launch task failed: {e}"),
            ))
        })
    }

    fn reserve(&self, id: &str) -> Result<(), LaunchError> {
        let containers = lock(&self.inner.containers);
        let mut launching = lock(&self.inner.launching);
        if containers.contains_key(id) || !launching.insert(id.to_owned()) {
            return Err(LaunchError::new(
                Step::Validate,
                format!("container '{id}' already exists"),
            ));
        }
        Ok(())
    }

    async fn launch_reserved(
        &self,
        request: LaunchRequest,
        called: u64,
    ) -> Result<Launched, LaunchError> {
        let inner = Arc::clone(&self.inner);
        let id = request.container_id.clone();
        let (result, mut partial) = tokio::task::spawn_blocking(move || {
            let mut partial = Partial::default();
            let result = launch::start(&inner.ctx, &inner.isolator, &request, &mut partial);
            (result, partial)
        })
        .await
        .map_err(|e| LaunchError::new(Step::Validate, format!("the launch task failed: {e}")))?;
        let started = match result {
            Ok(started) => started,
            Err(error) => {
                partial.cleanup(&id).await;
                return Err(error);
            }
        };
        let report = match status_pipe::read_to_end(started.status).await {
            Ok(report) => report,
            Err(error) => {
                partial.cleanup(&id).await;
                return Err(LaunchError::io(
                    Step::ExecHelper,
                    &error,
                    "read the status pipe",
                ));
            }
        };
        let confirmed = monotonic_ns();
        if !report.exec_succeeded() {
            let error = match report.failure {
                Some(failure) => failure,
                None => died_early(&mut partial, report.last_step).await,
            };
            partial.cleanup(&id).await;
            return Err(error);
        }
        let (Some(child), Some(cgroup)) = (partial.child.take(), partial.cgroup.take()) else {
            partial.cleanup(&id).await;
            return Err(LaunchError::new(
                Step::Clone,
                "launch state lost its child or cgroup",
            ));
        };
        let container = self.register(
            &id,
            Some(started.pid),
            Some(started.sandbox.clone()),
            cgroup,
            Some(child.pidfd),
        );
        drop(container);
        Ok(Launched {
            pid: started.pid,
            sandbox: started.sandbox,
            timings: LaunchTimings {
                called,
                parent: started.steps,
                helper: report.steps,
                confirmed,
            },
        })
    }

    /// Adds a container to the table with a supervisor on `pidfd` (or as
    /// already terminated without one).
    fn register(
        &self,
        id: &str,
        pid: Option<i32>,
        sandbox: Option<PathBuf>,
        cgroup: ContainerCgroup,
        pidfd: Option<OwnedFd>,
    ) -> Arc<Container> {
        let cgroup = Arc::new(cgroup);
        let (sender, receiver) = watch::channel(None);
        match pidfd {
            Some(pidfd) => {
                tokio::spawn(supervise(pidfd, Arc::clone(&cgroup), sender));
            }
            None => {
                sender.send_replace(Some(Termination::new(ExitStatus::default(), None)));
            }
        }
        let container = Arc::new(Container {
            pid,
            sandbox,
            cgroup: Mutex::new(Some(cgroup)),
            termination: receiver,
            destroyed: tokio::sync::Mutex::new(false),
            runtime_dir: paths::runtime_container_dir(&self.inner.ctx.runtime_dir, id),
            provisioner_dir: paths::provisioner_container_dir(&self.inner.ctx.work_dir, id),
        });
        lock(&self.inner.containers).insert(id.to_owned(), Arc::clone(&container));
        container
    }

    /// The sandbox of a known container.
    pub fn sandbox(&self, id: &str) -> Result<Option<PathBuf>, ContainerizerError> {
        Ok(self.get(id)?.sandbox.clone())
    }

    /// The container, waiting for its launch to finish if one is under way.
    async fn settled(&self, id: &str) -> Result<Arc<Container>, ContainerizerError> {
        loop {
            let notified = self.inner.settled.notified();
            tokio::pin!(notified);
            // Registered before the check, so a launch finishing in between
            // still wakes us.
            notified.as_mut().enable();
            if let Ok(container) = self.get(id) {
                return Ok(container);
            }
            if !lock(&self.inner.launching).contains(id) {
                return Err(ContainerizerError::UnknownContainer(id.to_owned()));
            }
            notified.await;
        }
    }

    fn get(&self, id: &str) -> Result<Arc<Container>, ContainerizerError> {
        lock(&self.inner.containers)
            .get(id)
            .cloned()
            .ok_or_else(|| ContainerizerError::UnknownContainer(id.to_owned()))
    }

    fn cgroup(&self, id: &str) -> Result<Arc<ContainerCgroup>, ContainerizerError> {
        let container = self.get(id)?;
        let cgroup = lock(&container.cgroup).clone();
        cgroup.ok_or_else(|| ContainerizerError::UnknownContainer(id.to_owned()))
    }

    /// Resolves when the container's executor has exited (or the container
    /// was killed for a limitation). Callable any number of times, until the
    /// container is destroyed; a wait begun before the destroy still resolves.
    /// Called during the launch, it waits for the launch first (and fails
    /// with `UnknownContainer` if the launch fails).
    pub async fn wait(&self, id: &str) -> Result<Termination, ContainerizerError> {
        let mut termination = self.settled(id).await?.termination.clone();
        let done = termination
            .wait_for(Option::is_some)
            .await
            .map_err(|_| ContainerizerError::Supervisor(id.to_owned()))?;
        done.clone()
            .ok_or_else(|| ContainerizerError::Supervisor(id.to_owned()))
    }

    /// Kills every process of the container, waits for the executor, removes
    /// the cgroups, the runtime directory and the overlay directories. The
    /// sandbox stays (garbage-collected by the agent after `--gc_delay`).
    /// Mounts live in the container's mount namespace and go with its last
    /// process. Called during the launch, it destroys once the launch is done.
    pub async fn destroy(&self, id: &str) -> Result<(), ContainerizerError> {
        let container = self.settled(id).await?;
        let mut destroyed = container.destroyed.lock().await;
        if *destroyed {
            return Ok(());
        }
        let cgroup = lock(&container.cgroup).clone();
        if let Some(cgroup) = &cgroup {
            if let Err(error) = cgroup.kill() {
                tracing::warn!(container = id, %error, "killing the container");
            }
        }
        drop(cgroup);
        let timeout = self.inner.isolator.config().destroy_timeout;
        let mut termination = container.termination.clone();
        match tokio::time::timeout(timeout, termination.wait_for(Option::is_some)).await {
            Ok(Ok(_)) => {}
            Ok(Err(_)) => return Err(ContainerizerError::Supervisor(id.to_owned())),
            Err(_) => {
                return Err(ContainerizerError::DestroyTimeout {
                    id: id.to_owned(),
                    pid: container.pid,
                    timeout,
                })
            }
        }
        let cgroup = lock(&container.cgroup).take();
        if let Some(cgroup) = cgroup {
            let cgroup = sole_owner(cgroup, timeout)
                .await
                .map_err(|_| ContainerizerError::Supervisor(id.to_owned()))?;
            cgroup
                .destroy()
                .await
                .map_err(|source| ContainerizerError::Isolator {
                    id: id.to_owned(),
                    source: Box::new(source),
                })?;
        }
        detach_rootfs(&container.provisioner_dir.join("rootfs"));
        launch::remove_dirs(
            id,
            [
                Some(container.runtime_dir.clone()),
                Some(container.provisioner_dir.clone()),
            ],
        );
        *destroyed = true;
        lock(&self.inner.containers).remove(id);
        tracing::info!(container = id, "destroyed container");
        Ok(())
    }

    /// A usage sample of the container's cgroups.
    pub async fn usage(&self, id: &str) -> Result<Usage, ContainerizerError> {
        let cgroup = self.cgroup(id)?;
        cgroup
            .usage()
            .map_err(|source| ContainerizerError::Isolator {
                id: id.to_owned(),
                source: Box::new(source),
            })
    }

    /// Applies new limits to the container's cgroups.
    pub async fn update(
        &self,
        id: &str,
        limits: &ContainerLimits,
    ) -> Result<(), ContainerizerError> {
        let cgroup = self.cgroup(id)?;
        cgroup
            .update(limits)
            .map_err(|source| ContainerizerError::Isolator {
                id: id.to_owned(),
                source: Box::new(source),
            })
    }

    /// After an agent restart: adopts the `known` containers (from the
    /// agent's checkpoint) that still have a runtime directory, and removes
    /// everything of unknown ones (the isolator destroys their cgroups, which
    /// kills them). A recovered executor that is still running is supervised
    /// again; its exit status will be unknown (it is no longer our child).
    pub async fn recover(
        &self,
        known: &[String],
    ) -> Result<Vec<RecoveredContainer>, ContainerizerError> {
        let recovered = self.inner.isolator.recover(known).await.map_err(|source| {
            ContainerizerError::Isolator {
                id: "(recovery)".to_owned(),
                source: Box::new(source),
            }
        })?;
        let mut cgroups: HashMap<String, ContainerCgroup> = recovered
            .containers
            .into_iter()
            .map(|cgroup| (cgroup.id().to_owned(), cgroup))
            .collect();
        let mut result = Vec::new();
        for id in self.runtime_container_ids()? {
            if !known.contains(&id) {
                tracing::info!(container = %id, "removing unknown container found during recovery");
                launch::remove_dirs(
                    &id,
                    [
                        Some(paths::runtime_container_dir(
                            &self.inner.ctx.runtime_dir,
                            &id,
                        )),
                        Some(paths::provisioner_container_dir(
                            &self.inner.ctx.work_dir,
                            &id,
                        )),
                    ],
                );
                continue;
            }
            let Some(cgroup) = cgroups.remove(&id) else {
                // Its cgroup is gone, so are its processes: nothing to adopt.
                result.push(self.recover_without_cgroup(&id));
                continue;
            };
            result.push(self.adopt(&id, cgroup));
        }
        // Known containers with a cgroup but no runtime directory (the agent
        // died mid-launch): terminated, to be destroyed by the agent.
        for (id, cgroup) in cgroups {
            self.register(&id, None, None, cgroup, None);
            result.push(RecoveredContainer {
                container_id: id,
                pid: None,
                sandbox: None,
                running: false,
            });
        }
        Ok(result)
    }

    fn runtime_container_ids(&self) -> Result<Vec<String>, ContainerizerError> {
        let dir = paths::runtime_containers_dir(&self.inner.ctx.runtime_dir);
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(ContainerizerError::Io {
                    action: "list",
                    path: dir,
                    source,
                })
            }
        };
        Ok(entries
            .filter_map(Result::ok)
            .filter_map(|entry| entry.file_name().into_string().ok())
            .collect())
    }

    fn recover_without_cgroup(&self, id: &str) -> RecoveredContainer {
        let dir = paths::runtime_container_dir(&self.inner.ctx.runtime_dir, id);
        let pid = checkpoint::read_pid(&dir.join(paths::PID_FILE)).ok();
        let sandbox = sandbox_of(&dir);
        launch::remove_dirs(
            id,
            [
                Some(dir),
                Some(paths::provisioner_container_dir(
                    &self.inner.ctx.work_dir,
                    id,
                )),
            ],
        );
        RecoveredContainer {
            container_id: id.to_owned(),
            pid,
            sandbox,
            running: false,
        }
    }

    /// Re-supervises a known container whose cgroup survived.
    fn adopt(&self, id: &str, cgroup: ContainerCgroup) -> RecoveredContainer {
        let dir = paths::runtime_container_dir(&self.inner.ctx.runtime_dir, id);
        let pid = checkpoint::read_pid(&dir.join(paths::PID_FILE)).ok();
        let sandbox = sandbox_of(&dir);
        // The pid must still be in the container's cgroup: pids get reused.
        let pidfd = pid
            .filter(|pid| cgroup.pids().is_ok_and(|pids| pids.contains(pid)))
            .and_then(|pid| clone::pidfd_open(pid).ok());
        let running = pidfd.is_some();
        self.register(id, pid, sandbox.clone(), cgroup, pidfd);
        tracing::info!(container = id, ?pid, running, "recovered container");
        RecoveredContainer {
            container_id: id.to_owned(),
            pid,
            sandbox,
            running,
        }
    }
}

/// The sandbox recorded in a container's config.json.
fn sandbox_of(runtime_dir: &Path) -> Option<PathBuf> {
    let spec = spec::load(&runtime_dir.join(paths::CONFIG_FILE)).ok()?;
    spec.annotations()
        .as_ref()?
        .get(spec::annotations::SANDBOX)
        .map(PathBuf::from)
}

/// The container's executor died after the clone without reporting a failure.
async fn died_early(partial: &mut Partial, last_step: Option<Step>) -> LaunchError {
    let step = last_step.unwrap_or(Step::ExecHelper);
    let status = match partial.child.take() {
        Some(child) => reaper::wait(child.pidfd).await.ok(),
        None => None,
    };
    let how = match status {
        Some(ExitStatus {
            signal: Some(signal),
            ..
        }) => format!("was killed by signal {signal}"),
        Some(ExitStatus {
            code: Some(code), ..
        }) => format!("exited with status {code}"),
        _ => "died".to_owned(),
    };
    LaunchError::new(
        step,
        format!("the launch helper {how} during step '{step}' without reporting an error"),
    )
}

/// Waits for the executor to exit or for a limitation; on a limitation kills
/// the container first. Publishes the termination.
async fn supervise(
    pidfd: OwnedFd,
    cgroup: Arc<ContainerCgroup>,
    sender: watch::Sender<Option<Termination>>,
) {
    let exit = reaper::wait(pidfd);
    tokio::pin!(exit);
    let (exit, limitation) = tokio::select! {
        exit = &mut exit => {
            // The OOM killer may have killed the executor itself, and its exit
            // can be seen before the OOM event: check once without waiting.
            let limitation = tokio::time::timeout(Duration::ZERO, cgroup.limitation()).await.ok();
            (exit, limitation)
        }
        limitation = cgroup.limitation() => {
            if let Err(error) = cgroup.kill() {
                tracing::warn!(container = cgroup.id(), %error, "killing a limited container");
            }
            (exit.await, Some(limitation))
        }
    };
    let id = cgroup.id().to_owned();
    drop(cgroup);
    let exit = exit.unwrap_or_else(|error| {
        tracing::warn!(container = %id, %error, "waiting for the executor");
        ExitStatus::default()
    });
    let termination = Termination::new(exit, limitation);
    tracing::info!(container = %id, message = %termination.message, "container terminated");
    sender.send_replace(Some(termination));
}

/// Waits until `arc` has no other owner (short-lived `usage`/`update` calls).
async fn sole_owner<T>(mut arc: Arc<T>, timeout: Duration) -> Result<T, Arc<T>> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match Arc::try_unwrap(arc) {
            Ok(value) => return Ok(value),
            Err(shared) if tokio::time::Instant::now() < deadline => {
                arc = shared;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            Err(shared) => return Err(shared),
        }
    }
}

/// The overlay is mounted in the container's mount namespace only; if the
/// host somehow sees it (a mount propagated by a misconfigured host), detach
/// it so the directories can be removed.
fn detach_rootfs(rootfs: &Path) {
    match nix::mount::umount2(rootfs, nix::mount::MntFlags::MNT_DETACH) {
        Ok(()) => {
            tracing::warn!(path = %rootfs.display(), "detached a rootfs mount visible on the host")
        }
        Err(nix::errno::Errno::EINVAL | nix::errno::Errno::ENOENT) => {}
        Err(error) => tracing::warn!(path = %rootfs.display(), %error, "detaching the rootfs"),
    }
}

fn check_helper(helper: &Path) -> Result<(), ContainerizerError> {
    nix::unistd::access(helper, nix::unistd::AccessFlags::X_OK).map_err(|errno| {
        ContainerizerError::Config(format!(
            "the launch helper '{}' is not executable ({}); check --launcher_dir",
            helper.display(),
            errno.desc()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_follow_each_side_and_the_hand_over() {
        let timings = LaunchTimings {
            called: 100,
            parent: vec![
                (Step::Validate, 150),
                (Step::Clone, 400),
                (Step::Release, 900),
            ],
            helper: vec![
                (Step::CloseFds, 500),
                (Step::WaitParent, 600),
                (Step::Setsid, 950),
                (Step::Exec, 1_000),
            ],
            confirmed: 1_500,
        };
        assert_eq!(timings.to_exec(), Duration::from_nanos(900));
        assert_eq!(timings.to_confirmed(), Duration::from_nanos(1_400));
        let durations: Vec<(&str, u64)> = timings
            .durations()
            .iter()
            .map(|(name, d)| (*name, d.as_nanos() as u64))
            .collect();
        assert_eq!(
            durations,
            [
                ("dispatch", 50),
                ("validate", 250),
                ("clone", 500),
                ("release", 50),
                ("close-fds", 100),
                ("wait-parent", 350),
                ("setsid", 50),
                ("exec", 500)
            ]
        );
    }

    #[test]
    fn termination_messages_name_code_signal_or_limitation() {
        let exited = Termination::new(
            ExitStatus {
                code: Some(2),
                signal: None,
            },
            None,
        );
        assert_eq!(
            (exited.status, exited.message.as_str()),
            (Some(2 << 8), "Executor exited with status 2")
        );
        let killed = Termination::new(
            ExitStatus {
                code: None,
                signal: Some(9),
            },
            None,
        );
        assert_eq!(killed.message, "Executor terminated by signal SIGKILL");
    }
}
