//! Test doubles for master integration tests: a fake agent speaking the
//! libprocess transport and a scheduler speaking the v1 HTTP API (JSON +
//! RecordIO), both against a master on a loopback port.

#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper::Request;
use hyper_util::rt::TokioIo;
use mesos_master::{Flags, MasterHandle};
use mesos_proto::codec;
use mesos_proto::internal::{
    PongSlaveMessage, RegisterSlaveMessage, ReregisterSlaveMessage, SlaveRegisteredMessage,
    SlaveReregisteredMessage, StatusUpdate, StatusUpdateMessage,
};
use mesos_proto::recordio;
use mesos_proto::resources::Resources;
use mesos_proto::v1::scheduler::{event, Event};
use mesos_proto::v1::{
    AgentId, AgentInfo, ExecutorInfo, FrameworkId, FrameworkInfo, Task, TaskId, TaskState,
    TaskStatus,
};
use mesos_transport::{routes, Message, Sender, Upid};
use prost_reflect::ReflectMessage;
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// How long any single expected thing may take before a test fails.
pub const PATIENCE: Duration = Duration::from_secs(15);

/// Starts a master on 127.0.0.1 with an ephemeral port and extra flags;
/// the registry is in memory unless `extra` says otherwise.
pub async fn master(extra: &[&str]) -> MasterHandle {
    mesos_master::start(flags(extra))
        .await
        .expect("master starts")
}

/// The flags [`master`] uses.
pub fn flags(extra: &[&str]) -> Flags {
    let mut args = vec!["mesos-master", "--ip=127.0.0.1"];
    if !extra.iter().any(|a| a.starts_with("--port")) {
        args.push("--port=0");
    }
    let registry_chosen = extra
        .iter()
        .any(|a| a.starts_with("--registry") || a.starts_with("--work_dir"));
    if !registry_chosen {
        args.push("--registry=in_memory");
    }
    args.extend_from_slice(extra);
    <Flags as clap::Parser>::try_parse_from(args).expect("test flags parse")
}

/// GET a path; returns (status, body).
pub async fn get(master: &MasterHandle, path: &str) -> (u16, String, hyper::HeaderMap) {
    let request = Request::get(path)
        .header("Host", master.address.to_string())
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = send(master, request).await;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned(), headers)
}

/// GET a JSON document.
pub async fn get_json(master: &MasterHandle, path: &str) -> Value {
    get_json_at(master.address, path).await
}

/// GET a JSON document from a master at `address`.
pub async fn get_json_at(address: std::net::SocketAddr, path: &str) -> Value {
    let request = Request::get(path)
        .header("Host", address.to_string())
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = send_to(address, request).await;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let body = String::from_utf8_lossy(&body).into_owned();
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

async fn send(
    master: &MasterHandle,
    request: Request<Full<Bytes>>,
) -> hyper::Response<hyper::body::Incoming> {
    send_to(master.address, request).await
}

async fn send_to(
    address: std::net::SocketAddr,
    request: Request<Full<Bytes>>,
) -> hyper::Response<hyper::body::Incoming> {
    let stream = TcpStream::connect(address).await.unwrap();
    let (mut sender, connection) = http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(connection);
    sender.send_request(request).await.unwrap()
}

/// A raw POST to the scheduler endpoint; returns (status, body).
pub async fn post(
    master: &MasterHandle,
    method: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    post_at(master.address, method, headers, body).await
}

/// [`post`] to a master at `address`.
pub async fn post_at(
    address: std::net::SocketAddr,
    method: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let mut builder = Request::builder()
        .method(method)
        .uri("/api/v1/scheduler")
        .header("Host", address.to_string());
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let request = builder
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let response = send_to(address, request).await;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// A v1 HTTP scheduler.
pub struct Scheduler {
    pub master: std::net::SocketAddr,
    pub framework_id: String,
    pub stream_id: String,
    events: mpsc::UnboundedReceiver<Event>,
    reader: tokio::task::JoinHandle<()>,
}

impl Scheduler {
    /// Subscribes with the given FrameworkInfo JSON; waits for SUBSCRIBED.
    pub async fn subscribe(master: &MasterHandle, framework_info: Value) -> Scheduler {
        let mut scheduler = Self::subscribe_raw(master, framework_info, None).await;
        let subscribed = scheduler.next_of(event::Type::Subscribed).await;
        let subscribed = subscribed.subscribed.unwrap();
        scheduler.framework_id = subscribed.framework_id.value.clone();
        assert_eq!(subscribed.heartbeat_interval_seconds, Some(15.0));
        assert_eq!(
            subscribed.master_info.unwrap().version.as_deref(),
            Some("1.11.0")
        );
        scheduler
    }

    /// Re-subscribes with a known framework id (failover); waits for
    /// SUBSCRIBED, which must carry that id.
    pub async fn resubscribe(
        master: &MasterHandle,
        framework_info: Value,
        framework_id: &str,
    ) -> Scheduler {
        let mut scheduler = Self::subscribe_raw(master, framework_info, Some(framework_id)).await;
        let subscribed = scheduler.next_of(event::Type::Subscribed).await;
        assert_eq!(
            subscribed.subscribed.unwrap().framework_id.value,
            framework_id
        );
        scheduler
    }

    /// Subscribes without waiting for the first event.
    pub async fn subscribe_raw(
        master: &MasterHandle,
        mut framework_info: Value,
        framework_id: Option<&str>,
    ) -> Scheduler {
        let mut call = json!({"type": "SUBSCRIBE"});
        if let Some(id) = framework_id {
            framework_info["id"] = json!({"value": id});
            call["framework_id"] = json!({"value": id});
        }
        call["subscribe"] = json!({"framework_info": framework_info});
        let request = Request::post("/api/v1/scheduler")
            .header("Host", master.address.to_string())
            .header("Content-Type", "application/json")
            .header("Accept", "application/json")
            .body(Full::new(Bytes::from(call.to_string())))
            .unwrap();
        let response = send(master, request).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "application/json");
        assert_eq!(response.headers()["transfer-encoding"], "chunked");
        let stream_id = response.headers()["mesos-stream-id"]
            .to_str()
            .unwrap()
            .to_string();
        let (tx, rx) = mpsc::unbounded_channel();
        let mut body = response.into_body();
        let reader = tokio::spawn(async move {
            let mut decoder = recordio::Decoder::new(16 << 20);
            while let Some(Ok(frame)) = body.frame().await {
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                for record in decoder.decode(&data).expect("valid RecordIO") {
                    assert!(!record.contains(&b'\n'), "records are single-line JSON");
                    let event: Event = codec::from_json(&record).expect("valid event JSON");
                    if tx.send(event).is_err() {
                        return;
                    }
                }
            }
        });
        Scheduler {
            master: master.address,
            framework_id: framework_id.unwrap_or_default().to_string(),
            stream_id,
            events: rx,
            reader,
        }
    }

    /// The next event, whatever it is (heartbeats included).
    pub async fn next(&mut self) -> Option<Event> {
        tokio::time::timeout(PATIENCE, self.events.recv())
            .await
            .expect("an event within the patience window")
    }

    /// The next event of `kind`, skipping others.
    pub async fn next_of(&mut self, kind: event::Type) -> Event {
        loop {
            let event = self.next().await.expect("stream still open");
            if event.r#type == Some(kind as i32) {
                return event;
            }
        }
    }

    /// Every event up to and including the next one of `kind`.
    pub async fn events_until(&mut self, kind: event::Type) -> Vec<Event> {
        let mut seen = Vec::new();
        loop {
            let event = self.next().await.expect("stream still open");
            let done = event.r#type == Some(kind as i32);
            seen.push(event);
            if done {
                return seen;
            }
        }
    }

    /// The next OFFERS event's offers.
    pub async fn offers(&mut self) -> Vec<mesos_proto::v1::Offer> {
        self.next_of(event::Type::Offers)
            .await
            .offers
            .unwrap()
            .offers
    }

    /// The next UPDATE's status.
    pub async fn update(&mut self) -> TaskStatus {
        self.next_of(event::Type::Update)
            .await
            .update
            .unwrap()
            .status
    }

    /// Asserts that no event of `kind` arrives within `window`.
    pub async fn expect_none_of(&mut self, kind: event::Type, window: Duration) {
        let deadline = tokio::time::Instant::now() + window;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Err(_) => return,
                Ok(None) => return,
                Ok(Some(event)) => assert_ne!(
                    event.r#type,
                    Some(kind as i32),
                    "unexpected {kind:?}: {event:?}"
                ),
            }
        }
    }

    /// Whether the stream ended (within the patience window).
    pub async fn closed(&mut self) -> bool {
        loop {
            match tokio::time::timeout(PATIENCE, self.events.recv()).await {
                Ok(None) => return true,
                Ok(Some(_)) => continue,
                Err(_) => return false,
            }
        }
    }

    /// Sends a call (framework_id filled in) with the stream id; returns
    /// (status, body).
    pub async fn call(&self, mut call: Value) -> (u16, String) {
        call["framework_id"] = json!({"value": self.framework_id});
        let request = Request::post("/api/v1/scheduler")
            .header("Host", self.master.to_string())
            .header("Content-Type", "application/json")
            .header("Mesos-Stream-Id", self.stream_id.clone())
            .body(Full::new(Bytes::from(call.to_string())))
            .unwrap();
        let stream = TcpStream::connect(self.master).await.unwrap();
        let (mut sender, connection) = http1::handshake(TokioIo::new(stream)).await.unwrap();
        tokio::spawn(connection);
        let response = sender.send_request(request).await.unwrap();
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    /// Sends a call that must be accepted (202).
    pub async fn accepted(&self, call: Value) {
        let (status, body) = self.call(call).await;
        assert_eq!(status, 202, "{body}");
    }

    /// Declines offers with `refuse_seconds`.
    pub async fn decline(&self, offer_ids: &[&str], refuse_seconds: f64) {
        let ids: Vec<Value> = offer_ids.iter().map(|id| json!({"value": id})).collect();
        self.accepted(json!({
            "type": "DECLINE",
            "decline": {"offer_ids": ids, "filters": {"refuse_seconds": refuse_seconds}}
        }))
        .await;
    }

    /// Closes the event stream (the TCP connection goes away).
    pub fn drop_connection(self) {
        self.reader.abort();
    }
}

/// A FrameworkInfo JSON for tests.
pub fn framework_info(name: &str) -> Value {
    json!({"user": "root", "name": name})
}

/// A fake agent: a transport endpoint `slave(1)@127.0.0.1:<port>`.
pub struct FakeAgent {
    pub upid: Upid,
    pub agent_id: String,
    /// The AgentInfo it registers with (id set once registered).
    pub info: AgentInfo,
    sender: Sender,
    master: Upid,
    messages: mpsc::UnboundedReceiver<Message>,
    /// Whether pings are answered (turn off to simulate a dead agent).
    pub answer_pings: Arc<AtomicBool>,
    server: tokio::task::JoinHandle<()>,
}

impl FakeAgent {
    /// Starts the endpoint and registers with `resources` (Mesos text).
    pub async fn register(master: &MasterHandle, resources: &str) -> FakeAgent {
        let mut agent = FakeAgent::start(&master.upid, resources).await;
        agent.register_again().await;
        agent
    }

    /// Starts the endpoint only; it talks to `master`.
    pub async fn start(master: &Upid, resources: &str) -> FakeAgent {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let upid = Upid::new("slave(1)", listener.local_addr().unwrap());
        let sender = Sender::new(upid.clone());
        let answer_pings = Arc::new(AtomicBool::new(true));
        let (tx, rx) = mpsc::unbounded_channel();
        let (pong_sender, pongs) = (sender.clone(), answer_pings.clone());
        let app = routes("slave(1)", move |message: Message| {
            if message.name == "mesos.internal.PingSlaveMessage" {
                if pongs.load(Ordering::SeqCst) {
                    pong_sender.send(&message.from, &PongSlaveMessage {});
                }
                return;
            }
            let _ = tx.send(message);
        });
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let info = AgentInfo {
            hostname: "fake-agent".to_string(),
            port: Some(i32::from(upid.address.port())),
            resources: Resources::parse(resources, "*")
                .unwrap()
                .to_pre_refinement(),
            ..Default::default()
        };
        FakeAgent {
            upid,
            agent_id: String::new(),
            info,
            sender,
            master: master.clone(),
            messages: rx,
            answer_pings,
            server,
        }
    }

    /// Sends RegisterSlaveMessage and waits for SlaveRegisteredMessage.
    pub async fn register_again(&mut self) -> SlaveRegisteredMessage {
        let register = RegisterSlaveMessage {
            slave: self.info.clone(),
            version: Some("1.11.0".to_string()),
            ..Default::default()
        };
        self.sender.send(&self.master, &register);
        let registered: SlaveRegisteredMessage = self.expect().await;
        self.agent_id = registered.slave_id.value.clone();
        self.info.id = Some(registered.slave_id.clone());
        registered
    }

    /// From now on talks to `master` (e.g. a restarted master).
    pub fn connect_to(&mut self, master: &Upid) {
        self.master = master.clone();
    }

    /// Re-registers with what it runs; returns the master's answer.
    pub async fn reregister(
        &mut self,
        tasks: Vec<Task>,
        executors: Vec<ExecutorInfo>,
        frameworks: Vec<FrameworkInfo>,
    ) -> SlaveReregisteredMessage {
        let message = ReregisterSlaveMessage {
            slave: self.info.clone(),
            executor_infos: executors,
            tasks,
            frameworks,
            version: Some("1.11.0".to_string()),
            ..Default::default()
        };
        self.sender.send(&self.master, &message);
        self.expect().await
    }

    /// The next message of type `M` (others are skipped).
    pub async fn expect<M: ReflectMessage + Default>(&mut self) -> M {
        let name = M::default().descriptor().full_name().to_string();
        loop {
            let message = tokio::time::timeout(PATIENCE, self.messages.recv())
                .await
                .unwrap_or_else(|_| panic!("no {name} within the patience window"))
                .expect("agent endpoint running");
            if message.name == name {
                return message.decode().unwrap();
            }
        }
    }

    /// Sends a status update for a task, as the agent's status update
    /// manager would (with a uuid, so an acknowledgement is expected).
    pub fn send_update(
        &self,
        framework_id: &str,
        task_id: &str,
        state: TaskState,
        uuid: &[u8; 16],
    ) {
        let status = TaskStatus {
            task_id: TaskId {
                value: task_id.to_string(),
            },
            state: state as i32,
            uuid: Some(uuid.to_vec()),
            source: Some(mesos_proto::v1::task_status::Source::Executor as i32),
            timestamp: Some(1.0),
            ..Default::default()
        };
        let update = StatusUpdateMessage {
            update: StatusUpdate {
                framework_id: FrameworkId {
                    value: framework_id.to_string(),
                },
                slave_id: Some(AgentId {
                    value: self.agent_id.clone(),
                }),
                status,
                timestamp: 1.0,
                uuid: Some(uuid.to_vec()),
                ..Default::default()
            },
            pid: None,
        };
        self.sender.send(&self.master, &update);
    }

    /// Sends any message to the master.
    pub fn send<M: ReflectMessage>(&self, message: &M) {
        self.sender.send(&self.master, message);
    }

    /// Stops the endpoint (the agent "crashes").
    pub fn stop(&self) {
        self.server.abort();
    }
}

/// An ACCEPT launching command task `t1` (cpus 0.5, mem 128) and task `t2`
/// (cpus 0.5, mem 128) on custom executor `e1` (cpus 0.1, mem 32).
pub fn launch_two(offer: &mesos_proto::v1::Offer) -> Value {
    let resources = |cpus: f64, mem: f64| {
        json!([
            {"name": "cpus", "type": "SCALAR", "scalar": {"value": cpus}, "role": "*"},
            {"name": "mem", "type": "SCALAR", "scalar": {"value": mem}, "role": "*"}
        ])
    };
    let agent_id = json!({"value": offer.agent_id.value});
    json!({
        "type": "ACCEPT",
        "accept": {
            "offer_ids": [{"value": offer.id.value}],
            "operations": [{
                "type": "LAUNCH",
                "launch": {"task_infos": [
                    {
                        "name": "t1",
                        "task_id": {"value": "t1"},
                        "agent_id": agent_id,
                        "resources": resources(0.5, 128.0),
                        "command": {"value": "sleep 1000"}
                    },
                    {
                        "name": "t2",
                        "task_id": {"value": "t2"},
                        "agent_id": agent_id,
                        "resources": resources(0.5, 128.0),
                        "executor": {
                            "executor_id": {"value": "e1"},
                            "name": "custom executor",
                            "command": {"value": "my-executor --serve"},
                            "resources": resources(0.1, 32.0)
                        }
                    }
                ]}
            }],
            "filters": {"refuse_seconds": 0}
        }
    })
}

/// The Task an agent reports for a task it was sent in `run`, in `state`,
/// with the update in flight (`unacknowledged`) if any.
pub fn reported_task(
    run: &mesos_proto::internal::RunTaskMessage,
    agent_id: &str,
    state: TaskState,
    unacknowledged: Option<(TaskState, [u8; 16])>,
) -> Task {
    Task {
        name: run.task.name.clone(),
        task_id: run.task.task_id.clone(),
        framework_id: run.framework.id.clone().unwrap(),
        executor_id: run.task.executor.as_ref().map(|e| e.executor_id.clone()),
        agent_id: AgentId {
            value: agent_id.to_string(),
        },
        state: state as i32,
        resources: run.task.resources.clone(),
        status_update_state: unacknowledged.map(|(s, _)| s as i32),
        status_update_uuid: unacknowledged.map(|(_, uuid)| uuid.to_vec()),
        ..Default::default()
    }
}

/// An ACKNOWLEDGE call.
pub fn acknowledge(agent_id: &str, task_id: &str, uuid: &[u8; 16]) -> Value {
    use base64::Engine as _;
    json!({"type": "ACKNOWLEDGE", "acknowledge": {
        "agent_id": {"value": agent_id},
        "task_id": {"value": task_id},
        "uuid": base64::engine::general_purpose::STANDARD.encode(uuid)
    }})
}

/// A LAUNCH of one command task using all of `offer`'s cpus/mem.
pub fn launch(offer: &mesos_proto::v1::Offer, task_id: &str, cpus: f64, mem: f64) -> Value {
    json!({
        "type": "ACCEPT",
        "accept": {
            "offer_ids": [{"value": offer.id.value}],
            "operations": [{
                "type": "LAUNCH",
                "launch": {"task_infos": [{
                    "name": task_id,
                    "task_id": {"value": task_id},
                    "agent_id": {"value": offer.agent_id.value},
                    "resources": [
                        {"name": "cpus", "type": "SCALAR", "scalar": {"value": cpus}, "role": "*"},
                        {"name": "mem", "type": "SCALAR", "scalar": {"value": mem}, "role": "*"}
                    ],
                    "command": {"value": "sleep 1"}
                }]}
            }],
            "filters": {"refuse_seconds": 0}
        }
    })
}
