//! Offers, filters, SUPPRESS/REVIVE, offer timeout and framework failover,
//! end to end against a master with a fake agent.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use mesos_proto::internal::{RunTaskMessage, ShutdownFrameworkMessage};
use mesos_proto::v1::scheduler::event;
use serde_json::json;
use support::*;

const AGENT: &str = "cpus:2;mem:1024;disk:4096;ports:[31000-32000]";

#[tokio::test]
async fn offers_arrive_after_subscribe_and_after_agent_registration() {
    let master = master(&[]).await;
    let first = FakeAgent::register(&master, AGENT).await;
    assert!(
        first.agent_id.starts_with(&format!("{}-S", master.id)),
        "{}",
        first.agent_id
    );

    let mut scheduler = Scheduler::subscribe(&master, framework_info("offers")).await;
    assert!(scheduler
        .framework_id
        .starts_with(&format!("{}-", master.id)));
    let offers = scheduler.offers().await;
    assert_eq!(offers.len(), 1);
    let offer = &offers[0];
    assert!(offer.id.value.starts_with(&format!("{}-O", master.id)));
    assert_eq!(offer.agent_id.value, first.agent_id);
    assert_eq!(offer.hostname, "fake-agent");
    assert_eq!(offer.framework_id.value, scheduler.framework_id);
    // Pre-refinement format for a framework without MULTI_ROLE.
    #[allow(deprecated)]
    let roles: Vec<_> = offer.resources.iter().map(|r| r.role.clone()).collect();
    assert!(roles.iter().all(|r| r.as_deref() == Some("*")), "{roles:?}");
    assert!(offer.allocation_info.is_none());
    let cpus = offer.resources.iter().find(|r| r.name == "cpus").unwrap();
    assert_eq!(cpus.scalar.as_ref().unwrap().value, 2.0);
    let ports = offer.resources.iter().find(|r| r.name == "ports").unwrap();
    assert_eq!(ports.ranges.as_ref().unwrap().range[0].begin, 31000);

    // A new agent is offered at once.
    let second = FakeAgent::register(&master, "cpus:1;mem:512").await;
    let offers = scheduler.offers().await;
    assert_eq!(offers.len(), 1);
    assert_eq!(offers[0].agent_id.value, second.agent_id);
    assert_ne!(second.agent_id, first.agent_id);

    let metrics = get_json(&master, "/metrics/snapshot").await;
    assert_eq!(metrics["master/outstanding_offers"], json!(2.0));
    assert_eq!(metrics["master/slaves_active"], json!(2.0));
    assert_eq!(metrics["master/cpus_total"], json!(3.0));
    master.shutdown().await;
}

#[tokio::test]
async fn decline_filter_holds_for_refuse_seconds_then_expires() {
    let master = master(&["--allocation_interval=100ms"]).await;
    let _agent = FakeAgent::register(&master, AGENT).await;
    let mut scheduler = Scheduler::subscribe(&master, framework_info("decline")).await;
    let offer = scheduler.offers().await.remove(0);

    // refuse_seconds 0: no filter, the next periodic run re-offers.
    scheduler.decline(&[&offer.id.value], 0.0).await;
    let offer = scheduler.offers().await.remove(0);

    // A 2 s filter: periodic runs every 100 ms must not re-offer for a while
    // (checked well inside the window), then the offer comes back.
    scheduler.decline(&[&offer.id.value], 2.0).await;
    scheduler
        .expect_none_of(event::Type::Offers, Duration::from_millis(800))
        .await;
    let again = scheduler.offers().await.remove(0);
    assert_ne!(again.id.value, offer.id.value);
    assert_eq!(again.agent_id.value, offer.agent_id.value);
    master.shutdown().await;
}

#[tokio::test]
async fn suppress_stops_offers_and_revive_restores_them() {
    let master = master(&["--allocation_interval=100ms"]).await;
    let _agent = FakeAgent::register(&master, AGENT).await;
    let mut scheduler = Scheduler::subscribe(&master, framework_info("suppress")).await;
    let offer = scheduler.offers().await.remove(0);

    scheduler.accepted(json!({"type": "SUPPRESS"})).await;
    scheduler.decline(&[&offer.id.value], 0.0).await;
    scheduler
        .expect_none_of(event::Type::Offers, Duration::from_millis(800))
        .await;
    let state = get_json(&master, "/state").await;
    assert_eq!(state["frameworks"][0]["suppressed_roles"], json!(["*"]));

    scheduler.accepted(json!({"type": "REVIVE"})).await;
    let offers = scheduler.offers().await;
    assert_eq!(offers.len(), 1);
    master.shutdown().await;
}

#[tokio::test]
async fn revive_clears_decline_filters() {
    let master = master(&[]).await;
    let _agent = FakeAgent::register(&master, AGENT).await;
    let mut scheduler = Scheduler::subscribe(&master, framework_info("revive")).await;
    let offer = scheduler.offers().await.remove(0);
    scheduler.decline(&[&offer.id.value], 3600.0).await;
    scheduler.accepted(json!({"type": "REVIVE"})).await;
    assert_eq!(scheduler.offers().await.len(), 1);
    master.shutdown().await;
}

#[tokio::test]
async fn offer_timeout_rescinds_and_reoffers() {
    let master = master(&["--offer_timeout=300ms", "--allocation_interval=100ms"]).await;
    let _agent = FakeAgent::register(&master, AGENT).await;
    let mut scheduler = Scheduler::subscribe(&master, framework_info("timeout")).await;
    let offer = scheduler.offers().await.remove(0);
    let rescind = scheduler.next_of(event::Type::Rescind).await;
    assert_eq!(rescind.rescind.unwrap().offer_id.value, offer.id.value);
    let again = scheduler.offers().await.remove(0);
    assert_ne!(again.id.value, offer.id.value);
    master.shutdown().await;
}

#[tokio::test]
async fn dropped_connection_is_failed_over_and_offers_rescinded() {
    let master = master(&[]).await;
    let _agent = FakeAgent::register(&master, AGENT).await;
    let mut info = framework_info("failover");
    info["failover_timeout"] = json!(60.0);
    let mut scheduler = Scheduler::subscribe(&master, info.clone()).await;
    let offer = scheduler.offers().await.remove(0);
    let framework_id = scheduler.framework_id.clone();
    let stream_id = scheduler.stream_id.clone();
    scheduler.drop_connection();

    // Disconnected: offers rescinded, framework kept (within failover_timeout).
    let mut disconnected = false;
    for _ in 0..100 {
        let state = get_json(&master, "/state").await;
        let metrics = get_json(&master, "/metrics/snapshot").await;
        if state["frameworks"][0]["connected"] == json!(false)
            && metrics["master/outstanding_offers"] == json!(0.0)
        {
            disconnected = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        disconnected,
        "framework was not disconnected with its offers rescinded"
    );

    // Calls on the old stream are refused while disconnected.
    let (status, body) = post(
        &master,
        "POST",
        &[
            ("Content-Type", "application/json"),
            ("Mesos-Stream-Id", &stream_id),
        ],
        &json!({"type": "REVIVE", "framework_id": {"value": framework_id}}).to_string(),
    )
    .await;
    assert_eq!(
        (status, body.as_str()),
        (403, "Framework is not subscribed")
    );

    // The scheduler fails over to a new connection with the same id.
    let mut failed_over = Scheduler::subscribe_raw(&master, info, Some(&framework_id)).await;
    let subscribed = failed_over.next_of(event::Type::Subscribed).await;
    assert_eq!(
        subscribed.subscribed.unwrap().framework_id.value,
        framework_id
    );
    assert_ne!(failed_over.stream_id, stream_id);
    let again = failed_over.offers().await.remove(0);
    assert_ne!(again.id.value, offer.id.value, "old offer was rescinded");
    let state = get_json(&master, "/state").await;
    assert_eq!(state["frameworks"][0]["connected"], json!(true));
    assert!(state["frameworks"][0]["reregistered_time"].is_number());
    master.shutdown().await;
}

#[tokio::test]
async fn framework_is_removed_after_failover_timeout_and_its_tasks_killed() {
    let master = master(&[]).await;
    let mut agent = FakeAgent::register(&master, AGENT).await;
    let mut info = framework_info("short-failover");
    info["failover_timeout"] = json!(0.5);
    let mut scheduler = Scheduler::subscribe(&master, info.clone()).await;
    let framework_id = scheduler.framework_id.clone();
    let offer = scheduler.offers().await.remove(0);
    scheduler.accepted(launch(&offer, "t1", 1.0, 128.0)).await;
    let _: RunTaskMessage = agent.expect().await;
    scheduler.drop_connection();

    // After the failover timeout the agent is told to shut the framework
    // down and the framework moves to the completed ones, task killed.
    let shutdown: ShutdownFrameworkMessage = agent.expect().await;
    assert_eq!(shutdown.framework_id.value, framework_id);
    let state = get_json(&master, "/state").await;
    assert_eq!(state["frameworks"], json!([]));
    let completed = &state["completed_frameworks"][0];
    assert_eq!(completed["id"], json!(framework_id));
    assert_eq!(
        completed["completed_tasks"][0]["state"],
        json!("TASK_KILLED")
    );
    let metrics = get_json(&master, "/metrics/snapshot").await;
    assert_eq!(metrics["master/cpus_used"], json!(0.0));

    // Coming back with a removed id is an error on the stream.
    let mut late = Scheduler::subscribe_raw(&master, info, Some(&framework_id)).await;
    let error = late.next_of(event::Type::Error).await;
    assert_eq!(error.error.unwrap().message, "Framework has been removed");
    assert!(late.closed().await);
    master.shutdown().await;
}

#[tokio::test]
async fn drf_splits_agents_between_frameworks() {
    let master = master(&[]).await;
    let mut a = Scheduler::subscribe(&master, framework_info("a")).await;
    let mut b = Scheduler::subscribe(&master, framework_info("b")).await;
    for _ in 0..2 {
        FakeAgent::register(&master, AGENT).await;
    }
    // Each framework ends up with one of the two identical agents.
    let first_a = a.offers().await;
    let first_b = b.offers().await;
    assert_eq!(first_a.len() + first_b.len(), 2);
    assert_ne!(first_a[0].agent_id.value, first_b[0].agent_id.value);
    master.shutdown().await;
}
