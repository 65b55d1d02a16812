//! A framework on the `mesos-scheduler` SDK for fault-injection tests: every
//! callback becomes an [`Seen`] event on a channel the test reads, with
//! counts of the updates received and acknowledged.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mesos_proto::resources;
use mesos_proto::v1::{
    AgentId, CommandInfo, ExecutorId, ExecutorInfo, Filters, FrameworkId, FrameworkInfo,
    MasterInfo, Offer, TaskId, TaskInfo, TaskStatus,
};
use mesos_scheduler::{DriverConfig, Scheduler, SchedulerDriver};
use tokio::sync::mpsc;

/// What the framework saw.
#[derive(Debug, Clone)]
pub enum Seen {
    /// SUBSCRIBED.
    Registered(FrameworkId),
    /// OFFERS.
    Offers(Vec<Offer>),
    /// UPDATE.
    Update(Box<TaskStatus>),
    /// FAILURE with an executor id.
    ExecutorLost {
        executor_id: ExecutorId,
        status: Option<i32>,
    },
    /// ERROR, or a failed call.
    Error(String),
}

/// Updates received and acknowledged (implicitly, after the callback).
#[derive(Debug, Default)]
pub struct Counts {
    pub received: AtomicUsize,
    pub acknowledged: AtomicUsize,
}

struct Forwarder {
    events: mpsc::UnboundedSender<Seen>,
    counts: Arc<Counts>,
    implicit_acks: bool,
}

impl Scheduler for Forwarder {
    fn registered(&mut self, _: &SchedulerDriver, id: &FrameworkId, _: Option<&MasterInfo>) {
        let _ = self.events.send(Seen::Registered(id.clone()));
    }

    fn resource_offers(&mut self, _: &SchedulerDriver, offers: Vec<Offer>) {
        let _ = self.events.send(Seen::Offers(offers));
    }

    fn status_update(&mut self, _: &SchedulerDriver, status: TaskStatus) {
        self.counts.received.fetch_add(1, Ordering::SeqCst);
        if self.implicit_acks && status.uuid.is_some() {
            self.counts.acknowledged.fetch_add(1, Ordering::SeqCst);
        }
        let _ = self.events.send(Seen::Update(Box::new(status)));
    }

    fn executor_lost(
        &mut self,
        _: &SchedulerDriver,
        executor_id: &ExecutorId,
        _: &AgentId,
        status: Option<i32>,
    ) {
        let _ = self.events.send(Seen::ExecutorLost {
            executor_id: executor_id.clone(),
            status,
        });
    }

    fn error(&mut self, _: &SchedulerDriver, message: &str) {
        let _ = self.events.send(Seen::Error(message.to_string()));
    }
}

/// A running framework.
pub struct Framework {
    pub driver: SchedulerDriver,
    pub id: FrameworkId,
    pub counts: Arc<Counts>,
    events: mpsc::UnboundedReceiver<Seen>,
    /// Events read but not yet consumed.
    backlog: Vec<Seen>,
}

impl Framework {
    /// Subscribes a framework with `checkpoint: true` (user root).
    pub async fn start(master: SocketAddr, name: &str, implicit_acks: bool) -> Self {
        let info = FrameworkInfo {
            user: "root".into(),
            name: name.into(),
            checkpoint: Some(true),
            failover_timeout: Some(600.0),
            ..FrameworkInfo::default()
        };
        let config = DriverConfig::new(&master.to_string(), info)
            .expect("master address")
            .implicit_acknowledgements(implicit_acks);
        let (tx, events) = mpsc::unbounded_channel();
        let counts = Arc::new(Counts::default());
        let driver = SchedulerDriver::new(
            Forwarder {
                events: tx,
                counts: counts.clone(),
                implicit_acks,
            },
            config,
        );
        driver.start().expect("driver starts");
        let mut framework = Framework {
            driver,
            id: FrameworkId::default(),
            counts,
            events,
            backlog: Vec::new(),
        };
        let id = framework
            .next(Duration::from_secs(30), |e| match e {
                Seen::Registered(id) => Some(id.clone()),
                _ => None,
            })
            .await
            .expect("SUBSCRIBED");
        framework.id = id;
        framework
    }

    /// The first event (oldest first, backlog included) `pick` accepts; the
    /// others stay for later. `None` after `timeout`.
    pub async fn next<T>(
        &mut self,
        timeout: Duration,
        mut pick: impl FnMut(&Seen) -> Option<T>,
    ) -> Option<T> {
        if let Some(index) = self.backlog.iter().position(|e| pick(e).is_some()) {
            return pick(&self.backlog.remove(index));
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let event = tokio::time::timeout_at(deadline, self.events.recv())
                .await
                .ok()??;
            if let Seen::Error(message) = &event {
                eprintln!("framework error: {message}");
            }
            if let Some(found) = pick(&event) {
                return Some(found);
            }
            self.backlog.push(event);
        }
    }

    /// The next offers.
    pub async fn offers(&mut self, timeout: Duration) -> Vec<Offer> {
        self.next(timeout, |e| match e {
            Seen::Offers(offers) => Some(offers.clone()),
            _ => None,
        })
        .await
        .unwrap_or_else(|| panic!("no offers within {timeout:?}"))
    }

    /// The next update (of any task).
    pub async fn update(&mut self, timeout: Duration) -> Option<TaskStatus> {
        self.next(timeout, |e| match e {
            Seen::Update(status) => Some(status.as_ref().clone()),
            _ => None,
        })
        .await
    }

    /// Launches `tasks` on the first offer, declining the others.
    pub async fn launch(&mut self, tasks: Vec<TaskInfo>) -> AgentId {
        let offers = self.offers(Duration::from_secs(30)).await;
        let offer = offers[0].clone();
        let tasks = tasks
            .into_iter()
            .map(|mut t| {
                t.agent_id = offer.agent_id.clone();
                t
            })
            .collect();
        let filters = Filters {
            refuse_seconds: Some(1.0),
        };
        self.driver
            .launch_tasks(vec![offer.id.clone()], tasks, Some(filters))
            .expect("launch");
        for other in &offers[1..] {
            let _ = self.driver.decline_offer(other.id.clone(), Some(filters));
        }
        offer.agent_id
    }
}

impl Drop for Framework {
    fn drop(&mut self) {
        // Tear the framework down so the master kills what is left.
        let _ = self.driver.stop(false);
    }
}

/// A command task.
pub fn command_task(id: &str, command: &str, cpus: f64, mem: f64) -> TaskInfo {
    TaskInfo {
        name: id.into(),
        task_id: TaskId { value: id.into() },
        resources: vec![
            resources::scalar("cpus", cpus),
            resources::scalar("mem", mem),
        ],
        command: Some(CommandInfo {
            value: Some(command.into()),
            shell: Some(true),
            ..CommandInfo::default()
        }),
        ..TaskInfo::default()
    }
}

/// A task for the custom executor at `binary` (executor id = task id).
pub fn custom_executor_task(id: &str, binary: &std::path::Path) -> TaskInfo {
    TaskInfo {
        name: id.into(),
        task_id: TaskId { value: id.into() },
        resources: vec![
            resources::scalar("cpus", 0.05),
            resources::scalar("mem", 16.0),
        ],
        executor: Some(ExecutorInfo {
            executor_id: ExecutorId { value: id.into() },
            name: Some(format!("sleepy executor for {id}")),
            resources: vec![
                resources::scalar("cpus", 0.05),
                resources::scalar("mem", 32.0),
            ],
            command: Some(CommandInfo {
                value: Some(binary.display().to_string()),
                shell: Some(false),
                arguments: vec!["sleepy_executor".into()],
                ..CommandInfo::default()
            }),
            ..ExecutorInfo::default()
        }),
        ..TaskInfo::default()
    }
}
