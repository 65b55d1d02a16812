//! Agent re-registration (`Master::reregisterSlave`, `_reregisterSlave`,
//! `__reregisterSlave`, `___reregisterSlave`, `reconcileKnownSlave` and
//! `updateSlaveFrameworks`, src/master/master.cpp).
//!
//! A `ReregisterSlaveMessage` carries the agent's id, its tasks (with their
//! latest state and the update in flight), its executors and the
//! FrameworkInfo of every framework they belong to. Three cases:
//!
//! * **Known agent** (registered with this master; it restarted or lost
//!   its connection): its pid and resources are updated and the master
//!   reconciles: tasks it knows on that agent that the agent did not report
//!   go back to the agent in `SlaveReregisteredMessage.reconciliations`, and
//!   the agent answers with TASK_LOST (TASK_DROPPED for PARTITION_AWARE
//!   frameworks) for those it does not have; executors the agent did not
//!   report are removed; kills the agent may have missed are re-sent;
//!   frameworks removed meanwhile are shut down on it.
//! * **Recovered agent** (the registry lists it; this master restarted):
//!   re-admitted with its tasks and executors, which the master did not
//!   know; no registry write unless its AgentInfo changed.
//! * **Unreachable or unknown agent**: marked reachable (admitted) in the
//!   registry first, as Mesos 1.11 admits an unknown agent that
//!   re-registers; then re-admitted, and frameworks get an update with
//!   REASON_AGENT_REREGISTERED for each of its tasks.
//!
//! Tasks of frameworks the master does not know (yet) make the framework a
//! recovered one (from the FrameworkInfo the agent reports); it gets its
//! tasks back when it re-subscribes with its id. Tasks of removed
//! frameworks are dropped and those frameworks shut down on the agent.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use mesos_proto::internal::{
    KillTaskMessage, ReconcileTasksMessage, ReregisterSlaveMessage, ShutdownFrameworkMessage,
    ShutdownMessage, SlaveReregisteredMessage, UpdateFrameworkMessage,
};
use mesos_proto::resources::Resources;
use mesos_proto::v1::resource::AllocationInfo;
use mesos_proto::v1::task_status::{Reason, Source};
use mesos_proto::v1::{AgentId, FrameworkId, FrameworkInfo, Resource, Task, TaskState, TaskStatus};
use mesos_transport::Upid;

use crate::agents::Admission;
use crate::frameworks::roles_of;
use crate::launch::resources_of;
use crate::master::{now_secs, Master};
use crate::registry::{Operation, OperationError};
use crate::status_updates::{is_terminal, master_status};
use crate::validation;

/// How a re-registering agent that is not registered with this master
/// comes back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Readmission {
    /// Listed by the registry this master recovered.
    Recovered,
    /// Marked unreachable earlier.
    Unreachable,
    /// Not in the registry at all.
    Unknown,
}

/// A re-registration that passed validation.
struct Reregistration {
    id: String,
    pid: Upid,
    message: ReregisterSlaveMessage,
    total: Resources,
}

impl Master {
    /// `ReregisterSlaveMessage`.
    pub(crate) fn reregister_agent(&mut self, from: Upid, message: ReregisterSlaveMessage) {
        if let Err(error) = validate(&message) {
            tracing::warn!(%from, %error, "dropping invalid re-registration");
            return;
        }
        let id = message
            .slave
            .id
            .as_ref()
            .map(|a| a.value.clone())
            .unwrap_or_default();
        if self.reregistering.contains(&id) || self.marking_unreachable.contains(&id) {
            tracing::info!(agent = %id, %from, "ignoring re-registration: another change of this agent is in progress");
            return;
        }
        let total = match Resources::from_list(&message.slave.resources) {
            Ok(total) => total,
            Err(error) => {
                tracing::warn!(agent = %id, %error, "dropping re-registration with invalid resources");
                return;
            }
        };
        let agent = Reregistration {
            id: id.clone(),
            pid: from,
            message,
            total,
        };
        if let Some(known) = self.agents.get(&id) {
            let moved = known.pid.address.ip() != agent.pid.address.ip()
                || known.info.hostname != agent.message.slave.hostname;
            if moved {
                tracing::warn!(agent = %id, pid = %agent.pid, "refusing re-registration from a different IP / hostname");
                let reason = "Agent attempted to reregister with different IP / hostname";
                self.sender.send(
                    &agent.pid,
                    &ShutdownMessage {
                        message: Some(reason.to_string()),
                    },
                );
                return;
            }
            self.reregistering.insert(id);
            if known.info == agent.message.slave {
                self.reregister_known(agent);
            } else {
                let update = Operation::UpdateAgent(agent.message.slave.clone());
                self.registrar.apply(update, move |master, result| {
                    if master.registry_accepted(&agent.id, result) {
                        master.reregister_known(agent);
                    }
                });
            }
            return;
        }
        self.reregistering.insert(id.clone());
        let (operation, how) = match self.recovered_agents.get(&id) {
            Some(recovered) if *recovered == agent.message.slave => {
                self.readmit(agent, Readmission::Recovered);
                return;
            }
            Some(_) => (
                Operation::UpdateAgent(agent.message.slave.clone()),
                Readmission::Recovered,
            ),
            None if self.unreachable_agents.contains_key(&id) => (
                Operation::MarkAgentReachable(agent.message.slave.clone()),
                Readmission::Unreachable,
            ),
            None => (
                Operation::MarkAgentReachable(agent.message.slave.clone()),
                Readmission::Unknown,
            ),
        };
        self.registrar.apply(operation, move |master, result| {
            if master.registry_accepted(&agent.id, result) {
                master.readmit(agent, how);
            }
        });
    }

    /// Whether the registry took the agent's change; if not, the
    /// re-registration ends here (the agent retries).
    fn registry_accepted(&mut self, id: &str, result: Result<(), OperationError>) -> bool {
        if let Err(error) = result {
            tracing::warn!(agent = %id, %error, "dropping re-registration");
            self.reregistering.remove(id);
            return false;
        }
        true
    }

    /// A known agent reconnected: new pid and resources, then
    /// reconciliation (`___reregisterSlave`).
    fn reregister_known(&mut self, reregistration: Reregistration) {
        let Reregistration {
            id,
            pid,
            message,
            total,
        } = reregistration;
        self.reregistering.remove(&id);
        let Some(agent) = self.agents.get_mut(&id) else {
            // Removed while the registry was being updated.
            tracing::warn!(agent = %id, "dropping re-registration of an agent removed meanwhile");
            return;
        };
        tracing::info!(agent = %id, %pid, "agent re-registered");
        self.metrics.agent_reregistrations += 1;
        agent.pid = pid;
        agent.connected = true;
        agent.ping_outstanding = false;
        agent.missed_pings = 0;
        agent.reregistered_time = Some(now_secs());
        agent.version = message.version.clone();
        agent.capabilities = message.agent_capabilities.clone();
        agent.info = message.slave.clone();
        let mut pending = self.allocator.activate_agent(&id);
        if agent.total != total {
            agent.total = total.clone();
            pending |= self.allocator.update_agent(&id, total);
        }
        self.reconcile_known_agent(&id, &message);
        let known: BTreeSet<String> = message
            .frameworks
            .iter()
            .filter_map(|f| f.id.as_ref().map(|i| i.value.clone()))
            .filter(|f| self.frameworks.contains_key(f))
            .collect();
        self.update_agent_frameworks(&id, &known);
        for info in &message.frameworks {
            self.recover_reported_framework(info);
        }
        self.schedule_allocation(pending);
    }

    /// Sends `SlaveReregisteredMessage` with the tasks the agent did not
    /// report, and repairs what the agent may have missed
    /// (`reconcileKnownSlave`).
    fn reconcile_known_agent(&mut self, id: &str, message: &ReregisterSlaveMessage) {
        let reported: BTreeSet<(String, String)> = message
            .tasks
            .iter()
            .map(|t| (t.framework_id.value.clone(), t.task_id.value.clone()))
            .collect();
        let Some(agent) = self.agents.get(id) else {
            return;
        };
        let mut reconciliations: BTreeMap<String, ReconcileTasksMessage> = BTreeMap::new();
        for key in agent.tasks.difference(&reported) {
            let (framework_id, task_id) = key;
            let Some(framework) = self.frameworks.get(framework_id) else {
                continue;
            };
            let Some(task) = framework.tasks.get(task_id) else {
                continue;
            };
            tracing::warn!(agent = %id, task = %task_id, "task unknown to the re-registering agent; reconciling with the agent");
            let status = TaskStatus {
                task_id: task.task_id.clone(),
                // The agent does not look at it; Mesos sends it for
                // consistency.
                state: task.status_update_state.unwrap_or(task.state),
                source: Some(Source::Master as i32),
                message: Some("Reconciling task state".to_string()),
                reason: Some(Reason::Reconciliation as i32),
                agent_id: Some(AgentId {
                    value: id.to_string(),
                }),
                timestamp: Some(now_secs()),
                ..Default::default()
            };
            reconciliations
                .entry(framework_id.clone())
                .or_insert_with(|| ReconcileTasksMessage {
                    framework_id: FrameworkId {
                        value: framework_id.clone(),
                    },
                    statuses: Vec::new(),
                    framework: Some(framework.info.clone()),
                })
                .statuses
                .push(status);
        }
        let reply = SlaveReregisteredMessage {
            slave_id: AgentId {
                value: id.to_string(),
            },
            reconciliations: reconciliations.into_values().collect(),
            connection: Some(self.connection()),
        };
        self.sender.send(&agent.pid, &reply);
        self.remove_unreported_executors(id, message);
        self.repeat_kills(id, message);
        self.shut_down_removed_frameworks(id, message);
    }

    /// Executors the master knows on the agent that the agent did not
    /// report are gone: their resources come back.
    fn remove_unreported_executors(&mut self, id: &str, message: &ReregisterSlaveMessage) {
        let reported: BTreeSet<(String, String)> = message
            .executor_infos
            .iter()
            .filter_map(|e| {
                let framework_id = e.framework_id.as_ref()?.value.clone();
                Some((framework_id, e.executor_id.value.clone()))
            })
            .collect();
        let Some(agent) = self.agents.get_mut(id) else {
            return;
        };
        let mut gone = Vec::new();
        for (framework_id, executors) in &mut agent.executors {
            executors.retain(|executor_id, executor| {
                let keep = reported.contains(&(framework_id.clone(), executor_id.clone()));
                if !keep {
                    tracing::warn!(agent = %id, executor = %executor_id, "executor possibly unknown to the agent; removing it");
                    gone.push((framework_id.clone(), resources_of(&executor.resources)));
                }
                keep
            });
        }
        agent.executors.retain(|_, executors| !executors.is_empty());
        for (framework_id, resources) in gone {
            self.allocator
                .recover(&framework_id, id, &resources, None, Instant::now());
        }
    }

    /// KILLs the agent may have missed (it still runs the task).
    fn repeat_kills(&mut self, id: &str, message: &ReregisterSlaveMessage) {
        let Some(agent) = self.agents.get(id) else {
            return;
        };
        for task in message.tasks.iter().filter(|t| !is_terminal(t.state)) {
            let key = (task.framework_id.value.clone(), task.task_id.value.clone());
            if agent.killed_tasks.contains(&key) {
                tracing::warn!(agent = %id, task = %task.task_id.value, "agent still runs a task that was killed; killing it again");
                let kill = KillTaskMessage {
                    framework_id: task.framework_id.clone(),
                    task_id: task.task_id.clone(),
                    kill_policy: None,
                };
                self.sender.send(&agent.pid, &kill);
            }
        }
    }

    /// Frameworks removed from the master that the agent still runs are
    /// shut down there (the agent may have missed it while away).
    fn shut_down_removed_frameworks(&mut self, id: &str, message: &ReregisterSlaveMessage) {
        let Some(agent) = self.agents.get(id) else {
            return;
        };
        let reported: BTreeSet<&str> = message
            .frameworks
            .iter()
            .filter_map(|f| f.id.as_ref().map(|i| i.value.as_str()))
            .chain(message.tasks.iter().map(|t| t.framework_id.value.as_str()))
            .collect();
        for framework_id in reported {
            if self.removed_frameworks.contains(framework_id) {
                tracing::info!(agent = %id, framework = %framework_id, "shutting down a removed framework on the re-registered agent");
                let shutdown = ShutdownFrameworkMessage {
                    framework_id: FrameworkId {
                        value: framework_id.to_string(),
                    },
                };
                self.sender.send(&agent.pid, &shutdown);
            }
        }
    }

    /// Sends the master's current FrameworkInfo of each of `frameworks` to
    /// the agent (`updateSlaveFrameworks`).
    fn update_agent_frameworks(&mut self, id: &str, frameworks: &BTreeSet<String>) {
        let Some(agent) = self.agents.get(id) else {
            return;
        };
        for framework_id in frameworks {
            let Some(framework) = self.frameworks.get(framework_id) else {
                continue;
            };
            let update = UpdateFrameworkMessage {
                framework_id: FrameworkId {
                    value: framework_id.clone(),
                },
                // HTTP frameworks have no pid (Mesos sends an empty one).
                pid: Some(String::new()),
                framework_info: Some(framework.info.clone()),
            };
            self.sender.send(&agent.pid, &update);
        }
    }

    /// A framework an agent reports that the master does not know becomes a
    /// recovered framework, recorded in the registry for the next restart.
    fn recover_reported_framework(&mut self, info: &FrameworkInfo) {
        let Some(id) = info.id.as_ref().map(|i| i.value.clone()) else {
            return;
        };
        if self.frameworks.contains_key(&id) || self.removed_frameworks.contains(&id) {
            return;
        }
        tracing::info!(framework = %id, "recovering framework from a re-registering agent");
        self.recover_framework(info.clone());
        self.registrar.record(Operation::AddFramework(info.clone()));
    }

    /// (Re-)admits an agent that is not registered with this master, with
    /// the tasks and executors it reports (`__reregisterSlave`).
    fn readmit(&mut self, reregistration: Reregistration, how: Readmission) {
        let Reregistration {
            id,
            pid,
            message,
            total,
        } = reregistration;
        tracing::info!(agent = %id, %pid, how = ?how, tasks = message.tasks.len(), "re-admitting agent");
        self.metrics.agent_reregistrations += 1;
        let known: BTreeSet<String> = message
            .frameworks
            .iter()
            .filter_map(|f| f.id.as_ref().map(|i| i.value.clone()))
            .filter(|f| self.frameworks.contains_key(f))
            .collect();
        for info in &message.frameworks {
            self.recover_reported_framework(info);
        }
        let infos: BTreeMap<&str, &FrameworkInfo> = message
            .frameworks
            .iter()
            .filter_map(|f| Some((f.id.as_ref()?.value.as_str(), f)))
            .collect();
        let mut tasks = Vec::new();
        let mut used: BTreeMap<String, Resources> = BTreeMap::new();
        for task in &message.tasks {
            let framework_id = task.framework_id.value.clone();
            if self.removed_frameworks.contains(&framework_id) {
                continue;
            }
            let mut task = task.clone();
            task.agent_id = AgentId { value: id.clone() };
            if let Some(info) = infos.get(framework_id.as_str()) {
                inject_allocation_role(&mut task.resources, info);
            }
            if how != Readmission::Recovered {
                self.announce_reregistered_task(&task, how);
            }
            if !is_terminal(task.state) {
                used.entry(framework_id)
                    .or_default()
                    .add(&resources_of(&task.resources));
            }
            tasks.push(task);
        }
        let mut executors = Vec::new();
        for executor in &message.executor_infos {
            let Some(framework_id) = executor.framework_id.as_ref().map(|f| f.value.clone()) else {
                continue;
            };
            if self.removed_frameworks.contains(&framework_id) {
                continue;
            }
            let mut executor = executor.clone();
            if let Some(info) = infos.get(framework_id.as_str()) {
                inject_allocation_role(&mut executor.resources, info);
            }
            used.entry(framework_id.clone())
                .or_default()
                .add(&resources_of(&executor.resources));
            executors.push((framework_id, executor));
        }
        self.recovered_agents.remove(&id);
        self.unreachable_agents.remove(&id);
        self.removed_agents.remove(&id);
        let admission = Admission {
            info: message.slave.clone(),
            pid: pid.clone(),
            version: message.version.clone(),
            capabilities: message.agent_capabilities.clone(),
            total,
            used: used.into_iter().collect(),
        };
        self.add_agent(&id, admission);
        self.attach(&id, tasks, executors);
        let reply = SlaveReregisteredMessage {
            slave_id: AgentId { value: id.clone() },
            reconciliations: Vec::new(),
            connection: Some(self.connection()),
        };
        self.sender.send(&pid, &reply);
        self.shut_down_removed_frameworks(&id, &message);
        self.update_agent_frameworks(&id, &known);
        self.reregistering.remove(&id);
    }

    /// Puts re-admitted tasks and executors where the master keeps them.
    fn attach(
        &mut self,
        agent_id: &str,
        tasks: Vec<Task>,
        executors: Vec<(String, mesos_proto::v1::ExecutorInfo)>,
    ) {
        let Some(agent) = self.agents.get_mut(agent_id) else {
            return;
        };
        agent.reregistered_time = Some(now_secs());
        for task in tasks {
            let Some(framework) = self.frameworks.get_mut(&task.framework_id.value) else {
                continue;
            };
            let task_id = task.task_id.value.clone();
            // Back from unreachable: no longer unreachable, and never
            // both terminal and live (MESOS-9940).
            framework.unreachable_tasks.remove(&task_id);
            framework
                .completed_tasks
                .retain(|t| t.task_id.value != task_id);
            agent
                .tasks
                .insert((task.framework_id.value.clone(), task_id.clone()));
            framework.tasks.insert(task_id, task);
        }
        for (framework_id, executor) in executors {
            agent.add_executor(&framework_id, executor);
        }
    }

    /// Tells the task's framework that its agent is back (Mesos sends the
    /// task's state with REASON_AGENT_REREGISTERED; nothing to acknowledge).
    fn announce_reregistered_task(&mut self, task: &Task, how: Readmission) {
        let message = match how {
            Readmission::Unreachable => "Unreachable agent re-reregistered",
            _ => "Unknown agent reregistered",
        };
        let state = TaskState::try_from(task.state).unwrap_or(TaskState::TaskUnknown);
        let mut status = master_status(
            &task.task_id.value,
            Some(&task.agent_id.value),
            state,
            Reason::AgentReregistered,
            message,
        );
        status.executor_id = task.executor_id.clone();
        let framework_id = task.framework_id.value.clone();
        if !self
            .frameworks
            .get(&framework_id)
            .is_some_and(|f| f.connected())
        {
            tracing::warn!(framework = %framework_id, task = %task.task_id.value, "not announcing re-registered task to a disconnected framework");
            return;
        }
        self.forward_update(&framework_id, status);
    }
}

/// Mesos's `validation::master::message::reregisterSlave`, with its
/// messages.
fn validate(message: &ReregisterSlaveMessage) -> Result<(), String> {
    let Some(agent_id) = message.slave.id.as_ref() else {
        return Err("Missing 'slave.id'".to_string());
    };
    validation::id(&agent_id.value)?;
    Resources::from_list(&message.slave.resources).map_err(|e| e.to_string())?;
    let mut frameworks = BTreeSet::new();
    for framework in &message.frameworks {
        let Some(id) = framework.id.as_ref() else {
            return Err("Framework without a FrameworkID".to_string());
        };
        validation::framework_info(framework, &BTreeSet::new())?;
        if !frameworks.insert(id.value.as_str()) {
            return Err(format!(
                "Framework has a duplicate FrameworkID: '{}'",
                id.value
            ));
        }
    }
    let mut executors = BTreeSet::new();
    for executor in &message.executor_infos {
        Resources::from_list(&executor.resources).map_err(|e| e.to_string())?;
        let framework_id = executor
            .framework_id
            .as_ref()
            .map(|f| f.value.as_str())
            .unwrap_or_default();
        if !frameworks.contains(framework_id) {
            return Err(format!(
                "Executor has an invalid FrameworkID '{framework_id}'"
            ));
        }
        if !executors.insert((framework_id, executor.executor_id.value.as_str())) {
            return Err(format!(
                "Framework '{framework_id}' has a duplicate ExecutorID '{}'",
                executor.executor_id.value
            ));
        }
    }
    for task in &message.tasks {
        validation::id(&task.task_id.value)
            .map_err(|e| format!("Task has an invalid TaskID: {e}"))?;
        if task.agent_id != *agent_id {
            return Err(format!(
                "Task has an invalid SlaveID '{}'",
                task.agent_id.value
            ));
        }
        let framework_id = task.framework_id.value.as_str();
        if !frameworks.contains(framework_id) {
            return Err(format!("Task has an invalid FrameworkID '{framework_id}'"));
        }
        // Command executors are generated by the agent and not reported;
        // only running tasks must name a reported executor.
        if let Some(executor_id) = &task.executor_id {
            let running = task.state == TaskState::TaskRunning as i32;
            if running && !executors.contains(&(framework_id, executor_id.value.as_str())) {
                return Err(format!(
                    "Task has an invalid ExecutorID '{}'",
                    executor_id.value
                ));
            }
        }
        Resources::from_list(&task.resources)
            .map_err(|e| format!("Task uses invalid resources: {e}"))?;
    }
    Ok(())
}

/// Agents without MULTI_ROLE report resources without an allocation role:
/// they are the (single) role of their framework, as Mesos injects.
fn inject_allocation_role(resources: &mut [Resource], framework: &FrameworkInfo) {
    let roles = roles_of(framework);
    let Some(role) = roles.iter().next().filter(|_| roles.len() == 1) else {
        return;
    };
    for resource in resources.iter_mut().filter(|r| r.allocation_info.is_none()) {
        resource.allocation_info = Some(AllocationInfo {
            role: Some(role.clone()),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesos_proto::v1::{AgentInfo, ExecutorId, ExecutorInfo, TaskId};

    fn message() -> ReregisterSlaveMessage {
        let framework = FrameworkInfo {
            id: Some(FrameworkId { value: "f".into() }),
            user: "root".into(),
            name: "f".into(),
            ..Default::default()
        };
        let task = Task {
            name: "t".into(),
            task_id: TaskId { value: "t".into() },
            framework_id: FrameworkId { value: "f".into() },
            agent_id: AgentId { value: "a".into() },
            state: TaskState::TaskRunning as i32,
            ..Default::default()
        };
        ReregisterSlaveMessage {
            slave: AgentInfo {
                id: Some(AgentId { value: "a".into() }),
                hostname: "h".into(),
                ..Default::default()
            },
            tasks: vec![task],
            frameworks: vec![framework],
            ..Default::default()
        }
    }

    #[test]
    fn validation_follows_mesos() {
        assert_eq!(validate(&message()), Ok(()));

        let mut m = message();
        m.slave.id = None;
        assert_eq!(validate(&m).unwrap_err(), "Missing 'slave.id'");

        let mut m = message();
        m.frameworks.clear();
        assert_eq!(
            validate(&m).unwrap_err(),
            "Task has an invalid FrameworkID 'f'"
        );

        let mut m = message();
        m.tasks[0].agent_id.value = "b".into();
        assert_eq!(validate(&m).unwrap_err(), "Task has an invalid SlaveID 'b'");

        let mut m = message();
        m.tasks[0].executor_id = Some(ExecutorId { value: "e".into() });
        assert_eq!(
            validate(&m).unwrap_err(),
            "Task has an invalid ExecutorID 'e'"
        );
        // ... unless the executor is reported.
        m.executor_infos.push(ExecutorInfo {
            executor_id: ExecutorId { value: "e".into() },
            framework_id: Some(FrameworkId { value: "f".into() }),
            ..Default::default()
        });
        assert_eq!(validate(&m), Ok(()));
        m.executor_infos.push(m.executor_infos[0].clone());
        assert_eq!(
            validate(&m).unwrap_err(),
            "Framework 'f' has a duplicate ExecutorID 'e'"
        );

        let mut m = message();
        m.frameworks.push(m.frameworks[0].clone());
        assert_eq!(
            validate(&m).unwrap_err(),
            "Framework has a duplicate FrameworkID: 'f'"
        );

        let mut m = message();
        m.tasks[0].task_id.value = "a/b".into();
        assert!(validate(&m)
            .unwrap_err()
            .starts_with("Task has an invalid TaskID: "));
    }

    #[test]
    fn single_role_frameworks_get_their_role_injected() {
        let mut framework = message().frameworks.remove(0);
        #[allow(deprecated)]
        {
            framework.role = Some("web".into());
        }
        let mut resources = vec![Resource {
            name: "cpus".into(),
            ..Default::default()
        }];
        inject_allocation_role(&mut resources, &framework);
        assert_eq!(
            resources[0]
                .allocation_info
                .as_ref()
                .unwrap()
                .role
                .as_deref(),
            Some("web")
        );
    }
}
