//! Agent recovery in the state machine, against the fake containerizer: a
//! first agent runs tasks and checkpoints, a second one on the same work
//! directory recovers (no root needed; the real thing is in `recovery.rs`).

// Test code: a failed unwrap is a failed test, with its location.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use mesos_proto::internal::{ReregisterSlaveMessage, SlaveReregisteredMessage};
use mesos_proto::v1::executor::call;
use mesos_proto::v1::task_status::{Reason, Source};
use mesos_proto::v1::{AgentId, TaskState};
use mesos_slave::checkpoint::Checkpointer;
use mesos_slave::containers::KnownContainer;
use mesos_slave::executor_api::ExecutorCallError;
use mesos_slave::paths::{RunIds, WorkDir};
use mesos_slave::slave::SlaveState;
use support::{events, settle, state_of, Harness, AGENT, FRAMEWORK};

/// A first agent that ran command task `t1` up to TASK_RUNNING (acked by
/// the scheduler if `acked`) and then "died". Returns it and the container.
async fn first_run(acked: bool) -> (Harness, String) {
    let h = Harness::new(&[]);
    h.register();
    h.run_command_task("t1", "sleep 600");
    settle().await;
    let container = h.containers.last_launch().container_id;
    let mut stream = h.subscribe("t1");
    events(&mut stream);
    h.update("t1", "t1", TaskState::TaskRunning, 1).unwrap();
    assert_eq!(h.outbox.updates().len(), 1);
    if acked {
        h.ack("t1", vec![1; 16]);
    }
    (h, container)
}

fn ids(container: &str) -> RunIds<'_> {
    RunIds {
        agent: AGENT,
        framework: FRAMEWORK,
        executor: "t1",
        container,
    }
}

/// Lets the recovered agent re-register and returns what it reported.
fn reregister(h: &Harness) -> ReregisterSlaveMessage {
    assert_eq!(h.slave.lock().state(), SlaveState::Disconnected);
    h.slave.lock().tick(Instant::now() + Duration::from_secs(2));
    let mut sent = h
        .outbox
        .take::<ReregisterSlaveMessage>("ReregisterSlaveMessage");
    assert_eq!(sent.len(), 1, "one re-registration");
    h.deliver(
        "SlaveReregisteredMessage",
        &SlaveReregisteredMessage {
            slave_id: AgentId {
                value: AGENT.into(),
            },
            reconciliations: Vec::new(),
            connection: None,
        },
    );
    sent.remove(0)
}

#[tokio::test]
async fn checkpoint_is_written_for_checkpointing_frameworks_only() {
    let (h, container) = first_run(false).await;
    let work = WorkDir::new(h.work_dir.path());
    for path in [
        work.agent_info_file(AGENT),
        work.framework_info_file(AGENT, FRAMEWORK),
        work.framework_pid_file(AGENT, FRAMEWORK),
        work.executor_info_file(AGENT, FRAMEWORK, "t1"),
        work.forked_pid_file(ids(&container)),
        work.task_info_file(ids(&container), "t1"),
        work.task_updates_file(ids(&container), "t1"),
    ] {
        assert!(path.exists(), "{} missing", path.display());
    }
    let latest = work
        .meta_executor_dir(AGENT, FRAMEWORK, "t1")
        .join("runs/latest");
    assert_eq!(
        std::fs::read_link(latest).unwrap().to_str(),
        Some(&*container)
    );
    assert_eq!(
        std::fs::read_to_string(work.forked_pid_file(ids(&container))).unwrap(),
        "4242"
    );

    let other = Harness::new(&[]);
    other.register();
    other.run_command_task_for(Harness::framework(false), "t9", "sleep 600");
    settle().await;
    let work = WorkDir::new(other.work_dir.path());
    assert!(
        work.agent_info_file(AGENT).exists(),
        "the agent is always checkpointed"
    );
    assert!(
        !work.meta_agent_dir(AGENT).join("frameworks").exists(),
        "nothing of a framework without checkpoint: true"
    );
}

#[tokio::test]
async fn restarted_agent_takes_its_executor_back_and_replays_unacknowledged_updates() {
    let (h, container) = first_run(false).await;
    let h2 = h.restart(&[]);
    let known = h2.recover("boot-1", &[&container]).await.unwrap();
    assert_eq!(
        known,
        [KnownContainer {
            container_id: container.clone(),
            pid: Some(4242),
        }]
    );
    assert_eq!(h2.slave.lock().state(), SlaveState::Recovering);
    assert!(
        h2.containers.launches.lock().unwrap().is_empty(),
        "nothing relaunched"
    );

    // The executor comes back with an update it produced while the agent
    // was down, and one the dead agent had checkpointed but not yet
    // acknowledged to it.
    let while_down = call::Subscribe {
        unacknowledged_tasks: Vec::new(),
        unacknowledged_updates: vec![
            call::Update {
                status: Harness::executor_status("t1", TaskState::TaskRunning, 1),
            },
            call::Update {
                status: Harness::executor_status("t1", TaskState::TaskFinished, 2),
            },
        ],
    };
    let mut stream = h2.try_subscribe("t1", while_down).unwrap();
    let sent = events(&mut stream);
    let kinds: Vec<&str> = sent.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["SUBSCRIBED", "ACKNOWLEDGED", "ACKNOWLEDGED"]);
    let metrics = mesos_slave::http::metrics(&h2.slave.lock());
    assert_eq!(
        metrics["slave/valid_status_updates"], 1.0,
        "the repeat is not counted"
    );
    assert_eq!(metrics["slave/tasks_finished"], 1.0);

    // Every expected executor is back: recovery ends, the agent
    // re-registers under the same id with the task's latest state.
    let reregistration = reregister(&h2);
    assert_eq!(reregistration.slave.id.unwrap().value, AGENT);
    assert_eq!(reregistration.tasks.len(), 1);
    let task = &reregistration.tasks[0];
    assert_eq!(task.state, TaskState::TaskFinished as i32);
    let statuses: Vec<i32> = task.statuses.iter().map(|s| s.state).collect();
    assert_eq!(
        statuses,
        [
            TaskState::TaskRunning as i32,
            TaskState::TaskFinished as i32
        ],
        "no status recorded twice"
    );
    assert_eq!(
        task.status_update_state,
        Some(TaskState::TaskRunning as i32),
        "RUNNING is still unacknowledged"
    );
    assert_eq!(
        reregistration.frameworks[0].id.as_ref().unwrap().value,
        FRAMEWORK
    );

    // The replayed RUNNING goes out first, FINISHED after its ack.
    let replayed = h2.outbox.updates();
    assert_eq!(replayed.len(), 1);
    assert_eq!(state_of(&replayed[0]), TaskState::TaskRunning);
    assert_eq!(replayed[0].uuid, Some(vec![1; 16]));
    h2.ack("t1", vec![1; 16]);
    let next = h2.outbox.updates();
    assert_eq!(state_of(&next[0]), TaskState::TaskFinished);
    assert_eq!(next[0].uuid, Some(vec![2; 16]));
}

#[tokio::test(start_paused = true)]
async fn executor_that_does_not_resubscribe_is_destroyed_and_its_tasks_lost() {
    let (h, container) = first_run(true).await;
    let h2 = h.restart(&[]);
    h2.recover("boot-1", &[&container]).await.unwrap();
    tokio::time::advance(Duration::from_millis(1900)).await;
    settle().await;
    assert!(h2.containers.destroyed.lock().unwrap().is_empty());
    assert_eq!(h2.slave.lock().state(), SlaveState::Recovering);
    tokio::time::advance(Duration::from_millis(200)).await;
    settle().await;
    // Killed, then (once it ended) cleaned up.
    assert_eq!(h2.containers.destroyed.lock().unwrap()[0], container);
    let reregistration = reregister(&h2);
    assert_eq!(reregistration.tasks[0].state, TaskState::TaskLost as i32);
    let lost = h2.outbox.updates();
    assert_eq!(lost.len(), 1);
    assert_eq!(state_of(&lost[0]), TaskState::TaskLost);
    assert_eq!(
        lost[0].reason,
        Some(Reason::ExecutorReregistrationTimeout as i32)
    );
    assert_eq!(lost[0].source, Some(Source::Agent as i32));
    assert_eq!(
        lost[0].message.as_deref(),
        Some("Executor did not reregister within 2secs")
    );
}

#[tokio::test]
async fn executor_gone_while_the_agent_was_down_fails_its_tasks() {
    let (h, container) = first_run(true).await;
    let h2 = h.restart(&[]);
    // The containerizer finds nothing of the container.
    h2.recover("boot-1", &[]).await.unwrap();
    assert_eq!(
        h2.containers.known.lock().unwrap()[0].container_id,
        container,
        "asked for"
    );
    reregister(&h2);
    let failed = h2.outbox.updates();
    assert_eq!(failed.len(), 1);
    assert_eq!(state_of(&failed[0]), TaskState::TaskFailed);
    assert_eq!(failed[0].reason, Some(Reason::ExecutorTerminated as i32));
    assert!(
        failed[0]
            .message
            .as_deref()
            .unwrap_or_default()
            .starts_with("Abnormal executor termination: unknown container"),
        "{failed:?}"
    );
}

#[tokio::test]
async fn after_a_reboot_nothing_is_reattached() {
    let (h, container) = first_run(true).await;
    let work = WorkDir::new(h.work_dir.path());
    Checkpointer::new(work.clone()).boot_id("boot-1").unwrap();
    let h2 = h.restart(&[]);
    let known = h2.recover("boot-2", &[&container]).await.unwrap();
    assert!(known.is_empty(), "pids of another boot mean nothing");
    assert!(!work.forked_pid_file(ids(&container)).exists());
    let reregistration = reregister(&h2);
    assert_eq!(
        reregistration.slave.id.unwrap().value,
        AGENT,
        "Mesos 1.11 keeps the agent id across reboots"
    );
    let failed = h2.outbox.updates();
    assert_eq!(state_of(&failed[0]), TaskState::TaskFailed);
    assert_eq!(failed[0].reason, Some(Reason::ExecutorTerminated as i32));
    assert_eq!(
        std::fs::read_to_string(work.boot_id_file()).unwrap().trim(),
        mesos_slave::checkpoint::current_boot_id().unwrap(),
        "the running boot is checkpointed once recovery is over"
    );
}

#[tokio::test]
async fn executor_calls_get_503_until_containers_are_recovered() {
    let (h, container) = first_run(true).await;
    let h2 = h.restart(&[]);
    let state =
        mesos_slave::state::recover(&WorkDir::new(h.work_dir.path()), true, Some("b")).unwrap();
    h2.slave.lock().begin_recovery(state).unwrap();
    let address = h2.serve().await;
    assert_eq!(support::http::get(address, "/state").await.status, 503);
    assert!(matches!(
        h2.try_subscribe("t1", call::Subscribe::default()),
        Err(ExecutorCallError::Unavailable(_))
    ));
    assert!(matches!(
        h2.update("t1", "t1", TaskState::TaskFinished, 9),
        Err(ExecutorCallError::Unavailable(_))
    ));
    *h2.containers.still_running.lock().unwrap() = vec![container.clone()];
    let recovered = {
        use mesos_slave::containers::Containers;
        h2.containers
            .recover(vec![KnownContainer {
                container_id: container,
                pid: Some(4242),
            }])
            .await
            .unwrap()
    };
    h2.slave.lock().containers_recovered(recovered);
    // Not subscribed yet: 403, like any executor before SUBSCRIBE.
    assert!(matches!(
        h2.update("t1", "t1", TaskState::TaskFinished, 9),
        Err(ExecutorCallError::Forbidden(_))
    ));
    assert!(h2.try_subscribe("t1", call::Subscribe::default()).is_ok());
    assert_eq!(
        support::http::get(address, "/state").await.status,
        200,
        "recovery is over once the executor is back"
    );
}

#[tokio::test]
async fn tasks_that_never_reached_the_executor_are_lost_after_a_restart() {
    let h = Harness::new(&[]);
    h.register();
    h.run_command_task("t1", "sleep 600");
    settle().await;
    let container = h.containers.last_launch().container_id;
    // The agent dies before the executor subscribes: the task is
    // checkpointed as TASK_STAGING and the executor never got it.
    let h2 = h.restart(&[]);
    h2.recover("boot-1", &[&container]).await.unwrap();
    h2.try_subscribe("t1", call::Subscribe::default()).unwrap();
    reregister(&h2);
    let lost = h2.outbox.updates();
    assert_eq!(lost.len(), 1, "{lost:?}");
    assert_eq!(state_of(&lost[0]), TaskState::TaskLost);
    assert_eq!(lost[0].reason, Some(Reason::AgentRestarted as i32));
    assert_eq!(
        lost[0].message.as_deref(),
        Some("Task launched during agent restart")
    );
}

#[tokio::test]
async fn acknowledged_terminal_updates_are_not_sent_again() {
    let (h, container) = first_run(true).await;
    h.update("t1", "t1", TaskState::TaskFinished, 2).unwrap();
    h.outbox.updates();
    h.ack("t1", vec![2; 16]);
    let h2 = h.restart(&[]);
    h2.recover("boot-1", &[&container]).await.unwrap();
    // The executor never saw the agent's ACKNOWLEDGED for FINISHED.
    let resend = call::Subscribe {
        unacknowledged_tasks: Vec::new(),
        unacknowledged_updates: vec![call::Update {
            status: Harness::executor_status("t1", TaskState::TaskFinished, 2),
        }],
    };
    let mut stream = h2.try_subscribe("t1", resend).unwrap();
    let sent = events(&mut stream);
    assert_eq!(sent[1]["type"], "ACKNOWLEDGED");
    let reregistration = reregister(&h2);
    assert!(
        reregistration.tasks.is_empty(),
        "{:?}",
        reregistration.tasks
    );
    assert!(h2.outbox.updates().is_empty(), "nothing to resend");
}

#[tokio::test]
async fn cleanup_kills_the_old_executors_forgets_them_and_shuts_down() {
    let (h, container) = first_run(false).await;
    let h2 = h.restart(&["--recover=cleanup"]);
    h2.recover("boot-1", &[&container]).await.unwrap();
    let terminated = h2.slave.clone();
    tokio::time::timeout(Duration::from_secs(5), terminated.terminated())
        .await
        .expect("the agent shuts down after the cleanup");
    assert_eq!(*h2.containers.destroyed.lock().unwrap(), [container]);
    assert_eq!(h2.slave.lock().state(), SlaveState::Terminating);
    let work = WorkDir::new(h.work_dir.path());
    assert!(!work.meta_agent_dir(AGENT).join("frameworks").exists());
    assert!(
        work.agent_info_file(AGENT).exists(),
        "the agent keeps its id"
    );
    assert!(h2.outbox.sent.lock().unwrap().is_empty(), "no registration");

    // The next start recovers the agent and nothing else.
    let h3 = h.restart(&[]);
    assert!(h3.recover("boot-1", &[]).await.unwrap().is_empty());
    let reregistration = reregister(&h3);
    assert!(reregistration.tasks.is_empty());
}
