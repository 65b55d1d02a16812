//! ACCEPT validation and launch, status updates and acknowledgements,
//! reconciliation, KILL, and agent health, against a fake agent.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod support;

use mesos_proto::internal::{KillTaskMessage, RunTaskMessage, StatusUpdateAcknowledgementMessage};
use mesos_proto::v1::scheduler::event;
use mesos_proto::v1::task_status::{Reason, Source};
use mesos_proto::v1::TaskState;
use serde_json::json;
use support::*;

const AGENT: &str = "cpus:2;mem:1024;disk:4096;ports:[31000-32000]";

#[tokio::test]
async fn task_without_command_or_executor_gets_task_error() {
    let master = master(&[]).await;
    let _agent = FakeAgent::register(&master, AGENT).await;
    let mut scheduler = Scheduler::subscribe(&master, framework_info("invalid")).await;
    let offer = scheduler.offers().await.remove(0);
    let mut call = launch(&offer, "t1", 1.0, 128.0);
    call["accept"]["operations"][0]["launch"]["task_infos"][0]
        .as_object_mut()
        .unwrap()
        .remove("command");
    scheduler.accepted(call).await;
    let status = scheduler.update().await;
    assert_eq!(status.task_id.value, "t1");
    assert_eq!(status.state, TaskState::TaskError as i32);
    assert_eq!(status.reason, Some(Reason::TaskInvalid as i32));
    assert_eq!(status.source, Some(Source::Master as i32));
    assert_eq!(
        status.message.as_deref(),
        Some("Task should have at least one (but not both) of CommandInfo or ExecutorInfo present")
    );
    assert_eq!(status.uuid, None, "no acknowledgement expected");
    let metrics = get_json(&master, "/metrics/snapshot").await;
    assert_eq!(metrics["master/tasks_error"], json!(1.0));
    master.shutdown().await;
}

#[tokio::test]
async fn invalid_task_ids_and_excess_resources_are_task_errors() {
    let master = master(&[]).await;
    let _agent = FakeAgent::register(&master, AGENT).await;
    let mut scheduler = Scheduler::subscribe(&master, framework_info("invalid")).await;
    let offer = scheduler.offers().await.remove(0);
    let mut call = launch(&offer, "..", 1.0, 128.0);
    let mut too_big = launch(&offer, "big", 8.0, 128.0)["accept"]["operations"][0]["launch"]
        ["task_infos"][0]
        .clone();
    too_big["task_id"] = json!({"value": "big"});
    call["accept"]["operations"][0]["launch"]["task_infos"]
        .as_array_mut()
        .unwrap()
        .push(too_big);
    scheduler.accepted(call).await;
    let first = scheduler.update().await;
    assert_eq!(first.state, TaskState::TaskError as i32);
    assert_eq!(first.message.as_deref(), Some("'..' is disallowed"));
    let second = scheduler.update().await;
    assert_eq!(second.task_id.value, "big");
    assert_eq!(second.state, TaskState::TaskError as i32);
    let message = second.message.unwrap();
    assert!(
        message.starts_with("Total resources cpus(allocated: *):8")
            && message.contains("required by task and its executor is more than available"),
        "{message}"
    );
    master.shutdown().await;
}

#[tokio::test]
async fn unknown_offer_gives_task_lost_invalid_offers() {
    let master = master(&[]).await;
    let _agent = FakeAgent::register(&master, AGENT).await;
    let mut scheduler = Scheduler::subscribe(&master, framework_info("stale")).await;
    let mut offer = scheduler.offers().await.remove(0);
    offer.id.value = "no-such-offer".to_string();
    scheduler.accepted(launch(&offer, "t1", 1.0, 128.0)).await;
    let status = scheduler.update().await;
    assert_eq!(status.state, TaskState::TaskLost as i32);
    assert_eq!(status.reason, Some(Reason::InvalidOffers as i32));
    assert_eq!(
        status.message.as_deref(),
        Some("Task launched with invalid offers: Offer no-such-offer is no longer valid")
    );
    master.shutdown().await;
}

#[tokio::test]
async fn valid_launch_reaches_the_agent_and_updates_flow_until_acknowledged() {
    let master = master(&[]).await;
    let mut agent = FakeAgent::register(&master, AGENT).await;
    let mut scheduler = Scheduler::subscribe(&master, framework_info("launch")).await;
    let offer = scheduler.offers().await.remove(0);
    scheduler.accepted(launch(&offer, "t1", 1.0, 256.0)).await;

    let run: RunTaskMessage = agent.expect().await;
    assert_eq!(run.task.task_id.value, "t1");
    assert_eq!(run.task.agent_id.value, agent.agent_id);
    assert_eq!(
        run.framework.id.as_ref().unwrap().value,
        scheduler.framework_id
    );
    assert_eq!(run.framework.name, "launch");
    assert_eq!(run.launch_executor, Some(true));
    assert_eq!(
        run.task.command.as_ref().unwrap().value.as_deref(),
        Some("sleep 1")
    );

    let state = get_json(&master, "/state").await;
    let task = &state["frameworks"][0]["tasks"][0];
    assert_eq!(task["id"], json!("t1"));
    assert_eq!(task["state"], json!("TASK_STAGING"));
    assert_eq!(task["resources"]["cpus"], json!(1.0));
    let metrics = get_json(&master, "/metrics/snapshot").await;
    assert_eq!(metrics["master/tasks_staging"], json!(1.0));
    assert_eq!(metrics["master/cpus_used"], json!(1.0));

    // Updates are forwarded in order, with uuid and agent_id.
    let framework_id = scheduler.framework_id.clone();
    let (starting, running, finished) = ([1u8; 16], [2u8; 16], [3u8; 16]);
    agent.send_update(&framework_id, "t1", TaskState::TaskStarting, &starting);
    agent.send_update(&framework_id, "t1", TaskState::TaskRunning, &running);
    for (state, uuid) in [
        (TaskState::TaskStarting, starting),
        (TaskState::TaskRunning, running),
    ] {
        let status = scheduler.update().await;
        assert_eq!(status.state, state as i32);
        assert_eq!(status.uuid.as_deref(), Some(&uuid[..]));
        assert_eq!(status.agent_id.as_ref().unwrap().value, agent.agent_id);
    }
    // The agent retries an unacknowledged update: forwarded again.
    agent.send_update(&framework_id, "t1", TaskState::TaskRunning, &running);
    let retry = scheduler.update().await;
    assert_eq!(retry.uuid.as_deref(), Some(&running[..]));

    // ACKNOWLEDGE reaches the agent.
    let agent_id = agent.agent_id.clone();
    let ack = |uuid: &[u8; 16]| {
        json!({"type": "ACKNOWLEDGE", "acknowledge": {
            "agent_id": {"value": agent_id},
            "task_id": {"value": "t1"},
            "uuid": base64_encode(uuid)
        }})
    };
    scheduler.accepted(ack(&running)).await;
    let relayed: StatusUpdateAcknowledgementMessage = agent.expect().await;
    assert_eq!(relayed.uuid, running.to_vec());
    assert_eq!(relayed.task_id.value, "t1");
    assert_eq!(relayed.framework_id.value, framework_id);

    // Terminal update: resources recovered, task removed once acknowledged.
    agent.send_update(&framework_id, "t1", TaskState::TaskFinished, &finished);
    let done = scheduler.update().await;
    assert_eq!(done.state, TaskState::TaskFinished as i32);
    let state = get_json(&master, "/state").await;
    assert_eq!(
        state["frameworks"][0]["tasks"][0]["state"],
        json!("TASK_FINISHED")
    );
    scheduler.accepted(ack(&finished)).await;
    let _: StatusUpdateAcknowledgementMessage = agent.expect().await;
    let state = get_json(&master, "/state").await;
    assert_eq!(state["frameworks"][0]["tasks"], json!([]));
    assert_eq!(
        state["frameworks"][0]["completed_tasks"][0]["state"],
        json!("TASK_FINISHED")
    );
    let metrics = get_json(&master, "/metrics/snapshot").await;
    assert_eq!(metrics["master/tasks_finished"], json!(1.0));
    assert_eq!(metrics["master/cpus_used"], json!(0.0));
    master.shutdown().await;
}

#[tokio::test]
async fn reconcile_and_kill() {
    let master = master(&[]).await;
    let mut agent = FakeAgent::register(&master, AGENT).await;
    let mut scheduler = Scheduler::subscribe(&master, framework_info("reconcile")).await;
    let offer = scheduler.offers().await.remove(0);
    scheduler.accepted(launch(&offer, "t1", 1.0, 256.0)).await;
    let _: RunTaskMessage = agent.expect().await;

    // Implicit: every known task, latest state, no uuid.
    scheduler
        .accepted(json!({"type": "RECONCILE", "reconcile": {"tasks": []}}))
        .await;
    let status = scheduler.update().await;
    assert_eq!(status.task_id.value, "t1");
    assert_eq!(status.state, TaskState::TaskStaging as i32);
    assert_eq!(status.reason, Some(Reason::Reconciliation as i32));
    assert_eq!(status.uuid, None);

    // Explicit, unknown task: TASK_LOST for a non-partition-aware framework.
    scheduler
        .accepted(json!({"type": "RECONCILE", "reconcile": {"tasks": [
            {"task_id": {"value": "ghost"}}
        ]}}))
        .await;
    let status = scheduler.update().await;
    assert_eq!(status.task_id.value, "ghost");
    assert_eq!(status.state, TaskState::TaskLost as i32);
    assert_eq!(
        status.message.as_deref(),
        Some("Reconciliation: Task is unknown")
    );

    // KILL without agent_id (as pymesos sends it) reaches the agent.
    scheduler
        .accepted(json!({"type": "KILL", "kill": {"task_id": {"value": "t1"}}}))
        .await;
    let kill: KillTaskMessage = agent.expect().await;
    assert_eq!(kill.task_id.value, "t1");
    assert_eq!(kill.framework_id.value, scheduler.framework_id);
    master.shutdown().await;
}

#[tokio::test]
async fn unresponsive_agent_is_removed_with_its_offers_and_tasks() {
    let master = master(&["--agent_ping_timeout=1secs", "--max_agent_ping_timeouts=2"]).await;
    let mut agent = FakeAgent::register(&master, AGENT).await;
    let mut info = framework_info("partition");
    info["capabilities"] = json!([{"type": "PARTITION_AWARE"}]);
    let mut aware = Scheduler::subscribe(&master, info).await;
    let offer = aware.offers().await.remove(0);
    aware.accepted(launch(&offer, "t1", 1.0, 256.0)).await;
    let _: RunTaskMessage = agent.expect().await;
    let mut plain = Scheduler::subscribe(&master, framework_info("plain")).await;
    let plain_offer = plain.offers().await.remove(0);
    assert_eq!(plain_offer.agent_id.value, agent.agent_id);

    agent
        .answer_pings
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let rescind = plain.next_of(event::Type::Rescind).await;
    assert_eq!(
        rescind.rescind.unwrap().offer_id.value,
        plain_offer.id.value
    );
    let failure = plain.next_of(event::Type::Failure).await;
    assert_eq!(
        failure.failure.unwrap().agent_id.unwrap().value,
        agent.agent_id
    );
    let status = aware.update().await;
    assert_eq!(status.state, TaskState::TaskUnreachable as i32);
    assert_eq!(status.reason, Some(Reason::AgentRemoved as i32));
    let state = get_json(&master, "/state").await;
    assert_eq!(state["slaves"], json!([]));
    let aware_state = state["frameworks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == json!("partition"))
        .unwrap()
        .clone();
    assert_eq!(aware_state["unreachable_tasks"][0]["id"], json!("t1"));
    master.shutdown().await;
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
