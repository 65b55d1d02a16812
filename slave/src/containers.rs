//! The agent's narrow view of the containerizer: launch an executor in a
//! container, wait for it to end, destroy it, read its usage.
//!
//! The agent's state machine talks only to [`Containers`], so its logic is
//! unit-tested with a fake, and the real implementation
//! ([`crate::mesos_containers`], over `mesos-containerizer`) stays a thin
//! adapter.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

use mesos_proto::v1::task_status::Reason;
use mesos_proto::v1::{ExecutorInfo, FrameworkInfo, Resource, ResourceStatistics, TaskInfo};

/// A boxed future, as trait methods return.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Everything the containerizer needs to start one executor.
#[derive(Debug, Clone)]
pub struct ContainerLaunch {
    /// The new container's id (a random UUID, as Mesos).
    pub container_id: String,
    /// The agent id (part of the sandbox path).
    pub agent_id: String,
    /// The framework.
    pub framework_info: FrameworkInfo,
    /// The executor to run (synthesized for command tasks).
    pub executor_info: ExecutorInfo,
    /// The first task, for command tasks (its ContainerInfo may carry an image).
    pub task_info: Option<TaskInfo>,
    /// Executor plus task resources: what the container is limited to.
    pub resources: Vec<Resource>,
    /// Hard limits from `TaskInfo.limits` (e.g. `cpus`, `mem`).
    pub limits: BTreeMap<String, f64>,
    /// The sandbox directory (`MESOS_DIRECTORY`), created by the launch.
    pub sandbox: PathBuf,
    /// The user to run as, when `--switch_user` applies.
    pub user: Option<String>,
    /// The executor's environment, complete.
    pub environment: Vec<(String, String)>,
}

/// A started container.
#[derive(Debug, Clone, PartialEq)]
pub struct LaunchedContainer {
    /// The executor's pid (in the agent's pid namespace).
    pub pid: u32,
    /// The launch's steps (sandbox, cgroup, clone, namespaces, exec, ...)
    /// with the wall-clock time each started, seconds since the Unix epoch,
    /// for the seed-step timeline. Empty when the launcher does not time them.
    pub steps: Vec<(&'static str, f64)>,
}

/// A resource limit the container hit (e.g. an OOM kill).
#[derive(Debug, Clone, PartialEq)]
pub struct Limitation {
    /// The task status reason, e.g. `REASON_CONTAINER_LIMITATION_MEMORY`.
    pub reason: Reason,
    /// Human-readable details (limit, usage).
    pub message: String,
}

/// How a container ended.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ContainerTermination {
    /// Raw `waitpid` status of the executor, when it was reaped.
    pub status: Option<i32>,
    /// A limitation that caused or accompanied the end.
    pub limitation: Option<Limitation>,
    /// Summary, e.g. "Executor exited with status 0".
    pub message: String,
}

/// Why a container operation failed.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
#[error("container {container_id}: {message}")]
pub struct ContainerError {
    /// The container.
    pub container_id: String,
    /// What went wrong (for launches: the failed step and errno).
    pub message: String,
}

/// A container the agent's checkpoint says an executor runs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownContainer {
    /// The container id (the executor's latest run).
    pub container_id: String,
    /// The executor's pid from `forked.pid`.
    pub pid: Option<u32>,
}

/// A known container found again after an agent restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveredContainer {
    /// The container id.
    pub container_id: String,
    /// The executor's pid, if known.
    pub pid: Option<u32>,
    /// Whether the executor still runs; if not, [`Containers::wait`]
    /// resolves at once (or fails for a container that left nothing).
    pub running: bool,
}

/// The operations the agent needs from its containerizer.
pub trait Containers: Send + Sync + 'static {
    /// Creates the sandbox and cgroup and starts the executor.
    fn launch(
        &self,
        launch: ContainerLaunch,
    ) -> BoxFuture<Result<LaunchedContainer, ContainerError>>;
    /// Resolves when the container's executor has ended.
    fn wait(&self, container_id: &str) -> BoxFuture<Result<ContainerTermination, ContainerError>>;
    /// Kills every process of the container and releases its resources.
    fn destroy(&self, container_id: &str) -> BoxFuture<Result<(), ContainerError>>;
    /// Current resource usage, for `/monitor/statistics`.
    fn usage(&self, container_id: &str) -> BoxFuture<Result<ResourceStatistics, ContainerError>>;
    /// Changes the container's limits (tasks joined or left the executor).
    fn update(
        &self,
        container_id: &str,
        resources: Vec<Resource>,
        limits: BTreeMap<String, f64>,
    ) -> BoxFuture<Result<(), ContainerError>>;
    /// After an agent restart: supervises the `known` containers again (those
    /// found are returned; [`Containers::wait`] then works for them) and
    /// destroys every other container of an earlier run (orphans).
    fn recover(
        &self,
        known: Vec<KnownContainer>,
    ) -> BoxFuture<Result<Vec<RecoveredContainer>, ContainerError>>;
}

/// Text for a raw wait status, as Mesos's `WSTRINGIFY`.
pub fn describe_wait_status(status: i32) -> String {
    if libc::WIFEXITED(status) {
        format!("exited with status {}", libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        let signal = libc::WTERMSIG(status);
        let name = nix::sys::signal::Signal::try_from(signal)
            .map(|s| s.as_str().to_string())
            .unwrap_or_else(|_| signal.to_string());
        format!("terminated with signal {name}")
    } else {
        format!("ended with wait status {status}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_statuses_read_like_mesos() {
        assert_eq!(describe_wait_status(3 << 8), "exited with status 3");
        assert_eq!(describe_wait_status(9), "terminated with signal SIGKILL");
    }
}
