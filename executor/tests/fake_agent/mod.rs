//! A fake Mesos agent serving `POST /api/v1/executor` on 127.0.0.1:0, enough
//! to drive an executor through its life: SUBSCRIBE gets a chunked RecordIO
//! stream starting with SUBSCRIBED (then LAUNCH of the configured task on
//! the first subscription); UPDATE calls are recorded, answered 202 and (when
//! auto-acknowledging) acknowledged on the stream. Tests push further events
//! and can drop the stream to simulate a lost agent.

#![allow(dead_code, clippy::unwrap_used)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use mesos_proto::codec::{self, ContentType};
use mesos_proto::recordio;
use mesos_proto::v1::executor::{call, event, Call, Event};
use mesos_proto::v1::framework_info::{capability, Capability};
use mesos_proto::v1::{
    AgentInfo, CommandInfo, DurationInfo, ExecutorId, ExecutorInfo, FrameworkId, FrameworkInfo,
    KillPolicy, TaskId, TaskInfo, TaskStatus,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;

pub const FRAMEWORK_ID: &str = "fw-1";
pub const EXECUTOR_ID: &str = "task-1";
pub const TASK_ID: &str = "task-1";
/// How long a test waits for something the executor should do promptly.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// What to launch and how the fake framework looks.
#[derive(Clone, Default)]
pub struct Setup {
    pub task: Option<TaskInfo>,
    pub task_killing_capable: bool,
    pub auto_ack: bool,
}

type Stream = mpsc::UnboundedSender<Result<Bytes, Infallible>>;

struct Shared {
    setup: Setup,
    auto_ack: AtomicBool,
    subscriptions: AtomicUsize,
    stream: Mutex<Option<(Stream, ContentType)>>,
    content_types: Mutex<Vec<ContentType>>,
    subscribes: mpsc::UnboundedSender<Call>,
    updates: mpsc::UnboundedSender<Call>,
    messages: mpsc::UnboundedSender<Call>,
}

pub struct FakeAgent {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    subscribes: mpsc::UnboundedReceiver<Call>,
    updates: mpsc::UnboundedReceiver<Call>,
    messages: mpsc::UnboundedReceiver<Call>,
}

impl FakeAgent {
    pub async fn start(setup: Setup) -> Self {
        let (subscribes_tx, subscribes) = mpsc::unbounded_channel();
        let (updates_tx, updates) = mpsc::unbounded_channel();
        let (messages_tx, messages) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            auto_ack: AtomicBool::new(setup.auto_ack),
            setup,
            subscriptions: AtomicUsize::new(0),
            stream: Mutex::new(None),
            content_types: Mutex::new(Vec::new()),
            subscribes: subscribes_tx,
            updates: updates_tx,
            messages: messages_tx,
        });
        let app = Router::new()
            .route("/api/v1/executor", post(handle))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            addr,
            shared,
            subscribes,
            updates,
            messages,
        }
    }

    /// The next SUBSCRIBE call.
    pub async fn next_subscribe(&mut self) -> Call {
        within("a SUBSCRIBE call", self.subscribes.recv()).await
    }

    /// The status of the next UPDATE call.
    pub async fn next_update(&mut self) -> TaskStatus {
        let call = within("an UPDATE call", self.updates.recv()).await;
        call.update.expect("UPDATE carries its payload").status
    }

    /// The data of the next MESSAGE call.
    pub async fn next_message(&mut self) -> Vec<u8> {
        let call = within("a MESSAGE call", self.messages.recv()).await;
        call.message.expect("MESSAGE carries its payload").data
    }

    /// Pushes an event on the current stream.
    pub fn send(&self, event: Event) {
        send_on(&self.shared, &event);
    }

    pub fn acknowledge(&self, status: &TaskStatus) {
        self.send(acknowledged(status));
    }

    pub fn kill(&self, grace: Option<Duration>) {
        self.send(Event {
            r#type: Some(event::Type::Kill as i32),
            kill: Some(event::Kill {
                task_id: task_id(),
                kill_policy: grace.map(kill_policy),
            }),
            ..Default::default()
        });
    }

    pub fn shutdown(&self) {
        self.send(Event {
            r#type: Some(event::Type::Shutdown as i32),
            ..Default::default()
        });
    }

    /// Ends the chunked response: the executor sees the agent go away.
    pub fn drop_stream(&self) {
        self.shared.stream.lock().unwrap().take();
    }

    /// The Content-Type of every call so far.
    pub fn content_types(&self) -> Vec<ContentType> {
        self.shared.content_types.lock().unwrap().clone()
    }

    pub fn set_auto_ack(&self, on: bool) {
        self.shared.auto_ack.store(on, Ordering::SeqCst);
    }
}

async fn within<T>(what: &str, future: impl std::future::Future<Output = Option<T>>) -> T {
    tokio::time::timeout(PATIENCE, future)
        .await
        .unwrap_or_else(|_| panic!("no {what} within {PATIENCE:?}"))
        .unwrap_or_else(|| panic!("fake agent gone while waiting for {what}"))
}

async fn handle(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(ContentType::from_mime);
    let Some(content_type) = content_type else {
        return (StatusCode::UNSUPPORTED_MEDIA_TYPE, "bad Content-Type").into_response();
    };
    shared.content_types.lock().unwrap().push(content_type);
    let call: Call = match codec::decode(&body, content_type) {
        Ok(call) => call,
        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    };
    if call.framework_id.value != FRAMEWORK_ID || call.executor_id.value != EXECUTOR_ID {
        return (StatusCode::BAD_REQUEST, "unknown framework or executor").into_response();
    }
    match call.r#type.and_then(|t| call::Type::try_from(t).ok()) {
        Some(call::Type::Subscribe) => subscribe(&shared, call, content_type),
        Some(call::Type::Update) => {
            let status = call.update.as_ref().map(|u| u.status.clone());
            let _ = shared.updates.send(call);
            if let Some(status) = status {
                if shared.auto_ack.load(Ordering::SeqCst) {
                    send_on(&shared, &acknowledged(&status));
                }
            }
            StatusCode::ACCEPTED.into_response()
        }
        Some(call::Type::Message) => {
            let _ = shared.messages.send(call);
            StatusCode::ACCEPTED.into_response()
        }
        _ => StatusCode::ACCEPTED.into_response(),
    }
}

fn subscribe(shared: &Arc<Shared>, call: Call, content_type: ContentType) -> Response {
    let (tx, rx) = mpsc::unbounded_channel();
    let first = shared.subscriptions.fetch_add(1, Ordering::SeqCst) == 0;
    let resent: Vec<TaskStatus> = call
        .subscribe
        .as_ref()
        .map(|s| {
            s.unacknowledged_updates
                .iter()
                .map(|u| u.status.clone())
                .collect()
        })
        .unwrap_or_default();
    *shared.stream.lock().unwrap() = Some((tx, content_type));
    send_on(shared, &subscribed(&shared.setup));
    if first {
        if let Some(task) = &shared.setup.task {
            send_on(
                shared,
                &Event {
                    r#type: Some(event::Type::Launch as i32),
                    launch: Some(event::Launch { task: task.clone() }),
                    ..Default::default()
                },
            );
        }
    }
    // Like the agent's status update manager: updates handed over in
    // SUBSCRIBE are handled, then acknowledged.
    if shared.auto_ack.load(Ordering::SeqCst) {
        for status in &resent {
            send_on(shared, &acknowledged(status));
        }
    }
    let _ = shared.subscribes.send(call);
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, content_type.mime())
        .body(Body::from_stream(UnboundedReceiverStream::new(rx)))
        .unwrap()
}

fn send_on(shared: &Shared, event: &Event) {
    if let Some((stream, content_type)) = shared.stream.lock().unwrap().as_ref() {
        let record = recordio::encode(&codec::encode(event, *content_type));
        let _ = stream.send(Ok(Bytes::from(record)));
    }
}

fn subscribed(setup: &Setup) -> Event {
    let capabilities = if setup.task_killing_capable {
        vec![Capability {
            r#type: Some(capability::Type::TaskKillingState as i32),
        }]
    } else {
        Vec::new()
    };
    Event {
        r#type: Some(event::Type::Subscribed as i32),
        subscribed: Some(event::Subscribed {
            executor_info: ExecutorInfo {
                executor_id: ExecutorId {
                    value: EXECUTOR_ID.into(),
                },
                ..Default::default()
            },
            framework_info: FrameworkInfo {
                user: "root".into(),
                name: "fake framework".into(),
                id: Some(FrameworkId {
                    value: FRAMEWORK_ID.into(),
                }),
                capabilities,
                ..Default::default()
            },
            agent_info: AgentInfo {
                hostname: "fake-agent".into(),
                ..Default::default()
            },
            container_id: None,
        }),
        ..Default::default()
    }
}

pub fn acknowledged(status: &TaskStatus) -> Event {
    Event {
        r#type: Some(event::Type::Acknowledged as i32),
        acknowledged: Some(event::Acknowledged {
            task_id: status.task_id.clone(),
            uuid: status.uuid.clone().unwrap_or_default(),
        }),
        ..Default::default()
    }
}

pub fn task_id() -> TaskId {
    TaskId {
        value: TASK_ID.into(),
    }
}

pub fn kill_policy(grace: Duration) -> KillPolicy {
    KillPolicy {
        grace_period: Some(duration_info(grace)),
    }
}

pub fn duration_info(duration: Duration) -> DurationInfo {
    DurationInfo {
        nanoseconds: i64::try_from(duration.as_nanos()).unwrap(),
    }
}

/// A command task; `shell` true runs `value` with /bin/sh.
pub fn task(command: CommandInfo) -> TaskInfo {
    TaskInfo {
        name: "test task".into(),
        task_id: task_id(),
        agent_id: mesos_proto::v1::AgentId {
            value: "agent-1".into(),
        },
        command: Some(command),
        ..Default::default()
    }
}

pub fn shell(script: &str) -> CommandInfo {
    CommandInfo {
        value: Some(script.into()),
        ..Default::default()
    }
}
