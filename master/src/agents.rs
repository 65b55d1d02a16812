//! Agents: registration (ids `<master_id>-S<n>`), health checks, removal
//! (src/master/master.cpp `registerSlave`, `SlaveObserver`,
//! `markUnreachable`, `removeSlave`); re-registration is in
//! `reregistration.rs`.
//!
//! Every change of an agent's standing goes through the registry first: a
//! new agent is admitted (and durable) before it gets
//! `SlaveRegisteredMessage`; an agent is marked unreachable, or removed, in
//! the registry before its tasks are reported lost. A restarted master thus
//! knows every agent it ever acknowledged.
//!
//! Health: every `--agent_ping_timeout` the master sends `PingSlaveMessage`
//! to each connected agent; an agent that leaves
//! `--max_agent_ping_timeouts` consecutive pings unanswered is marked
//! unreachable: its offers are rescinded, frameworks get FAILURE, its tasks
//! become TASK_UNREACHABLE (PARTITION_AWARE frameworks, which keep them as
//! unreachable tasks) or TASK_LOST (the others).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use mesos_proto::internal::{
    ExecutorToFrameworkMessage, ExitedExecutorMessage, MasterSlaveConnection, PingSlaveMessage,
    RegisterSlaveMessage, ShutdownMessage, SlaveRegisteredMessage, UnregisterSlaveMessage,
};
use mesos_proto::resources::Resources;
use mesos_proto::v1::scheduler::{event, Event};
use mesos_proto::v1::task_status::Reason;
use mesos_proto::v1::{agent_info, AgentId, AgentInfo, ExecutorInfo, TaskState};
use mesos_transport::Upid;

use crate::launch::resources_of;
use crate::master::{now_secs, Master};
use crate::registry::{Operation, OperationError};
use crate::status_updates::{master_status, time_info};

/// A registered agent.
#[derive(Debug)]
pub struct Agent {
    pub(crate) id: String,
    /// The AgentInfo it registered with, `id` set.
    pub(crate) info: AgentInfo,
    pub(crate) pid: Upid,
    pub(crate) version: Option<String>,
    pub(crate) capabilities: Vec<agent_info::Capability>,
    /// Total resources, post-refinement.
    pub(crate) total: Resources,
    pub(crate) registered_time: f64,
    pub(crate) reregistered_time: Option<f64>,
    pub(crate) connected: bool,
    /// A ping was sent and not answered yet.
    pub(crate) ping_outstanding: bool,
    pub(crate) missed_pings: u32,
    /// (framework id, task id) of live tasks.
    pub(crate) tasks: BTreeSet<(String, String)>,
    /// framework id → executor id → ExecutorInfo.
    pub(crate) executors: BTreeMap<String, BTreeMap<String, ExecutorInfo>>,
    pub(crate) offers: BTreeSet<String>,
    /// (framework id, task id) of tasks a KILL was sent for: killed again
    /// if the agent re-registers still running them (the kill may have
    /// been lost).
    pub(crate) killed_tasks: BTreeSet<(String, String)>,
}

/// What an agent brings along when it is added.
pub(crate) struct Admission {
    pub info: AgentInfo,
    pub pid: Upid,
    pub version: Option<String>,
    pub capabilities: Vec<agent_info::Capability>,
    pub total: Resources,
    /// Resources its running tasks and executors use, by framework.
    pub used: Vec<(String, Resources)>,
}

impl Agent {
    /// Whether the executor is known to run here.
    pub(crate) fn has_executor(&self, framework_id: &str, executor_id: &str) -> bool {
        self.executor(framework_id, executor_id).is_some()
    }

    /// The executor's info, if it runs here.
    pub(crate) fn executor(&self, framework_id: &str, executor_id: &str) -> Option<&ExecutorInfo> {
        self.executors.get(framework_id)?.get(executor_id)
    }

    pub(crate) fn add_executor(&mut self, framework_id: &str, executor: ExecutorInfo) {
        self.executors
            .entry(framework_id.to_string())
            .or_default()
            .insert(executor.executor_id.value.clone(), executor);
    }
}

impl Master {
    /// The agent `id` if it is registered and reachable now: messages to a
    /// disconnected agent would only be dropped.
    pub(crate) fn connected_agent(&self, id: &str) -> Option<&Agent> {
        self.agents.get(id).filter(|a| a.connected)
    }

    /// Tells every connected framework that an agent is lost (a FAILURE
    /// event without an executor id, as Mesos's `slaveLost`).
    pub(crate) fn broadcast_agent_lost(&mut self, agent_id: &str) {
        let failure = Event {
            r#type: Some(event::Type::Failure as i32),
            failure: Some(event::Failure {
                agent_id: Some(AgentId {
                    value: agent_id.to_string(),
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let connected: Vec<String> = self
            .frameworks
            .iter()
            .filter(|(_, f)| f.connected())
            .map(|(id, _)| id.clone())
            .collect();
        for framework_id in connected {
            self.send_event(&framework_id, &failure);
        }
    }

    pub(crate) fn connection(&self) -> MasterSlaveConnection {
        MasterSlaveConnection {
            total_ping_timeout_seconds: Some(
                self.flags.agent_ping_timeout.as_secs_f64()
                    * f64::from(self.flags.max_agent_ping_timeouts),
            ),
        }
    }

    /// `RegisterSlaveMessage`: a new agent, or a retry of one that is
    /// already registered (the acknowledgement is re-sent). A new agent is
    /// admitted in the registry first and acknowledged once that is durable.
    pub(crate) fn register_agent(&mut self, from: Upid, message: RegisterSlaveMessage) {
        if self.registering.contains(&from.to_string()) {
            tracing::info!(%from, "ignoring registration: already in progress");
            return;
        }
        if let Some(agent) = self.agents.values().find(|a| a.pid == from && a.connected) {
            let reply = SlaveRegisteredMessage {
                slave_id: AgentId {
                    value: agent.id.clone(),
                },
                connection: Some(self.connection()),
            };
            self.sender.send(&from, &reply);
            return;
        }
        let total = match Resources::from_list(&message.slave.resources) {
            Ok(total) => total,
            Err(error) => {
                let reason = format!("Invalid agent resources: {error}");
                tracing::warn!(%from, %reason, "refusing agent");
                self.sender.send(
                    &from,
                    &ShutdownMessage {
                        message: Some(reason),
                    },
                );
                return;
            }
        };
        let id = self.new_agent_id();
        let mut info = message.slave;
        info.id = Some(AgentId { value: id.clone() });
        self.registering.insert(from.to_string());
        let admission = Admission {
            info: info.clone(),
            pid: from,
            version: message.version,
            capabilities: message.agent_capabilities,
            total,
            used: Vec::new(),
        };
        self.registrar
            .apply(Operation::AdmitAgent(info), move |master, result| {
                master.agent_admitted(admission, result)
            });
    }

    fn new_agent_id(&mut self) -> String {
        loop {
            let id = format!("{}-S{}", self.info.id, self.next_agent);
            self.next_agent += 1;
            let taken = self.agents.contains_key(&id)
                || self.removed_agents.contains_key(&id)
                || self.unreachable_agents.contains_key(&id)
                || self.recovered_agents.contains_key(&id);
            if !taken {
                return id;
            }
        }
    }

    /// The admission is durable: add the agent and acknowledge.
    fn agent_admitted(&mut self, admission: Admission, result: Result<(), OperationError>) {
        self.registering.remove(&admission.pid.to_string());
        if let Err(error) = result {
            // An id collision: the agent retries and gets a new id.
            tracing::warn!(%error, pid = %admission.pid, "ignoring registration");
            return;
        }
        let id = admission
            .info
            .id
            .as_ref()
            .map(|a| a.value.clone())
            .unwrap_or_default();
        tracing::info!(agent = %id, pid = %admission.pid, hostname = %admission.info.hostname, "agent registered");
        self.metrics.agent_registrations += 1;
        let pid = admission.pid.clone();
        self.add_agent(&id, admission);
        let reply = SlaveRegisteredMessage {
            slave_id: AgentId { value: id },
            connection: Some(self.connection()),
        };
        self.sender.send(&pid, &reply);
    }

    /// Adds an agent to the master and the allocator, and starts health
    /// checking it.
    pub(crate) fn add_agent(&mut self, id: &str, admission: Admission) {
        let Admission {
            info,
            pid,
            version,
            capabilities,
            total,
            used,
        } = admission;
        let agent = Agent {
            id: id.to_string(),
            info,
            pid: pid.clone(),
            version,
            capabilities,
            total: total.clone(),
            registered_time: now_secs(),
            reregistered_time: None,
            connected: true,
            ping_outstanding: true,
            missed_pings: 0,
            tasks: BTreeSet::new(),
            executors: BTreeMap::new(),
            offers: BTreeSet::new(),
            killed_tasks: BTreeSet::new(),
        };
        self.agents.insert(id.to_string(), agent);
        // Health checking starts at once.
        self.sender
            .send(&pid, &PingSlaveMessage { connected: true });
        let pending = self.allocator.add_agent(id, total, &used);
        self.schedule_allocation(pending);
    }

    /// `UnregisterSlaveMessage`: the agent shuts down gracefully; it is
    /// removed from the registry, then from the master (its tasks are
    /// gone: TASK_GONE, or TASK_LOST for frameworks that are not
    /// PARTITION_AWARE).
    pub(crate) fn unregister_agent(&mut self, from: &Upid, message: UnregisterSlaveMessage) {
        let id = message.slave_id.value;
        if self.agents.get(&id).is_none_or(|a| a.pid != *from) {
            tracing::warn!(agent = %id, %from, "ignoring unregistration of unknown agent");
            return;
        }
        tracing::info!(agent = %id, "agent unregistering");
        let operation = Operation::RemoveAgent {
            agent_id: id.clone(),
        };
        self.registrar.apply(operation, move |master, result| {
            if let Err(error) = result {
                tracing::warn!(%error, "agent removal did not apply to the registry");
            }
            master.removed_agents.insert(id.clone(), now_secs());
            master.remove_agent(&id, None, "the agent unregistered");
        });
    }

    /// Ping tick: count unanswered pings, mark agents over the limit
    /// unreachable, ping the others.
    pub(crate) fn ping_agents(&mut self) {
        let max = self.flags.max_agent_ping_timeouts;
        let mut unreachable = Vec::new();
        for agent in self.agents.values_mut().filter(|a| a.connected) {
            if agent.ping_outstanding {
                agent.missed_pings += 1;
                if agent.missed_pings >= max {
                    unreachable.push(agent.info.clone());
                }
            }
            // Pings go on while the transition is in flight, as in Mesos.
            agent.ping_outstanding = true;
            self.sender
                .send(&agent.pid, &PingSlaveMessage { connected: true });
        }
        for info in unreachable {
            self.mark_unreachable(info, false, "health check timed out".to_string());
        }
    }

    /// Marks an agent unreachable: in the registry first, then in the
    /// master (Mesos's `markUnreachable`). `after_failover`: a recovered
    /// agent that did not re-register (the master knows none of its tasks).
    pub(crate) fn mark_unreachable(&mut self, info: AgentInfo, after_failover: bool, why: String) {
        let Some(id) = info.id.as_ref().map(|a| a.value.clone()) else {
            return;
        };
        // Already on its way, or re-registering right now (it is alive).
        if self.reregistering.contains(&id) || !self.marking_unreachable.insert(id.clone()) {
            return;
        }
        tracing::warn!(agent = %id, hostname = %info.hostname, "marking agent unreachable: {why}");
        let time = now_secs();
        let operation = Operation::MarkAgentUnreachable {
            agent_id: id.clone(),
            time,
        };
        self.registrar.apply(operation, move |master, result| {
            master.marked_unreachable(&id, time, after_failover, &why, result)
        });
    }

    fn marked_unreachable(
        &mut self,
        id: &str,
        time: f64,
        after_failover: bool,
        why: &str,
        result: Result<(), OperationError>,
    ) {
        self.marking_unreachable.remove(id);
        if let Err(error) = result {
            tracing::warn!(agent = %id, %error, "not marking agent unreachable");
            return;
        }
        self.metrics.agent_removals += 1;
        self.unreachable_agents.insert(id.to_string(), time);
        if after_failover {
            self.metrics.recovery_agent_removals += 1;
            self.recovered_agent_lost(id);
        } else {
            self.remove_agent(id, Some(time), why);
        }
    }

    /// `PongSlaveMessage`.
    pub(crate) fn pong(&mut self, from: &Upid) {
        if let Some(agent) = self.agents.values_mut().find(|a| a.pid == *from) {
            agent.ping_outstanding = false;
            agent.missed_pings = 0;
        }
    }

    /// Removes an agent (the registry already knows): offers rescinded
    /// (RESCIND), frameworks told (FAILURE), tasks TASK_LOST or, for
    /// PARTITION_AWARE frameworks, TASK_UNREACHABLE (marked unreachable at
    /// `unreachable_time`) / TASK_GONE (Mesos's `__removeSlave`).
    pub(crate) fn remove_agent(
        &mut self,
        agent_id: &str,
        unreachable_time: Option<f64>,
        why: &str,
    ) {
        let offer_ids: Vec<String> = self
            .agents
            .get(agent_id)
            .map(|a| a.offers.iter().cloned().collect())
            .unwrap_or_default();
        for offer_id in offer_ids {
            self.rescind_offer(&offer_id, true);
        }
        self.allocator.remove_agent(agent_id);
        let Some(agent) = self.agents.remove(agent_id) else {
            return;
        };
        self.sender.disconnect(&agent.pid);
        let unreachable = unreachable_time.is_some();
        let message = format!("Agent {} removed: {why}", agent.info.hostname);
        for (framework_id, task_id) in &agent.tasks {
            let partition_aware = self
                .frameworks
                .get(framework_id)
                .is_some_and(|f| f.partition_aware());
            let state = match (partition_aware, unreachable) {
                (true, true) => TaskState::TaskUnreachable,
                (true, false) => TaskState::TaskGone,
                (false, _) => TaskState::TaskLost,
            };
            let mut status = master_status(
                task_id,
                Some(agent_id),
                state,
                Reason::AgentRemoved,
                &message,
            );
            status.unreachable_time = unreachable_time.map(time_info);
            self.apply_master_status(framework_id, status);
            if state == TaskState::TaskUnreachable {
                if let Some(framework) = self.frameworks.get_mut(framework_id) {
                    if let Some(task) = framework.tasks.remove(task_id) {
                        framework.unreachable_tasks.insert(task_id.clone(), task);
                    }
                }
            }
        }
        self.broadcast_agent_lost(agent_id);
    }

    /// `ExitedExecutorMessage`: the executor's resources come back and its
    /// framework gets FAILURE with the exit status.
    pub(crate) fn exited_executor(&mut self, from: &Upid, message: ExitedExecutorMessage) {
        let agent_id = message.slave_id.value.clone();
        let framework_id = message.framework_id.value.clone();
        let executor_id = message.executor_id.value.clone();
        let Some(agent) = self.agents.get_mut(&agent_id).filter(|a| a.pid == *from) else {
            return;
        };
        let removed = agent
            .executors
            .get_mut(&framework_id)
            .and_then(|executors| executors.remove(&executor_id));
        if let Some(executor) = removed {
            let resources = resources_of(&executor.resources);
            self.allocator
                .recover(&framework_id, &agent_id, &resources, None, Instant::now());
        }
        let failure = Event {
            r#type: Some(event::Type::Failure as i32),
            failure: Some(event::Failure {
                agent_id: Some(message.slave_id),
                executor_id: Some(message.executor_id),
                status: Some(message.status),
            }),
            ..Default::default()
        };
        self.send_event(&framework_id, &failure);
    }

    /// `ExecutorToFrameworkMessage`: relayed as MESSAGE.
    pub(crate) fn executor_message(&mut self, from: &Upid, message: ExecutorToFrameworkMessage) {
        if !self.agents.values().any(|a| a.pid == *from) {
            return;
        }
        let event = Event {
            r#type: Some(event::Type::Message as i32),
            message: Some(event::Message {
                agent_id: message.slave_id,
                executor_id: message.executor_id,
                data: message.data,
            }),
            ..Default::default()
        };
        self.send_event(&message.framework_id.value, &event);
    }
}
