//! A scheduler that reports every callback to the test through a channel.

#![allow(dead_code, clippy::unwrap_used, clippy::large_enum_variant)]

use std::time::Duration;

use mesos_proto::resources;
use mesos_proto::v1::{
    AgentId, CommandInfo, FrameworkId, FrameworkInfo, MasterInfo, Offer, TaskId, TaskInfo,
    TaskState, TaskStatus,
};
use mesos_scheduler::{CallFailure, DriverConfig, Scheduler, SchedulerDriver};
use tokio::sync::mpsc;

/// What the scheduler saw.
#[derive(Debug, Clone)]
pub enum Seen {
    Registered(String),
    Reregistered,
    Disconnected,
    Offers(Vec<Offer>),
    Update(TaskStatus),
    Error(String),
    CallFailed(String),
    Rescinded(String),
    Message(String, String, Vec<u8>),
    AgentLost(String),
    ExecutorLost(String, String, Option<i32>),
}

/// Launches one task (`t1`, cpus 0.5, mem 64, `echo hi`) on the first offer
/// and stops the driver when it ends.
pub struct Recorder {
    pub seen: mpsc::UnboundedSender<Seen>,
    pub launch: bool,
    pub launched: bool,
    pub stop_on_terminal: bool,
    pub explicit_acks: bool,
}

impl Recorder {
    pub fn new(launch: bool) -> (Self, mpsc::UnboundedReceiver<Seen>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            Self {
                seen: tx,
                launch,
                launched: false,
                stop_on_terminal: true,
                explicit_acks: false,
            },
            rx,
        )
    }
}

pub fn task(id: &str, agent_id: &AgentId) -> TaskInfo {
    TaskInfo {
        name: id.into(),
        task_id: TaskId { value: id.into() },
        agent_id: agent_id.clone(),
        resources: vec![
            resources::scalar("cpus", 0.5),
            resources::scalar("mem", 64.0),
        ],
        command: Some(CommandInfo {
            value: Some("echo hi".into()),
            shell: Some(true),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub fn terminal(state: i32) -> bool {
    matches!(
        TaskState::try_from(state),
        Ok(TaskState::TaskFinished
            | TaskState::TaskFailed
            | TaskState::TaskKilled
            | TaskState::TaskError
            | TaskState::TaskLost)
    )
}

impl Scheduler for Recorder {
    fn registered(&mut self, _: &SchedulerDriver, id: &FrameworkId, _: Option<&MasterInfo>) {
        let _ = self.seen.send(Seen::Registered(id.value.clone()));
    }

    fn reregistered(&mut self, _: &SchedulerDriver, _: Option<&MasterInfo>) {
        let _ = self.seen.send(Seen::Reregistered);
    }

    fn disconnected(&mut self, _: &SchedulerDriver) {
        let _ = self.seen.send(Seen::Disconnected);
    }

    fn resource_offers(&mut self, driver: &SchedulerDriver, offers: Vec<Offer>) {
        let _ = self.seen.send(Seen::Offers(offers.clone()));
        for offer in offers {
            if self.launch && !self.launched {
                self.launched = true;
                let task = task("t1", &offer.agent_id);
                driver
                    .launch_tasks(vec![offer.id], vec![task], None)
                    .unwrap();
            } else {
                driver.decline_offer(offer.id, None).unwrap();
            }
        }
    }

    fn status_update(&mut self, driver: &SchedulerDriver, status: TaskStatus) {
        let _ = self.seen.send(Seen::Update(status.clone()));
        if self.explicit_acks {
            driver.acknowledge_status_update(&status).unwrap();
        }
        if self.stop_on_terminal && terminal(status.state) {
            driver.stop(false).unwrap();
        }
    }

    fn offer_rescinded(&mut self, _: &SchedulerDriver, offer_id: &mesos_proto::v1::OfferId) {
        let _ = self.seen.send(Seen::Rescinded(offer_id.value.clone()));
    }

    fn framework_message(
        &mut self,
        _: &SchedulerDriver,
        executor_id: &mesos_proto::v1::ExecutorId,
        agent_id: &AgentId,
        data: &[u8],
    ) {
        let _ = self.seen.send(Seen::Message(
            executor_id.value.clone(),
            agent_id.value.clone(),
            data.to_vec(),
        ));
    }

    fn agent_lost(&mut self, _: &SchedulerDriver, agent_id: &AgentId) {
        let _ = self.seen.send(Seen::AgentLost(agent_id.value.clone()));
    }

    fn executor_lost(
        &mut self,
        _: &SchedulerDriver,
        executor_id: &mesos_proto::v1::ExecutorId,
        agent_id: &AgentId,
        status: Option<i32>,
    ) {
        let _ = self.seen.send(Seen::ExecutorLost(
            executor_id.value.clone(),
            agent_id.value.clone(),
            status,
        ));
    }

    fn error(&mut self, _: &SchedulerDriver, message: &str) {
        let _ = self.seen.send(Seen::Error(message.into()));
    }

    fn call_failed(&mut self, _: &SchedulerDriver, failure: &CallFailure) {
        let _ = self.seen.send(Seen::CallFailed(failure.to_string()));
    }
}

pub fn framework() -> FrameworkInfo {
    FrameworkInfo {
        user: "root".into(),
        name: "test framework".into(),
        ..Default::default()
    }
}

/// A config with short backoffs so that tests reconnect quickly.
pub fn config(master: &str) -> DriverConfig {
    DriverConfig::new(master, framework())
        .unwrap()
        .backoff(Duration::from_millis(10), Duration::from_millis(100))
}

/// The next thing seen that `pick` accepts; panics after 10 s.
pub async fn next<T>(
    rx: &mut mpsc::UnboundedReceiver<Seen>,
    mut pick: impl FnMut(Seen) -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let seen = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .expect("timed out waiting for a callback")
            .expect("driver dropped the scheduler");
        if let Some(found) = pick(seen) {
            return found;
        }
    }
}

/// Waits for the driver to end, at most 10 s.
pub async fn join(driver: &SchedulerDriver) -> Result<(), mesos_scheduler::DriverError> {
    tokio::time::timeout(Duration::from_secs(10), driver.join())
        .await
        .expect("driver did not end")
}
