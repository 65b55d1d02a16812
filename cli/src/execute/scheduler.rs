//! The framework behind `mesos-execute`: launch the task on the first offer
//! that holds it, print its updates, kill it after `--kill_after`, and
//! signal `main` at its terminal update (which reads the sandbox files and
//! then stops the driver).

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use mesos_proto::v1::scheduler::call;
use mesos_proto::v1::{FrameworkId, MasterInfo, Offer, TaskState, TaskStatus};
use mesos_scheduler::{CallFailure, Scheduler, SchedulerDriver};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::agent::AgentClient;
use super::flags::Flags;
use super::{report, task};

/// Timeout of each request to the agent.
pub const AGENT_TIMEOUT: Duration = Duration::from_secs(10);

/// What the run found out, shared with `main`'s epilogue.
#[derive(Debug, Default)]
pub struct Progress {
    /// The agent the task was launched on.
    pub agent: Option<AgentClient>,
    /// The task's executor (the task id for command tasks).
    pub executor_id: Option<String>,
    /// The sandbox directory, once the agent told us.
    pub sandbox: Option<String>,
    /// The lookup of the sandbox, while in flight.
    pub sandbox_lookup: Option<JoinHandle<()>>,
    /// The terminal update.
    pub end: Option<TaskStatus>,
    /// A framework-level failure (a rejected launch), for the exit message.
    pub failure: Option<String>,
}

/// Shared handle on [`Progress`], with a signal for the terminal update.
#[derive(Debug, Clone, Default)]
pub struct SharedProgress {
    progress: Arc<Mutex<Progress>>,
    ended: Arc<Notify>,
}

impl SharedProgress {
    /// Locks the progress.
    pub fn lock(&self) -> MutexGuard<'_, Progress> {
        self.progress.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Resolves once the terminal update has arrived.
    pub async fn ended(&self) {
        self.ended.notified().await;
    }
}

/// See the module docs.
#[derive(Debug)]
pub struct CommandScheduler {
    flags: Arc<Flags>,
    progress: SharedProgress,
    launched: bool,
    agents_told: HashSet<String>,
    kill_scheduled: bool,
}

impl CommandScheduler {
    /// A scheduler for `flags`, reporting into `progress`.
    pub fn new(flags: Arc<Flags>, progress: SharedProgress) -> Self {
        Self {
            flags,
            progress,
            launched: false,
            agents_told: HashSet::new(),
            kill_scheduled: false,
        }
    }

    fn launch(
        &mut self,
        driver: &SchedulerDriver,
        offer: &Offer,
        resources: Vec<mesos_proto::v1::Resource>,
    ) {
        let task = task::task_info(&self.flags, offer, resources);
        if let Err(e) = driver.launch_tasks(vec![offer.id.clone()], vec![task], None) {
            self.fail(driver, format!("cannot launch the task: {e}"));
            return;
        }
        self.launched = true;
        self.progress.lock().agent = Some(AgentClient::for_offer(offer, AGENT_TIMEOUT));
        report::line(
            &format!(
                "Submitted task '{}' to agent '{}' ({})",
                self.flags.name, offer.agent_id.value, offer.hostname
            ),
            &[],
        );
    }

    fn fail(&mut self, driver: &SchedulerDriver, message: String) {
        self.progress.lock().failure = Some(message);
        let _ = driver.abort();
    }

    /// Looks up the sandbox in the background and prints it when found.
    fn find_sandbox(&mut self, driver: &SchedulerDriver, executor_id: &str) {
        let mut progress = self.progress.lock();
        progress.executor_id = Some(executor_id.to_owned());
        if progress.sandbox_lookup.is_some() {
            return;
        }
        let (Some(agent), Some(framework_id)) = (progress.agent.clone(), driver.framework_id())
        else {
            return;
        };
        let shared = self.progress.clone();
        let executor_id = executor_id.to_owned();
        progress.sandbox_lookup = Some(tokio::spawn(async move {
            match agent.sandbox(&framework_id.value, &executor_id).await {
                Ok(directory) => {
                    report::line(
                        &format!("Sandbox: {directory} (agent {})", agent.authority()),
                        &[],
                    );
                    shared.lock().sandbox = Some(directory);
                }
                Err(e) => report::line(&format!("Sandbox path unknown: {e}"), &[]),
            }
        }));
    }

    fn schedule_kill(&mut self, driver: &SchedulerDriver, status: &TaskStatus) {
        let Some(after) = self.flags.kill_after.clone() else {
            return;
        };
        if self.kill_scheduled {
            return;
        }
        self.kill_scheduled = true;
        let driver = driver.clone();
        let task_id = status.task_id.clone();
        let agent_id = status.agent_id.clone();
        tokio::spawn(async move {
            tokio::time::sleep(after.get()).await;
            report::line(
                &format!(
                    "Killing task '{}' after {after} (--kill_after)",
                    task_id.value
                ),
                &[],
            );
            if let Err(e) = driver.kill_task(task_id, agent_id) {
                tracing::debug!(error = %e, "kill after the task ended");
            }
        });
    }
}

impl Scheduler for CommandScheduler {
    fn registered(
        &mut self,
        _driver: &SchedulerDriver,
        id: &FrameworkId,
        master: Option<&MasterInfo>,
    ) {
        let version = master
            .and_then(|m| m.version.as_deref())
            .map(|v| format!(" (master version {v})"))
            .unwrap_or_default();
        report::line(&format!("Subscribed with ID {}{version}", id.value), &[]);
    }

    fn reregistered(&mut self, _driver: &SchedulerDriver, _master: Option<&MasterInfo>) {
        report::line(
            "Re-subscribed after losing the connection to the master",
            &[],
        );
    }

    fn disconnected(&mut self, _driver: &SchedulerDriver) {
        report::line("Lost the connection to the master; reconnecting", &[]);
    }

    fn resource_offers(&mut self, driver: &SchedulerDriver, offers: Vec<Offer>) {
        for offer in offers {
            if self.launched {
                let _ = driver.decline_offer(offer.id, None);
                continue;
            }
            match task::fit(&self.flags, &offer) {
                Some(resources) => self.launch(driver, &offer, resources),
                None => {
                    if self.agents_told.insert(offer.agent_id.value.clone()) {
                        report::line(
                            &format!(
                                "Offer from agent '{}' cannot hold the task's resources ({}); waiting for another",
                                offer.agent_id.value, self.flags.resources.text
                            ),
                            &[],
                        );
                    }
                    let _ = driver.decline_offer(offer.id, None);
                }
            }
        }
    }

    fn status_update(&mut self, driver: &SchedulerDriver, status: TaskStatus) {
        report::status_update(&status);
        let state = TaskState::try_from(status.state).unwrap_or(TaskState::TaskUnknown);
        let executor_id = status
            .executor_id
            .as_ref()
            .map_or_else(|| status.task_id.value.clone(), |e| e.value.clone());
        if matches!(state, TaskState::TaskStarting | TaskState::TaskRunning) {
            self.find_sandbox(driver, &executor_id);
        }
        if state == TaskState::TaskRunning {
            self.schedule_kill(driver, &status);
        }
        if state.is_terminal() && self.progress.lock().end.is_none() {
            self.progress.lock().end = Some(status);
            // notify_one keeps the signal if `main` is not waiting yet.
            self.progress.ended.notify_one();
        }
    }

    fn error(&mut self, _driver: &SchedulerDriver, message: &str) {
        tracing::debug!(%message, "driver error");
    }

    fn call_failed(&mut self, driver: &SchedulerDriver, failure: &CallFailure) {
        let kind = call::Type::try_from(failure.call.r#type.unwrap_or_default());
        if kind == Ok(call::Type::Accept) {
            self.fail(
                driver,
                format!("the master rejected the launch: {}", failure.reason),
            );
        } else {
            report::line(&format!("Warning: {failure}"), &[]);
        }
    }
}
