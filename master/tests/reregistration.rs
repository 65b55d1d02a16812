//! Agent re-registration with a running master: a known agent is
//! reconciled (tasks it lost are sent back to it, executors it lost are
//! removed, kills it missed are repeated); an agent the master never saw is
//! admitted with its tasks, which wait for their framework to re-subscribe.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod support;

use mesos_proto::internal::{KillTaskMessage, RunTaskMessage, UpdateFrameworkMessage};
use mesos_proto::v1::task_status::{Reason, Source};
use mesos_proto::v1::{AgentId, FrameworkId, FrameworkInfo, TaskState};
use serde_json::json;
use support::*;

const AGENT: &str = "cpus:2;mem:1024;disk:4096;ports:[31000-32000]";

#[tokio::test]
async fn known_agent_reregistering_is_reconciled() {
    let master = master(&[]).await;
    let mut agent = FakeAgent::register(&master, AGENT).await;
    let mut scheduler = Scheduler::subscribe(&master, framework_info("reconciled")).await;
    let offer = scheduler.offers().await.remove(0);
    scheduler.accepted(launch_two(&offer)).await;
    let t1: RunTaskMessage = agent.expect().await;
    let _t2: RunTaskMessage = agent.expect().await;
    let state = get_json(&master, "/state").await;
    assert_eq!(
        state["frameworks"][0]["executors"][0]["executor_id"],
        json!("e1")
    );

    // A KILL for t1 reaches the agent, which (say) loses it in a restart.
    scheduler
        .accepted(json!({"type": "KILL", "kill": {"task_id": {"value": "t1"}}}))
        .await;
    let _: KillTaskMessage = agent.expect().await;

    // The agent comes back still running t1, without t2 and its executor.
    let running = reported_task(&t1, &agent.agent_id, TaskState::TaskRunning, None);
    let reply = agent
        .reregister(vec![running], vec![], vec![t1.framework.clone()])
        .await;
    assert_eq!(reply.slave_id.value, agent.agent_id);
    assert_eq!(reply.reconciliations.len(), 1, "{reply:?}");
    let reconciliation = &reply.reconciliations[0];
    assert_eq!(reconciliation.framework_id.value, scheduler.framework_id);
    assert_eq!(
        reconciliation.framework.as_ref().unwrap().name,
        "reconciled"
    );
    let status = &reconciliation.statuses[0];
    assert_eq!(reconciliation.statuses.len(), 1);
    assert_eq!(status.task_id.value, "t2");
    assert_eq!(status.state, TaskState::TaskStaging as i32);
    assert_eq!(status.source, Some(Source::Master as i32));
    assert_eq!(status.reason, Some(Reason::Reconciliation as i32));
    assert_eq!(status.message.as_deref(), Some("Reconciling task state"));

    // The kill is repeated; the agent gets the framework's current info.
    let kill: KillTaskMessage = agent.expect().await;
    assert_eq!(kill.task_id.value, "t1");
    let update: UpdateFrameworkMessage = agent.expect().await;
    assert_eq!(update.framework_id.value, scheduler.framework_id);

    // The executor the agent did not report is gone.
    let state = get_json(&master, "/state").await;
    assert_eq!(state["frameworks"][0]["executors"], json!([]));
    assert!(state["slaves"][0]["reregistered_time"].is_f64());
    master.shutdown().await;
}

#[tokio::test]
async fn unknown_agent_is_admitted_and_its_tasks_wait_for_their_framework() {
    let master = master(&[]).await;
    let mut agent = FakeAgent::start(&master.upid, AGENT).await;
    // Registered with a master whose registry is gone.
    let agent_id = "previous-master-S7".to_string();
    agent.agent_id = agent_id.clone();
    agent.info.id = Some(AgentId {
        value: agent_id.clone(),
    });
    let framework = FrameworkInfo {
        id: Some(FrameworkId {
            value: "previous-master-0003".into(),
        }),
        user: "root".into(),
        name: "returning".into(),
        ..Default::default()
    };
    let mut run = RunTaskMessage {
        framework: framework.clone(),
        ..Default::default()
    };
    run.task.name = "t9".into();
    run.task.task_id.value = "t9".into();
    let task = reported_task(
        &run,
        &agent_id,
        TaskState::TaskRunning,
        Some((TaskState::TaskRunning, [9u8; 16])),
    );
    let reply = agent.reregister(vec![task], vec![], vec![framework]).await;
    assert_eq!(reply.slave_id.value, agent_id);

    let state = get_json(&master, "/state").await;
    assert_eq!(state["slaves"][0]["id"], json!(agent_id));
    let recovered = &state["frameworks"][0];
    assert_eq!(recovered["id"], json!("previous-master-0003"));
    assert_eq!(recovered["recovered"], json!(true));
    assert_eq!(recovered["tasks"][0]["id"], json!("t9"));

    // The framework fails over to this master with its id: its task is
    // there, and the agent's retried update and the ack flow.
    let mut scheduler = Scheduler::resubscribe(
        &master,
        json!({"user": "root", "name": "returning"}),
        "previous-master-0003",
    )
    .await;
    scheduler
        .accepted(json!({"type": "RECONCILE", "reconcile": {"tasks": []}}))
        .await;
    let status = scheduler.update().await;
    assert_eq!(status.task_id.value, "t9");
    assert_eq!(status.state, TaskState::TaskRunning as i32);
    agent.send_update(
        "previous-master-0003",
        "t9",
        TaskState::TaskRunning,
        &[9u8; 16],
    );
    let retried = scheduler.update().await;
    assert_eq!(retried.uuid.as_deref(), Some(&[9u8; 16][..]));
    scheduler
        .accepted(acknowledge(&agent_id, "t9", &[9u8; 16]))
        .await;
    let ack: mesos_proto::internal::StatusUpdateAcknowledgementMessage = agent.expect().await;
    assert_eq!(ack.task_id.value, "t9");
    master.shutdown().await;
}
