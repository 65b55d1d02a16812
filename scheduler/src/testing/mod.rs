//! A fake Mesos master for tests of frameworks (feature `fake-master`).
//!
//! [`FakeMaster`] serves just enough of a master and one agent on
//! `127.0.0.1:<random port>` to drive a scheduler end to end without
//! cgroups, executors or a real cluster:
//!
//! * `POST /api/v1/scheduler` (and `/master/api/v1/scheduler`): `SUBSCRIBE`
//!   answers a chunked RecordIO stream (`SUBSCRIBED`, then `OFFERS` of the
//!   fake agent's free resources, then `HEARTBEAT`s); every other call needs
//!   the current `Mesos-Stream-Id` and is answered `202`. Every request is
//!   recorded ([`FakeMaster::calls`]).
//! * `ACCEPT` with `LAUNCH` runs each task's [`TaskScript`]: `TASK_STARTING`,
//!   `TASK_RUNNING`, then the scripted end state, each update with a fresh
//!   uuid and the agent id, the next one sent only after the previous one is
//!   acknowledged (as the agent's status update manager does). `KILL` ends
//!   a running task with `TASK_KILLED`. Freed resources are offered again.
//! * The agent side (`url` of every offer points here): `GET /slave(1)/state`
//!   and `/state` list the tasks' executors with their sandbox `directory`,
//!   `GET /files/read` serves their scripted `stdout` and `stderr`.
//! * Faults: [`FakeMaster::redirect_next`], [`FakeMaster::unavailable_next`],
//!   [`FakeMasterBuilder::redirect_to`] (a non-leading master),
//!   [`FakeMaster::drop_stream`], and silence with
//!   [`FakeMasterBuilder::send_heartbeats`]`(false)`.

mod server;
mod tasks;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use mesos_proto::codec::{self, ContentType};
use mesos_proto::resources::{self, Resources};
use mesos_proto::v1::scheduler::{call, event, Call, Event};
use mesos_proto::v1::{task_status, TaskInfo, TaskState, TaskStatus};

pub use tasks::TaskScript;

/// A request the fake master received on `/api/v1/scheduler`.
#[derive(Debug, Clone)]
pub struct RecordedCall {
    /// The decoded call.
    pub call: Call,
    /// The raw body.
    pub body: Vec<u8>,
    /// Its encoding.
    pub content_type: ContentType,
    /// The `Mesos-Stream-Id` header, if sent.
    pub stream_id: Option<String>,
    /// The status the fake answered with.
    pub status: u16,
}

impl RecordedCall {
    /// The call's type.
    pub fn call_type(&self) -> call::Type {
        call::Type::try_from(self.call.r#type.unwrap_or_default()).unwrap_or(call::Type::Unknown)
    }

    /// The body as JSON (for JSON requests; `Null` otherwise).
    pub fn json(&self) -> serde_json::Value {
        match self.content_type {
            ContentType::Json => serde_json::from_slice(&self.body).unwrap_or_default(),
            ContentType::Protobuf => serde_json::Value::Null,
        }
    }
}

/// How to build a [`FakeMaster`].
pub struct FakeMasterBuilder {
    master_id: String,
    heartbeat_interval: f64,
    send_heartbeats: bool,
    offer_on_subscribe: bool,
    reoffer_delay: Duration,
    agent_resources: Resources,
    redirect_to: Option<SocketAddr>,
    require_acks: bool,
    update_retry: Duration,
    script: Arc<ScriptFn>,
}

type ScriptFn = dyn Fn(&TaskInfo) -> TaskScript + Send + Sync;

impl std::fmt::Debug for FakeMasterBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeMasterBuilder")
            .field("master_id", &self.master_id)
            .field("heartbeat_interval", &self.heartbeat_interval)
            .field("redirect_to", &self.redirect_to)
            .finish_non_exhaustive()
    }
}

impl Default for FakeMasterBuilder {
    fn default() -> Self {
        Self {
            master_id: "fake-master".into(),
            heartbeat_interval: 15.0,
            send_heartbeats: true,
            offer_on_subscribe: true,
            reoffer_delay: Duration::from_millis(100),
            agent_resources: Resources::from(vec![
                resources::scalar("cpus", 4.0),
                resources::scalar("mem", 4096.0),
                resources::scalar("disk", 10240.0),
            ]),
            redirect_to: None,
            require_acks: true,
            update_retry: Duration::from_secs(1),
            script: Arc::new(|_| TaskScript::finished()),
        }
    }
}

impl FakeMasterBuilder {
    /// Prefix of every id the fake hands out (default `fake-master`).
    pub fn master_id(mut self, id: &str) -> Self {
        self.master_id = id.into();
        self
    }

    /// `heartbeat_interval_seconds` announced in `SUBSCRIBED` (default 15).
    pub fn heartbeat_interval(mut self, seconds: f64) -> Self {
        self.heartbeat_interval = seconds;
        self
    }

    /// Whether `HEARTBEAT` events are sent at that interval (default yes).
    pub fn send_heartbeats(mut self, send: bool) -> Self {
        self.send_heartbeats = send;
        self
    }

    /// Whether offers follow `SUBSCRIBED` at once (default yes).
    pub fn offer_on_subscribe(mut self, offer: bool) -> Self {
        self.offer_on_subscribe = offer;
        self
    }

    /// Delay before free resources are offered again (default 100 ms).
    pub fn reoffer_delay(mut self, delay: Duration) -> Self {
        self.reoffer_delay = delay;
        self
    }

    /// The fake agent's total resources (default `cpus:4;mem:4096;disk:10240`).
    pub fn agent_resources(mut self, resources: Resources) -> Self {
        self.agent_resources = resources;
        self
    }

    /// Answer every request with a `307` to this master, as a non-leading
    /// master does.
    pub fn redirect_to(mut self, leader: SocketAddr) -> Self {
        self.redirect_to = Some(leader);
        self
    }

    /// Whether each update waits for the previous one's acknowledgement
    /// (default yes).
    pub fn require_acks(mut self, require: bool) -> Self {
        self.require_acks = require;
        self
    }

    /// How long an unacknowledged update waits before it is sent again
    /// (default 1 s; the agent's real minimum is 10 s).
    pub fn update_retry(mut self, interval: Duration) -> Self {
        self.update_retry = interval;
        self
    }

    /// What each launched task does (default: finishes at once, no output).
    pub fn task_script(
        mut self,
        script: impl Fn(&TaskInfo) -> TaskScript + Send + Sync + 'static,
    ) -> Self {
        self.script = Arc::new(script);
        self
    }

    /// Binds `127.0.0.1:0` and starts serving.
    pub async fn start(self) -> std::io::Result<FakeMaster> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let inner = Arc::new(Inner {
            config: self,
            addr,
            state: Mutex::new(server::State::default()),
        });
        let app = server::router(inner.clone());
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "fake master stopped");
            }
        });
        Ok(FakeMaster { inner, task })
    }
}

/// Shared by the handle, the routes and the task simulations.
struct Inner {
    config: FakeMasterBuilder,
    addr: SocketAddr,
    state: Mutex<server::State>,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, server::State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn agent_id(&self) -> String {
        format!("{}-S0", self.config.master_id)
    }
}

/// A running fake master; stops serving when dropped. See the module docs.
pub struct FakeMaster {
    inner: Arc<Inner>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for FakeMaster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeMaster")
            .field("addr", &self.inner.addr)
            .finish_non_exhaustive()
    }
}

impl Drop for FakeMaster {
    fn drop(&mut self) {
        self.task.abort();
        // Ending the event stream lets a connected driver notice at once.
        self.inner.lock().stream = None;
    }
}

impl FakeMaster {
    /// A builder with the defaults described on its methods.
    pub fn builder() -> FakeMasterBuilder {
        FakeMasterBuilder::default()
    }

    /// A fake master with the default settings.
    pub async fn start() -> std::io::Result<FakeMaster> {
        Self::builder().start().await
    }

    /// The socket address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// `127.0.0.1:<port>`, the form `--master` takes.
    pub fn address(&self) -> String {
        self.inner.addr.to_string()
    }

    /// The fake agent's id (`<master id>-S0`).
    pub fn agent_id(&self) -> String {
        self.inner.agent_id()
    }

    /// Every request received so far, in order.
    pub fn calls(&self) -> Vec<RecordedCall> {
        self.inner.lock().calls.clone()
    }

    /// The calls of one type that were accepted (`2xx`).
    pub fn calls_of(&self, kind: call::Type) -> Vec<RecordedCall> {
        self.calls()
            .into_iter()
            .filter(|c| c.call_type() == kind && (200..300).contains(&c.status))
            .collect()
    }

    /// Waits until `count` accepted calls of `kind` have arrived and returns them;
    /// panics after `timeout` (this is a test helper).
    pub async fn wait_for_calls(
        &self,
        kind: call::Type,
        count: usize,
        timeout: Duration,
    ) -> Vec<RecordedCall> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let calls = self.calls_of(kind);
            if calls.len() >= count {
                return calls;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {count} {} calls; got {}: {:?}",
                kind.as_str_name(),
                calls.len(),
                self.calls()
                    .iter()
                    .map(|c| c.call_type().as_str_name())
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// How many `SUBSCRIBE`s got a stream.
    pub fn subscriptions(&self) -> usize {
        self.inner.lock().subscriptions
    }

    /// The next `count` requests get a `307` to `leader`.
    pub fn redirect_next(&self, count: usize, leader: SocketAddr) {
        let mut state = self.inner.lock();
        state.redirect_next = count;
        state.redirect_leader = Some(leader);
    }

    /// The next `count` requests get a `503`.
    pub fn unavailable_next(&self, count: usize) {
        self.inner.lock().unavailable_next = count;
    }

    /// Ends the current event stream (the connection stays usable for new
    /// requests), as a master failover or network cut does.
    pub fn drop_stream(&self) {
        self.inner.lock().stream = None;
    }

    /// Sends an event on the current stream; `false` if there is none.
    pub fn send_event(&self, event: &Event) -> bool {
        server::send_event(&self.inner, event)
    }

    /// Sends an `UPDATE` with `status` on the current stream.
    pub fn send_update(&self, status: TaskStatus) -> bool {
        self.send_event(&Event {
            r#type: Some(event::Type::Update as i32),
            update: Some(event::Update { status }),
            ..Default::default()
        })
    }

    /// Offers the fake agent's free resources now (if any are free and no
    /// offer is outstanding).
    pub fn offer_now(&self) {
        server::offer_free_resources(&self.inner);
    }

    /// The states of a task's updates sent so far, in order.
    pub fn task_states(&self, task_id: &str) -> Vec<TaskState> {
        self.inner
            .lock()
            .tasks
            .get(task_id)
            .map(|t| t.sent_states.clone())
            .unwrap_or_default()
    }

    /// The sandbox directory the fake agent reports for a task.
    pub fn sandbox(&self, task_id: &str) -> Option<String> {
        self.inner
            .lock()
            .tasks
            .get(task_id)
            .map(|t| t.sandbox.clone())
    }

    /// Whether a `TEARDOWN` arrived.
    pub fn torn_down(&self) -> bool {
        !self.calls_of(call::Type::Teardown).is_empty()
    }
}

/// A status update as the fake agent sends it.
fn status(task_id: &str, agent_id: &str, state: TaskState) -> TaskStatus {
    TaskStatus {
        task_id: mesos_proto::v1::TaskId {
            value: task_id.into(),
        },
        state: state as i32,
        agent_id: Some(mesos_proto::v1::AgentId {
            value: agent_id.into(),
        }),
        executor_id: Some(mesos_proto::v1::ExecutorId {
            value: task_id.into(),
        }),
        source: Some(task_status::Source::Executor as i32),
        timestamp: Some(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or_default(),
        ),
        uuid: Some(uuid::Uuid::new_v4().as_bytes().to_vec()),
        ..Default::default()
    }
}

/// One RecordIO record holding `event`.
fn record(event: &Event, content_type: ContentType) -> bytes::Bytes {
    mesos_proto::recordio::encode(&codec::encode(event, content_type)).into()
}
