//! The agent state machine against a fake containerizer and a recording
//! outbox: seed steps 6–8 and their failure paths, without root.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use base64::Engine as _;
use mesos_proto::internal::{
    ExitedExecutorMessage, KillTaskMessage, PingSlaveMessage, ReregisterSlaveMessage,
};
use mesos_proto::v1::task_status::{Reason, Source};
use mesos_proto::v1::{AgentId, FrameworkId, TaskId, TaskState};
use mesos_slave::containers::{ContainerTermination, Limitation};
use mesos_slave::executor_api::ExecutorCallError;
use mesos_slave::paths::WorkDir;
use mesos_slave::slave::SlaveState;
use support::{events, settle, state_of, Harness, AGENT, FRAMEWORK};

fn base64_of(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[tokio::test]
async fn command_task_runs_through_the_executor_and_updates_are_reliable() {
    let h = Harness::new(&[]);
    h.register();
    h.run_command_task("t1", "echo hello");
    settle().await;

    // Step 7: the synthesized command executor is launched in a container.
    let launch = h.containers.last_launch();
    assert_eq!(launch.executor_info.executor_id.value, "t1");
    let command = launch.executor_info.command.as_ref().unwrap();
    assert_eq!(command.value.as_deref(), Some("/opt/mesos/mesos-executor"));
    let cpus: f64 = launch
        .resources
        .iter()
        .filter(|r| r.name == "cpus")
        .map(|r| r.scalar.unwrap().value)
        .sum();
    let mem: f64 = launch
        .resources
        .iter()
        .filter(|r| r.name == "mem")
        .map(|r| r.scalar.unwrap().value)
        .sum();
    assert!(
        (cpus - 0.6).abs() < 1e-9,
        "task cpus + 0.1 executor overhead, got {cpus}"
    );
    assert_eq!(mem, 96.0, "task mem + 32 MB executor overhead");
    let env: BTreeMap<_, _> = launch.environment.iter().cloned().collect();
    assert_eq!(env["MESOS_AGENT_ENDPOINT"], "127.0.0.1:5051");
    assert_eq!(env["MESOS_EXECUTOR_ID"], "t1");
    assert_eq!(env["MESOS_FRAMEWORK_ID"], FRAMEWORK);
    assert_eq!(env["MESOS_CHECKPOINT"], "1");
    assert!(launch.sandbox.ends_with(format!(
        "slaves/{AGENT}/frameworks/{FRAMEWORK}/executors/t1/runs/{}",
        launch.container_id
    )));

    // Calls before SUBSCRIBE are refused.
    assert!(matches!(
        h.update("t1", "t1", TaskState::TaskRunning, 1),
        Err(ExecutorCallError::Forbidden(_))
    ));

    // Step 8: SUBSCRIBED with exactly the ids pymesos asserts, then LAUNCH.
    let mut stream = h.subscribe("t1");
    let subscribed = events(&mut stream);
    assert_eq!(subscribed[0]["type"], "SUBSCRIBED");
    assert_eq!(
        subscribed[0]["subscribed"]["executor_info"]["executor_id"],
        serde_json::json!({"value": "t1"})
    );
    assert_eq!(
        subscribed[0]["subscribed"]["framework_info"]["id"],
        serde_json::json!({"value": FRAMEWORK})
    );
    assert_eq!(
        subscribed[0]["subscribed"]["agent_info"]["id"]["value"],
        AGENT
    );
    assert_eq!(
        subscribed[0]["subscribed"]["container_id"]["value"],
        launch.container_id.as_str()
    );
    assert_eq!(subscribed[1]["type"], "LAUNCH");
    assert_eq!(subscribed[1]["launch"]["task"]["task_id"]["value"], "t1");

    // RUNNING is checkpointed, forwarded with the agent's ids, and acknowledged.
    h.update("t1", "t1", TaskState::TaskRunning, 1).unwrap();
    let forwarded = h.outbox.updates();
    assert_eq!(forwarded.len(), 1);
    assert_eq!(state_of(&forwarded[0]), TaskState::TaskRunning);
    assert_eq!(forwarded[0].agent_id.as_ref().unwrap().value, AGENT);
    assert_eq!(forwarded[0].executor_id.as_ref().unwrap().value, "t1");
    let acked = events(&mut stream);
    assert_eq!(acked[0]["type"], "ACKNOWLEDGED");
    assert_eq!(acked[0]["acknowledged"]["uuid"], base64_of(&[1; 16]));
    let updates_file = WorkDir::new(h.work_dir.path()).task_updates_file(
        mesos_slave::paths::RunIds {
            agent: AGENT,
            framework: FRAMEWORK,
            executor: "t1",
            container: &launch.container_id,
        },
        "t1",
    );
    assert!(updates_file.exists(), "checkpoint written before the ack");

    // FINISHED waits behind the unacknowledged RUNNING...
    h.update("t1", "t1", TaskState::TaskFinished, 2).unwrap();
    assert!(h.outbox.updates().is_empty());
    // ...and goes out once the scheduler acknowledges RUNNING.
    h.ack("t1", vec![1; 16]);
    let forwarded = h.outbox.updates();
    assert_eq!(forwarded.len(), 1);
    assert_eq!(state_of(&forwarded[0]), TaskState::TaskFinished);

    // The command executor exits; nothing more is reported for the task.
    h.containers.exit(
        &launch.container_id,
        ContainerTermination {
            status: Some(0),
            ..Default::default()
        },
    );
    settle().await;
    assert!(h.outbox.updates().is_empty());
    // The master does not track command executors: no ExitedExecutorMessage
    // (Mesos sends it only for executors it did not generate).
    let exited = h
        .outbox
        .take::<ExitedExecutorMessage>("ExitedExecutorMessage");
    assert!(exited.is_empty(), "{exited:?}");
    assert!(h
        .containers
        .destroyed
        .lock()
        .unwrap()
        .contains(&launch.container_id));
    h.ack("t1", vec![2; 16]);
    assert!(h.slave.lock().idle(), "no executor left running");
    let state = mesos_slave::http::state_json(&h.slave.lock());
    let completed =
        &state["completed_frameworks"][0]["completed_executors"][0]["completed_tasks"][0];
    assert_eq!(completed["state"], "TASK_FINISHED");
}

#[tokio::test(start_paused = true)]
async fn executor_that_never_subscribes_is_destroyed_after_the_registration_timeout() {
    let h = Harness::new(&["--executor_registration_timeout=2secs"]);
    h.register();
    h.run_command_task("t2", "sleep 100");
    settle().await;
    let container = h.containers.last_launch().container_id;
    tokio::time::advance(Duration::from_millis(1900)).await;
    settle().await;
    assert!(h.containers.destroyed.lock().unwrap().is_empty());
    tokio::time::advance(Duration::from_millis(200)).await;
    settle().await;
    assert!(h.containers.destroyed.lock().unwrap().contains(&container));
    let updates = h.outbox.updates();
    assert_eq!(updates.len(), 1);
    assert_eq!(state_of(&updates[0]), TaskState::TaskFailed);
    assert_eq!(
        updates[0].reason,
        Some(Reason::ExecutorRegistrationTimeout as i32)
    );
    assert_eq!(updates[0].source, Some(Source::Agent as i32));
    assert_eq!(updates[0].uuid.as_ref().map(Vec::len), Some(16));
}

#[tokio::test]
async fn oom_kill_fails_live_tasks_with_the_memory_reason() {
    let h = Harness::new(&[]);
    h.register();
    h.run_command_task("hog", "allocate");
    settle().await;
    let container = h.containers.last_launch().container_id;
    let _stream = h.subscribe("hog");
    h.update("hog", "hog", TaskState::TaskRunning, 1).unwrap();
    h.ack("hog", vec![1; 16]);
    h.outbox.updates();
    h.containers.exit(
        &container,
        ContainerTermination {
            status: Some(9),
            limitation: Some(Limitation {
                reason: Reason::ContainerLimitationMemory,
                message: "Memory limit exceeded: Requested: 96MB".into(),
            }),
            message: "OOM".into(),
        },
    );
    settle().await;
    let updates = h.outbox.updates();
    assert_eq!(updates.len(), 1);
    assert_eq!(state_of(&updates[0]), TaskState::TaskFailed);
    assert_eq!(
        updates[0].reason,
        Some(Reason::ContainerLimitationMemory as i32)
    );
    assert!(updates[0]
        .message
        .as_deref()
        .unwrap()
        .contains("Memory limit exceeded"));
}

#[tokio::test]
async fn executor_exit_with_live_tasks_fails_them() {
    let h = Harness::new(&[]);
    h.register();
    h.run_command_task("t3", "sleep 100");
    settle().await;
    let container = h.containers.last_launch().container_id;
    let _stream = h.subscribe("t3");
    h.containers.exit(
        &container,
        ContainerTermination {
            status: Some(1 << 8),
            ..Default::default()
        },
    );
    settle().await;
    let updates = h.outbox.updates();
    assert_eq!(state_of(&updates[0]), TaskState::TaskFailed);
    assert_eq!(updates[0].reason, Some(Reason::ExecutorTerminated as i32));
    assert!(updates[0]
        .message
        .as_deref()
        .unwrap()
        .contains("exited with status 1"));
    // Updates from the dead executor are no longer accepted.
    h.update("t3", "t3", TaskState::TaskFinished, 5).unwrap();
    assert!(h.outbox.updates().is_empty());
}

#[tokio::test(start_paused = true)]
async fn kill_goes_to_the_executor_then_the_container_is_destroyed_after_the_grace_period() {
    let h = Harness::new(&["--executor_shutdown_grace_period=3secs"]);
    h.register();
    h.run_command_task("t4", "sleep 100");
    settle().await;
    let container = h.containers.last_launch().container_id;
    let mut stream = h.subscribe("t4");
    events(&mut stream);
    h.update("t4", "t4", TaskState::TaskRunning, 1).unwrap();
    h.ack("t4", vec![1; 16]);
    h.outbox.updates();
    events(&mut stream);

    h.deliver(
        "KillTaskMessage",
        &KillTaskMessage {
            framework_id: FrameworkId {
                value: FRAMEWORK.into(),
            },
            task_id: TaskId { value: "t4".into() },
            kill_policy: None,
        },
    );
    let kill = events(&mut stream);
    assert_eq!(kill[0]["type"], "KILL");
    assert_eq!(kill[0]["kill"]["task_id"]["value"], "t4");
    // The executor ignores it; after the grace period the container goes.
    tokio::time::advance(Duration::from_millis(2900)).await;
    settle().await;
    assert!(h.containers.destroyed.lock().unwrap().is_empty());
    tokio::time::advance(Duration::from_millis(200)).await;
    settle().await;
    assert!(h.containers.destroyed.lock().unwrap().contains(&container));
    let updates = h.outbox.updates();
    assert_eq!(updates.len(), 1);
    assert_eq!(state_of(&updates[0]), TaskState::TaskKilled);
}

#[tokio::test]
async fn failed_launch_reports_container_launch_failed() {
    let h = Harness::new(&[]);
    h.register();
    *h.containers.fail_launch.lock().unwrap() = Some("clone: step 'exec' failed: ENOENT".into());
    h.run_command_task("t5", "true");
    settle().await;
    let updates = h.outbox.updates();
    assert_eq!(updates.len(), 1);
    assert_eq!(state_of(&updates[0]), TaskState::TaskFailed);
    assert_eq!(
        updates[0].reason,
        Some(Reason::ContainerLaunchFailed as i32)
    );
    assert!(updates[0].message.as_deref().unwrap().contains("ENOENT"));
}

#[tokio::test]
async fn invalid_tasks_get_task_error_without_a_launch() {
    let h = Harness::new(&[]);
    h.register();
    h.run_command_task("../escape", "true");
    settle().await;
    assert!(h.containers.launches.lock().unwrap().is_empty());
    let updates = h.outbox.updates();
    assert_eq!(state_of(&updates[0]), TaskState::TaskError);
    assert_eq!(updates[0].reason, Some(Reason::TaskInvalid as i32));
}

#[tokio::test]
async fn executor_calls_for_unknown_frameworks_or_executors_are_bad_requests() {
    let h = Harness::new(&[]);
    h.register();
    assert_eq!(
        h.update("nobody", "t", TaskState::TaskRunning, 1),
        Err(ExecutorCallError::BadRequest(
            "Framework cannot be found".into()
        ))
    );
    h.run_command_task("t6", "true");
    settle().await;
    assert_eq!(
        h.update("other", "t", TaskState::TaskRunning, 1),
        Err(ExecutorCallError::BadRequest(
            "Executor cannot be found".into()
        ))
    );
}

#[tokio::test]
async fn pings_are_answered_and_silence_leads_to_reregistration_with_tasks() {
    let h = Harness::new(&[]);
    h.register();
    h.run_command_task("t7", "sleep 100");
    settle().await;
    let _stream = h.subscribe("t7");
    h.deliver("PingSlaveMessage", &PingSlaveMessage { connected: true });
    let pongs = h
        .outbox
        .sent
        .lock()
        .unwrap()
        .iter()
        .filter(|(to, name, _)| name == "mesos.internal.PongSlaveMessage" && *to == h.master)
        .count();
    assert_eq!(pongs, 1);

    // No ping for longer than the announced 10 s: the master is lost.
    let later = Instant::now() + Duration::from_secs(11);
    h.slave.lock().tick(later);
    assert_eq!(h.slave.lock().state(), SlaveState::Disconnected);
    h.slave.lock().tick(later + Duration::from_secs(2));
    let reregister = h
        .outbox
        .take::<ReregisterSlaveMessage>("ReregisterSlaveMessage");
    assert_eq!(reregister.len(), 1);
    assert_eq!(reregister[0].slave.id.as_ref().unwrap().value, AGENT);
    assert_eq!(reregister[0].tasks.len(), 1);
    assert_eq!(reregister[0].tasks[0].task_id.value, "t7");
    assert!(
        reregister[0].executor_infos.is_empty(),
        "command executors are not re-registered"
    );
    assert_eq!(
        reregister[0].frameworks[0].id.as_ref().unwrap().value,
        FRAMEWORK
    );
}

#[tokio::test]
async fn updates_produced_while_disconnected_are_sent_after_registration() {
    let h = Harness::new(&[]);
    h.register();
    h.run_command_task("t8", "true");
    settle().await;
    let _stream = h.subscribe("t8");
    // The master goes silent; the executor keeps reporting.
    let later = Instant::now() + Duration::from_secs(11);
    h.slave.lock().tick(later);
    h.update("t8", "t8", TaskState::TaskRunning, 1).unwrap();
    assert!(
        h.outbox.updates().is_empty(),
        "nothing sent while disconnected"
    );
    h.deliver(
        "SlaveReregisteredMessage",
        &mesos_proto::internal::SlaveReregisteredMessage {
            slave_id: AgentId {
                value: AGENT.into(),
            },
            ..Default::default()
        },
    );
    let updates = h.outbox.updates();
    assert_eq!(updates.len(), 1);
    assert_eq!(state_of(&updates[0]), TaskState::TaskRunning);
}
