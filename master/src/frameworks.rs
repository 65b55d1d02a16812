//! Frameworks: SUBSCRIBE (new, re-registration and failover), disconnection
//! with `failover_timeout`, removal (TEARDOWN or timeout, which kills the
//! framework's tasks), REVIVE/SUPPRESS, UPDATE_FRAMEWORK, and the calls that
//! are relayed to agents: KILL, SHUTDOWN, MESSAGE (src/master/master.cpp).
//!
//! The registry records every framework's FrameworkInfo and its removal.
//! After a master restart the frameworks it lists are *recovered*: known,
//! not connected, holding the tasks re-registering agents report, until they
//! re-subscribe with their id. A removed framework cannot subscribe again.
//! A framework id the registry does not know is still accepted, as Mesos
//! accepts frameworks re-registering after a failover.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use bytes::Bytes;
use mesos_proto::codec::ContentType;
use mesos_proto::internal::{
    FrameworkToExecutorMessage, KillTaskMessage, ShutdownExecutorMessage, ShutdownFrameworkMessage,
};
use mesos_proto::v1::framework_info::capability::Type as Capability;
use mesos_proto::v1::scheduler::{call, event, Call, Event};
use mesos_proto::v1::{FrameworkId, FrameworkInfo, Task, TaskState};
use tokio::sync::mpsc;

use crate::allocator::{Capabilities, FrameworkSpec};
use crate::http::HttpError;
use crate::master::{encode_event, now_secs, Command, Master, Subscription, HEARTBEAT_INTERVAL};
use crate::registry::Operation;
use crate::validation;

/// A subscriber's live event stream.
#[derive(Debug)]
pub(crate) struct Connection {
    pub stream_id: String,
    pub events: mpsc::UnboundedSender<Bytes>,
    pub content_type: ContentType,
}

/// What the master knows about a framework.
#[derive(Debug)]
pub struct Framework {
    pub(crate) id: String,
    /// The FrameworkInfo of the last SUBSCRIBE, with `id` set.
    pub(crate) info: FrameworkInfo,
    pub(crate) connection: Option<Connection>,
    pub(crate) suppressed_roles: BTreeSet<String>,
    /// Outstanding offer ids.
    pub(crate) offers: BTreeSet<String>,
    /// Live tasks by id.
    pub(crate) tasks: BTreeMap<String, Task>,
    pub(crate) completed_tasks: VecDeque<Task>,
    pub(crate) unreachable_tasks: BTreeMap<String, Task>,
    pub(crate) registered_time: f64,
    pub(crate) reregistered_time: Option<f64>,
    pub(crate) unregistered_time: Option<f64>,
    /// Bumped on every (dis)connection so stale failover timers are ignored.
    pub(crate) failover_epoch: u64,
    /// Known from the registry or a re-registering agent, not (yet)
    /// re-subscribed to this master (Mesos's RECOVERED state).
    pub(crate) recovered: bool,
}

impl Framework {
    /// Whether the framework declared `capability`.
    pub(crate) fn has_capability(&self, capability: Capability) -> bool {
        has_capability(&self.info, capability)
    }

    /// PARTITION_AWARE: gets TASK_UNREACHABLE/DROPPED/GONE instead of LOST.
    pub(crate) fn partition_aware(&self) -> bool {
        self.has_capability(Capability::PartitionAware)
    }

    /// The roles it is subscribed to.
    pub(crate) fn roles(&self) -> BTreeSet<String> {
        roles_of(&self.info)
    }

    /// Whether it has a live stream.
    pub(crate) fn connected(&self) -> bool {
        self.connection.is_some()
    }

    fn spec(&self) -> FrameworkSpec {
        spec_of(&self.info, &self.suppressed_roles)
    }

    /// Keeps a finished task for `/state`, bounded like Mesos.
    pub(crate) fn complete_task(&mut self, task: Task, keep: usize) {
        self.completed_tasks.push_back(task);
        while self.completed_tasks.len() > keep {
            self.completed_tasks.pop_front();
        }
    }
}

pub(crate) fn has_capability(info: &FrameworkInfo, capability: Capability) -> bool {
    info.capabilities
        .iter()
        .any(|c| c.r#type == Some(capability as i32))
}

/// MULTI_ROLE frameworks use `roles`, others the deprecated `role`
/// (default `*`).
#[allow(deprecated)]
pub(crate) fn roles_of(info: &FrameworkInfo) -> BTreeSet<String> {
    if has_capability(info, Capability::MultiRole) {
        info.roles.iter().cloned().collect()
    } else {
        BTreeSet::from([info.role.clone().unwrap_or_else(|| "*".to_string())])
    }
}

fn spec_of(info: &FrameworkInfo, suppressed: &BTreeSet<String>) -> FrameworkSpec {
    let min_allocatable = info
        .offer_filters
        .iter()
        .filter_map(|(role, filters)| {
            let min = filters.min_allocatable_resources.as_ref()?;
            let alternatives = min
                .quantities
                .iter()
                .map(|q| {
                    q.quantities
                        .iter()
                        .map(|(name, scalar)| (name.clone(), scalar.value))
                        .collect()
                })
                .collect();
            Some((role.clone(), alternatives))
        })
        .collect();
    FrameworkSpec {
        roles: roles_of(info),
        suppressed_roles: suppressed.clone(),
        capabilities: Capabilities {
            revocable: has_capability(info, Capability::RevocableResources),
            shared: has_capability(info, Capability::SharedResources),
            gpu: has_capability(info, Capability::GpuResources),
            reservation_refinement: has_capability(info, Capability::ReservationRefinement),
        },
        min_allocatable,
    }
}

impl Master {
    /// SUBSCRIBE: registers a new framework, re-registers a known id (after
    /// a master restart) or fails over an existing one to this stream. The
    /// stream starts with SUBSCRIBED, or carries a single ERROR and ends.
    pub(crate) fn subscribe(&mut self, call: Call, content_type: ContentType) -> Subscription {
        let (events, receiver) = mpsc::unbounded_channel();
        let stream_id = uuid::Uuid::new_v4().to_string();
        let subscribe = call.subscribe.unwrap_or_default();
        let mut info = subscribe.framework_info;
        let suppressed: BTreeSet<String> = subscribe.suppressed_roles.into_iter().collect();

        if let Err(message) = validation::framework_info(&info, &suppressed) {
            return rejection(events, receiver, stream_id, content_type, message);
        }
        let id = match &info.id {
            Some(id) => id.value.clone(),
            None => self.new_framework_id(),
        };
        if self.removed_frameworks.contains(&id) {
            let message = "Framework has been removed".to_string();
            return rejection(events, receiver, stream_id, content_type, message);
        }
        info.id = Some(FrameworkId { value: id.clone() });
        let connection = Connection {
            stream_id: stream_id.clone(),
            events: events.clone(),
            content_type,
        };
        if self.frameworks.contains_key(&id) {
            self.failover(&id, info, suppressed, connection);
        } else {
            self.add_framework(&id, info, suppressed, connection);
        }
        let subscribed = Event {
            r#type: Some(event::Type::Subscribed as i32),
            subscribed: Some(event::Subscribed {
                framework_id: FrameworkId { value: id.clone() },
                heartbeat_interval_seconds: Some(HEARTBEAT_INTERVAL.as_secs_f64()),
                master_info: Some(self.info.clone()),
            }),
            ..Default::default()
        };
        self.send_event(&id, &subscribed);
        Subscription {
            stream_id,
            framework_id: Some(id),
            events: receiver,
        }
    }

    fn new_framework_id(&mut self) -> String {
        loop {
            let id = format!("{}-{:04}", self.info.id, self.next_framework);
            self.next_framework += 1;
            if !self.frameworks.contains_key(&id) && !self.removed_frameworks.contains(&id) {
                return id;
            }
        }
    }

    fn add_framework(
        &mut self,
        id: &str,
        info: FrameworkInfo,
        suppressed: BTreeSet<String>,
        connection: Connection,
    ) {
        tracing::info!(framework = %id, name = %info.name, "framework subscribed");
        self.registrar.record(Operation::AddFramework(info.clone()));
        let framework = Framework {
            id: id.to_string(),
            info,
            connection: Some(connection),
            suppressed_roles: suppressed,
            offers: BTreeSet::new(),
            tasks: BTreeMap::new(),
            completed_tasks: VecDeque::new(),
            unreachable_tasks: BTreeMap::new(),
            registered_time: now_secs(),
            reregistered_time: None,
            unregistered_time: None,
            failover_epoch: 0,
            recovered: false,
        };
        let spec = framework.spec();
        self.frameworks.insert(id.to_string(), framework);
        let pending = self.allocator.add_framework(id, spec, true);
        self.schedule_allocation(pending);
    }

    /// Adds a framework known from the registry or from a re-registering
    /// agent (Mesos's `recoverFramework`): not connected, not offered
    /// anything, and without a failover timeout, until it re-subscribes.
    pub(crate) fn recover_framework(&mut self, info: FrameworkInfo) {
        let Some(id) = info.id.as_ref().map(|i| i.value.clone()) else {
            return;
        };
        if self.frameworks.contains_key(&id) || self.removed_frameworks.contains(&id) {
            return;
        }
        tracing::info!(framework = %id, name = %info.name, "recovered framework");
        let framework = Framework {
            id: id.clone(),
            info,
            connection: None,
            suppressed_roles: BTreeSet::new(),
            offers: BTreeSet::new(),
            tasks: BTreeMap::new(),
            completed_tasks: VecDeque::new(),
            unreachable_tasks: BTreeMap::new(),
            registered_time: now_secs(),
            reregistered_time: None,
            unregistered_time: None,
            failover_epoch: 0,
            recovered: true,
        };
        let spec = framework.spec();
        self.frameworks.insert(id.clone(), framework);
        self.allocator.add_framework(&id, spec, false);
    }

    /// A known framework subscribes again: the old stream (if any) gets
    /// ERROR "Framework failed over" and is closed; outstanding offers are
    /// taken back so the new instance starts from fresh ones.
    fn failover(
        &mut self,
        id: &str,
        info: FrameworkInfo,
        suppressed: BTreeSet<String>,
        connection: Connection,
    ) {
        tracing::info!(framework = %id, "framework failed over");
        self.remove_offers_of(id);
        let Some(framework) = self.frameworks.get_mut(id) else {
            return;
        };
        if let Some(old) = framework.connection.take() {
            let error = error_event("Framework failed over".to_string());
            let _ = old.events.send(encode_event(&error, old.content_type));
        }
        if framework.recovered {
            // First subscription to this master: Mesos resets the time too.
            framework.recovered = false;
            framework.registered_time = now_secs();
        }
        if framework.info != info {
            self.registrar.record(Operation::AddFramework(info.clone()));
        }
        framework.info = info;
        framework.suppressed_roles = suppressed;
        framework.connection = Some(connection);
        framework.reregistered_time = Some(now_secs());
        framework.unregistered_time = None;
        framework.failover_epoch += 1;
        let spec = framework.spec();
        self.allocator.update_framework(id, spec);
        let pending = self.allocator.activate_framework(id);
        self.schedule_allocation(pending);
    }

    /// The subscriber's stream ended: the framework is disconnected, its
    /// offers are rescinded and it is removed unless it re-subscribes within
    /// its `failover_timeout`.
    pub(crate) fn stream_closed(&mut self, framework_id: &str, stream_id: &str) {
        let Some(framework) = self.frameworks.get_mut(framework_id) else {
            return;
        };
        if framework
            .connection
            .as_ref()
            .is_none_or(|c| c.stream_id != stream_id)
        {
            return;
        }
        tracing::info!(framework = %framework_id, "framework disconnected");
        framework.connection = None;
        framework.unregistered_time = Some(now_secs());
        framework.failover_epoch += 1;
        let epoch = framework.failover_epoch;
        let timeout = framework.info.failover_timeout.unwrap_or(0.0);
        self.allocator.deactivate_framework(framework_id);
        self.remove_offers_of(framework_id);
        let timeout = Duration::try_from_secs_f64(timeout.max(0.0)).unwrap_or(Duration::MAX);
        // Durations beyond a century are "never" for our purposes.
        if timeout < Duration::from_secs(100 * 365 * 24 * 3600) {
            self.after(
                timeout,
                Command::FailoverTimeout {
                    framework_id: framework_id.to_string(),
                    epoch,
                },
            );
        }
    }

    pub(crate) fn failover_timeout(&mut self, framework_id: &str, epoch: u64) {
        let expired = self
            .frameworks
            .get(framework_id)
            .is_some_and(|f| !f.connected() && f.failover_epoch == epoch);
        if expired {
            tracing::info!(framework = %framework_id, "failover timeout expired, removing framework");
            self.remove_framework(framework_id);
        }
    }

    /// TEARDOWN.
    pub(crate) fn teardown(&mut self, framework_id: &str) {
        tracing::info!(framework = %framework_id, "framework teardown");
        self.remove_framework(framework_id);
    }

    /// Removes a framework: its tasks are killed (agents get
    /// ShutdownFrameworkMessage), resources recovered, and it moves to the
    /// completed frameworks.
    pub(crate) fn remove_framework(&mut self, framework_id: &str) {
        self.remove_offers_of(framework_id);
        let Some(mut framework) = self.frameworks.remove(framework_id) else {
            return;
        };
        let agents: Vec<String> = self
            .agents
            .values()
            .filter(|a| a.connected)
            .map(|a| a.id.clone())
            .collect();
        for agent_id in agents {
            if let Some(agent) = self.agents.get(&agent_id) {
                let message = ShutdownFrameworkMessage {
                    framework_id: FrameworkId {
                        value: framework_id.to_string(),
                    },
                };
                self.sender.send(&agent.pid, &message);
            }
        }
        let tasks = std::mem::take(&mut framework.tasks);
        for (task_id, mut task) in tasks {
            if let Some(agent) = self.agents.get_mut(&task.agent_id.value) {
                agent.tasks.remove(&(framework_id.to_string(), task_id));
            }
            if !crate::status_updates::is_terminal(task.state) {
                self.recover_task_resources(framework_id, &task);
                task.state = TaskState::TaskKilled as i32;
            }
            framework.complete_task(task, self.flags.max_completed_tasks_per_framework);
        }
        for agent in self.agents.values_mut() {
            if let Some(executors) = agent.executors.remove(framework_id) {
                for executor in executors.values() {
                    let resources = crate::launch::resources_of(&executor.resources);
                    self.allocator.recover(
                        framework_id,
                        &agent.id,
                        &resources,
                        None,
                        std::time::Instant::now(),
                    );
                }
            }
        }
        self.allocator.remove_framework(framework_id);
        self.removed_frameworks.insert(framework_id.to_string());
        self.registrar.record(Operation::RemoveFramework {
            framework_id: framework_id.to_string(),
            time: now_secs(),
        });
        framework.connection = None;
        framework.unregistered_time.get_or_insert_with(now_secs);
        self.completed_frameworks.push_back(framework);
        while self.completed_frameworks.len() > self.flags.max_completed_frameworks {
            self.completed_frameworks.pop_front();
        }
    }

    /// REVIVE.
    pub(crate) fn revive(&mut self, framework_id: &str, roles: Vec<String>) {
        if let Some(framework) = self.frameworks.get_mut(framework_id) {
            if roles.is_empty() {
                framework.suppressed_roles.clear();
            } else {
                for role in &roles {
                    framework.suppressed_roles.remove(role);
                }
            }
        }
        let pending = self.allocator.revive(framework_id, &roles);
        self.schedule_allocation(pending);
    }

    /// SUPPRESS.
    pub(crate) fn suppress(&mut self, framework_id: &str, roles: Vec<String>) {
        if let Some(framework) = self.frameworks.get_mut(framework_id) {
            let roles = if roles.is_empty() {
                framework.roles()
            } else {
                roles.iter().cloned().collect()
            };
            framework.suppressed_roles.extend(roles);
        }
        self.allocator.suppress(framework_id, &roles);
    }

    /// UPDATE_FRAMEWORK: new FrameworkInfo (roles, capabilities, ...) and
    /// suppressed roles without re-subscribing.
    pub(crate) fn update_framework(
        &mut self,
        framework_id: &str,
        update: call::UpdateFramework,
    ) -> Result<(), HttpError> {
        let mut info = update.framework_info;
        if info.id.as_ref().is_some_and(|id| id.value != framework_id) {
            return Err(HttpError::bad_request(
                "'UpdateFramework.framework_info.id' is not equal to the framework id",
            ));
        }
        info.id = Some(FrameworkId {
            value: framework_id.to_string(),
        });
        let suppressed: BTreeSet<String> = update.suppressed_roles.into_iter().collect();
        validation::framework_info(&info, &suppressed).map_err(HttpError::bad_request)?;
        let Some(framework) = self.frameworks.get_mut(framework_id) else {
            return Err(HttpError::bad_request("Framework cannot be found"));
        };
        if framework.info != info {
            self.registrar.record(Operation::AddFramework(info.clone()));
        }
        framework.info = info;
        framework.suppressed_roles = suppressed;
        let spec = framework.spec();
        let pending = self.allocator.update_framework(framework_id, spec);
        self.schedule_allocation(pending);
        Ok(())
    }

    /// KILL: forwarded to the agent running the task; an unknown task is
    /// answered by reconciling it, as Mesos does.
    pub(crate) fn kill(&mut self, framework_id: &str, kill: call::Kill) {
        let task = self
            .frameworks
            .get(framework_id)
            .and_then(|f| f.tasks.get(&kill.task_id.value));
        let Some(task) = task else {
            let reconcile = call::Reconcile {
                tasks: vec![call::reconcile::Task {
                    task_id: kill.task_id,
                    agent_id: kill.agent_id,
                }],
            };
            self.reconcile(framework_id, reconcile);
            return;
        };
        let kill_policy = kill.kill_policy.or(task.kill_policy);
        let key = (framework_id.to_string(), kill.task_id.value.clone());
        let Some(agent) = self.agents.get_mut(&task.agent_id.value) else {
            return;
        };
        // Remembered so that the kill is repeated if the agent re-registers
        // still running the task (this message may be lost).
        agent.killed_tasks.insert(key);
        if !agent.connected {
            return;
        }
        let message = KillTaskMessage {
            framework_id: FrameworkId {
                value: framework_id.to_string(),
            },
            task_id: kill.task_id,
            kill_policy,
        };
        self.sender.send(&agent.pid, &message);
    }

    /// SHUTDOWN: asks the agent to shut an executor down.
    pub(crate) fn shutdown_executor(&mut self, framework_id: &str, shutdown: call::Shutdown) {
        let Some(agent) = self.connected_agent(&shutdown.agent_id.value) else {
            return;
        };
        let message = ShutdownExecutorMessage {
            executor_id: Some(shutdown.executor_id),
            framework_id: Some(FrameworkId {
                value: framework_id.to_string(),
            }),
        };
        self.sender.send(&agent.pid, &message);
    }

    /// MESSAGE: relayed to the executor through its agent.
    pub(crate) fn framework_message(&mut self, framework_id: &str, message: call::Message) {
        let Some(agent) = self.connected_agent(&message.agent_id.value) else {
            return;
        };
        let relay = FrameworkToExecutorMessage {
            slave_id: message.agent_id,
            framework_id: FrameworkId {
                value: framework_id.to_string(),
            },
            executor_id: message.executor_id,
            data: message.data,
        };
        self.sender.send(&agent.pid, &relay);
    }
}

/// A subscription that carries a single ERROR and ends (the 200 response
/// of a rejected SUBSCRIBE, as in Mesos).
fn rejection(
    events: mpsc::UnboundedSender<Bytes>,
    receiver: mpsc::UnboundedReceiver<Bytes>,
    stream_id: String,
    content_type: ContentType,
    message: String,
) -> Subscription {
    let _ = events.send(encode_event(&error_event(message), content_type));
    Subscription {
        stream_id,
        framework_id: None,
        events: receiver,
    }
}

/// An ERROR event.
pub(crate) fn error_event(message: String) -> Event {
    Event {
        r#type: Some(event::Type::Error as i32),
        error: Some(event::Error { message }),
        ..Default::default()
    }
}
