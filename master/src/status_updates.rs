//! Seed step 8, master side: status updates flow from agents to schedulers,
//! acknowledgements back (`Master::statusUpdate`, `Master::acknowledge`,
//! `Master::reconcile`, src/master/master.cpp).
//!
//! * An agent's `StatusUpdateMessage` updates the task (its latest state,
//!   the state and uuid of the update in flight) and is forwarded to the
//!   framework as UPDATE, with `uuid` and `agent_id` when an acknowledgement
//!   is expected. The agent re-sends an unacknowledged update until it is
//!   acknowledged, and the master forwards every copy.
//! * ACKNOWLEDGE becomes a `StatusUpdateAcknowledgementMessage` to the
//!   agent; a task whose terminal update is acknowledged is removed.
//! * Updates the master makes up (invalid tasks, lost agents,
//!   reconciliation) carry no uuid: nothing to acknowledge.
//! * After a master restart the agent re-sends its unacknowledged updates
//!   once it has re-registered; they flow like any other, and ACKNOWLEDGE
//!   goes to the agent's current pid. An acknowledgement for a task whose
//!   in-flight update this master never saw (the agent did not report it)
//!   is dropped, as in Mesos: the agent retries the update.

use std::time::Instant;

use mesos_proto::internal::{StatusUpdateAcknowledgementMessage, StatusUpdateMessage};
use mesos_proto::v1::scheduler::{call, event, Event};
use mesos_proto::v1::task_status::{Reason, Source};
use mesos_proto::v1::{AgentId, FrameworkId, Task, TaskId, TaskState, TaskStatus, TimeInfo};
use mesos_transport::Upid;

use crate::launch::resources_of;
use crate::master::{now_secs, Master};

/// Statuses kept per task in `/state` (Mesos keeps them all; bound memory).
const MAX_STATUSES_PER_TASK: usize = 32;

/// Mesos's `protobuf::isTerminalState`.
pub(crate) fn is_terminal(state: i32) -> bool {
    [
        TaskState::TaskFinished,
        TaskState::TaskFailed,
        TaskState::TaskKilled,
        TaskState::TaskLost,
        TaskState::TaskError,
        TaskState::TaskDropped,
        TaskState::TaskGone,
        TaskState::TaskGoneByOperator,
    ]
    .iter()
    .any(|s| *s as i32 == state)
}

impl Master {
    /// A `StatusUpdateMessage` from an agent.
    pub(crate) fn agent_status_update(&mut self, from: &Upid, message: StatusUpdateMessage) {
        let update = message.update;
        let framework_id = update.framework_id.value.clone();
        let agent_id = match &update.slave_id {
            Some(id) => id.value.clone(),
            None => self.agent_by_pid(from).unwrap_or_default(),
        };
        if !self.agents.get(&agent_id).is_some_and(|a| a.connected) {
            // Mesos drops updates from unknown or disconnected agents; the
            // agent retries after (re-)registering.
            tracing::warn!(agent = %agent_id, %from, "ignoring status update from unknown agent");
            self.metrics.invalid_status_updates += 1;
            return;
        }
        if !self.frameworks.contains_key(&framework_id) {
            tracing::warn!(framework = %framework_id, "ignoring status update of unknown framework");
            self.metrics.invalid_status_updates += 1;
            return;
        }
        let mut status = update.status;
        status.agent_id = Some(AgentId {
            value: agent_id.clone(),
        });
        if status.executor_id.is_none() {
            status.executor_id = update.executor_id.clone();
        }
        // The uuid is what the scheduler acknowledges; Mesos clears it when
        // no acknowledgement is expected (src/internal/evolve.cpp).
        let uuid = status.uuid.clone().or(update.uuid.clone());
        status.uuid = uuid.clone();
        let latest = update.latest_state.unwrap_or(status.state);
        self.metrics.valid_status_updates += 1;
        self.forward_update(&framework_id, status.clone());
        self.update_task(&framework_id, &status, latest, uuid.as_deref());
    }

    /// Sends UPDATE to the framework.
    pub(crate) fn forward_update(&mut self, framework_id: &str, status: TaskStatus) {
        let event = Event {
            r#type: Some(event::Type::Update as i32),
            update: Some(event::Update { status }),
            ..Default::default()
        };
        self.send_event(framework_id, &event);
    }

    /// Applies an update to the master's view of the task. Resources are
    /// recovered as soon as the task is terminal; the task itself is
    /// removed when its terminal update is acknowledged (or needs none).
    fn update_task(
        &mut self,
        framework_id: &str,
        status: &TaskStatus,
        latest: i32,
        uuid: Option<&[u8]>,
    ) {
        let task_id = status.task_id.value.clone();
        let Some(task) = self
            .frameworks
            .get_mut(framework_id)
            .and_then(|f| f.tasks.get_mut(&task_id))
        else {
            return;
        };
        let was_terminal = is_terminal(task.state);
        task.state = latest;
        task.status_update_state = Some(status.state);
        task.status_update_uuid = uuid.map(<[u8]>::to_vec);
        let mut stored = status.clone();
        // Like Mesos, do not keep the (possibly large) data in the master.
        stored.data = None;
        task.statuses.push(stored);
        if task.statuses.len() > MAX_STATUSES_PER_TASK {
            task.statuses.remove(0);
        }
        let task = task.clone();
        if !was_terminal && is_terminal(latest) {
            self.recover_task_resources(framework_id, &task);
            self.metrics.count_terminal(latest);
        }
        if is_terminal(status.state) && uuid.is_none() {
            self.remove_task(framework_id, &task_id);
        }
    }

    /// Gives a task's resources back to the allocator.
    pub(crate) fn recover_task_resources(&mut self, framework_id: &str, task: &Task) {
        let resources = resources_of(&task.resources);
        self.allocator.recover(
            framework_id,
            &task.agent_id.value,
            &resources,
            None,
            Instant::now(),
        );
    }

    /// Moves a task to the framework's completed tasks.
    pub(crate) fn remove_task(&mut self, framework_id: &str, task_id: &str) {
        let keep = self.flags.max_completed_tasks_per_framework;
        let Some(framework) = self.frameworks.get_mut(framework_id) else {
            return;
        };
        let Some(task) = framework.tasks.remove(task_id) else {
            return;
        };
        if let Some(agent) = self.agents.get_mut(&task.agent_id.value) {
            let key = (framework_id.to_string(), task_id.to_string());
            agent.tasks.remove(&key);
            agent.killed_tasks.remove(&key);
        }
        framework.complete_task(task, keep);
    }

    /// ACKNOWLEDGE: relayed to the agent, which then sends the next update
    /// of that task.
    pub(crate) fn acknowledge(&mut self, framework_id: &str, ack: call::Acknowledge) {
        let agent_id = ack.agent_id.value.clone();
        let Some(agent) = self.connected_agent(&agent_id) else {
            tracing::warn!(agent = %agent_id, "cannot relay acknowledgement to unknown or disconnected agent");
            return;
        };
        let task = self
            .frameworks
            .get(framework_id)
            .and_then(|f| f.tasks.get(&ack.task_id.value));
        if task.is_some_and(|t| t.status_update_state.is_none()) {
            // Meant for an update another master sent (the agent did not
            // report it when re-registering); the agent retries it.
            tracing::warn!(
                task = %ack.task_id.value,
                "ignoring acknowledgement: the update was not sent by this master"
            );
            return;
        }
        let acknowledged_terminal = task.is_some_and(|task| {
            task.status_update_uuid.as_deref() == Some(&ack.uuid[..])
                && task.status_update_state.is_some_and(is_terminal)
        });
        let message = StatusUpdateAcknowledgementMessage {
            slave_id: ack.agent_id.clone(),
            framework_id: FrameworkId {
                value: framework_id.to_string(),
            },
            task_id: ack.task_id.clone(),
            uuid: ack.uuid.clone(),
        };
        self.sender.send(&agent.pid, &message);
        self.metrics.acknowledgements += 1;
        if acknowledged_terminal {
            self.remove_task(framework_id, &ack.task_id.value);
        }
    }

    /// RECONCILE (`Master::reconcile`): master-generated updates with
    /// REASON_RECONCILIATION and no uuid.
    ///
    /// Implicit (no tasks named): the latest state of every task the master
    /// knows. Explicit, per task:
    /// 1. known: its latest state;
    /// 2. unknown, its agent (or, without an agent id, any agent) was
    ///    recovered from the registry and has not re-registered yet: no
    ///    answer, the framework retries later;
    /// 3. unknown, agent registered: TASK_GONE;
    /// 4. unknown, agent unreachable: TASK_UNREACHABLE with the time;
    /// 5. otherwise: TASK_UNKNOWN.
    ///
    /// Frameworks that are not PARTITION_AWARE get TASK_LOST for 3–5.
    pub(crate) fn reconcile(&mut self, framework_id: &str, reconcile: call::Reconcile) {
        let Some(framework) = self.frameworks.get(framework_id) else {
            return;
        };
        let partition_aware = framework.partition_aware();
        let mut statuses = Vec::new();
        if reconcile.tasks.is_empty() {
            for task in framework.tasks.values() {
                statuses.push(latest_status(task));
            }
        }
        for wanted in &reconcile.tasks {
            let task_id = &wanted.task_id.value;
            if let Some(task) = framework.tasks.get(task_id) {
                statuses.push(latest_status(task));
                continue;
            }
            let agent_id = wanted
                .agent_id
                .as_ref()
                .map(|a| a.value.as_str())
                .or_else(|| {
                    let task = framework.unreachable_tasks.get(task_id)?;
                    Some(task.agent_id.value.as_str())
                });
            let transitional = match agent_id {
                Some(agent_id) => self.recovered_agents.contains_key(agent_id),
                None => !self.recovered_agents.is_empty(),
            };
            if transitional {
                tracing::info!(task = %task_id, "dropping reconciliation: agents have not re-registered yet");
                continue;
            }
            let unreachable_time = agent_id.and_then(|a| self.unreachable_agents.get(a));
            let (state, message) = if agent_id.is_some_and(|a| self.agents.contains_key(a)) {
                (
                    TaskState::TaskGone,
                    "Reconciliation: Task is unknown to the agent",
                )
            } else if unreachable_time.is_some() {
                (
                    TaskState::TaskUnreachable,
                    "Reconciliation: Task is unreachable",
                )
            } else {
                (TaskState::TaskUnknown, "Reconciliation: Task is unknown")
            };
            let mut status = master_status(
                task_id,
                agent_id,
                pick(partition_aware, state),
                Reason::Reconciliation,
                message,
            );
            status.unreachable_time = unreachable_time.copied().map(time_info);
            statuses.push(status);
        }
        for status in statuses {
            self.forward_update(framework_id, status);
        }
    }

    /// Sends a master-generated update (no uuid) and applies it to the task
    /// if the master knows it.
    pub(crate) fn master_update(
        &mut self,
        framework_id: &str,
        task_id: &str,
        agent_id: Option<&str>,
        state: TaskState,
        reason: Reason,
        message: &str,
    ) {
        let status = master_status(task_id, agent_id, state, reason, message);
        self.apply_master_status(framework_id, status);
    }

    /// Sends a status the master made up (see [`master_status`]) and
    /// applies it to the task if the master knows it.
    pub(crate) fn apply_master_status(&mut self, framework_id: &str, status: TaskStatus) {
        let known = self
            .frameworks
            .get(framework_id)
            .is_some_and(|f| f.tasks.contains_key(&status.task_id.value));
        if !known && is_terminal(status.state) {
            // Never launched (invalid): count it here, update_task won't.
            self.metrics.count_terminal(status.state);
        }
        let state = status.state;
        self.forward_update(framework_id, status.clone());
        self.update_task(framework_id, &status, state, None);
    }

    fn agent_by_pid(&self, pid: &Upid) -> Option<String> {
        self.agents
            .values()
            .find(|a| a.pid == *pid)
            .map(|a| a.id.clone())
    }
}

/// PARTITION_AWARE frameworks get the precise state, others TASK_LOST.
fn pick(partition_aware: bool, state: TaskState) -> TaskState {
    if partition_aware {
        state
    } else {
        TaskState::TaskLost
    }
}

/// A status the master makes up (SOURCE_MASTER, no uuid).
pub(crate) fn master_status(
    task_id: &str,
    agent_id: Option<&str>,
    state: TaskState,
    reason: Reason,
    message: &str,
) -> TaskStatus {
    TaskStatus {
        task_id: TaskId {
            value: task_id.to_string(),
        },
        state: state as i32,
        message: Some(message.to_string()),
        agent_id: agent_id.map(|a| AgentId {
            value: a.to_string(),
        }),
        timestamp: Some(now_secs()),
        source: Some(Source::Master as i32),
        reason: Some(reason as i32),
        ..Default::default()
    }
}

/// Seconds since the epoch as a `TimeInfo`.
pub(crate) fn time_info(secs: f64) -> TimeInfo {
    TimeInfo {
        nanoseconds: (secs * 1e9) as i64,
    }
}

/// The reconciliation answer for a known task: the state of the update in
/// flight if there is one (what the framework has yet to acknowledge),
/// else the latest state, as Mesos answers.
fn latest_status(task: &Task) -> TaskStatus {
    let state = task.status_update_state.unwrap_or(task.state);
    let mut status = master_status(
        &task.task_id.value,
        Some(&task.agent_id.value),
        TaskState::try_from(state).unwrap_or(TaskState::TaskStaging),
        Reason::Reconciliation,
        "Reconciliation: Latest task state",
    );
    status.executor_id = task.executor_id.clone();
    status
}
