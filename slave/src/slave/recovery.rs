//! Agent recovery after a restart (Mesos `Slave::recover`, `_recover`,
//! `__recover`, `recoverFramework`, `Framework::recoverExecutor`,
//! `Executor::recoverTask` and `reregisterExecutorTimeout`, src/slave/slave.cpp):
//!
//! 1. [`Slave::begin_recovery`]: from the checkpoint ([`crate::state`]) the
//!    agent takes back its id and info, and rebuilds each framework's latest
//!    executor runs and their tasks, with the latest state from
//!    `task.updates`; unacknowledged updates go back into the status update
//!    manager, to be sent again once the agent re-registers. It answers
//!    which containers the executors run in.
//! 2. The containerizer re-adopts those containers and destroys every other
//!    one (orphans); then [`Slave::containers_recovered`] waits on each
//!    executor's container and lets executors subscribe again.
//! 3. Executors re-subscribe within `--executor_reregistration_timeout`;
//!    those that do not are destroyed and their tasks end TASK_LOST
//!    (TASK_GONE for partition-aware frameworks) with
//!    REASON_EXECUTOR_REREGISTRATION_TIMEOUT. Executors whose container is
//!    gone (exited while the agent was down, or after a reboot) end their
//!    tasks TASK_FAILED with REASON_EXECUTOR_TERMINATED ("Abnormal executor
//!    termination").
//! 4. `Slave::finish_recovery`: the boot id is checkpointed and the agent
//!    re-registers with the master with every task. Recovery ends as soon
//!    as no recovered executor is still expected (Mesos always waits for the
//!    whole timeout; MESOS-7539 proposed ending early).
//!
//! `--recover=cleanup` instead destroys the containers of the earlier run,
//! forgets their checkpoint and shuts the agent down.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use mesos_proto::v1::task_status::Reason;
use mesos_proto::v1::{AgentInfo, FrameworkId, Task, TaskState, TaskStatus};

use super::{Executor, ExecutorState, Framework, PendingTermination, Slave, SlaveState};
use crate::containers::{KnownContainer, RecoveredContainer};
use crate::paths::RunIds;
use crate::state::{AgentState, ExecutorState as ExecutorCheckpoint, FrameworkState, State};
use crate::status_update_manager::{is_terminal, update_uuid, StatusUpdateError};

/// Why recovery cannot go on; the agent refuses to start.
#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    /// The flags describe a different agent than the checkpointed one.
    #[error(
        "incompatible agent info detected: {field} was {checkpointed} and is now {now}; \
         restart the agent with the flags it had, or run it once with --recover=cleanup \
         to kill the executors of the earlier run and start over"
    )]
    Incompatible {
        /// The field of AgentInfo that differs.
        field: &'static str,
        /// The checkpointed value.
        checkpointed: String,
        /// The value from the flags.
        now: String,
    },
    /// A `task.updates` log does not replay.
    #[error("{0}; {remedy}", remedy = crate::state::REMEDY)]
    Updates(#[from] StatusUpdateError),
}

/// What to forget after `--recover=cleanup`.
#[derive(Debug, Clone)]
enum Forget {
    /// The frameworks of this agent (its id and info stay).
    Frameworks(String),
    /// The whole agent (`meta/slaves/latest`): its info was unreadable.
    Agent,
}

/// Recovery in progress.
#[derive(Debug)]
pub(super) struct Recovery {
    /// Containers are recovered: executors may subscribe again.
    pub(super) reconnect: bool,
    /// `--recover=cleanup`: what to forget once the containers are gone.
    cleanup: Option<Forget>,
}

impl Slave {
    /// Rebuilds frameworks, executors and tasks from the checkpoint and
    /// returns the containers their executors run in (step 1). The agent
    /// stays [`SlaveState::Recovering`] until [`Slave::containers_recovered`]
    /// and the executors' re-subscriptions end it.
    pub fn begin_recovery(&mut self, state: State) -> Result<Vec<KnownContainer>, RecoveryError> {
        self.state = SlaveState::Recovering;
        self.recovery_errors = state.errors;
        if self.config.flags.cleanup() {
            return Ok(self.begin_cleanup(state));
        }
        self.recovery = Some(Recovery {
            reconnect: false,
            cleanup: None,
        });
        let Some(agent) = state.agent else {
            return Ok(Vec::new());
        };
        let Some(info) = agent.info.clone() else {
            // Died before checkpointing its info: a new agent.
            return Ok(Vec::new());
        };
        check_compatible(&info, &self.info)?;
        self.info = info;
        self.info.id = Some(mesos_proto::v1::AgentId {
            value: agent.id.clone(),
        });
        tracing::info!(agent_id = %agent.id, rebooted = state.rebooted, "recovering agent");
        for framework in agent.frameworks.into_values() {
            self.recover_framework(framework)?;
        }
        Ok(self.known_containers())
    }

    /// `--recover=cleanup`: every executor of the checkpoint is a container
    /// to destroy; nothing is rebuilt.
    fn begin_cleanup(&mut self, state: State) -> Vec<KnownContainer> {
        let forget = match &state.agent {
            Some(AgentState {
                id, info: Some(_), ..
            }) => Forget::Frameworks(id.clone()),
            _ => Forget::Agent,
        };
        self.recovery = Some(Recovery {
            reconnect: false,
            cleanup: Some(forget),
        });
        let runs = state
            .agent
            .into_iter()
            .flat_map(|a| a.frameworks.into_values())
            .flat_map(|f| f.executors.into_values())
            .filter_map(|e| {
                let latest = e.latest?;
                let pid = e.runs.get(&latest).and_then(|r| r.forked_pid);
                Some(KnownContainer {
                    container_id: latest,
                    pid,
                })
            });
        runs.collect()
    }

    fn recover_framework(&mut self, state: FrameworkState) -> Result<(), RecoveryError> {
        let Some(mut info) = state.info else {
            return Ok(());
        };
        if state.executors.is_empty() {
            return Ok(());
        }
        // Old Mesos did not write the id into the info.
        info.id.get_or_insert_with(|| FrameworkId {
            value: state.id.clone(),
        });
        tracing::info!(framework = %state.id, "recovering framework");
        let mut framework = Framework {
            info,
            pid: state.pid,
            executors: BTreeMap::new(),
            completed_executors: VecDeque::new(),
        };
        for executor in state.executors.into_values() {
            if let Some(recovered) = self.recover_executor(&framework, executor)? {
                framework
                    .executors
                    .insert(recovered.info.executor_id.value.clone(), recovered);
            }
        }
        if !framework.executors.is_empty() {
            self.frameworks.insert(state.id, framework);
        }
        Ok(())
    }

    /// The latest run of an executor, unless it is over or unknowable.
    fn recover_executor(
        &mut self,
        framework: &Framework,
        state: ExecutorCheckpoint,
    ) -> Result<Option<Executor>, RecoveryError> {
        let (Some(info), Some(latest)) = (state.info, state.latest) else {
            tracing::warn!(executor = %state.id, "skipping recovery of an executor whose info or latest run cannot be recovered");
            return Ok(None);
        };
        let Some(mut run) = state
            .runs
            .into_iter()
            .find_map(|(id, run)| (id == latest).then_some(run))
        else {
            return Ok(None);
        };
        if run.completed {
            tracing::info!(executor = %state.id, container = %latest, "skipping recovery of a completed executor run");
            return Ok(None);
        }
        let framework_id = framework.id();
        let agent_id = self.agent_id_value();
        let ids = RunIds {
            agent: &agent_id,
            framework: &framework_id,
            executor: &state.id,
            container: &latest,
        };
        let mut executor = Executor {
            info,
            container_id: latest.clone(),
            sandbox: self.config.work_dir.sandbox(ids),
            command_executor: state.generated_for_command_task,
            state: ExecutorState::Registering,
            pid: run.forked_pid,
            recovered: true,
            waiting: false,
            stream: None,
            queued: Vec::new(),
            launched: BTreeMap::new(),
            terminated: BTreeMap::new(),
            completed: VecDeque::new(),
            pending_termination: None,
            limits: BTreeMap::new(),
            container_cleaned: false,
        };
        for task_state in std::mem::take(&mut run.tasks).into_values() {
            let Some(mut task) = task_state.info.clone() else {
                tracing::warn!(task = %task_state.id, "skipping recovery of a task whose info cannot be recovered");
                continue;
            };
            let terminal_acknowledged = replay(&mut task, &task_state);
            if let Some(path) = &task_state.updates_file {
                self.sum.recover_records(path, task_state.records.clone())?;
            }
            if let Some(head) = self.sum.head(&framework_id, &task_state.id) {
                task.status_update_state = Some(head.status.state);
                task.status_update_uuid = update_uuid(head).map(<[u8]>::to_vec);
            }
            let id = task.task_id.value.clone();
            executor.limits.extend(
                task.limits
                    .iter()
                    .map(|(name, limit)| (name.clone(), limit.value)),
            );
            match (is_terminal(task.state), terminal_acknowledged) {
                (false, _) => {
                    executor.launched.insert(id, task);
                }
                (true, false) => {
                    executor.terminated.insert(id, task);
                }
                (true, true) => executor.completed.push_back(task),
            }
        }
        tracing::info!(executor = %state.id, container = %latest, pid = ?executor.pid,
            tasks = executor.launched.len(), "recovered executor");
        Ok(Some(executor))
    }

    /// The containers of the recovered executors that have a pid (after a
    /// reboot none has: their containers are gone).
    fn known_containers(&self) -> Vec<KnownContainer> {
        self.frameworks
            .values()
            .flat_map(|f| f.executors.values())
            .filter(|e| e.pid.is_some())
            .map(|e| KnownContainer {
                container_id: e.container_id.clone(),
                pid: e.pid,
            })
            .collect()
    }

    /// The containerizer re-adopted `recovered` and destroyed the rest
    /// (step 2): wait on every executor's container, let executors
    /// subscribe, and give them `--executor_reregistration_timeout`.
    pub fn containers_recovered(&mut self, recovered: Vec<RecoveredContainer>) {
        let cleanup = self.recovery.as_ref().and_then(|r| r.cleanup.clone());
        if let Some(forget) = cleanup {
            self.cleanup(recovered, forget);
            return;
        }
        if let Some(recovery) = self.recovery.as_mut() {
            recovery.reconnect = true;
        }
        let running: Vec<&str> = recovered
            .iter()
            .filter(|r| r.running)
            .map(|r| r.container_id.as_str())
            .collect();
        tracing::info!(
            containers = recovered.len(),
            running = running.len(),
            "containers recovered"
        );
        let executors: Vec<(String, String, String, PathBuf)> = self
            .frameworks
            .iter()
            .flat_map(|(fw, f)| {
                f.executors.iter().map(move |(ex, e)| {
                    (
                        fw.clone(),
                        ex.clone(),
                        e.container_id.clone(),
                        e.sandbox.clone(),
                    )
                })
            })
            .collect();
        for (framework_id, executor_id, container_id, sandbox) in executors {
            if let Some(executor) = self.executor_mut(&framework_id, &executor_id) {
                executor.waiting = true;
            }
            self.attach_sandbox(&framework_id, &executor_id, &sandbox);
            let (fw, ex, cid) = (
                framework_id.clone(),
                executor_id.clone(),
                container_id.clone(),
            );
            self.when_done(self.containers.wait(&container_id), move |slave, result| {
                slave.executor_terminated(&fw, &ex, &cid, result);
            });
            if running.contains(&container_id.as_str()) {
                tracing::info!(executor = %executor_id, framework = %framework_id, "waiting for executor to subscribe");
            }
        }
        if self.frameworks.is_empty() {
            self.finish_recovery();
            return;
        }
        let timeout = self.config.flags.executor_reregistration_timeout.get();
        self.after(timeout, move |slave| {
            slave.reregister_executor_timeout(timeout)
        });
    }

    /// Executors that did not re-subscribe in time are destroyed; their
    /// tasks end TASK_LOST (TASK_GONE if partition-aware) with
    /// REASON_EXECUTOR_REREGISTRATION_TIMEOUT. Then recovery is over.
    fn reregister_executor_timeout(&mut self, timeout: Duration) {
        if self.state != SlaveState::Recovering {
            return;
        }
        let late: Vec<(String, String, bool)> = self
            .frameworks
            .iter()
            .flat_map(|(fw, f)| {
                let partition_aware = f.partition_aware();
                f.executors
                    .iter()
                    .filter(|(_, e)| e.recovered && e.state == ExecutorState::Registering)
                    .map(move |(ex, _)| (fw.clone(), ex.clone(), partition_aware))
            })
            .collect();
        for (framework_id, executor_id, partition_aware) in late {
            tracing::warn!(executor = %executor_id, framework = %framework_id,
                "killing executor that did not re-subscribe after the agent restarted");
            if let Some(executor) = self.executor_mut(&framework_id, &executor_id) {
                executor.pending_termination = Some(PendingTermination {
                    state: if partition_aware {
                        TaskState::TaskGone
                    } else {
                        TaskState::TaskLost
                    },
                    reason: Reason::ExecutorReregistrationTimeout,
                    message: format!(
                        "Executor did not reregister within {}",
                        crate::duration::StoutDuration(timeout)
                    ),
                });
            }
            self.destroy_container(&framework_id, &executor_id);
        }
        self.finish_recovery();
    }

    /// Ends recovery early once no recovered executor is still expected.
    pub(super) fn maybe_finish_recovery(&mut self) {
        let Some(recovery) = &self.recovery else {
            return;
        };
        if !recovery.reconnect || recovery.cleanup.is_some() {
            return;
        }
        let expecting = self
            .frameworks
            .values()
            .flat_map(|f| f.executors.values())
            .any(|e| e.recovered && e.state == ExecutorState::Registering);
        if !expecting {
            self.finish_recovery();
        }
    }

    /// Step 4: checkpoint the boot id, then register (with the recovered id,
    /// a re-registration carrying every task).
    fn finish_recovery(&mut self) {
        if self.state != SlaveState::Recovering {
            return;
        }
        match crate::checkpoint::current_boot_id() {
            Ok(boot_id) => {
                if let Err(error) = self.checkpointer.boot_id(&boot_id) {
                    tracing::error!(%error, "failed to checkpoint the boot id");
                }
            }
            Err(error) => tracing::error!(%error, "cannot read the boot id"),
        }
        self.recovery = None;
        self.state = SlaveState::Disconnected;
        let tasks: usize = self
            .frameworks
            .values()
            .flat_map(|f| f.executors.values())
            .map(|e| e.launched.len() + e.terminated.len())
            .sum();
        tracing::info!(
            frameworks = self.frameworks.len(),
            tasks,
            "finished recovery"
        );
        self.start_registration(Instant::now());
    }

    /// `--recover=cleanup`: destroy every recovered container, forget the
    /// checkpoint, shut down.
    fn cleanup(&mut self, recovered: Vec<RecoveredContainer>, forget: Forget) {
        tracing::warn!(
            containers = recovered.len(),
            "--recover=cleanup: killing the executors of the earlier run"
        );
        let containers = self.containers.clone();
        let work_dir = self.config.work_dir.clone();
        self.when_done(
            Box::pin(async move {
                for container in recovered {
                    if let Err(error) = containers.destroy(&container.container_id).await {
                        tracing::error!(%error, "failed to destroy a container of the earlier run");
                    }
                }
                forget_checkpoint(&work_dir, &forget);
            }),
            |slave, ()| {
                slave.recovery = None;
                slave.state = SlaveState::Terminating;
                tracing::info!("cleanup done; shutting down");
                slave.shutdown.notify_one();
            },
        );
    }
}

/// Removes what `--recover=cleanup` forgets, so the next start recovers
/// nothing of the earlier run (and cannot trip over its damaged files).
fn forget_checkpoint(work_dir: &crate::paths::WorkDir, forget: &Forget) {
    let (path, what) = match forget {
        Forget::Frameworks(agent) => (
            work_dir.meta_agent_dir(agent).join("frameworks"),
            "the checkpointed frameworks",
        ),
        Forget::Agent => (work_dir.latest_agent_link(), "the checkpointed agent"),
    };
    let removed = if path.is_dir() {
        std::fs::remove_dir_all(&path)
    } else {
        std::fs::remove_file(&path)
    };
    match removed {
        Ok(()) => tracing::info!(path = %path.display(), "forgot {what}"),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => tracing::error!(path = %path.display(), %error, "cannot forget {what}"),
    }
}

/// Applies a task's checkpointed updates in order (Mesos
/// `Executor::recoverTask`); returns whether a terminal update was
/// acknowledged (the task is complete).
fn replay(task: &mut Task, state: &crate::state::TaskState) -> bool {
    for update in state.updates() {
        apply_status(task, &update.status);
        if is_terminal(update.status.state) {
            return update_uuid(update).is_some_and(|uuid| state.acknowledged(uuid));
        }
    }
    false
}

/// A status on a task record: latest state, statuses without their data
/// (a repeat of the last state replaces it, as Mesos).
fn apply_status(task: &mut Task, status: &TaskStatus) {
    let mut status = status.clone();
    status.data = None;
    if task
        .statuses
        .last()
        .is_some_and(|s| s.state == status.state)
    {
        task.statuses.pop();
    }
    task.state = status.state;
    task.statuses.push(status);
}

/// Mesos's `--reconfiguration_policy=equal`: the agent must come back as
/// the same agent.
fn check_compatible(checkpointed: &AgentInfo, now: &AgentInfo) -> Result<(), RecoveryError> {
    let differ = |field: &'static str, old: String, new: String| {
        (old != new).then_some(RecoveryError::Incompatible {
            field,
            checkpointed: old,
            now: new,
        })
    };
    let resources = |info: &AgentInfo| {
        let mut all: Vec<String> = info
            .resources
            .iter()
            .map(mesos_proto::codec::to_json)
            .collect();
        all.sort();
        all.join(";")
    };
    let attributes = |info: &AgentInfo| {
        info.attributes
            .iter()
            .map(mesos_proto::codec::to_json)
            .collect::<Vec<_>>()
            .join(";")
    };
    let port = |info: &AgentInfo| info.port.map(|p| p.to_string()).unwrap_or_default();
    let error = differ(
        "hostname",
        checkpointed.hostname.clone(),
        now.hostname.clone(),
    )
    .or_else(|| differ("port", port(checkpointed), port(now)))
    .or_else(|| differ("resources", resources(checkpointed), resources(now)))
    .or_else(|| differ("attributes", attributes(checkpointed), attributes(now)));
    match error {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use mesos_proto::v1::{value, Resource};

    use super::*;

    fn info(port: i32, cpus: f64) -> AgentInfo {
        AgentInfo {
            hostname: "h".into(),
            port: Some(port),
            resources: vec![Resource {
                name: "cpus".into(),
                r#type: value::Type::Scalar as i32,
                scalar: Some(value::Scalar { value: cpus }),
                ..Resource::default()
            }],
            ..AgentInfo::default()
        }
    }

    #[test]
    fn a_changed_port_or_resources_is_incompatible() {
        check_compatible(&info(5051, 2.0), &info(5051, 2.0)).unwrap();
        let error = check_compatible(&info(5051, 2.0), &info(5052, 2.0)).unwrap_err();
        assert!(
            error.to_string().contains("port was 5051 and is now 5052"),
            "{error}"
        );
        let error = check_compatible(&info(5051, 2.0), &info(5051, 4.0)).unwrap_err();
        assert!(error.to_string().contains("resources"), "{error}");
        assert!(error.to_string().contains("--recover=cleanup"), "{error}");
    }

    #[test]
    fn replay_keeps_the_latest_state_and_knows_acknowledged_terminals() {
        use mesos_proto::internal::{status_update_record, StatusUpdate, StatusUpdateRecord};
        let record = |state: TaskState, n: u8| StatusUpdateRecord {
            r#type: status_update_record::Type::Update as i32,
            update: Some(StatusUpdate {
                status: TaskStatus {
                    state: state as i32,
                    uuid: Some(vec![n; 16]),
                    ..TaskStatus::default()
                },
                ..StatusUpdate::default()
            }),
            uuid: None,
        };
        let ack = |n: u8| StatusUpdateRecord {
            r#type: status_update_record::Type::Ack as i32,
            update: None,
            uuid: Some(vec![n; 16]),
        };
        let mut state = crate::state::TaskState {
            records: vec![
                record(TaskState::TaskStarting, 1),
                ack(1),
                record(TaskState::TaskRunning, 2),
                record(TaskState::TaskRunning, 3),
            ],
            ..crate::state::TaskState::default()
        };
        let mut task = Task::default();
        assert!(!replay(&mut task, &state));
        assert_eq!(task.state, TaskState::TaskRunning as i32);
        assert_eq!(task.statuses.len(), 2, "a repeated state replaces the last");

        state.records.push(record(TaskState::TaskFinished, 4));
        let mut task = Task::default();
        assert!(!replay(&mut task, &state), "terminal but not acknowledged");
        state.records.push(ack(2));
        state.records.push(ack(3));
        state.records.push(ack(4));
        let mut task = Task::default();
        assert!(replay(&mut task, &state));
        assert_eq!(task.state, TaskState::TaskFinished as i32);
    }
}
