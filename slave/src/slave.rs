//! The agent state machine (Mesos `Slave`, src/slave/slave.cpp): frameworks →
//! executors → tasks, driven by master messages, executor calls, container
//! exits and timers. Seed steps 6–8 happen here:
//!
//! * step 6: `RunTaskMessage` arrives ([`Slave::run_task`]): validated, the
//!   command executor is synthesized for command tasks, the task is queued;
//! * step 7: the executor's container is launched (sandbox, cgroup,
//!   namespaces) through [`Containers`], with `--executor_registration_timeout`
//!   armed ([`Slave::launch_executor`]);
//! * step 8: the executor subscribes and receives LAUNCH
//!   ([`Slave::subscribe`]); its updates go through the status update manager
//!   to the master and are acknowledged once checkpointed
//!   ([`Slave::status_update`]).
//!
//! After a restart the agent first recovers ([`recovery`]): it rebuilds
//! frameworks, executors and tasks from the checkpoint, waits for the
//! executors to re-subscribe, and only then re-registers with the master.
//! For frameworks with `checkpoint: true` everything needed for that is
//! written as it happens ([`crate::checkpoint`]).
//!
//! All state lives behind one mutex, held only for synchronous steps (never
//! across an `.await`), which serializes events like a libprocess actor.
//! Slow work (launch, wait, destroy) runs in spawned tasks that lock again
//! to apply their result.

pub mod recovery;

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use mesos_proto::internal::{
    ExecutorToFrameworkMessage, ExitedExecutorMessage, FrameworkToExecutorMessage, KillTaskMessage,
    PingSlaveMessage, PongSlaveMessage, ReconcileTasksMessage, RunTaskGroupMessage, RunTaskMessage,
    ShutdownExecutorMessage, ShutdownFrameworkMessage, ShutdownMessage, SlaveRegisteredMessage,
    SlaveReregisteredMessage, StatusUpdate, StatusUpdateAcknowledgementMessage,
    StatusUpdateMessage, UpdateFrameworkMessage,
};
use mesos_proto::v1::executor::{event, Call};
use mesos_proto::v1::task_status::{Reason, Source};
use mesos_proto::v1::{
    framework_info, AgentId, AgentInfo, ContainerId, ContainerStatus, ExecutorId, ExecutorInfo,
    FrameworkId, FrameworkInfo, Resource, Task, TaskGroupInfo, TaskId, TaskInfo, TaskState,
    TaskStatus,
};
use mesos_transport::Upid;
use prost_reflect::ReflectMessage;

use crate::checkpoint::Checkpointer;
use crate::command_executor;
use crate::containers::{
    describe_wait_status, BoxFuture, ContainerLaunch, ContainerTermination, Containers,
};
use crate::executor_api::{
    event as new_event, now_secs, status_update_from_call, ExecutorCallError, ExecutorStream,
};
use crate::executor_env::{executor_environment, ExecutorEnvInput};
use crate::files::Files;
use crate::flags::Flags;
use crate::master_link::{PingWatch, DEFAULT_PING_TIMEOUT};
use crate::paths::{is_valid_id, virtual_latest_run, RunIds, WorkDir};
use crate::registration::{self, Backoff};
use crate::status_update_manager::{is_terminal, uuid_text, StatusUpdateManager};

/// How many completed executors (and their tasks) each framework keeps for
/// `/state` (Mesos `--max_completed_executors_per_framework` default).
const MAX_COMPLETED_EXECUTORS: usize = 150;
/// How many completed frameworks the agent keeps.
const MAX_COMPLETED_FRAMEWORKS: usize = 50;
/// How often timers (retries, registration, ping watch) are checked.
const TICK: Duration = Duration::from_millis(100);

/// Where outgoing libprocess messages go; [`mesos_transport::Sender`] in the
/// agent, a recorder in tests.
pub trait Outbox: Send + Sync + 'static {
    /// Queues the protobuf-encoded message `name` for `to`.
    fn send(&self, to: &Upid, name: String, body: Bytes);
}

impl Outbox for mesos_transport::Sender {
    fn send(&self, to: &Upid, name: String, body: Bytes) {
        self.send_encoded(to, name, body);
    }
}

/// Fixed facts about this agent.
#[derive(Debug, Clone)]
pub struct SlaveConfig {
    /// Parsed flags.
    pub flags: Flags,
    /// This agent's UPID, `slave(1)@ip:port`.
    pub upid: Upid,
    /// The master's UPID, `master@ip:port`.
    pub master: Upid,
    /// The work directory layout.
    pub work_dir: WorkDir,
    /// Where `mesos-executor` lives.
    pub launcher_dir: PathBuf,
    /// Hostname, port, resources and attributes (the id comes from the master).
    pub info: AgentInfo,
}

/// Registration state (Mesos `Slave::State`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlaveState {
    /// Recovering the checkpoint of an earlier run; not registering yet.
    Recovering,
    /// Not (or no longer) registered; registration attempts are running.
    Disconnected,
    /// Registered with the master.
    Running,
    /// Shutting down at the master's request.
    Terminating,
}

/// Lifecycle of an executor (Mesos `Executor::State`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecutorState {
    /// Container launched (or launching); waiting for SUBSCRIBE.
    Registering,
    /// Subscribed.
    Running,
    /// Asked to shut down; the container is destroyed after the grace period.
    Terminating,
    /// The container is gone.
    Terminated,
}

impl ExecutorState {
    fn name(self) -> &'static str {
        match self {
            Self::Registering => "REGISTERING",
            Self::Running => "RUNNING",
            Self::Terminating => "TERMINATING",
            Self::Terminated => "TERMINATED",
        }
    }
}

/// Work queued for an executor until it subscribes.
#[derive(Debug, Clone)]
pub enum QueuedWork {
    /// A task, delivered as LAUNCH.
    Task(Box<TaskInfo>),
    /// A task group, delivered as LAUNCH_GROUP.
    Group(TaskGroupInfo),
}

/// Why the agent ends an executor's container: becomes the state and reason
/// of its remaining tasks (Mesos `Executor::pendingTermination`).
#[derive(Debug, Clone)]
struct PendingTermination {
    state: TaskState,
    reason: Reason,
    message: String,
}

/// One executor run.
#[derive(Debug)]
pub struct Executor {
    /// The executor's info (synthesized for command tasks).
    pub info: ExecutorInfo,
    /// Its container.
    pub container_id: String,
    /// Host path of its sandbox.
    pub sandbox: PathBuf,
    /// Generated for a command task (not reported to the master on re-registration).
    pub command_executor: bool,
    /// Lifecycle state.
    pub state: ExecutorState,
    /// The executor's pid once launched.
    pub pid: Option<u32>,
    /// Recovered from the checkpoint and not re-subscribed yet.
    pub recovered: bool,
    /// A `wait` on the container is pending: its end will be reported.
    waiting: bool,
    stream: Option<ExecutorStream>,
    queued: Vec<QueuedWork>,
    /// Tasks sent to the executor that are not terminal.
    launched: BTreeMap<String, Task>,
    /// Tasks whose terminal update is not yet acknowledged by the scheduler.
    terminated: BTreeMap<String, Task>,
    completed: VecDeque<Task>,
    pending_termination: Option<PendingTermination>,
    limits: BTreeMap<String, f64>,
    /// The terminated container's cgroups and runtime state are removed.
    container_cleaned: bool,
}

/// One framework with executors on this agent.
#[derive(Debug)]
pub struct Framework {
    /// Its info, from the latest RunTask/UpdateFramework.
    pub info: FrameworkInfo,
    /// v0 scheduler pid, if any.
    pub pid: Option<String>,
    executors: BTreeMap<String, Executor>,
    completed_executors: VecDeque<Executor>,
}

impl Framework {
    fn id(&self) -> String {
        self.info
            .id
            .as_ref()
            .map(|i| i.value.clone())
            .unwrap_or_default()
    }

    fn checkpoint(&self) -> bool {
        self.info.checkpoint.unwrap_or(false)
    }

    fn partition_aware(&self) -> bool {
        self.has_capability(framework_info::capability::Type::PartitionAware)
    }

    fn has_capability(&self, kind: framework_info::capability::Type) -> bool {
        self.info
            .capabilities
            .iter()
            .any(|c| c.r#type == Some(kind as i32))
    }

    /// The executor holding `task` in any of its task sets.
    fn executor_of(&self, task: &str) -> Option<String> {
        self.executors.iter().find_map(|(id, e)| {
            let queued = e
                .queued
                .iter()
                .any(|w| queued_ids(w).iter().any(|t| t == task));
            (queued || e.launched.contains_key(task) || e.terminated.contains_key(task))
                .then(|| id.clone())
        })
    }
}

fn queued_ids(work: &QueuedWork) -> Vec<String> {
    match work {
        QueuedWork::Task(task) => vec![task.task_id.value.clone()],
        QueuedWork::Group(group) => group
            .tasks
            .iter()
            .map(|t| t.task_id.value.clone())
            .collect(),
    }
}

fn queued_tasks(work: &QueuedWork) -> Vec<&TaskInfo> {
    match work {
        QueuedWork::Task(task) => vec![task.as_ref()],
        QueuedWork::Group(group) => group.tasks.iter().collect(),
    }
}

/// Counters behind `/metrics/snapshot`.
#[derive(Debug, Default, Clone)]
pub struct Counters {
    /// Terminal updates per state name (`finished`, `failed`, ...).
    pub terminal_tasks: BTreeMap<&'static str, u64>,
    /// Executor updates accepted.
    pub valid_status_updates: u64,
    /// Executor updates dropped.
    pub invalid_status_updates: u64,
    /// Framework messages relayed.
    pub valid_framework_messages: u64,
    /// Framework messages dropped.
    pub invalid_framework_messages: u64,
    /// Containers that failed to launch.
    pub container_launch_errors: u64,
    /// Executors whose container ended.
    pub executors_terminated: u64,
}

/// The agent.
pub struct Slave {
    config: SlaveConfig,
    info: AgentInfo,
    state: SlaveState,
    master: Upid,
    outbox: Arc<dyn Outbox>,
    containers: Arc<dyn Containers>,
    files: Arc<Files>,
    frameworks: BTreeMap<String, Framework>,
    completed_frameworks: VecDeque<Framework>,
    sum: StatusUpdateManager,
    backoff: Backoff,
    ping: PingWatch,
    counters: Counters,
    start_time: f64,
    handle: Weak<Mutex<Slave>>,
    shutdown: Arc<tokio::sync::Notify>,
    checkpointer: Checkpointer,
    /// Set while [`SlaveState::Recovering`].
    recovery: Option<recovery::Recovery>,
    /// Unreadable checkpoint files skipped (`--strict=false`).
    recovery_errors: u32,
}

impl std::fmt::Debug for Slave {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slave")
            .field("upid", &self.config.upid)
            .field("state", &self.state)
            .field("frameworks", &self.frameworks.len())
            .finish_non_exhaustive()
    }
}

/// Shared handle to the agent.
#[derive(Debug, Clone)]
pub struct SlaveHandle(Arc<Mutex<Slave>>);

impl SlaveHandle {
    /// Creates the agent; call [`SlaveHandle::start`] inside a runtime.
    pub fn new(
        config: SlaveConfig,
        outbox: Arc<dyn Outbox>,
        containers: Arc<dyn Containers>,
        files: Arc<Files>,
    ) -> Self {
        let backoff = Backoff::new(config.flags.registration_backoff_factor.get());
        let master = config.master.clone();
        let info = config.info.clone();
        let checkpointer = Checkpointer::new(config.work_dir.clone());
        let sum = StatusUpdateManager::new(
            config.flags.status_update_retry_interval_min.get(),
            crate::status_update_manager::RETRY_INTERVAL_MAX,
        );
        Self(Arc::new_cyclic(|weak| {
            Mutex::new(Slave {
                config,
                info,
                state: SlaveState::Disconnected,
                master,
                outbox,
                containers,
                files,
                frameworks: BTreeMap::new(),
                completed_frameworks: VecDeque::new(),
                sum,
                backoff,
                ping: PingWatch::new(DEFAULT_PING_TIMEOUT, Instant::now()),
                counters: Counters::default(),
                start_time: now_secs(),
                handle: weak.clone(),
                shutdown: Arc::new(tokio::sync::Notify::new()),
                checkpointer,
                recovery: None,
                recovery_errors: 0,
            })
        }))
    }

    /// Locks the agent for one synchronous step.
    pub fn lock(&self) -> MutexGuard<'_, Slave> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts the timer loop, and registration unless the agent is still
    /// recovering (it registers once recovery is over).
    pub fn start(&self) {
        {
            let mut slave = self.lock();
            if slave.state != SlaveState::Recovering {
                slave.start_registration(Instant::now());
            }
        }
        let weak = Arc::downgrade(&self.0);
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(TICK);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                let Some(slave) = weak.upgrade() else { return };
                slave
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .tick(Instant::now());
            }
        });
    }

    /// Resolves when the master told the agent to shut down and its
    /// executors are gone.
    pub async fn terminated(&self) {
        let notify = self.lock().shutdown.clone();
        notify.notified().await;
    }
}

/// Where a status update comes from, for the executor acknowledgement.
enum UpdateOrigin {
    /// The executor sent it over its stream: ACKNOWLEDGED goes back there.
    Executor,
    /// The agent generated it.
    Agent,
}

impl Slave {
    // ---------------------------------------------------------------- helpers

    fn agent_id(&self) -> Option<AgentId> {
        self.info.id.clone()
    }

    fn agent_id_value(&self) -> String {
        self.info
            .id
            .as_ref()
            .map(|i| i.value.clone())
            .unwrap_or_default()
    }

    /// This agent's UPID.
    pub fn upid(&self) -> &Upid {
        &self.config.upid
    }

    /// Registration state.
    pub fn state(&self) -> SlaveState {
        self.state
    }

    /// The agent's info (with its id once registered).
    pub fn info(&self) -> &AgentInfo {
        &self.info
    }

    /// The flags the agent runs with.
    pub fn flags(&self) -> &Flags {
        &self.config.flags
    }

    /// When the agent started, seconds since the epoch.
    pub fn start_time(&self) -> f64 {
        self.start_time
    }

    /// Metric counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Checkpoint files skipped as unreadable during recovery.
    pub fn recovery_errors(&self) -> u32 {
        self.recovery_errors
    }

    /// Frameworks with executors here.
    pub fn frameworks(&self) -> impl Iterator<Item = &Framework> {
        self.frameworks.values()
    }

    /// Frameworks whose executors are all gone.
    pub fn completed_frameworks(&self) -> impl Iterator<Item = &Framework> {
        self.completed_frameworks.iter()
    }

    /// The containerizer, for usage queries.
    pub fn containers(&self) -> Arc<dyn Containers> {
        self.containers.clone()
    }

    fn send<M: ReflectMessage>(&self, to: &Upid, message: &M) {
        let name = message.descriptor().full_name().to_string();
        self.outbox
            .send(to, name, Bytes::from(message.encode_to_vec()));
    }

    fn send_to_master<M: ReflectMessage>(&self, message: &M) {
        self.send(&self.master, message);
    }

    /// Runs `then` on the agent after `delay`, if it still exists.
    fn after(&self, delay: Duration, then: impl FnOnce(&mut Slave) + Send + 'static) {
        let weak = self.handle.clone();
        // The deadline counts from now, not from when the task first runs.
        let deadline = tokio::time::Instant::now() + delay;
        tokio::spawn(async move {
            tokio::time::sleep_until(deadline).await;
            if let Some(slave) = weak.upgrade() {
                then(&mut slave.lock().unwrap_or_else(|e| e.into_inner()));
            }
        });
    }

    /// Awaits `work` off the lock, then applies its result on the agent.
    fn when_done<T: Send + 'static>(
        &self,
        work: BoxFuture<T>,
        then: impl FnOnce(&mut Slave, T) + Send + 'static,
    ) {
        let weak = self.handle.clone();
        tokio::spawn(async move {
            let result = work.await;
            if let Some(slave) = weak.upgrade() {
                then(&mut slave.lock().unwrap_or_else(|e| e.into_inner()), result);
            }
        });
    }

    fn executor_mut(&mut self, framework: &str, executor: &str) -> Option<&mut Executor> {
        self.frameworks
            .get_mut(framework)?
            .executors
            .get_mut(executor)
    }

    // ------------------------------------------------------------ timers

    /// Periodic work: registration attempts, master liveness, update retries.
    pub fn tick(&mut self, now: Instant) {
        if self.state == SlaveState::Disconnected && self.backoff.due(now) {
            self.send_registration();
        }
        if self.state == SlaveState::Running && self.ping.expired(now) {
            tracing::warn!(master = %self.master, "no ping from the master within the timeout; re-registering");
            self.master_lost(now);
        }
        for update in self.sum.due(now) {
            tracing::info!(task = %update.status.task_id.value, "retrying unacknowledged status update");
            self.forward(update);
        }
    }

    // ------------------------------------------------------- registration

    fn send_registration(&mut self) {
        if self.info.id.is_none() {
            tracing::info!(master = %self.master, "registering with master");
            self.send_to_master(&registration::register_message(&self.info));
            return;
        }
        let mut executors = Vec::new();
        let mut tasks = Vec::new();
        let mut frameworks = Vec::new();
        for framework in self.frameworks.values() {
            frameworks.push(framework.info.clone());
            for executor in framework.executors.values() {
                // Terminated executors use no resources (Mesos).
                if !executor.command_executor && executor.state != ExecutorState::Terminated {
                    executors.push(executor.info.clone());
                }
                tasks.extend(executor.launched.values().cloned());
                tasks.extend(executor.terminated.values().cloned());
                for work in &executor.queued {
                    for task in queued_tasks(work) {
                        tasks.push(self.new_task(
                            task,
                            &framework.id(),
                            executor,
                            TaskState::TaskStaging,
                        ));
                    }
                }
            }
        }
        let completed = self
            .completed_frameworks
            .iter()
            .map(|framework| mesos_proto::internal::archive::Framework {
                framework_info: framework.info.clone(),
                pid: framework.pid.clone(),
                tasks: framework
                    .completed_executors
                    .iter()
                    .flat_map(|e| e.completed.iter().cloned())
                    .collect(),
            })
            .collect();
        tracing::info!(master = %self.master, tasks = tasks.len(), "re-registering with master");
        let mut message =
            registration::reregister_message(&self.info, executors, tasks, frameworks);
        message.completed_frameworks = completed;
        self.send_to_master(&message);
    }

    /// Schedules the first registration attempt (random delay in
    /// `[0, --registration_backoff_factor]`); [`Slave::tick`] sends it.
    pub fn start_registration(&mut self, now: Instant) {
        self.backoff.restart(now);
    }

    fn master_lost(&mut self, now: Instant) {
        self.state = SlaveState::Disconnected;
        self.sum.pause();
        self.backoff.restart(now);
    }

    fn registered(&mut self, from: &Upid, message: SlaveRegisteredMessage) {
        let now = Instant::now();
        if self.state == SlaveState::Running && self.info.id.as_ref() == Some(&message.slave_id) {
            return; // a retried registration crossed the answer
        }
        if let Some(id) = &self.info.id {
            if *id != message.slave_id {
                tracing::error!(ours = %id.value, theirs = %message.slave_id.value,
                    "master registered us under a different id; ignoring");
                return;
            }
        }
        tracing::info!(agent_id = %message.slave_id.value, master = %from, "registered with master");
        self.info.id = Some(message.slave_id);
        self.on_connected(
            from,
            message
                .connection
                .and_then(|c| c.total_ping_timeout_seconds),
            now,
        );
        self.checkpoint_agent_info();
    }

    fn reregistered(&mut self, from: &Upid, message: SlaveReregisteredMessage) {
        let now = Instant::now();
        if self.info.id.as_ref() != Some(&message.slave_id) {
            tracing::error!(theirs = %message.slave_id.value, "re-registered under an unexpected id; ignoring");
            return;
        }
        tracing::info!(master = %from, "re-registered with master");
        self.on_connected(
            from,
            message
                .connection
                .and_then(|c| c.total_ping_timeout_seconds),
            now,
        );
        for reconciliation in message.reconciliations {
            self.reconcile(reconciliation);
        }
    }

    fn on_connected(&mut self, from: &Upid, ping_timeout: Option<f64>, now: Instant) {
        self.master = from.clone();
        self.state = SlaveState::Running;
        self.backoff.stop();
        if let Some(secs) = ping_timeout.filter(|s| s.is_finite() && *s > 0.0) {
            self.ping.set_timeout(Duration::from_secs_f64(secs));
        }
        self.ping.heard(now);
        for update in self.sum.resume(now) {
            self.forward(update);
        }
    }

    /// The master lists tasks it believes run here; those unknown to the
    /// agent are reported lost (dropped for partition-aware frameworks).
    fn reconcile(&mut self, message: ReconcileTasksMessage) {
        let framework_id = message.framework_id.value.clone();
        let partition_aware = message.framework.as_ref().is_some_and(|info| {
            info.capabilities
                .iter()
                .any(|c| c.r#type == Some(framework_info::capability::Type::PartitionAware as i32))
        });
        for status in message.statuses {
            let known = self
                .frameworks
                .get(&framework_id)
                .and_then(|f| f.executor_of(&status.task_id.value))
                .is_some();
            if known {
                continue;
            }
            let state = if partition_aware {
                TaskState::TaskDropped
            } else {
                TaskState::TaskLost
            };
            let update = self.agent_update(
                &framework_id,
                &status.task_id,
                status.executor_id.clone(),
                state,
                Reason::Reconciliation,
                "Reconciliation: task unknown to the agent".into(),
            );
            self.status_update(update, UpdateOrigin::Agent);
        }
    }

    fn ping(&mut self, from: &Upid, message: PingSlaveMessage) {
        let now = Instant::now();
        self.ping.heard(now);
        self.send(from, &PongSlaveMessage {});
        if !message.connected && self.state == SlaveState::Running {
            tracing::warn!("master reports this agent disconnected; re-registering");
            self.master_lost(now);
        }
    }

    /// `slave.info` and `meta/slaves/latest`, whatever the frameworks do:
    /// a restarted agent keeps its id.
    fn checkpoint_agent_info(&self) {
        if let Err(error) = self.checkpointer.agent(&self.info) {
            tracing::error!(%error, "failed to checkpoint agent info");
        }
    }

    // -------------------------------------------------- master messages

    /// Dispatches one libprocess message from the master.
    pub fn handle_message(&mut self, message: mesos_transport::Message) {
        macro_rules! decode {
            ($ty:ty) => {
                match message.decode::<$ty>() {
                    Ok(decoded) => decoded,
                    Err(error) => {
                        tracing::warn!(%error, "dropping undecodable message");
                        return;
                    }
                }
            };
        }
        let from = message.from.clone();
        if self.state == SlaveState::Terminating {
            return;
        }
        // Nothing from a master applies before recovery is over (the agent
        // has not re-registered); pings are still answered.
        if self.state == SlaveState::Recovering && message.name != "mesos.internal.PingSlaveMessage"
        {
            tracing::info!(name = %message.name, %from, "ignoring message while recovering");
            return;
        }
        match message.name.as_str() {
            "mesos.internal.SlaveRegisteredMessage" => {
                self.registered(&from, decode!(SlaveRegisteredMessage))
            }
            "mesos.internal.SlaveReregisteredMessage" => {
                self.reregistered(&from, decode!(SlaveReregisteredMessage))
            }
            "mesos.internal.PingSlaveMessage" => self.ping(&from, decode!(PingSlaveMessage)),
            "mesos.internal.RunTaskMessage" => self.run_task(decode!(RunTaskMessage)),
            "mesos.internal.RunTaskGroupMessage" => {
                self.run_task_group(decode!(RunTaskGroupMessage))
            }
            "mesos.internal.KillTaskMessage" => self.kill_task(decode!(KillTaskMessage)),
            "mesos.internal.StatusUpdateAcknowledgementMessage" => {
                self.status_update_acknowledgement(decode!(StatusUpdateAcknowledgementMessage))
            }
            "mesos.internal.ShutdownExecutorMessage" => {
                let message = decode!(ShutdownExecutorMessage);
                if let (Some(fw), Some(ex)) = (message.framework_id, message.executor_id) {
                    self.shutdown_executor(&fw.value, &ex.value);
                }
            }
            "mesos.internal.ShutdownFrameworkMessage" => {
                let message = decode!(ShutdownFrameworkMessage);
                self.shutdown_framework(&message.framework_id.value);
            }
            "mesos.internal.FrameworkToExecutorMessage" => {
                self.framework_message(decode!(FrameworkToExecutorMessage))
            }
            "mesos.internal.UpdateFrameworkMessage" => {
                self.update_framework(decode!(UpdateFrameworkMessage))
            }
            "mesos.internal.ShutdownMessage" => self.shutdown(decode!(ShutdownMessage)),
            other => tracing::debug!(name = other, %from, "ignoring unhandled message"),
        }
    }

    fn update_framework(&mut self, message: UpdateFrameworkMessage) {
        if let Some(framework) = self.frameworks.get_mut(&message.framework_id.value) {
            if let Some(info) = message.framework_info {
                framework.info = info;
            }
            framework.pid = message.pid.filter(|p| !p.is_empty());
        }
        self.checkpoint_framework(&message.framework_id.value);
    }

    /// `framework.info` and `framework.pid` of a checkpointing framework.
    fn checkpoint_framework(&self, framework_id: &str) {
        let Some(framework) = self.frameworks.get(framework_id) else {
            return;
        };
        if !framework.checkpoint() {
            return;
        }
        let agent = self.agent_id_value();
        let pid = framework.pid.as_deref();
        if let Err(error) = self.checkpointer.framework(&agent, &framework.info, pid) {
            tracing::error!(%error, "failed to checkpoint framework");
        }
    }

    /// `task.info` (the Task as launched) of every task of `work`, for
    /// checkpointing frameworks, before the executor sees them.
    fn checkpoint_tasks(&self, framework_id: &str, executor_id: &str, work: &QueuedWork) {
        let Some(framework) = self.frameworks.get(framework_id) else {
            return;
        };
        let Some(executor) = framework.executors.get(executor_id) else {
            return;
        };
        if !framework.checkpoint() {
            return;
        }
        let agent = self.agent_id_value();
        let ids = RunIds {
            agent: &agent,
            framework: framework_id,
            executor: executor_id,
            container: &executor.container_id,
        };
        for info in queued_tasks(work) {
            let task = self.new_task(info, framework_id, executor, TaskState::TaskStaging);
            if let Err(error) = self.checkpointer.task(ids, &task) {
                tracing::error!(%error, "failed to checkpoint task");
            }
        }
    }

    fn framework_message(&mut self, message: FrameworkToExecutorMessage) {
        let delivered = self
            .executor_mut(&message.framework_id.value, &message.executor_id.value)
            .and_then(|executor| executor.stream.as_ref())
            .is_some_and(|stream| {
                let mut event = new_event(event::Type::Message);
                event.message = Some(event::Message { data: message.data });
                stream.send(&event)
            });
        if delivered {
            self.counters.valid_framework_messages += 1;
        } else {
            self.counters.invalid_framework_messages += 1;
            tracing::warn!(executor = %message.executor_id.value, "dropping framework message for an executor that is not subscribed");
        }
    }

    fn shutdown(&mut self, message: ShutdownMessage) {
        tracing::warn!(
            reason = message.message.as_deref().unwrap_or(""),
            "master asked the agent to shut down"
        );
        let frameworks: Vec<String> = self.frameworks.keys().cloned().collect();
        for framework in &frameworks {
            self.shutdown_framework(framework);
        }
        self.state = SlaveState::Terminating;
        self.maybe_finish_shutdown();
    }

    fn maybe_finish_shutdown(&self) {
        if self.state == SlaveState::Terminating && self.frameworks.is_empty() {
            self.shutdown.notify_one();
        }
    }

    // --------------------------------------------------------- run task

    /// Seed step 6: a task (or task group) arrives from the master.
    fn run_task(&mut self, message: RunTaskMessage) {
        let mut framework_info = message.framework;
        if framework_info.id.is_none() {
            // Older masters only fill the deprecated field.
            #[allow(deprecated)]
            let legacy = message.framework_id.clone();
            framework_info.id = legacy;
        }
        let task = message.task;
        tracing::info!(seed_step = 6u64, task_id = %task.task_id.value, "RunTask received by the agent");
        let framework_id = framework_info.id.clone().unwrap_or_default();
        if let Err(reason) = self.validate_task(&task) {
            self.reject_task(
                &framework_info,
                &task,
                TaskState::TaskError,
                Reason::TaskInvalid,
                reason,
            );
            return;
        }
        let executor_info = match &task.executor {
            Some(executor) => {
                let mut executor = executor.clone();
                executor.framework_id.get_or_insert(framework_id.clone());
                executor
            }
            None => {
                command_executor::executor_info(&task, &framework_id, &self.config.launcher_dir)
            }
        };
        let command = task.executor.is_none();
        self.run(
            framework_info,
            message.pid,
            executor_info,
            command,
            message.launch_executor,
            QueuedWork::Task(Box::new(task)),
        );
    }

    fn run_task_group(&mut self, message: RunTaskGroupMessage) {
        let framework_info = message.framework;
        let framework_id = framework_info.id.clone().unwrap_or_default();
        for task in &message.task_group.tasks {
            tracing::info!(seed_step = 6u64, task_id = %task.task_id.value, "RunTaskGroup received by the agent");
        }
        let invalid = message
            .task_group
            .tasks
            .iter()
            .find_map(|task| self.validate_task(task).err());
        if let Some(reason) = invalid.or_else(|| {
            (!is_valid_id(&message.executor.executor_id.value)).then(|| {
                format!(
                    "invalid executor id '{}'",
                    message.executor.executor_id.value
                )
            })
        }) {
            for task in &message.task_group.tasks {
                self.reject_task(
                    &framework_info,
                    task,
                    TaskState::TaskError,
                    Reason::TaskGroupInvalid,
                    reason.clone(),
                );
            }
            return;
        }
        let mut executor = message.executor;
        executor.framework_id.get_or_insert(framework_id);
        self.run(
            framework_info,
            None,
            executor,
            false,
            message.launch_executor,
            QueuedWork::Group(message.task_group),
        );
    }

    fn validate_task(&self, task: &TaskInfo) -> Result<(), String> {
        if !is_valid_id(&task.task_id.value) {
            return Err(format!("Task ID '{}' is invalid", task.task_id.value));
        }
        match (&task.executor, &task.command) {
            (Some(_), Some(_)) => Err("Task should have at most one of CommandInfo or ExecutorInfo present".into()),
            (None, None) => Err("Task should have at least one (but not both) of CommandInfo or ExecutorInfo present".into()),
            (Some(executor), None) if !is_valid_id(&executor.executor_id.value) => {
                Err(format!("Executor ID '{}' is invalid", executor.executor_id.value))
            }
            _ => Ok(()),
        }
    }

    /// A task the agent cannot run: one terminal update, nothing else.
    fn reject_task(
        &mut self,
        framework: &FrameworkInfo,
        task: &TaskInfo,
        state: TaskState,
        reason: Reason,
        message: String,
    ) {
        tracing::warn!(task = %task.task_id.value, %message, "rejecting task");
        let framework_id = framework.id.clone().unwrap_or_default().value;
        let executor_id = task.executor.as_ref().map(|e| e.executor_id.clone());
        let update = self.agent_update(
            &framework_id,
            &task.task_id,
            executor_id,
            state,
            reason,
            message,
        );
        self.status_update(update, UpdateOrigin::Agent);
    }

    /// Mesos `Slave::__run`: queue the work on its executor, launching the
    /// executor if needed, or deliver it at once to a subscribed executor.
    fn run(
        &mut self,
        framework_info: FrameworkInfo,
        pid: Option<String>,
        executor_info: ExecutorInfo,
        command_executor: bool,
        launch_executor: Option<bool>,
        work: QueuedWork,
    ) {
        let framework_id = framework_info.id.clone().unwrap_or_default().value;
        let executor_id = executor_info.executor_id.value.clone();
        let framework = self
            .frameworks
            .entry(framework_id.clone())
            .or_insert_with(|| Framework {
                info: framework_info.clone(),
                pid: None,
                executors: BTreeMap::new(),
                completed_executors: VecDeque::new(),
            });
        let changed = framework.info != framework_info;
        let new = framework.executors.is_empty();
        framework.info = framework_info.clone();
        if let Some(pid) = pid.filter(|p| !p.is_empty()) {
            framework.pid = Some(pid);
        }
        let existing = framework.executors.get(&executor_id).map(|e| e.state);
        if changed || new {
            self.checkpoint_framework(&framework_id);
        }
        match existing {
            None if launch_executor == Some(false) => {
                self.drop_work(
                    &framework_info,
                    &work,
                    "Executor is not running and the master did not ask to launch it",
                );
            }
            None => {
                self.launch_executor(&framework_id, executor_info, command_executor, work);
            }
            Some(ExecutorState::Registering) => {
                self.checkpoint_tasks(&framework_id, &executor_id, &work);
                if let Some(executor) = self.executor_mut(&framework_id, &executor_id) {
                    executor.queued.push(work);
                }
            }
            Some(ExecutorState::Running) => {
                self.checkpoint_tasks(&framework_id, &executor_id, &work);
                self.deliver(&framework_id, &executor_id, work);
                self.update_container_limits(&framework_id, &executor_id);
            }
            Some(ExecutorState::Terminating | ExecutorState::Terminated) => {
                self.drop_work(&framework_info, &work, "Executor is terminating");
            }
        }
    }

    fn drop_work(&mut self, framework: &FrameworkInfo, work: &QueuedWork, message: &str) {
        let partition_aware = framework
            .capabilities
            .iter()
            .any(|c| c.r#type == Some(framework_info::capability::Type::PartitionAware as i32));
        let state = if partition_aware {
            TaskState::TaskDropped
        } else {
            TaskState::TaskLost
        };
        for task in queued_tasks(work) {
            self.reject_task(
                framework,
                task,
                state,
                Reason::ExecutorTerminated,
                message.to_string(),
            );
        }
    }

    /// The Task record the agent keeps for a TaskInfo.
    fn new_task(
        &self,
        info: &TaskInfo,
        framework_id: &str,
        executor: &Executor,
        state: TaskState,
    ) -> Task {
        Task {
            name: info.name.clone(),
            task_id: info.task_id.clone(),
            framework_id: FrameworkId {
                value: framework_id.to_string(),
            },
            // Mesos leaves it unset for command tasks.
            executor_id: (!executor.command_executor).then(|| executor.info.executor_id.clone()),
            agent_id: self.agent_id().unwrap_or_default(),
            state: state as i32,
            resources: info.resources.clone(),
            labels: info.labels.clone(),
            discovery: info.discovery.clone(),
            container: info.container.clone(),
            health_check: info.health_check.clone(),
            kill_policy: info.kill_policy,
            limits: info.limits.clone(),
            ..Task::default()
        }
    }

    /// Seed step 7: sandbox, cgroup and namespaces through the containerizer.
    fn launch_executor(
        &mut self,
        framework_id: &str,
        info: ExecutorInfo,
        command_executor: bool,
        work: QueuedWork,
    ) {
        let container_id = uuid::Uuid::new_v4().to_string();
        let agent_id = self.agent_id_value();
        let executor_id = info.executor_id.value.clone();
        let Some(framework) = self.frameworks.get(framework_id) else {
            return;
        };
        let framework_info = framework.info.clone();
        let ids = RunIds {
            agent: &agent_id,
            framework: framework_id,
            executor: &executor_id,
            container: &container_id,
        };
        let sandbox = self.config.work_dir.sandbox(ids);
        let tasks: Vec<TaskInfo> = queued_tasks(&work).into_iter().cloned().collect();
        let limits = tasks
            .iter()
            .flat_map(|t| t.limits.iter())
            .map(|(k, v)| (k.clone(), v.value))
            .collect();
        let executor = Executor {
            info: info.clone(),
            container_id: container_id.clone(),
            sandbox: sandbox.clone(),
            command_executor,
            state: ExecutorState::Registering,
            pid: None,
            recovered: false,
            waiting: false,
            stream: None,
            queued: vec![work],
            launched: BTreeMap::new(),
            terminated: BTreeMap::new(),
            completed: VecDeque::new(),
            pending_termination: None,
            limits,
            container_cleaned: false,
        };
        let resources = self.container_resources(&executor);
        let grace = self.shutdown_grace_period(&info);
        let info_for_checkpoint = info.clone();
        let checkpoint = framework_info.checkpoint.unwrap_or(false);
        let endpoint = self.config.upid.address.to_string();
        let agent_pid = self.config.upid.to_string();
        // With an image the sandbox is mounted at --sandbox_directory.
        let has_image = info
            .container
            .as_ref()
            .or_else(|| tasks.first().and_then(|t| t.container.as_ref()))
            .and_then(|c| c.mesos.as_ref())
            .is_some_and(|m| m.image.is_some());
        let container_sandbox = if has_image {
            self.config.flags.sandbox_directory.clone()
        } else {
            sandbox.clone()
        };
        let env_input = ExecutorEnvInput {
            framework_id,
            executor: &info,
            agent_id: &agent_id,
            agent_pid: &agent_pid,
            agent_endpoint: &endpoint,
            sandbox: &sandbox,
            container_sandbox: &container_sandbox,
            checkpoint: framework_info.checkpoint.unwrap_or(false),
            http_command_executor: self.config.flags.http_command_executor,
            shutdown_grace_period: grace,
            recovery_timeout: self.config.flags.recovery_timeout.get(),
            subscription_backoff_max: self.config.flags.executor_reregistration_timeout.get(),
        };
        let environment = executor_environment(&env_input, std::env::vars());
        let user = self.config.flags.switch_user.then(|| {
            info.command
                .as_ref()
                .and_then(|c| c.user.clone())
                .unwrap_or_else(|| framework_info.user.clone())
        });
        let launch = ContainerLaunch {
            container_id: container_id.clone(),
            agent_id,
            framework_info,
            executor_info: info,
            task_info: command_executor.then(|| tasks.first().cloned()).flatten(),
            resources,
            limits: executor.limits.clone(),
            sandbox,
            user,
            environment,
        };
        let initial_work = executor.queued.first().cloned();
        if let Some(framework) = self.frameworks.get_mut(framework_id) {
            framework.executors.insert(executor_id.clone(), executor);
        }
        if checkpoint {
            // Before the launch (Mesos `checkpointExecutor`): an executor
            // started by an agent that then dies must be known to the next.
            let agent_id = self.agent_id_value();
            let ids = RunIds {
                agent: &agent_id,
                framework: framework_id,
                executor: &executor_id,
                container: &container_id,
            };
            if let Err(error) = self.checkpointer.executor(ids, &info_for_checkpoint) {
                tracing::error!(%error, "failed to checkpoint executor");
            }
            if let Some(work) = &initial_work {
                self.checkpoint_tasks(framework_id, &executor_id, work);
            }
        }
        tracing::info!(executor = %executor_id, container = %container_id, "launching executor");
        let (fw, ex, cid) = (
            framework_id.to_string(),
            executor_id.clone(),
            container_id.clone(),
        );
        self.when_done(self.containers.launch(launch), move |slave, result| {
            slave.executor_launched(&fw, &ex, &cid, result);
        });
        // Counted from the launch, like Mesos: image pulls and fetches count.
        let timeout = self.config.flags.executor_registration_timeout.get();
        let (fw, ex, cid) = (framework_id.to_string(), executor_id, container_id);
        self.after(timeout, move |slave| {
            slave.registration_timeout(&fw, &ex, &cid)
        });
    }

    /// Turns all queued work of an executor into task records, so their
    /// terminal updates are tracked like those of launched tasks.
    fn promote_queued(&mut self, framework_id: &str, executor_id: &str) {
        let Some(executor) = self.executor_mut(framework_id, executor_id) else {
            return;
        };
        for work in std::mem::take(&mut executor.queued) {
            self.record_tasks(framework_id, executor_id, &work);
        }
    }

    /// Records the tasks of `work` as launched (TASK_STAGING) on an executor.
    fn record_tasks(&mut self, framework_id: &str, executor_id: &str, work: &QueuedWork) {
        let Some(executor) = self
            .frameworks
            .get(framework_id)
            .and_then(|f| f.executors.get(executor_id))
        else {
            return;
        };
        let tasks: Vec<Task> = queued_tasks(work)
            .into_iter()
            .map(|t| self.new_task(t, framework_id, executor, TaskState::TaskStaging))
            .collect();
        if let Some(executor) = self.executor_mut(framework_id, executor_id) {
            for task in tasks {
                executor.launched.insert(task.task_id.value.clone(), task);
            }
        }
    }

    fn shutdown_grace_period(&self, info: &ExecutorInfo) -> Duration {
        info.shutdown_grace_period
            .as_ref()
            .and_then(|d| u64::try_from(d.nanoseconds).ok())
            .map(Duration::from_nanos)
            .unwrap_or_else(|| self.config.flags.executor_shutdown_grace_period.get())
    }

    /// Executor resources plus those of every task it holds.
    fn container_resources(&self, executor: &Executor) -> Vec<Resource> {
        let mut resources = executor.info.resources.clone();
        for work in &executor.queued {
            for task in queued_tasks(work) {
                resources.extend(task.resources.iter().cloned());
            }
        }
        for task in executor.launched.values() {
            resources.extend(task.resources.iter().cloned());
        }
        resources
    }

    fn update_container_limits(&mut self, framework_id: &str, executor_id: &str) {
        let Some(executor) = self
            .frameworks
            .get(framework_id)
            .and_then(|f| f.executors.get(executor_id))
        else {
            return;
        };
        let resources = self.container_resources(executor);
        let cid = executor.container_id.clone();
        let limits = executor.limits.clone();
        self.when_done(
            self.containers.update(&cid, resources, limits),
            move |_, result| {
                if let Err(error) = result {
                    tracing::warn!(%error, "failed to update container limits");
                }
            },
        );
    }

    fn executor_launched(
        &mut self,
        framework_id: &str,
        executor_id: &str,
        container_id: &str,
        result: Result<crate::containers::LaunchedContainer, crate::containers::ContainerError>,
    ) {
        // The executor may already have subscribed (it can be faster than
        // this task); only a destroyed or replaced run is stale.
        let current = self.executor_mut(framework_id, executor_id).filter(|e| {
            e.container_id == container_id
                && matches!(e.state, ExecutorState::Registering | ExecutorState::Running)
        });
        let Some(executor) = current else {
            // Destroyed (e.g. registration timeout) while launching: make
            // sure nothing of it survives.
            if result.is_ok() {
                self.when_done(self.containers.destroy(container_id), |_, _| {});
            }
            return;
        };
        match result {
            Ok(launched) => {
                executor.pid = Some(launched.pid);
                executor.waiting = true;
                let sandbox = executor.sandbox.clone();
                self.checkpoint_forked_pid(framework_id, executor_id, container_id, launched.pid);
                let Some(executor) = self.executor_mut(framework_id, executor_id) else {
                    return;
                };
                let task_ids: Vec<String> = executor.queued.iter().flat_map(queued_ids).collect();
                for task in &task_ids {
                    for (step, at) in &launched.steps {
                        tracing::info!(seed_step = 7u64, task_id = %task, at = *at,
                            "containerizer: {step}");
                    }
                    tracing::info!(seed_step = 7u64, task_id = %task, pid = launched.pid,
                        "executor container ready: sandbox, cgroup and namespaces");
                }
                self.attach_sandbox(framework_id, executor_id, &sandbox);
                let (fw, ex, cid) = (
                    framework_id.to_string(),
                    executor_id.to_string(),
                    container_id.to_string(),
                );
                self.when_done(self.containers.wait(container_id), move |slave, result| {
                    slave.executor_terminated(&fw, &ex, &cid, result);
                });
            }
            Err(error) => {
                tracing::error!(%error, "failed to launch executor container");
                executor.pending_termination = Some(PendingTermination {
                    state: TaskState::TaskFailed,
                    reason: Reason::ContainerLaunchFailed,
                    message: format!("Failed to launch container: {}", error.message),
                });
                let termination = ContainerTermination {
                    message: error.message,
                    ..ContainerTermination::default()
                };
                self.counters.container_launch_errors += 1;
                self.executor_terminated(framework_id, executor_id, container_id, Ok(termination));
            }
        }
    }

    /// `forked.pid` of a checkpointing framework's executor. The
    /// containerizer writes it before the executor runs; this rewrite makes
    /// it durable (fsync) and covers launchers that do not write it.
    fn checkpoint_forked_pid(
        &self,
        framework_id: &str,
        executor_id: &str,
        container: &str,
        pid: u32,
    ) {
        let checkpointing = self
            .frameworks
            .get(framework_id)
            .is_some_and(Framework::checkpoint);
        if !checkpointing {
            return;
        }
        let agent = self.agent_id_value();
        let ids = RunIds {
            agent: &agent,
            framework: framework_id,
            executor: executor_id,
            container,
        };
        if let Err(error) = self.checkpointer.forked_pid(ids, pid) {
            tracing::error!(%error, "failed to checkpoint the executor pid");
        }
    }

    /// Exposes the sandbox under its virtual path, its real path and the
    /// `runs/latest` path (Mesos `Slave::launchExecutor`).
    fn attach_sandbox(&self, framework_id: &str, executor_id: &str, sandbox: &std::path::Path) {
        let agent = self.agent_id_value();
        let latest = self
            .config
            .work_dir
            .latest_run_link(&agent, framework_id, executor_id);
        for name in [
            virtual_latest_run(framework_id, executor_id),
            sandbox.display().to_string(),
            latest.display().to_string(),
        ] {
            if let Err(error) = self.files.attach(sandbox, &name) {
                tracing::warn!(sandbox = %sandbox.display(), %error, "failed to attach sandbox to /files");
            }
        }
    }

    fn registration_timeout(&mut self, framework_id: &str, executor_id: &str, container_id: &str) {
        let Some(executor) = self.executor_mut(framework_id, executor_id) else {
            return;
        };
        if executor.container_id != container_id || executor.state != ExecutorState::Registering {
            return;
        }
        tracing::warn!(
            executor = executor_id,
            "executor did not subscribe within --executor_registration_timeout; destroying it"
        );
        executor.pending_termination = Some(PendingTermination {
            state: TaskState::TaskFailed,
            reason: Reason::ExecutorRegistrationTimeout,
            message: "Executor did not register within the registration timeout".into(),
        });
        self.destroy_container(framework_id, executor_id);
    }

    /// Kills the executor's container; its exit is then handled by
    /// [`Slave::executor_terminated`] through the pending wait.
    fn destroy_container(&mut self, framework_id: &str, executor_id: &str) {
        let Some(executor) = self.executor_mut(framework_id, executor_id) else {
            return;
        };
        if executor.state == ExecutorState::Terminated {
            return;
        }
        executor.state = ExecutorState::Terminating;
        let cid = executor.container_id.clone();
        let launched = executor.waiting;
        let (fw, ex, cid2) = (
            framework_id.to_string(),
            executor_id.to_string(),
            cid.clone(),
        );
        self.when_done(self.containers.destroy(&cid), move |slave, result| {
            if let Err(error) = result {
                tracing::error!(%error, "failed to destroy container");
            }
            // Without a launched executor no wait is pending to report the end.
            if !launched {
                slave.executor_terminated(
                    &fw,
                    &ex,
                    &cid2,
                    Ok(ContainerTermination {
                        message: "Container destroyed before the executor started".into(),
                        ..ContainerTermination::default()
                    }),
                );
            }
        });
    }

    // ------------------------------------------------------ executor API

    /// Executors can call again once the containerizer recovered their
    /// containers (Mesos `recoveryInfo.reconnect`); before that: 503.
    fn ensure_executors_accepted(&self) -> Result<(), ExecutorCallError> {
        if self.state == SlaveState::Recovering
            && !self.recovery.as_ref().is_some_and(|r| r.reconnect)
        {
            return Err(ExecutorCallError::Unavailable(
                "Agent has not finished recovery".into(),
            ));
        }
        Ok(())
    }

    fn executor_for_call(&mut self, call: &Call) -> Result<&mut Executor, ExecutorCallError> {
        self.ensure_executors_accepted()?;
        let framework = self
            .frameworks
            .get_mut(&call.framework_id.value)
            .ok_or_else(|| ExecutorCallError::BadRequest("Framework cannot be found".into()))?;
        framework
            .executors
            .get_mut(&call.executor_id.value)
            .ok_or_else(|| ExecutorCallError::BadRequest("Executor cannot be found".into()))
    }

    /// SUBSCRIBE (seed step 8): SUBSCRIBED, then the queued tasks. An
    /// executor subscribing again (after losing its connection, or to a
    /// restarted agent) resends its unacknowledged updates and tasks.
    pub fn subscribe(
        &mut self,
        call: &Call,
        stream: ExecutorStream,
    ) -> Result<(), ExecutorCallError> {
        self.ensure_executors_accepted()?;
        let agent_info = self.info.clone();
        let framework_info = self
            .frameworks
            .get(&call.framework_id.value)
            .map(|f| f.info.clone())
            .ok_or_else(|| ExecutorCallError::BadRequest("Framework cannot be found".into()))?;
        let executor = self.executor_for_call(call)?;
        match executor.state {
            ExecutorState::Terminating => {
                stream.send(&new_event(event::Type::Shutdown));
                return Ok(());
            }
            ExecutorState::Terminated => {
                return Err(ExecutorCallError::BadRequest(
                    "Executor has terminated".into(),
                ));
            }
            ExecutorState::Registering | ExecutorState::Running => {}
        }
        let mut subscribed = new_event(event::Type::Subscribed);
        subscribed.subscribed = Some(event::Subscribed {
            executor_info: executor.info.clone(),
            framework_info,
            agent_info,
            container_id: Some(ContainerId {
                value: executor.container_id.clone(),
                parent: None,
            }),
        });
        stream.send(&subscribed);
        executor.stream = Some(stream);
        let after_restart = executor.recovered && executor.state == ExecutorState::Registering;
        executor.recovered = false;
        executor.state = ExecutorState::Running;
        let executor_id = call.executor_id.value.clone();
        tracing::info!(executor = %executor_id, after_restart, "executor subscribed");
        let resubscription = call.subscribe.clone().unwrap_or_default();
        self.resubscribed_updates(call, resubscription.unacknowledged_updates);
        if after_restart {
            let known: Vec<String> = resubscription
                .unacknowledged_tasks
                .iter()
                .map(|t| t.task_id.value.clone())
                .collect();
            self.drop_tasks_unknown_to_executor(&call.framework_id.value, &executor_id, &known);
        }
        let Some(executor) = self.executor_mut(&call.framework_id.value, &executor_id) else {
            return Ok(());
        };
        let queued = std::mem::take(&mut executor.queued);
        for work in &queued {
            for task in queued_tasks(work) {
                tracing::info!(seed_step = 8u64, task_id = %task.task_id.value, "executor subscribed");
            }
        }
        for work in queued {
            self.deliver(&call.framework_id.value, &executor_id, work);
        }
        if self.state == SlaveState::Recovering {
            self.maybe_finish_recovery();
        }
        Ok(())
    }

    /// The updates a (re-)subscribing executor has not seen acknowledged go
    /// through the usual path; those the agent already has are only
    /// acknowledged again (Mesos `Slave::subscribe`).
    fn resubscribed_updates(
        &mut self,
        call: &Call,
        updates: Vec<mesos_proto::v1::executor::call::Update>,
    ) {
        let agent_id = self.agent_id().unwrap_or_default();
        for update in updates {
            let mut update_call = call.clone();
            update_call.r#type = Some(mesos_proto::v1::executor::call::Type::Update as i32);
            update_call.subscribe = None;
            update_call.update = Some(update);
            if let Err(error) = crate::executor_api::validate_call(&update_call) {
                tracing::warn!(%error, "dropping an invalid unacknowledged update");
                self.counters.invalid_status_updates += 1;
                continue;
            }
            let Ok(executor) = self.executor_for_call(&update_call) else {
                return;
            };
            let container_id = ContainerId {
                value: executor.container_id.clone(),
                parent: None,
            };
            if let Some(update) = status_update_from_call(&update_call, &agent_id, &container_id) {
                self.status_update(update, UpdateOrigin::Executor);
            }
        }
    }

    /// Tasks still TASK_STAGING that a re-subscribing executor does not
    /// list never reached it (the agent died first): TASK_LOST, or
    /// TASK_DROPPED for partition-aware frameworks (Mesos
    /// `reregisterExecutor`).
    fn drop_tasks_unknown_to_executor(
        &mut self,
        framework_id: &str,
        executor_id: &str,
        known: &[String],
    ) {
        let Some(framework) = self.frameworks.get(framework_id) else {
            return;
        };
        let state = if framework.partition_aware() {
            TaskState::TaskDropped
        } else {
            TaskState::TaskLost
        };
        let Some(executor) = framework.executors.get(executor_id) else {
            return;
        };
        let executor_ref = executor.info.executor_id.clone();
        let never_delivered: Vec<TaskId> = executor
            .launched
            .values()
            .filter(|t| t.state == TaskState::TaskStaging as i32)
            .filter(|t| !known.contains(&t.task_id.value))
            .map(|t| t.task_id.clone())
            .collect();
        for task_id in never_delivered {
            tracing::warn!(task = %task_id.value, "task launched during agent restart never reached its executor");
            let update = self.agent_update(
                framework_id,
                &task_id,
                Some(executor_ref.clone()),
                state,
                Reason::AgentRestarted,
                "Task launched during agent restart".into(),
            );
            self.status_update(update, UpdateOrigin::Agent);
        }
    }

    /// Sends LAUNCH / LAUNCH_GROUP to a subscribed executor and records the
    /// tasks as launched (still TASK_STAGING until the executor reports).
    fn deliver(&mut self, framework_id: &str, executor_id: &str, work: QueuedWork) {
        self.record_tasks(framework_id, executor_id, &work);
        let ids = queued_ids(&work);
        let event = match work {
            QueuedWork::Task(task) => {
                let mut event = new_event(event::Type::Launch);
                event.launch = Some(event::Launch { task: *task });
                event
            }
            QueuedWork::Group(task_group) => {
                let mut event = new_event(event::Type::LaunchGroup);
                event.launch_group = Some(event::LaunchGroup { task_group });
                event
            }
        };
        let Some(executor) = self.executor_mut(framework_id, executor_id) else {
            return;
        };
        for id in ids {
            tracing::info!(seed_step = 8u64, task_id = %id, "task launched on executor");
        }
        if let Some(stream) = &executor.stream {
            stream.send(&event);
        }
    }

    /// UPDATE: the executor reports a task status.
    pub fn executor_update(&mut self, call: &Call) -> Result<(), ExecutorCallError> {
        let agent_id = self.agent_id().unwrap_or_default();
        let executor = self.executor_for_call(call)?;
        if executor.state == ExecutorState::Registering {
            return Err(ExecutorCallError::Forbidden(
                "Executor is not subscribed".into(),
            ));
        }
        let container_id = ContainerId {
            value: executor.container_id.clone(),
            parent: None,
        };
        let update = status_update_from_call(call, &agent_id, &container_id).ok_or_else(|| {
            ExecutorCallError::BadRequest("Expecting 'update' to be present".into())
        })?;
        self.status_update(update, UpdateOrigin::Executor);
        Ok(())
    }

    /// MESSAGE: relayed to the scheduler through the master.
    pub fn executor_message(&mut self, call: &Call) -> Result<(), ExecutorCallError> {
        let executor = self.executor_for_call(call)?;
        if executor.state == ExecutorState::Registering {
            return Err(ExecutorCallError::Forbidden(
                "Executor is not subscribed".into(),
            ));
        }
        let data = call
            .message
            .as_ref()
            .map(|m| m.data.clone())
            .unwrap_or_default();
        let message = ExecutorToFrameworkMessage {
            slave_id: self.agent_id().unwrap_or_default(),
            framework_id: call.framework_id.clone(),
            executor_id: call.executor_id.clone(),
            data,
        };
        self.send_to_master(&message);
        self.counters.valid_framework_messages += 1;
        Ok(())
    }

    // ---------------------------------------------------- status updates

    /// An update generated by the agent itself (`SOURCE_AGENT`, fresh uuid).
    fn agent_update(
        &self,
        framework_id: &str,
        task_id: &TaskId,
        executor_id: Option<ExecutorId>,
        state: TaskState,
        reason: Reason,
        message: String,
    ) -> StatusUpdate {
        let uuid = uuid::Uuid::new_v4().as_bytes().to_vec();
        let timestamp = now_secs();
        let agent_id = self.agent_id();
        let container_status = executor_id.as_ref().and_then(|e| {
            let executor = self.frameworks.get(framework_id)?.executors.get(&e.value)?;
            Some(ContainerStatus {
                container_id: Some(ContainerId {
                    value: executor.container_id.clone(),
                    parent: None,
                }),
                executor_pid: executor.pid,
                ..ContainerStatus::default()
            })
        });
        StatusUpdate {
            framework_id: FrameworkId {
                value: framework_id.to_string(),
            },
            executor_id: executor_id.clone(),
            slave_id: agent_id.clone(),
            status: TaskStatus {
                task_id: task_id.clone(),
                state: state as i32,
                message: Some(message),
                source: Some(Source::Agent as i32),
                reason: Some(reason as i32),
                agent_id,
                executor_id,
                timestamp: Some(timestamp),
                uuid: Some(uuid.clone()),
                container_status,
                ..TaskStatus::default()
            },
            timestamp,
            uuid: Some(uuid),
            latest_state: None,
        }
    }

    /// Records an update on its task, hands it to the status update manager
    /// (checkpointed first for checkpointing frameworks), forwards it if it
    /// is the stream's head, and acknowledges it to the executor.
    fn status_update(&mut self, update: StatusUpdate, origin: UpdateOrigin) {
        let framework_id = update.framework_id.value.clone();
        let task_id = update.status.task_id.value.clone();
        let state = update.status.state;
        let executor_id = self
            .frameworks
            .get(&framework_id)
            .and_then(|f| f.executor_of(&task_id))
            .or_else(|| update.executor_id.as_ref().map(|e| e.value.clone()));
        let checkpoint = self
            .frameworks
            .get(&framework_id)
            .is_some_and(Framework::checkpoint);
        let agent_id = self.agent_id_value();
        let mut stream = None;
        let mut checkpoint_path = None;
        let work_dir = self.config.work_dir.clone();
        let executor = match executor_id.as_deref() {
            Some(e) => self
                .frameworks
                .get_mut(&framework_id)
                .and_then(|f| f.executors.get_mut(e)),
            None => None,
        };
        if let Some(executor) = executor {
            if matches!(origin, UpdateOrigin::Executor)
                && executor.state == ExecutorState::Terminated
            {
                tracing::warn!(task = %task_id, "ignoring status update from a terminated executor");
                self.counters.invalid_status_updates += 1;
                return;
            }
            // An update the agent already has (an executor resending what it
            // did not see acknowledged, e.g. after an agent restart), or one
            // for a task whose terminal update the scheduler acknowledged:
            // acknowledge again, record and send nothing.
            let uuid = update.status.uuid.as_deref().unwrap_or_default();
            let repeat = self.sum.has_seen(&framework_id, &task_id, uuid)
                || executor
                    .completed
                    .iter()
                    .any(|t| t.task_id.value == task_id);
            if matches!(origin, UpdateOrigin::Executor) && repeat {
                tracing::info!(task = %task_id, "acknowledging a status update received before");
                if let Some(stream) = &executor.stream {
                    let mut ack = new_event(event::Type::Acknowledged);
                    ack.acknowledged = Some(event::Acknowledged {
                        task_id: update.status.task_id.clone(),
                        uuid: uuid.to_vec(),
                    });
                    stream.send(&ack);
                }
                return;
            }
            if checkpoint {
                let ids = RunIds {
                    agent: &agent_id,
                    framework: &framework_id,
                    executor: &executor.info.executor_id.value,
                    container: &executor.container_id,
                };
                checkpoint_path = Some(work_dir.task_updates_file(ids, &task_id));
            }
            record_status(executor, &update);
            if matches!(origin, UpdateOrigin::Executor) {
                stream = executor.stream.clone();
            }
        }
        if matches!(origin, UpdateOrigin::Executor) {
            self.counters.valid_status_updates += 1;
        }
        if is_terminal(state) {
            let name = TaskState::try_from(state)
                .map(terminal_metric_name)
                .unwrap_or("unknown");
            *self.counters.terminal_tasks.entry(name).or_default() += 1;
        }
        tracing::info!(
            task = %task_id,
            state = state_name(state),
            from = if matches!(origin, UpdateOrigin::Executor) { "executor" } else { "agent" },
            "status update received"
        );
        let now = Instant::now();
        match self
            .sum
            .update(update.clone(), checkpoint_path.as_deref(), now)
        {
            Ok(forward) => {
                if let Some(forward) = forward {
                    self.forward(forward);
                }
            }
            Err(error) => {
                // Not durably recorded: do not acknowledge, the executor retries.
                tracing::error!(%error, "status update manager refused the update");
                return;
            }
        }
        if let Some(stream) = stream {
            let mut ack = new_event(event::Type::Acknowledged);
            ack.acknowledged = Some(event::Acknowledged {
                task_id: update.status.task_id.clone(),
                uuid: update.status.uuid.clone().unwrap_or_default(),
            });
            stream.send(&ack);
        }
        if let Some(executor) = executor_id {
            self.maybe_cleanup_executor(&framework_id, &executor);
        }
    }

    /// Sends an update (head of its stream) to the master.
    fn forward(&mut self, update: StatusUpdate) {
        if self.state != SlaveState::Running {
            return; // resent from the status update manager on (re-)registration
        }
        let framework_id = update.framework_id.value.clone();
        let task_id = update.status.task_id.value.clone();
        if let Some(framework) = self.frameworks.get_mut(&framework_id) {
            if let Some(executor) = framework.executor_of(&task_id) {
                if let Some(executor) = framework.executors.get_mut(&executor) {
                    if let Some(task) = executor
                        .launched
                        .get_mut(&task_id)
                        .or(executor.terminated.get_mut(&task_id))
                    {
                        task.status_update_state = Some(update.status.state);
                        task.status_update_uuid = update.status.uuid.clone();
                    }
                }
            }
        }
        tracing::info!(
            task = %task_id,
            state = state_name(update.status.state),
            uuid = %uuid_text(update.status.uuid.as_deref().unwrap_or_default()),
            "forwarding status update to the master"
        );
        let message = StatusUpdateMessage {
            update,
            pid: Some(self.config.upid.to_string()),
        };
        self.send_to_master(&message);
    }

    fn status_update_acknowledgement(&mut self, message: StatusUpdateAcknowledgementMessage) {
        let framework_id = message.framework_id.value.clone();
        let task_id = message.task_id.value.clone();
        tracing::info!(task = %task_id, uuid = %uuid_text(&message.uuid),
            "status update acknowledged by the scheduler");
        let outcome =
            match self
                .sum
                .acknowledge(&framework_id, &task_id, &message.uuid, Instant::now())
            {
                Ok(outcome) => outcome,
                Err(error) => {
                    tracing::warn!(%error, "ignoring status update acknowledgement");
                    return;
                }
            };
        if let Some(next) = outcome.next {
            self.forward(next);
        }
        if !outcome.terminated {
            return;
        }
        let executor_id = self
            .frameworks
            .get(&framework_id)
            .and_then(|f| f.executor_of(&task_id));
        if let Some(executor_id) = executor_id {
            if let Some(executor) = self.executor_mut(&framework_id, &executor_id) {
                if let Some(task) = executor.terminated.remove(&task_id) {
                    push_bounded(&mut executor.completed, task, MAX_COMPLETED_EXECUTORS * 10);
                }
            }
            self.maybe_cleanup_executor(&framework_id, &executor_id);
        }
    }

    // ---------------------------------------------------- kill / shutdown

    fn kill_task(&mut self, message: KillTaskMessage) {
        let framework_id = message.framework_id.value.clone();
        let task_id = message.task_id.value.clone();
        let Some(framework) = self.frameworks.get(&framework_id) else {
            tracing::warn!(task = %task_id, "ignoring kill of a task of an unknown framework");
            return;
        };
        let partition_aware =
            framework.has_capability(framework_info::capability::Type::PartitionAware);
        let Some(executor_id) = framework.executor_of(&task_id) else {
            let state = if partition_aware {
                TaskState::TaskDropped
            } else {
                TaskState::TaskLost
            };
            let update = self.agent_update(
                &framework_id,
                &message.task_id,
                None,
                state,
                Reason::ExecutorTerminated,
                "Cannot find executor".into(),
            );
            self.status_update(update, UpdateOrigin::Agent);
            return;
        };
        let default_grace = self.config.flags.executor_shutdown_grace_period.get();
        let Some(executor) = self.executor_mut(&framework_id, &executor_id) else {
            return;
        };
        // Still queued: the executor never saw it.
        let position = executor
            .queued
            .iter()
            .position(|w| queued_ids(w).contains(&task_id));
        if let Some(position) = position {
            let work = executor.queued.remove(position);
            let executor_info = executor.info.executor_id.clone();
            let no_work_left = executor.queued.is_empty() && executor.launched.is_empty();
            self.record_tasks(&framework_id, &executor_id, &work);
            for task in queued_tasks(&work) {
                let update = self.agent_update(
                    &framework_id,
                    &task.task_id,
                    Some(executor_info.clone()),
                    TaskState::TaskKilled,
                    Reason::TaskKilledDuringLaunch,
                    "Killed before delivery to the executor".into(),
                );
                self.status_update(update, UpdateOrigin::Agent);
            }
            if no_work_left {
                self.shutdown_executor(&framework_id, &executor_id);
            }
            return;
        }
        if executor.state != ExecutorState::Running || !executor.launched.contains_key(&task_id) {
            tracing::info!(task = %task_id, state = executor.state.name(), "kill of a task that is already ending");
            return;
        }
        let task_policy = executor.launched.get(&task_id).and_then(|t| t.kill_policy);
        let policy = message.kill_policy.or(task_policy);
        let grace = policy
            .as_ref()
            .and_then(|p| p.grace_period.as_ref())
            .and_then(|d| u64::try_from(d.nanoseconds).ok())
            .map(Duration::from_nanos)
            .unwrap_or(default_grace);
        let mut event = new_event(event::Type::Kill);
        event.kill = Some(event::Kill {
            task_id: message.task_id.clone(),
            kill_policy: message.kill_policy,
        });
        if let Some(stream) = &executor.stream {
            stream.send(&event);
        }
        tracing::info!(task = %task_id, grace_secs = grace.as_secs_f64(), "asked the executor to kill the task");
        let container_id = executor.container_id.clone();
        self.after(grace, move |slave| {
            slave.kill_grace_expired(&framework_id, &executor_id, &container_id, &task_id)
        });
    }

    /// The executor did not end the task within its grace period: the whole
    /// container goes, and the task ends TASK_KILLED.
    fn kill_grace_expired(
        &mut self,
        framework_id: &str,
        executor_id: &str,
        container_id: &str,
        task_id: &str,
    ) {
        let Some(executor) = self.executor_mut(framework_id, executor_id) else {
            return;
        };
        if executor.container_id != container_id
            || executor.state == ExecutorState::Terminated
            || !executor.launched.contains_key(task_id)
        {
            return;
        }
        tracing::warn!(
            task = task_id,
            "task not killed within its grace period; destroying its container"
        );
        executor.pending_termination = Some(PendingTermination {
            state: TaskState::TaskKilled,
            reason: Reason::ExecutorTerminated,
            message: "Task killed: container destroyed after the kill grace period".into(),
        });
        self.destroy_container(framework_id, executor_id);
    }

    /// SHUTDOWN to the executor, then destroy after its grace period.
    pub fn shutdown_executor(&mut self, framework_id: &str, executor_id: &str) {
        let default_grace = self.config.flags.executor_shutdown_grace_period.get();
        let Some(executor) = self.executor_mut(framework_id, executor_id) else {
            return;
        };
        match executor.state {
            ExecutorState::Terminated => return,
            ExecutorState::Registering => {
                self.destroy_container(framework_id, executor_id);
                return;
            }
            ExecutorState::Running | ExecutorState::Terminating => {}
        }
        executor.state = ExecutorState::Terminating;
        if let Some(stream) = &executor.stream {
            stream.send(&new_event(event::Type::Shutdown));
        }
        let grace = executor
            .info
            .shutdown_grace_period
            .as_ref()
            .and_then(|d| u64::try_from(d.nanoseconds).ok())
            .map(Duration::from_nanos)
            .unwrap_or(default_grace);
        let (fw, ex, cid) = (
            framework_id.to_string(),
            executor_id.to_string(),
            executor.container_id.clone(),
        );
        self.after(grace, move |slave| {
            let alive = slave
                .executor_mut(&fw, &ex)
                .is_some_and(|e| e.container_id == cid && e.state != ExecutorState::Terminated);
            if alive {
                tracing::warn!(executor = %ex, "executor did not shut down within its grace period; destroying it");
                slave.destroy_container(&fw, &ex);
            }
        });
    }

    fn shutdown_framework(&mut self, framework_id: &str) {
        let Some(framework) = self.frameworks.get(framework_id) else {
            return;
        };
        tracing::info!(framework = framework_id, "shutting down framework");
        let executors: Vec<String> = framework.executors.keys().cloned().collect();
        for executor in executors {
            self.shutdown_executor(framework_id, &executor);
        }
    }

    // ------------------------------------------------- container exit

    /// The container ended: remaining tasks get terminal updates with the
    /// limitation's reason (e.g. OOM), the pending termination's, or
    /// TASK_FAILED/REASON_EXECUTOR_TERMINATED; the master hears
    /// `ExitedExecutorMessage`; the container is cleaned up.
    fn executor_terminated(
        &mut self,
        framework_id: &str,
        executor_id: &str,
        container_id: &str,
        result: Result<ContainerTermination, crate::containers::ContainerError>,
    ) {
        let Some(executor) = self.executor_mut(framework_id, executor_id) else {
            return;
        };
        if executor.container_id != container_id || executor.state == ExecutorState::Terminated {
            return;
        }
        // A failed wait means the containerizer does not know the container
        // (e.g. gone while the agent was down, or after a reboot): Mesos's
        // "Abnormal executor termination".
        let termination = result.unwrap_or_else(|error| ContainerTermination {
            message: format!("Abnormal executor termination: {}", error.message),
            ..ContainerTermination::default()
        });
        executor.state = ExecutorState::Terminated;
        executor.stream = None;
        executor.waiting = false;
        let exit = termination
            .status
            .map(|status| format!("Executor {}", describe_wait_status(status)))
            .unwrap_or_else(|| termination.message.clone());
        tracing::info!(executor = executor_id, container = container_id, %exit, "executor container terminated");
        let (state, reason, message) =
            match (&termination.limitation, &executor.pending_termination) {
                (Some(limitation), _) => (
                    TaskState::TaskFailed,
                    limitation.reason,
                    limitation.message.clone(),
                ),
                (None, Some(pending)) => (pending.state, pending.reason, pending.message.clone()),
                (None, None) => (TaskState::TaskFailed, Reason::ExecutorTerminated, exit),
            };
        let executor_ref = executor.info.executor_id.clone();
        let command_executor = executor.command_executor;
        self.promote_queued(framework_id, executor_id);
        let Some(executor) = self.executor_mut(framework_id, executor_id) else {
            return;
        };
        let live: Vec<TaskId> = executor
            .launched
            .values()
            .map(|t| t.task_id.clone())
            .collect();
        let pid_status = termination.status.unwrap_or(-1);
        self.counters.executors_terminated += 1;
        for task_id in live {
            let update = self.agent_update(
                framework_id,
                &task_id,
                Some(executor_ref.clone()),
                state,
                reason,
                message.clone(),
            );
            self.status_update(update, UpdateOrigin::Agent);
        }
        // The master does not track command executors (Mesos sends this only
        // for executors it did not generate).
        if !command_executor {
            self.send_to_master(&ExitedExecutorMessage {
                slave_id: self.agent_id().unwrap_or_default(),
                framework_id: FrameworkId {
                    value: framework_id.to_string(),
                },
                executor_id: executor_ref,
                status: pid_status,
            });
        }
        // Releases the cgroup and runtime state (the sandbox stays for /files
        // until garbage collection). The executor counts as gone only once
        // this is done, as in Mesos where the container's termination
        // resolves after the isolators cleaned up.
        let (fw, ex, cid) = (
            framework_id.to_string(),
            executor_id.to_string(),
            container_id.to_string(),
        );
        self.when_done(
            self.containers.destroy(container_id),
            move |slave, result| {
                if let Err(error) = result {
                    tracing::warn!(%error, "failed to clean up container");
                }
                if let Some(executor) = slave.executor_mut(&fw, &ex) {
                    if executor.container_id == cid {
                        executor.container_cleaned = true;
                    }
                }
                slave.maybe_cleanup_executor(&fw, &ex);
            },
        );
        if self.state == SlaveState::Recovering {
            self.maybe_finish_recovery();
        }
    }

    /// A terminated executor whose tasks are all acknowledged moves to the
    /// completed list; a framework without executors is completed too.
    fn maybe_cleanup_executor(&mut self, framework_id: &str, executor_id: &str) {
        let Some(framework) = self.frameworks.get_mut(framework_id) else {
            return;
        };
        let done = framework.executors.get(executor_id).is_some_and(|e| {
            e.state == ExecutorState::Terminated
                && e.container_cleaned
                && e.launched.is_empty()
                && e.terminated.is_empty()
                && e.queued.is_empty()
        });
        if done {
            let checkpointing = framework.checkpoint();
            if let Some(mut executor) = framework.executors.remove(executor_id) {
                executor.stream = None;
                let sandbox = executor.sandbox.clone();
                let container = executor.container_id.clone();
                push_bounded(
                    &mut framework.completed_executors,
                    executor,
                    MAX_COMPLETED_EXECUTORS,
                );
                let meta_run = checkpointing
                    .then(|| self.complete_run_checkpoint(framework_id, executor_id, &container));
                self.schedule_gc(sandbox, meta_run);
            }
        }
        let Some(framework) = self.frameworks.get(framework_id) else {
            return;
        };
        if framework.executors.is_empty() {
            if let Some(framework) = self.frameworks.remove(framework_id) {
                push_bounded(
                    &mut self.completed_frameworks,
                    framework,
                    MAX_COMPLETED_FRAMEWORKS,
                );
            }
            self.maybe_finish_shutdown();
        }
    }

    /// Writes the run's `executor.sentinel` (recovery skips the run from now
    /// on) and returns the run's meta directory.
    fn complete_run_checkpoint(
        &self,
        framework_id: &str,
        executor_id: &str,
        container: &str,
    ) -> PathBuf {
        let agent = self.agent_id_value();
        let ids = RunIds {
            agent: &agent,
            framework: framework_id,
            executor: executor_id,
            container,
        };
        if let Err(error) = self.checkpointer.sentinel(ids) {
            tracing::error!(%error, "failed to checkpoint the end of an executor run");
        }
        self.config.work_dir.meta_run_dir(ids)
    }

    /// Removes a finished executor's sandbox (and the run's checkpoint)
    /// after `--gc_delay` (Mesos's garbage collector, without its
    /// disk-pressure acceleration).
    fn schedule_gc(&self, sandbox: PathBuf, meta_run: Option<PathBuf>) {
        let delay = self.config.flags.gc_delay.get();
        self.after(delay, move |slave| {
            if let Some(meta_run) = &meta_run {
                if let Err(error) = std::fs::remove_dir_all(meta_run) {
                    tracing::warn!(dir = %meta_run.display(), %error, "failed to garbage collect a run's checkpoint");
                }
            }
            // Detach every name still pointing at this run (a newer run of the
            // same executor re-attached `runs/latest` to its own sandbox).
            if let Ok(canonical) = std::fs::canonicalize(&sandbox) {
                for (name, root) in slave.files.debug() {
                    if root == canonical {
                        slave.files.detach(&name);
                    }
                }
            }
            if let Err(error) = std::fs::remove_dir_all(&sandbox) {
                tracing::warn!(sandbox = %sandbox.display(), %error, "failed to garbage collect sandbox");
            }
        });
    }

    // ------------------------------------------------------------ views

    /// Whether the agent has no running executors.
    pub fn idle(&self) -> bool {
        self.frameworks.values().all(|f| f.executors.is_empty())
    }

    /// Total resources (from flags and detection).
    pub fn total_resources(&self) -> &[Resource] {
        &self.info.resources
    }

    /// Resources of live executors and their tasks.
    pub fn used_resources(&self) -> Vec<Resource> {
        self.frameworks
            .values()
            .flat_map(|f| f.executors.values())
            .filter(|e| e.state != ExecutorState::Terminated)
            .flat_map(|e| self.container_resources(e))
            .collect()
    }
}

impl Framework {
    /// Executors with a live (or ending) container.
    pub fn executors(&self) -> impl Iterator<Item = &Executor> {
        self.executors.values()
    }

    /// Executors whose container is gone, newest last.
    pub fn completed_executors(&self) -> impl Iterator<Item = &Executor> {
        self.completed_executors.iter()
    }
}

impl Executor {
    /// Tasks sent to the executor and not terminal.
    pub fn launched_tasks(&self) -> impl Iterator<Item = &Task> {
        self.launched.values()
    }

    /// Tasks waiting for the executor to subscribe.
    pub fn queued_task_infos(&self) -> Vec<&TaskInfo> {
        self.queued.iter().flat_map(queued_tasks).collect()
    }

    /// Terminal tasks (acknowledged or not).
    pub fn finished_tasks(&self) -> impl Iterator<Item = &Task> {
        self.terminated.values().chain(self.completed.iter())
    }

    /// Executor state name as Mesos prints it.
    pub fn state_name(&self) -> &'static str {
        self.state.name()
    }
}

fn push_bounded<T>(list: &mut VecDeque<T>, item: T, max: usize) {
    list.push_back(item);
    while list.len() > max {
        list.pop_front();
    }
}

/// Applies an update to the agent's record of the task.
fn record_status(executor: &mut Executor, update: &StatusUpdate) {
    let task_id = &update.status.task_id.value;
    let Some(task) = executor.launched.get_mut(task_id) else {
        return;
    };
    task.state = update.status.state;
    // Mesos keeps statuses without their (possibly large) data.
    let mut status = update.status.clone();
    status.data = None;
    task.statuses.push(status);
    if is_terminal(update.status.state) {
        if let Some(task) = executor.launched.remove(task_id) {
            executor.terminated.insert(task_id.clone(), task);
        }
    }
}

/// `TASK_RUNNING` etc., for logs.
fn state_name(state: i32) -> &'static str {
    TaskState::try_from(state).map_or("UNKNOWN", |s| s.as_str_name())
}

/// `slave/tasks_<name>` metric suffix of a terminal state.
fn terminal_metric_name(state: TaskState) -> &'static str {
    match state {
        TaskState::TaskFinished => "finished",
        TaskState::TaskFailed => "failed",
        TaskState::TaskKilled => "killed",
        TaskState::TaskLost => "lost",
        TaskState::TaskError => "error",
        TaskState::TaskDropped => "dropped",
        TaskState::TaskGone | TaskState::TaskGoneByOperator => "gone",
        _ => "unknown",
    }
}
