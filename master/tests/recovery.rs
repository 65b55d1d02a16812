//! Master restarts with the durable registry: agents re-register with
//! their tasks, frameworks re-subscribe with their ids and reconcile,
//! unacknowledged updates flow again; agents that do not come back are
//! marked unreachable; removed frameworks stay removed; acknowledged
//! registrations survive `kill -9` of a real `mesos-master` process; a
//! corrupt registry is a clear start-up error; the scheduler API answers
//! 503 until the registry is recovered.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use mesos_master::registry::{Key, Registry, RegistryError, Store, REGISTRY_FILE};
use mesos_master::MasterHandle;
use mesos_proto::internal::{RunTaskMessage, StatusUpdateAcknowledgementMessage};
use mesos_proto::v1::scheduler::event;
use mesos_proto::v1::task_status::Reason;
use mesos_proto::v1::TaskState;
use mesos_transport::Upid;
use serde_json::{json, Value};
use support::*;
use tempfile::TempDir;
use tokio::process::{Child, Command};

const AGENT: &str = "cpus:2;mem:1024;disk:4096;ports:[31000-32000]";

fn work_dir(dir: &TempDir) -> String {
    format!("--work_dir={}", dir.path().display())
}

async fn durable_master(dir: &TempDir, extra: &[&str]) -> MasterHandle {
    let work_dir = work_dir(dir);
    let mut args = vec![work_dir.as_str()];
    args.extend_from_slice(extra);
    master(&args).await
}

/// A FrameworkInfo of a framework that survives disconnections.
fn checkpointing(name: &str) -> Value {
    json!({"user": "root", "name": name, "checkpoint": true, "failover_timeout": 3600.0})
}

fn reconcile(tasks: &[(&str, &str)]) -> Value {
    let tasks: Vec<Value> = tasks
        .iter()
        .map(|(task, agent)| json!({"task_id": {"value": task}, "agent_id": {"value": agent}}))
        .collect();
    json!({"type": "RECONCILE", "reconcile": {"tasks": tasks}})
}

fn find<'a>(list: &'a Value, key: &str, value: &str) -> &'a Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|item| item[key] == json!(value))
        .unwrap_or_else(|| panic!("no {key}={value} in {list}"))
}

#[tokio::test]
async fn restarted_master_gets_tasks_back_from_agents_and_frameworks() {
    let dir = tempfile::tempdir().unwrap();
    let first = durable_master(&dir, &[]).await;
    let mut agent = FakeAgent::register(&first, AGENT).await;
    assert!(agent.agent_id.starts_with(&format!("{}-S", first.id)));
    let mut scheduler = Scheduler::subscribe(&first, checkpointing("survivor")).await;
    let framework_id = scheduler.framework_id.clone();
    let offer = scheduler.offers().await.remove(0);
    scheduler.accepted(launch_two(&offer)).await;
    let command_task: RunTaskMessage = agent.expect().await;
    let executor_task: RunTaskMessage = agent.expect().await;
    assert_eq!(command_task.task.task_id.value, "t1");
    assert_eq!(executor_task.task.task_id.value, "t2");

    // t1 RUNNING and t2 STARTING are acknowledged; t2 RUNNING is not.
    let (running, starting, unacknowledged) = ([1u8; 16], [2u8; 16], [3u8; 16]);
    agent.send_update(&framework_id, "t1", TaskState::TaskRunning, &running);
    agent.send_update(&framework_id, "t2", TaskState::TaskStarting, &starting);
    for (task, uuid) in [("t1", running), ("t2", starting)] {
        let status = scheduler.update().await;
        assert_eq!(status.task_id.value, task);
        scheduler
            .accepted(acknowledge(&agent.agent_id, task, &uuid))
            .await;
        let _: StatusUpdateAcknowledgementMessage = agent.expect().await;
    }
    agent.send_update(&framework_id, "t2", TaskState::TaskRunning, &unacknowledged);
    assert_eq!(
        scheduler.update().await.state,
        TaskState::TaskRunning as i32
    );

    // The custom executor shows in /state (Mesos's executor model).
    let state = get_json(&first, "/state").await;
    let executors = &state["frameworks"][0]["executors"];
    assert_eq!(executors.as_array().unwrap().len(), 1, "{executors}");
    assert_eq!(executors[0]["executor_id"], json!("e1"));
    assert_eq!(executors[0]["slave_id"], json!(agent.agent_id));
    assert_eq!(executors[0]["framework_id"], json!(framework_id));
    assert_eq!(executors[0]["name"], json!("custom executor"));
    assert_eq!(
        executors[0]["command"]["value"],
        json!("my-executor --serve")
    );
    assert_eq!(executors[0]["resources"]["cpus"], json!(0.1));
    assert_eq!(executors[0]["role"], json!("*"));

    let first_id = first.id.clone();
    first.shutdown().await;
    scheduler.drop_connection();

    // The new master knows the agent and the framework from the registry.
    let second = durable_master(&dir, &[]).await;
    assert_ne!(second.id, first_id, "a new master id on every start");
    let state = get_json(&second, "/state").await;
    assert_eq!(state["slaves"], json!([]));
    assert_eq!(state["recovered_slaves"][0]["id"], json!(agent.agent_id));
    assert_eq!(
        state["recovered_slaves"][0]["resources"]["cpus"],
        json!(2.0)
    );
    let framework = find(&state["frameworks"], "id", &framework_id);
    assert_eq!(framework["recovered"], json!(true));
    assert_eq!(framework["active"], json!(false));

    // The framework fails over to the new master before its agent is back.
    let mut scheduler =
        Scheduler::resubscribe(&second, checkpointing("survivor"), &framework_id).await;

    agent.connect_to(&second.upid);
    let executor = executor_task.task.executor.clone().unwrap();
    let tasks = vec![
        reported_task(
            &command_task,
            &agent.agent_id,
            TaskState::TaskRunning,
            Some((TaskState::TaskRunning, running)),
        ),
        reported_task(
            &executor_task,
            &agent.agent_id,
            TaskState::TaskRunning,
            Some((TaskState::TaskRunning, unacknowledged)),
        ),
    ];
    let reply = agent
        .reregister(tasks, vec![executor], vec![command_task.framework.clone()])
        .await;
    assert_eq!(reply.slave_id.value, agent.agent_id);
    assert!(reply.reconciliations.is_empty());

    // Implicit reconciliation reports every task with its latest state.
    scheduler
        .accepted(json!({"type": "RECONCILE", "reconcile": {"tasks": []}}))
        .await;
    let mut states = BTreeMap::new();
    for _ in 0..2 {
        let status = scheduler.update().await;
        assert_eq!(status.reason, Some(Reason::Reconciliation as i32));
        assert_eq!(status.uuid, None);
        assert_eq!(status.agent_id.unwrap().value, agent.agent_id);
        states.insert(status.task_id.value, status.state);
    }
    let running_state = TaskState::TaskRunning as i32;
    assert_eq!(
        states,
        BTreeMap::from([
            ("t1".to_string(), running_state),
            ("t2".to_string(), running_state)
        ])
    );

    // The agent retries its unacknowledged update: it reaches the framework
    // and the acknowledgement reaches the agent.
    agent.send_update(&framework_id, "t2", TaskState::TaskRunning, &unacknowledged);
    let retry = scheduler.update().await;
    assert_eq!(retry.uuid.as_deref(), Some(&unacknowledged[..]));
    scheduler
        .accepted(acknowledge(&agent.agent_id, "t2", &unacknowledged))
        .await;
    let relayed: StatusUpdateAcknowledgementMessage = agent.expect().await;
    assert_eq!(relayed.uuid, unacknowledged.to_vec());
    assert_eq!(relayed.task_id.value, "t2");
    assert_eq!(relayed.framework_id.value, framework_id);

    let state = get_json(&second, "/state").await;
    assert_eq!(state["recovered_slaves"], json!([]));
    assert_eq!(state["slaves"][0]["id"], json!(agent.agent_id));
    assert_eq!(state["slaves"][0]["used_resources"]["cpus"], json!(1.1));
    assert_eq!(state["slaves"][0]["used_resources"]["mem"], json!(288.0));
    let framework = find(&state["frameworks"], "id", &framework_id);
    assert_eq!(framework["recovered"], json!(false));
    assert_eq!(framework["active"], json!(true));
    assert_eq!(framework["tasks"].as_array().unwrap().len(), 2);
    assert_eq!(framework["executors"][0]["executor_id"], json!("e1"));
    let metrics = get_json(&second, "/metrics/snapshot").await;
    assert_eq!(metrics["master/tasks_running"], json!(2.0));
    assert_eq!(metrics["master/slave_reregistrations"], json!(1.0));
    // Recovery recorded the new master: at least that write was timed.
    assert!(metrics["registrar/state_store_ms/count"].as_f64().unwrap() >= 1.0);

    // Ids the new master hands out embed its own id: no collisions.
    let newcomer = FakeAgent::register(&second, AGENT).await;
    assert!(newcomer.agent_id.starts_with(&format!("{}-S", second.id)));
    second.shutdown().await;
}

#[tokio::test]
async fn agent_that_does_not_come_back_is_marked_unreachable() {
    let dir = tempfile::tempdir().unwrap();
    let first = durable_master(&dir, &["--allocation_interval=100ms"]).await;
    let mut agent = FakeAgent::register(&first, AGENT).await;
    let agent_id = agent.agent_id.clone();
    let mut aware_info = checkpointing("aware");
    aware_info["capabilities"] = json!([{"type": "PARTITION_AWARE"}]);
    let mut aware = Scheduler::subscribe(&first, aware_info.clone()).await;
    let offer = aware.offers().await.remove(0);
    aware.accepted(launch(&offer, "t1", 1.0, 256.0)).await;
    let aware_run: RunTaskMessage = agent.expect().await;
    let mut plain = Scheduler::subscribe(&first, checkpointing("plain")).await;
    let offer = plain.offers().await.remove(0);
    plain.accepted(launch(&offer, "t2", 0.5, 128.0)).await;
    let plain_run: RunTaskMessage = agent.expect().await;
    let (aware_id, plain_id) = (aware.framework_id.clone(), plain.framework_id.clone());
    first.shutdown().await;
    aware.drop_connection();
    plain.drop_connection();

    let second = durable_master(&dir, &["--agent_reregister_timeout=2secs"]).await;
    let mut aware = Scheduler::resubscribe(&second, aware_info.clone(), &aware_id).await;
    let mut plain = Scheduler::resubscribe(&second, checkpointing("plain"), &plain_id).await;
    // While the agent may still come back, Mesos does not answer about its
    // tasks...
    aware.accepted(reconcile(&[("t1", &agent_id)])).await;
    // ... until it is marked unreachable and frameworks learn it is lost.
    let before = aware.events_until(event::Type::Failure).await;
    assert!(
        before
            .iter()
            .all(|e| e.r#type != Some(event::Type::Update as i32)),
        "no reconciliation answer while the agent may re-register: {before:?}"
    );
    let failure = plain.next_of(event::Type::Failure).await.failure.unwrap();
    assert_eq!(failure.agent_id.unwrap().value, agent_id);

    aware.accepted(reconcile(&[("t1", &agent_id)])).await;
    let status = aware.update().await;
    assert_eq!(status.task_id.value, "t1");
    assert_eq!(status.state, TaskState::TaskUnreachable as i32);
    assert_eq!(status.reason, Some(Reason::Reconciliation as i32));
    assert_eq!(
        status.message.as_deref(),
        Some("Reconciliation: Task is unreachable")
    );
    assert!(status.unreachable_time.is_some());
    plain.accepted(reconcile(&[("t2", &agent_id)])).await;
    let status = plain.update().await;
    assert_eq!(status.state, TaskState::TaskLost as i32);
    let state = get_json(&second, "/state").await;
    assert_eq!(state["unreachable_slaves"], json!(1));
    assert_eq!(state["recovered_slaves"], json!([]));
    let metrics = get_json(&second, "/metrics/snapshot").await;
    assert_eq!(metrics["master/recovery_slave_removals"], json!(1.0));
    assert_eq!(metrics["master/slaves_unreachable"], json!(1.0));
    second.shutdown().await;
    aware.drop_connection();
    plain.drop_connection();

    // The registry remembers: a third master answers at once.
    let third = durable_master(&dir, &[]).await;
    let mut aware = Scheduler::resubscribe(&third, aware_info, &aware_id).await;
    aware.accepted(reconcile(&[("t1", &agent_id)])).await;
    assert_eq!(
        aware.update().await.state,
        TaskState::TaskUnreachable as i32
    );

    // The agent comes back after all: admitted again with its tasks; the
    // connected framework hears its task is back.
    agent.connect_to(&third.upid);
    let tasks = vec![
        reported_task(&aware_run, &agent_id, TaskState::TaskRunning, None),
        reported_task(&plain_run, &agent_id, TaskState::TaskRunning, None),
    ];
    let frameworks = vec![aware_run.framework.clone(), plain_run.framework.clone()];
    let reply = agent.reregister(tasks, vec![], frameworks).await;
    assert_eq!(reply.slave_id.value, agent_id);
    let status = aware.update().await;
    assert_eq!(status.task_id.value, "t1");
    assert_eq!(status.state, TaskState::TaskRunning as i32);
    assert_eq!(status.reason, Some(Reason::AgentReregistered as i32));
    assert_eq!(
        status.message.as_deref(),
        Some("Unreachable agent re-reregistered")
    );
    let state = get_json(&third, "/state").await;
    assert_eq!(state["unreachable_slaves"], json!(0));
    assert_eq!(state["slaves"][0]["id"], json!(agent_id));
    // The framework that is not back yet keeps its task.
    let plain_state = find(&state["frameworks"], "id", &plain_id);
    assert_eq!(plain_state["recovered"], json!(true));
    assert_eq!(plain_state["tasks"][0]["id"], json!("t2"));
    let mut plain = Scheduler::resubscribe(&third, checkpointing("plain"), &plain_id).await;
    plain
        .accepted(json!({"type": "RECONCILE", "reconcile": {"tasks": []}}))
        .await;
    let status = plain.update().await;
    assert_eq!(status.task_id.value, "t2");
    assert_eq!(status.state, TaskState::TaskRunning as i32);
    third.shutdown().await;
}

#[tokio::test]
async fn removed_framework_stays_removed_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let first = durable_master(&dir, &[]).await;
    let mut scheduler = Scheduler::subscribe(&first, checkpointing("gone")).await;
    let framework_id = scheduler.framework_id.clone();
    scheduler.accepted(json!({"type": "TEARDOWN"})).await;
    assert!(scheduler.closed().await);
    first.shutdown().await;

    let second = durable_master(&dir, &[]).await;
    let mut again =
        Scheduler::subscribe_raw(&second, checkpointing("gone"), Some(&framework_id)).await;
    let error = again.next_of(event::Type::Error).await.error.unwrap();
    assert_eq!(error.message, "Framework has been removed");
    let state = get_json(&second, "/state").await;
    assert_eq!(state["frameworks"], json!([]));
    second.shutdown().await;
}

#[tokio::test]
async fn corrupt_registry_is_a_clear_start_up_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(REGISTRY_FILE);
    std::fs::write(&path, b"not a registry".repeat(512)).unwrap();
    let path = path.display().to_string();

    let error = mesos_master::start(flags(&[&work_dir(&dir)]))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains(&path) && error.contains("corrupt"),
        "{error}"
    );

    let output = Command::new(env!("CARGO_BIN_EXE_mesos-master"))
        .args(["--ip=127.0.0.1", "--port=0", &work_dir(&dir)])
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(PATIENCE, output)
        .await
        .expect("the master exits")
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&path) && stderr.contains("corrupt"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// A real `mesos-master` process on loopback.
struct MasterProcess {
    child: Child,
    address: SocketAddr,
    upid: Upid,
}

impl MasterProcess {
    async fn spawn(work_dir: &Path, log: &Path) -> MasterProcess {
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_mesos-master"))
            .args([
                "--ip=127.0.0.1".to_string(),
                format!("--port={port}"),
                format!("--work_dir={}", work_dir.display()),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        let process = MasterProcess {
            child,
            address,
            upid: Upid::new("master", address),
        };
        // Recovered once the scheduler API stops answering 503.
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let listening = tokio::net::TcpStream::connect(address).await.is_ok();
            if listening && post_at(address, "GET", &[], "").await.0 != 503 {
                return process;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "mesos-master did not recover: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `kill -9`.
    async fn kill(mut self) {
        self.child.start_kill().unwrap();
        self.child.wait().await.unwrap();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn registration_acknowledged_by_a_killed_master_is_not_lost() {
    let dir = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let first = MasterProcess::spawn(dir.path(), &logs.path().join("first.log")).await;
    let mut agents = Vec::new();
    for _ in 0..5 {
        let mut agent = FakeAgent::start(&first.upid, AGENT).await;
        // The registry write may still be in flight when the master answers
        // 202 to the message; only SlaveRegisteredMessage promises it is
        // durable.
        agent.register_again().await;
        agents.push(agent);
    }
    // kill -9 right after the last acknowledgement.
    first.kill().await;

    let second = MasterProcess::spawn(dir.path(), &logs.path().join("second.log")).await;
    let state = get_json_at(second.address, "/state").await;
    let recovered: BTreeSet<String> = state["recovered_slaves"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect();
    let acknowledged: BTreeSet<String> = agents.iter().map(|a| a.agent_id.clone()).collect();
    assert_eq!(recovered, acknowledged);
    for agent in &mut agents {
        agent.connect_to(&second.upid);
        let reply = agent.reregister(vec![], vec![], vec![]).await;
        assert_eq!(reply.slave_id.value, agent.agent_id);
    }
    let state = get_json_at(second.address, "/state").await;
    assert_eq!(state["slaves"].as_array().unwrap().len(), 5);
    assert_eq!(state["recovered_slaves"], json!([]));
    second.kill().await;
}

/// A store whose recovery waits until the test opens the gate.
struct GatedStore {
    gate: std::sync::mpsc::Receiver<()>,
}

impl Store for GatedStore {
    fn recover(&mut self) -> Result<Registry, RegistryError> {
        let _ = self.gate.recv();
        Ok(Registry::default())
    }

    fn store(&mut self, _: &Registry, _: &BTreeSet<Key>) -> Result<(), RegistryError> {
        Ok(())
    }
}

#[tokio::test]
async fn scheduler_api_answers_503_until_the_registry_is_recovered() {
    let port = free_port();
    let (open, gate) = std::sync::mpsc::channel();
    let flags = flags(&[&format!("--port={port}")]);
    let starting = tokio::spawn(mesos_master::start_with_store(
        flags,
        Box::new(GatedStore { gate }),
    ));
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while tokio::net::TcpStream::connect(address).await.is_err() {
        assert!(tokio::time::Instant::now() < deadline, "never listened");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Mesos checks recovery before anything else, even the method.
    assert_eq!(
        post_at(address, "GET", &[], "").await,
        (503, "Master has not finished recovery".to_string())
    );
    let subscribe =
        json!({"type": "SUBSCRIBE", "subscribe": {"framework_info": framework_info("early")}});
    let headers = [("Content-Type", "application/json")];
    assert_eq!(
        post_at(address, "POST", &headers, &subscribe.to_string())
            .await
            .0,
        503
    );

    open.send(()).unwrap();
    let master = starting.await.unwrap().unwrap();
    assert_eq!(post_at(address, "GET", &[], "").await.0, 405);
    let scheduler = Scheduler::subscribe(&master, framework_info("after")).await;
    assert!(!scheduler.framework_id.is_empty());
    master.shutdown().await;
}

/// A store whose every write waits for a permit from the test.
struct HeldStore {
    permits: std::sync::mpsc::Receiver<()>,
}

impl Store for HeldStore {
    fn recover(&mut self) -> Result<Registry, RegistryError> {
        Ok(Registry::default())
    }

    fn store(&mut self, _: &Registry, _: &BTreeSet<Key>) -> Result<(), RegistryError> {
        self.permits.recv().map_err(|_| RegistryError::Stopped)
    }
}

#[tokio::test]
async fn registration_is_acknowledged_only_once_it_is_durable() {
    let (permit, permits) = std::sync::mpsc::channel();
    // Recovery records the new master: one write.
    permit.send(()).unwrap();
    let master = mesos_master::start_with_store(flags(&[]), Box::new(HeldStore { permits }))
        .await
        .unwrap();
    let mut agent = FakeAgent::start(&master.upid, AGENT).await;
    let registering = tokio::spawn(async move {
        agent.register_again().await;
        agent
    });
    // However long the write takes, no acknowledgement before it is done.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!registering.is_finished(), "acknowledged before the write");
    let state = get_json(&master, "/state").await;
    assert_eq!(state["slaves"], json!([]));
    permit.send(()).unwrap();
    let agent = tokio::time::timeout(PATIENCE, registering)
        .await
        .unwrap()
        .unwrap();
    assert!(agent.agent_id.starts_with(&master.id));
    master.shutdown().await;
}

#[tokio::test]
async fn too_many_agents_missing_after_a_restart_stop_the_master() {
    let dir = tempfile::tempdir().unwrap();
    let first = durable_master(&dir, &[]).await;
    let _gone = FakeAgent::register(&first, AGENT).await;
    let mut back = FakeAgent::register(&first, AGENT).await;
    first.shutdown().await;

    let mut second = durable_master(
        &dir,
        &[
            "--agent_reregister_timeout=1secs",
            "--recovery_agent_removal_limit=40%",
        ],
    )
    .await;
    back.connect_to(&second.upid);
    back.reregister(vec![], vec![], vec![]).await;
    // One of two (50%) did not come back: over the limit, the master stops
    // rather than declare half the cluster lost (Mesos exits).
    let stopped = tokio::time::timeout(PATIENCE, second.wait())
        .await
        .expect("the master stops");
    let error = stopped.unwrap_err().to_string();
    assert!(
        error.contains("removal limit exceeded") && error.contains("1 of 2"),
        "{error}"
    );
    second.shutdown().await;
}
