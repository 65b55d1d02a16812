//! The driver against the fake master: offers, launches, acknowledgements,
//! redirects, retries, reconnection and failover.

mod common;

use std::time::Duration;

use common::{config, join, next, Recorder, Seen};
use mesos_proto::codec::ContentType;
use mesos_proto::v1::scheduler::{call, event, Event};
use mesos_proto::v1::{TaskState, TaskStatus};
use mesos_scheduler::testing::FakeMaster;
use mesos_scheduler::{DriverError, DriverStatus, SchedulerDriver};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(10);

fn states(updates: &[TaskStatus]) -> Vec<TaskState> {
    updates
        .iter()
        .map(|s| TaskState::try_from(s.state).expect("known task state"))
        .collect()
}

async fn updates_until_terminal(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<Seen>,
) -> Vec<TaskStatus> {
    let mut updates = Vec::new();
    loop {
        let status = next(rx, |s| match s {
            Seen::Update(status) => Some(status),
            _ => None,
        })
        .await;
        let done = common::terminal(status.state);
        updates.push(status);
        if done {
            return updates;
        }
    }
}

#[tokio::test]
async fn offer_reaches_resource_offers_and_launch_sends_mesos_accept() {
    let master = FakeMaster::start().await.unwrap();
    let (scheduler, mut seen) = Recorder::new(true);
    let driver = SchedulerDriver::new(scheduler, config(&master.address()));
    driver.start().unwrap();

    let framework_id = next(&mut seen, |s| match s {
        Seen::Registered(id) => Some(id),
        _ => None,
    })
    .await;
    assert_eq!(framework_id, "fake-master-0000");
    let offers = next(&mut seen, |s| match s {
        Seen::Offers(offers) => Some(offers),
        _ => None,
    })
    .await;
    assert_eq!(offers[0].id.value, "fake-master-O1");

    let accept = master.wait_for_calls(call::Type::Accept, 1, WAIT).await;
    assert_eq!(
        accept[0].json(),
        json!({
            "framework_id": {"value": "fake-master-0000"},
            "type": "ACCEPT",
            "accept": {
                "offer_ids": [{"value": "fake-master-O1"}],
                "operations": [{
                    "type": "LAUNCH",
                    "launch": {"task_infos": [{
                        "name": "t1",
                        "task_id": {"value": "t1"},
                        "agent_id": {"value": "fake-master-S0"},
                        "resources": [
                            {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.5}},
                            {"name": "mem", "type": "SCALAR", "scalar": {"value": 64.0}}
                        ],
                        "command": {"value": "echo hi", "shell": true}
                    }]}
                }]
            }
        })
    );
    let subscribe = &master.calls_of(call::Type::Subscribe)[0];
    assert_eq!(
        subscribe.stream_id, None,
        "SUBSCRIBE must not carry a stream id"
    );
    assert!(
        accept[0].stream_id.is_some(),
        "ACCEPT without Mesos-Stream-Id"
    );

    let updates = updates_until_terminal(&mut seen).await;
    assert_eq!(
        states(&updates),
        [
            TaskState::TaskStarting,
            TaskState::TaskRunning,
            TaskState::TaskFinished
        ]
    );
    join(&driver).await.unwrap();
    assert_eq!(driver.status(), DriverStatus::Stopped);

    // Each update was acknowledged with its own uuid, agent and task, after
    // which the fake agent released the next one.
    let acks = master.calls_of(call::Type::Acknowledge);
    assert_eq!(acks.len(), 3);
    for (ack, status) in acks.iter().zip(&updates) {
        let body = ack.call.acknowledge.as_ref().unwrap();
        assert_eq!(Some(&body.uuid), status.uuid.as_ref());
        assert_eq!(Some(&body.agent_id), status.agent_id.as_ref());
        assert_eq!(body.task_id, status.task_id);
        assert_eq!(
            ack.json()["acknowledge"]["agent_id"]["value"],
            "fake-master-S0"
        );
        assert!(ack.json()["acknowledge"]["uuid"].is_string());
    }
    // stop(false) inside the terminal update's callback: its ack goes first.
    let calls = master.calls();
    let last_ack = calls
        .iter()
        .rposition(|c| c.call_type() == call::Type::Acknowledge)
        .unwrap();
    let teardown = calls
        .iter()
        .position(|c| c.call_type() == call::Type::Teardown)
        .unwrap();
    assert!(
        last_ack < teardown,
        "TEARDOWN sent before the last ACKNOWLEDGE"
    );
    assert!(master.torn_down());
}

#[tokio::test]
async fn protobuf_bodies_work_end_to_end() {
    let master = FakeMaster::start().await.unwrap();
    let (scheduler, mut seen) = Recorder::new(true);
    let driver = SchedulerDriver::new(
        scheduler,
        config(&master.address()).content_type(ContentType::Protobuf),
    );
    driver.start().unwrap();
    let updates = updates_until_terminal(&mut seen).await;
    assert_eq!(states(&updates).last(), Some(&TaskState::TaskFinished));
    join(&driver).await.unwrap();
    let calls = master.calls();
    assert!(calls
        .iter()
        .all(|c| c.content_type == ContentType::Protobuf));
    assert_eq!(master.calls_of(call::Type::Accept).len(), 1);
}

#[tokio::test]
async fn redirect_to_the_leader_is_followed_for_all_later_calls() {
    let leader = FakeMaster::start().await.unwrap();
    let follower = FakeMaster::builder()
        .redirect_to(leader.addr())
        .start()
        .await
        .unwrap();
    let (scheduler, mut seen) = Recorder::new(true);
    let driver = SchedulerDriver::new(scheduler, config(&follower.address()));
    driver.start().unwrap();
    updates_until_terminal(&mut seen).await;
    join(&driver).await.unwrap();

    let redirected: Vec<_> = follower
        .calls()
        .iter()
        .map(|c| (c.call_type(), c.status))
        .collect();
    assert_eq!(
        redirected,
        [(call::Type::Subscribe, 307)],
        "only the first request went to the follower"
    );
    assert_eq!(leader.calls_of(call::Type::Subscribe).len(), 1);
    assert_eq!(leader.calls_of(call::Type::Accept).len(), 1);
    assert!(leader.torn_down());
}

#[tokio::test]
async fn one_redirect_then_the_new_master_is_kept() {
    let leader = FakeMaster::start().await.unwrap();
    let old = FakeMaster::start().await.unwrap();
    old.redirect_next(1, leader.addr());
    let (scheduler, mut seen) = Recorder::new(false);
    let driver = SchedulerDriver::new(scheduler, config(&old.address()));
    driver.start().unwrap();
    next(&mut seen, |s| matches!(s, Seen::Offers(_)).then_some(())).await;
    leader.wait_for_calls(call::Type::Decline, 1, WAIT).await;
    driver.stop(true).unwrap();
    join(&driver).await.unwrap();
    assert_eq!(old.calls().len(), 1);
    assert_eq!(old.calls()[0].status, 307);
    assert!(
        !leader.torn_down(),
        "stop(failover) must not tear the framework down"
    );
}

#[tokio::test]
async fn unavailable_master_is_retried() {
    let master = FakeMaster::start().await.unwrap();
    master.unavailable_next(2);
    let (scheduler, mut seen) = Recorder::new(true);
    let driver = SchedulerDriver::new(scheduler, config(&master.address()));
    driver.start().unwrap();
    next(&mut seen, |s| {
        matches!(s, Seen::Registered(_)).then_some(())
    })
    .await;
    let statuses: Vec<u16> = master
        .calls()
        .iter()
        .filter(|c| c.call_type() == call::Type::Subscribe)
        .map(|c| c.status)
        .collect();
    assert_eq!(statuses, [503, 503, 200]);
    updates_until_terminal(&mut seen).await;
    join(&driver).await.unwrap();
}

#[tokio::test]
async fn unavailable_call_is_retried() {
    let master = FakeMaster::builder()
        .offer_on_subscribe(false)
        .start()
        .await
        .unwrap();
    let (scheduler, mut seen) = Recorder::new(true);
    let driver = SchedulerDriver::new(scheduler, config(&master.address()));
    driver.start().unwrap();
    next(&mut seen, |s| {
        matches!(s, Seen::Registered(_)).then_some(())
    })
    .await;
    master.unavailable_next(1);
    master.offer_now();
    updates_until_terminal(&mut seen).await;
    join(&driver).await.unwrap();
    let accepts: Vec<u16> = master
        .calls()
        .iter()
        .filter(|c| c.call_type() == call::Type::Accept)
        .map(|c| c.status)
        .collect();
    assert_eq!(accepts, [503, 202]);
}

#[tokio::test]
async fn dropped_stream_reconnects_and_fails_over_with_the_framework_id() {
    let master = FakeMaster::start().await.unwrap();
    let (scheduler, mut seen) = Recorder::new(false);
    let driver = SchedulerDriver::new(scheduler, config(&master.address()));
    driver.start().unwrap();
    let framework_id = next(&mut seen, |s| match s {
        Seen::Registered(id) => Some(id),
        _ => None,
    })
    .await;

    master.drop_stream();
    next(&mut seen, |s| matches!(s, Seen::Disconnected).then_some(())).await;
    next(&mut seen, |s| match s {
        Seen::Reregistered => Some(()),
        Seen::Registered(_) => panic!("registered called twice"),
        _ => None,
    })
    .await;

    let subscribes = master.calls_of(call::Type::Subscribe);
    assert_eq!(subscribes.len(), 2);
    assert!(subscribes[0].call.framework_id.is_none());
    let again = &subscribes[1].json();
    assert_eq!(again["framework_id"]["value"], framework_id.as_str());
    assert_eq!(
        again["subscribe"]["framework_info"]["id"]["value"],
        framework_id.as_str()
    );
    assert_eq!(driver.framework_id().unwrap().value, framework_id);

    // Calls after the reconnection carry the new stream id: calls with two
    // different ids arrive, the later ones accepted.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let calls = master.calls();
        let mut ids: Vec<_> = calls.iter().filter_map(|c| c.stream_id.clone()).collect();
        ids.dedup();
        if ids.len() >= 2 && calls.last().is_some_and(|c| c.status == 202) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no call on the new stream"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    driver.stop(false).unwrap();
    join(&driver).await.unwrap();
}

#[tokio::test]
async fn missed_heartbeats_make_the_driver_resubscribe() {
    // The master announces 100 ms heartbeats but sends none: after two
    // silent intervals the driver must give up on the stream.
    let master = FakeMaster::builder()
        .heartbeat_interval(0.1)
        .send_heartbeats(false)
        .offer_on_subscribe(false)
        .start()
        .await
        .unwrap();
    let (scheduler, mut seen) = Recorder::new(false);
    let driver = SchedulerDriver::new(scheduler, config(&master.address()).heartbeat_misses(2));
    driver.start().unwrap();
    next(&mut seen, |s| {
        matches!(s, Seen::Registered(_)).then_some(())
    })
    .await;
    next(&mut seen, |s| matches!(s, Seen::Disconnected).then_some(())).await;
    next(&mut seen, |s| matches!(s, Seen::Reregistered).then_some(())).await;
    let subscribes = master.wait_for_calls(call::Type::Subscribe, 2, WAIT).await;
    assert!(subscribes[1].call.framework_id.is_some());
    driver.stop(false).unwrap();
    join(&driver).await.unwrap();
}

#[tokio::test]
async fn explicit_acknowledgements_are_sent_only_by_the_scheduler() {
    let master = FakeMaster::start().await.unwrap();
    let (mut scheduler, mut seen) = Recorder::new(true);
    scheduler.explicit_acks = true;
    let driver = SchedulerDriver::new(
        scheduler,
        config(&master.address()).implicit_acknowledgements(false),
    );
    driver.start().unwrap();
    let updates = updates_until_terminal(&mut seen).await;
    assert_eq!(updates.len(), 3);
    join(&driver).await.unwrap();
    assert_eq!(master.calls_of(call::Type::Acknowledge).len(), 3);
}

#[tokio::test]
async fn acknowledging_with_implicit_acknowledgements_is_refused() {
    let master = FakeMaster::start().await.unwrap();
    let (mut scheduler, mut seen) = Recorder::new(false);
    scheduler.stop_on_terminal = false;
    let driver = SchedulerDriver::new(scheduler, config(&master.address()));
    driver.start().unwrap();
    next(&mut seen, |s| {
        matches!(s, Seen::Registered(_)).then_some(())
    })
    .await;
    let status = TaskStatus::default();
    assert!(matches!(
        driver.acknowledge_status_update(&status),
        Err(DriverError::ImplicitAcknowledgements)
    ));
    driver.stop(false).unwrap();
    join(&driver).await.unwrap();
    assert!(matches!(
        driver.decline_offer(Default::default(), None),
        Err(DriverError::NotRunning)
    ));
}

#[tokio::test]
async fn unreachable_master_ends_the_driver_after_give_up_after() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let (scheduler, mut seen) = Recorder::new(false);
    let driver = SchedulerDriver::new(
        scheduler,
        config(&format!("127.0.0.1:{port}")).give_up_after(Duration::from_millis(300)),
    );
    driver.start().unwrap();
    let result = join(&driver).await;
    match result {
        Err(DriverError::MasterUnreachable {
            master, last_error, ..
        }) => {
            assert_eq!(master, format!("127.0.0.1:{port}"));
            assert!(last_error.to_string().contains("refused"), "{last_error}");
        }
        other => panic!("expected MasterUnreachable, got {other:?}"),
    }
    let message = next(&mut seen, |s| match s {
        Seen::Error(message) => Some(message),
        _ => None,
    })
    .await;
    assert!(message.contains(&port.to_string()), "{message}");
    assert_eq!(driver.status(), DriverStatus::Aborted);
}

#[tokio::test]
async fn error_event_aborts_the_driver() {
    let master = FakeMaster::start().await.unwrap();
    let (scheduler, mut seen) = Recorder::new(false);
    let driver = SchedulerDriver::new(scheduler, config(&master.address()));
    driver.start().unwrap();
    next(&mut seen, |s| {
        matches!(s, Seen::Registered(_)).then_some(())
    })
    .await;
    assert!(master.send_event(&Event {
        r#type: Some(event::Type::Error as i32),
        error: Some(event::Error {
            message: "Framework has been removed".into(),
        }),
        ..Default::default()
    }));
    let message = next(&mut seen, |s| match s {
        Seen::Error(message) => Some(message),
        _ => None,
    })
    .await;
    assert_eq!(message, "Framework has been removed");
    assert!(matches!(join(&driver).await, Err(DriverError::MasterError(m)) if m == message));
}

#[tokio::test]
async fn kill_task_ends_a_running_task() {
    use mesos_scheduler::testing::TaskScript;
    let master = FakeMaster::builder()
        .task_script(|_| TaskScript::runs_until_killed())
        .start()
        .await
        .unwrap();
    let (scheduler, mut seen) = Recorder::new(true);
    let driver = SchedulerDriver::new(scheduler, config(&master.address()));
    driver.start().unwrap();
    let running = next(&mut seen, |s| match s {
        Seen::Update(status) if status.state == TaskState::TaskRunning as i32 => Some(status),
        _ => None,
    })
    .await;
    driver
        .kill_task(running.task_id.clone(), running.agent_id.clone())
        .unwrap();
    let end = next(&mut seen, |s| match s {
        Seen::Update(status) if common::terminal(status.state) => Some(status),
        _ => None,
    })
    .await;
    assert_eq!(end.state, TaskState::TaskKilled as i32);
    join(&driver).await.unwrap();
    let kill = &master.calls_of(call::Type::Kill)[0];
    assert_eq!(kill.json()["kill"]["task_id"]["value"], "t1");
}

#[tokio::test]
async fn calls_before_start_or_subscription_are_refused() {
    let (scheduler, _seen) = Recorder::new(false);
    let driver = SchedulerDriver::new(scheduler, config("127.0.0.1:1"));
    assert!(matches!(
        driver.revive_offers(vec![]),
        Err(DriverError::NotRunning)
    ));
    assert!(matches!(driver.join().await, Err(DriverError::NotRunning)));
    driver.start().unwrap();
    assert!(matches!(driver.start(), Err(DriverError::AlreadyStarted)));
    assert!(matches!(
        driver.revive_offers(vec![]),
        Err(DriverError::NotSubscribed)
    ));
    driver.abort().unwrap();
    assert!(matches!(join(&driver).await, Err(DriverError::Aborted)));
}

#[tokio::test]
async fn other_events_reach_their_callbacks() {
    use mesos_proto::v1::{AgentId, ExecutorId, OfferId};
    let master = FakeMaster::builder()
        .offer_on_subscribe(false)
        .start()
        .await
        .unwrap();
    let (scheduler, mut seen) = Recorder::new(false);
    let driver = SchedulerDriver::new(scheduler, config(&master.address()));
    driver.start().unwrap();
    next(&mut seen, |s| {
        matches!(s, Seen::Registered(_)).then_some(())
    })
    .await;
    let agent = AgentId {
        value: "A-S1".into(),
    };
    let executor = ExecutorId { value: "E1".into() };
    let events = [
        Event {
            r#type: Some(event::Type::Rescind as i32),
            rescind: Some(event::Rescind {
                offer_id: OfferId { value: "O9".into() },
            }),
            ..Default::default()
        },
        Event {
            r#type: Some(event::Type::Message as i32),
            message: Some(event::Message {
                agent_id: agent.clone(),
                executor_id: executor.clone(),
                data: b"ping".to_vec(),
            }),
            ..Default::default()
        },
        Event {
            r#type: Some(event::Type::Failure as i32),
            failure: Some(event::Failure {
                agent_id: Some(agent.clone()),
                executor_id: Some(executor.clone()),
                status: Some(9),
            }),
            ..Default::default()
        },
        Event {
            r#type: Some(event::Type::Failure as i32),
            failure: Some(event::Failure {
                agent_id: Some(agent.clone()),
                ..Default::default()
            }),
            ..Default::default()
        },
    ];
    for event in &events {
        assert!(master.send_event(event));
    }
    let mut got = Vec::new();
    while got.len() < 4 {
        got.push(
            next(&mut seen, |s| match s {
                Seen::Rescinded(_)
                | Seen::Message(..)
                | Seen::AgentLost(_)
                | Seen::ExecutorLost(..) => Some(format!("{s:?}")),
                _ => None,
            })
            .await,
        );
    }
    assert_eq!(
        got,
        [
            r#"Rescinded("O9")"#,
            r#"Message("E1", "A-S1", [112, 105, 110, 103])"#,
            r#"ExecutorLost("E1", "A-S1", Some(9))"#,
            r#"AgentLost("A-S1")"#,
        ]
    );
    driver.stop(false).unwrap();
    join(&driver).await.unwrap();
}

#[tokio::test]
async fn reconcile_message_revive_and_suppress_calls_are_mesos_json() {
    use mesos_proto::v1::{AgentId, ExecutorId, TaskId};
    let master = FakeMaster::builder()
        .offer_on_subscribe(false)
        .start()
        .await
        .unwrap();
    let (scheduler, mut seen) = Recorder::new(false);
    let driver = SchedulerDriver::new(scheduler, config(&master.address()));
    driver.start().unwrap();
    next(&mut seen, |s| {
        matches!(s, Seen::Registered(_)).then_some(())
    })
    .await;
    let status = TaskStatus {
        task_id: TaskId { value: "t7".into() },
        agent_id: Some(AgentId {
            value: "A-S1".into(),
        }),
        ..Default::default()
    };
    driver.reconcile_tasks(&[status]).unwrap();
    driver.reconcile_tasks(&[]).unwrap();
    driver
        .send_framework_message(
            ExecutorId { value: "E1".into() },
            AgentId {
                value: "A-S1".into(),
            },
            b"hi".to_vec(),
        )
        .unwrap();
    driver.suppress_offers(vec!["web".into()]).unwrap();
    driver.revive_offers(vec![]).unwrap();
    master.wait_for_calls(call::Type::Revive, 1, WAIT).await;
    let bodies: Vec<serde_json::Value> = master
        .calls()
        .iter()
        .filter(|c| c.call_type() != call::Type::Subscribe)
        .map(|c| {
            let mut json = c.json();
            json.as_object_mut().unwrap().remove("framework_id");
            json
        })
        .collect();
    assert_eq!(
        bodies,
        [
            json!({"type": "RECONCILE", "reconcile": {"tasks": [
                {"task_id": {"value": "t7"}, "agent_id": {"value": "A-S1"}}]}}),
            json!({"type": "RECONCILE", "reconcile": {}}),
            json!({"type": "MESSAGE", "message": {
                "agent_id": {"value": "A-S1"}, "executor_id": {"value": "E1"}, "data": "aGk="}}),
            json!({"type": "SUPPRESS", "suppress": {"roles": ["web"]}}),
            json!({"type": "REVIVE", "revive": {}}),
        ]
    );
    driver.stop(false).unwrap();
    join(&driver).await.unwrap();
}
