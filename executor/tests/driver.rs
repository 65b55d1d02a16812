//! The SDK's driver in-process against a fake agent, speaking JSON.

#![allow(clippy::unwrap_used)]

mod fake_agent;

use std::time::Duration;

use fake_agent::{shell, task, FakeAgent, Setup, PATIENCE};
use mesos_executor::{Config, Executor, ExecutorDriver, Exit};
use mesos_proto::codec::ContentType;
use mesos_proto::v1::executor::event::{self, Subscribed};
use mesos_proto::v1::executor::Event;
use mesos_proto::v1::{KillPolicy, TaskId, TaskInfo, TaskState, TaskStatus};
use tokio::sync::mpsc;

/// Reports every callback as a line, and behaves like a tiny executor.
struct Recorder {
    log: mpsc::UnboundedSender<String>,
    stop_on_shutdown: bool,
}

impl Recorder {
    fn note(&self, line: String) {
        let _ = self.log.send(line);
    }
}

fn status(task_id: TaskId, state: TaskState) -> TaskStatus {
    TaskStatus {
        task_id,
        state: state as i32,
        ..Default::default()
    }
}

impl Executor for Recorder {
    fn registered(&mut self, _: &ExecutorDriver, subscribed: &Subscribed) {
        self.note(format!("registered on {}", subscribed.agent_info.hostname));
    }

    fn reregistered(&mut self, _: &ExecutorDriver, _: &Subscribed) {
        self.note("reregistered".into());
    }

    fn disconnected(&mut self, _: &ExecutorDriver) {
        self.note("disconnected".into());
    }

    fn launch_task(&mut self, driver: &ExecutorDriver, task: TaskInfo) {
        driver
            .send_status_update(status(task.task_id.clone(), TaskState::TaskRunning))
            .unwrap();
        self.note(format!("launch {}", task.task_id.value));
    }

    fn kill_task(&mut self, driver: &ExecutorDriver, task_id: TaskId, policy: Option<KillPolicy>) {
        let grace = policy.and_then(|p| p.grace_period).map(|g| g.nanoseconds);
        driver
            .send_status_update(status(task_id.clone(), TaskState::TaskKilled))
            .unwrap();
        self.note(format!("kill {} {grace:?}", task_id.value));
    }

    fn acknowledged(&mut self, _: &ExecutorDriver, task_id: &TaskId, uuid: &[u8]) {
        self.note(format!("ack {} {}", task_id.value, uuid.len()));
    }

    fn framework_message(&mut self, driver: &ExecutorDriver, mut data: Vec<u8>) {
        data.reverse();
        driver.send_framework_message(data).unwrap();
        self.note("message".into());
    }

    fn shutdown(&mut self, driver: &ExecutorDriver) {
        self.note("shutdown".into());
        if self.stop_on_shutdown {
            driver.stop();
        }
    }

    fn error(&mut self, _: &ExecutorDriver, message: &str) {
        self.note(format!("error {message}"));
    }
}

fn config(endpoint: String, extra: &[(&str, &str)]) -> Config {
    let mut config = Config::from_lookup(|name| {
        let value = match name {
            "MESOS_AGENT_ENDPOINT" => endpoint.as_str(),
            "MESOS_FRAMEWORK_ID" => fake_agent::FRAMEWORK_ID,
            "MESOS_EXECUTOR_ID" => fake_agent::EXECUTOR_ID,
            _ => extra.iter().find(|(k, _)| *k == name)?.1,
        };
        Some(value.to_owned())
    })
    .unwrap();
    config.content_type = ContentType::Json;
    config
}

fn start(
    config: Config,
    stop_on_shutdown: bool,
) -> (ExecutorDriver, mpsc::UnboundedReceiver<String>) {
    let (log, lines) = mpsc::unbounded_channel();
    let driver = ExecutorDriver::with_config(
        Recorder {
            log,
            stop_on_shutdown,
        },
        config,
    );
    driver.start().unwrap();
    (driver, lines)
}

async fn next_line(lines: &mut mpsc::UnboundedReceiver<String>) -> String {
    tokio::time::timeout(PATIENCE, lines.recv())
        .await
        .expect("a callback in time")
        .expect("driver alive")
}

async fn join(driver: ExecutorDriver) -> Exit {
    tokio::time::timeout(PATIENCE, tokio::task::spawn_blocking(move || driver.join()))
        .await
        .expect("driver ends in time")
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn driver_delivers_events_and_calls_in_json() {
    let mut agent = FakeAgent::start(Setup {
        task: Some(task(shell("unused"))),
        auto_ack: true,
        ..Default::default()
    })
    .await;
    let (driver, mut lines) = start(config(agent.addr.to_string(), &[]), true);

    assert_eq!(next_line(&mut lines).await, "registered on fake-agent");
    assert_eq!(next_line(&mut lines).await, "launch task-1");
    let running = agent.next_update().await;
    assert_eq!(running.state, TaskState::TaskRunning as i32);
    assert_eq!(next_line(&mut lines).await, "ack task-1 16");
    assert_eq!(driver.unacknowledged_update_count(), 0);

    agent.send(Event {
        r#type: Some(event::Type::Message as i32),
        message: Some(event::Message {
            data: b"hello".to_vec(),
        }),
        ..Default::default()
    });
    assert_eq!(next_line(&mut lines).await, "message");
    assert_eq!(agent.next_message().await, b"olleh");

    agent.kill(Some(Duration::from_secs(2)));
    assert_eq!(next_line(&mut lines).await, "kill task-1 Some(2000000000)");
    assert_eq!(
        agent.next_update().await.state,
        TaskState::TaskKilled as i32
    );

    agent.shutdown();
    assert_eq!(join(driver).await, Exit::Stopped);
    let all = agent.content_types();
    assert!(!all.is_empty());
    assert!(all.iter().all(|c| *c == ContentType::Json), "{all:?}");
}

#[tokio::test]
async fn checkpointing_driver_reconnects_and_reregisters() {
    let mut agent = FakeAgent::start(Setup::default()).await;
    let extra = [
        ("MESOS_CHECKPOINT", "1"),
        ("MESOS_SUBSCRIPTION_BACKOFF_MAX", "50ms"),
    ];
    let (driver, mut lines) = start(config(agent.addr.to_string(), &extra), true);
    assert_eq!(next_line(&mut lines).await, "registered on fake-agent");
    agent.next_subscribe().await;

    // An update sent while the agent is away goes out with the re-SUBSCRIBE.
    agent.drop_stream();
    assert_eq!(next_line(&mut lines).await, "disconnected");
    let uuid = driver
        .send_status_update(status(fake_agent::task_id(), TaskState::TaskRunning))
        .unwrap();
    assert_eq!(next_line(&mut lines).await, "reregistered");
    let resubscribe = agent.next_subscribe().await.subscribe.unwrap();
    let resent: Vec<_> = resubscribe
        .unacknowledged_updates
        .iter()
        .map(|u| u.status.uuid.clone())
        .collect();
    assert_eq!(resent, [Some(uuid.to_vec())]);

    driver.stop();
    assert_eq!(join(driver).await, Exit::Stopped);
}

#[tokio::test]
async fn unreachable_agent_means_shutdown() {
    // A port nobody listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = listener.local_addr().unwrap().to_string();
    drop(listener);

    let (driver, mut lines) = start(config(endpoint, &[("MESOS_CHECKPOINT", "1")]), true);
    assert_eq!(next_line(&mut lines).await, "shutdown");
    assert_eq!(join(driver).await, Exit::Stopped);
}

#[tokio::test]
async fn shutdown_grace_period_ends_a_driver_that_does_not_stop() {
    if nix::unistd::getpgrp() == nix::unistd::getpid() {
        // Leading our group, the driver would (rightly) SIGKILL this test
        // process; the binary tests cover that path.
        eprintln!("skipped: the test process leads its process group");
        return;
    }
    let agent = FakeAgent::start(Setup::default()).await;
    let extra = [("MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD", "200ms")];
    let (driver, mut lines) = start(config(agent.addr.to_string(), &extra), false);
    assert_eq!(next_line(&mut lines).await, "registered on fake-agent");
    agent.shutdown();
    assert_eq!(next_line(&mut lines).await, "shutdown");
    assert_eq!(join(driver).await, Exit::ShutdownGracePeriodExpired);
}
