//! The benchmark's framework, on the scheduler SDK: launches queued tasks on
//! the offers it gets and reports, with `CLOCK_MONOTONIC` stamps, when each
//! task was launched (offer accepted) and every status update it received.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use mesos_proto::resources::{self, Resources};
use mesos_proto::v1::task_status::Reason;
use mesos_proto::v1::{
    CommandInfo, Filters, FrameworkInfo, Offer, TaskId, TaskInfo, TaskState, TaskStatus,
};
use mesos_scheduler::{CallFailure, DriverConfig, Scheduler, SchedulerDriver};
use tokio::sync::mpsc;

use crate::clock::monotonic_ns;

/// Errors of the benchmark framework.
#[derive(Debug, thiserror::Error)]
pub enum FrameworkError {
    /// The driver could not be configured or started.
    #[error("scheduler driver: {0}")]
    Driver(String),
    /// No event arrived in time.
    #[error("timed out after {:.0} s waiting for {waiting_for}", timeout.as_secs_f64())]
    Timeout {
        /// What was awaited.
        waiting_for: String,
        /// How long.
        timeout: Duration,
    },
    /// The driver ended or reported an error.
    #[error("the framework ended: {0}")]
    Ended(String),
}

/// A task to launch.
#[derive(Debug, Clone)]
pub struct TaskRequest {
    /// Task id (unique in the run).
    pub id: String,
    /// `cpus` resource.
    pub cpus: f64,
    /// `mem` resource in MB.
    pub mem_mb: f64,
    /// The shell command.
    pub command: String,
}

/// What the framework saw.
#[derive(Debug, Clone)]
pub enum Event {
    /// The first offer arrived (the agent is registered).
    FirstOffer {
        /// When.
        at_ns: u64,
    },
    /// `launch_tasks` was called for the task: the offer was accepted.
    Launched {
        /// The task.
        task_id: String,
        /// When.
        at_ns: u64,
    },
    /// A status update.
    Update {
        /// The task.
        task_id: String,
        /// Its new state.
        state: TaskState,
        /// `TaskStatus.reason`, if set.
        reason: Option<Reason>,
        /// `TaskStatus.message`.
        message: String,
        /// When the scheduler received it.
        at_ns: u64,
    },
    /// The master or the driver reported an error, or a call failed.
    Error(String),
}

/// A running benchmark framework.
#[derive(Debug)]
pub struct BenchFramework {
    driver: SchedulerDriver,
    queue: Arc<Mutex<VecDeque<TaskRequest>>>,
    events: mpsc::UnboundedReceiver<Event>,
}

impl BenchFramework {
    /// Subscribes to the master at `master` (`host:port`) as framework `name`.
    /// Must be called inside a tokio runtime.
    pub fn start(master: &str, name: &str) -> Result<Self, FrameworkError> {
        let framework = FrameworkInfo {
            user: "root".to_owned(),
            name: name.to_owned(),
            ..Default::default()
        };
        let config = DriverConfig::new(master, framework)
            .map_err(|e| FrameworkError::Driver(e.to_string()))?
            .give_up_after(Duration::from_secs(30));
        let queue = Arc::new(Mutex::new(VecDeque::new()));
        let (tx, events) = mpsc::unbounded_channel();
        let scheduler = Launcher {
            queue: Arc::clone(&queue),
            events: tx,
            seen_offer: false,
        };
        let driver = SchedulerDriver::new(scheduler, config);
        driver
            .start()
            .map_err(|e| FrameworkError::Driver(e.to_string()))?;
        Ok(BenchFramework {
            driver,
            queue,
            events,
        })
    }

    /// Queues tasks; they are launched on the next offers that fit them.
    pub fn submit(&self, tasks: impl IntoIterator<Item = TaskRequest>) {
        self.queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(tasks);
        // Offers we declined while idle are filtered for a second; ask again.
        let _ = self.driver.revive_offers(Vec::new());
    }

    /// The next event, or a timeout error.
    pub async fn next(
        &mut self,
        timeout: Duration,
        waiting_for: &str,
    ) -> Result<Event, FrameworkError> {
        match tokio::time::timeout(timeout, self.events.recv()).await {
            Ok(Some(event)) => Ok(event),
            Ok(None) => Err(FrameworkError::Ended("the driver stopped".to_owned())),
            Err(_) => Err(FrameworkError::Timeout {
                waiting_for: waiting_for.to_owned(),
                timeout,
            }),
        }
    }

    /// Waits for the first offer (the agent registered and its resources
    /// reached the framework).
    pub async fn wait_first_offer(&mut self, timeout: Duration) -> Result<(), FrameworkError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left, "first offer").await? {
                Event::FirstOffer { .. } => return Ok(()),
                Event::Error(e) => return Err(FrameworkError::Ended(e)),
                _ => {}
            }
        }
    }

    /// Collects events until `done` accepts one (included), within
    /// `timeout` overall; an [`Event::Error`] ends the wait with an error.
    pub async fn collect_until(
        &mut self,
        timeout: Duration,
        waiting_for: &str,
        mut done: impl FnMut(&Event) -> bool,
    ) -> Result<Vec<Event>, FrameworkError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut events = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let event = self.next(left, waiting_for).await?;
            if let Event::Error(e) = &event {
                return Err(FrameworkError::Ended(e.clone()));
            }
            let finished = done(&event);
            events.push(event);
            if finished {
                return Ok(events);
            }
        }
    }

    /// Tears the framework down (its tasks are killed) and waits for the driver.
    pub async fn stop(self) {
        let _ = self.driver.stop(false);
        let _ = tokio::time::timeout(Duration::from_secs(10), self.driver.join()).await;
    }
}

/// The scheduler: fills every offer with queued tasks.
struct Launcher {
    queue: Arc<Mutex<VecDeque<TaskRequest>>>,
    events: mpsc::UnboundedSender<Event>,
    seen_offer: bool,
}

impl Launcher {
    fn send(&self, event: Event) {
        // The receiver is gone only when the suite is over.
        let _ = self.events.send(event);
    }

    /// Pops the queued tasks that fit `offer`, in order (stops at the first
    /// that does not fit, so tasks launch in submission order).
    fn take_fitting(&self, offer: &Offer) -> Vec<TaskRequest> {
        let offered = Resources::from(offer.resources.clone());
        let (mut cpus, mut mem) = (offered.cpus().unwrap_or(0.0), offered.mem().unwrap_or(0.0));
        let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        let mut taken = Vec::new();
        while let Some(next) = queue.front() {
            // A little slack for float sums of many small cpus.
            if next.cpus > cpus + 1e-9 || next.mem_mb > mem + 1e-9 {
                break;
            }
            cpus -= next.cpus;
            mem -= next.mem_mb;
            taken.extend(queue.pop_front());
        }
        taken
    }
}

fn task_info(request: &TaskRequest, offer: &Offer) -> TaskInfo {
    TaskInfo {
        name: request.id.clone(),
        task_id: TaskId {
            value: request.id.clone(),
        },
        agent_id: offer.agent_id.clone(),
        resources: vec![
            resources::scalar("cpus", request.cpus),
            resources::scalar("mem", request.mem_mb),
        ],
        command: Some(CommandInfo {
            value: Some(request.command.clone()),
            shell: Some(true),
            ..Default::default()
        }),
        ..Default::default()
    }
}

impl Scheduler for Launcher {
    fn resource_offers(&mut self, driver: &SchedulerDriver, offers: Vec<Offer>) {
        if !self.seen_offer {
            self.seen_offer = true;
            self.send(Event::FirstOffer {
                at_ns: monotonic_ns(),
            });
        }
        for offer in offers {
            let requests = self.take_fitting(&offer);
            if requests.is_empty() {
                let filters = Filters {
                    refuse_seconds: Some(1.0),
                };
                let _ = driver.decline_offer(offer.id, Some(filters));
                continue;
            }
            let tasks: Vec<TaskInfo> = requests.iter().map(|r| task_info(r, &offer)).collect();
            let at_ns = monotonic_ns();
            for request in &requests {
                self.send(Event::Launched {
                    task_id: request.id.clone(),
                    at_ns,
                });
            }
            // Unused resources come back at the next allocation run.
            let filters = Filters {
                refuse_seconds: Some(0.0),
            };
            if let Err(e) = driver.launch_tasks(vec![offer.id], tasks, Some(filters)) {
                self.send(Event::Error(format!("launch_tasks: {e}")));
            }
        }
    }

    fn status_update(&mut self, _driver: &SchedulerDriver, status: TaskStatus) {
        let at_ns = monotonic_ns();
        self.send(Event::Update {
            task_id: status.task_id.value,
            state: TaskState::try_from(status.state).unwrap_or(TaskState::TaskLost),
            reason: status.reason.and_then(|r| Reason::try_from(r).ok()),
            message: status.message.unwrap_or_default(),
            at_ns,
        });
    }

    fn error(&mut self, _driver: &SchedulerDriver, message: &str) {
        self.send(Event::Error(message.to_owned()));
    }

    fn call_failed(&mut self, _driver: &SchedulerDriver, failure: &CallFailure) {
        self.send(Event::Error(format!("call failed: {failure:?}")));
    }
}
