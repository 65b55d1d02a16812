//! The fake master's routes and its offer bookkeeping.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Query, State as AxumState};
use axum::http::header::{ACCEPT, CONTENT_TYPE, LOCATION};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use hyper::body::Frame;
use mesos_proto::codec::{self, ContentType};
use mesos_proto::resources::Resources;
use mesos_proto::v1::scheduler::{call, event, Call, Event};
use mesos_proto::v1::{self, task_status, TaskState};
use tokio::sync::mpsc;

use super::tasks::{self, FakeTask};
use super::{record, Inner, RecordedCall};

const STREAM_ID_HEADER: &str = "Mesos-Stream-Id";

/// The open event stream of the subscribed framework.
pub(super) struct Stream {
    pub(super) id: String,
    pub(super) tx: mpsc::UnboundedSender<Bytes>,
    pub(super) content_type: ContentType,
}

/// Everything the fake master remembers.
#[derive(Default)]
pub(super) struct State {
    pub(super) calls: Vec<RecordedCall>,
    pub(super) subscriptions: usize,
    pub(super) stream: Option<Stream>,
    pub(super) framework_id: Option<String>,
    pub(super) frameworks_created: usize,
    pub(super) redirect_next: usize,
    pub(super) redirect_leader: Option<SocketAddr>,
    pub(super) unavailable_next: usize,
    pub(super) next_offer: u64,
    pub(super) outstanding: HashMap<String, Resources>,
    /// `None` until first used: the agent's total.
    pub(super) free: Option<Resources>,
    pub(super) tasks: HashMap<String, FakeTask>,
    pub(super) reoffer_scheduled: bool,
}

impl State {
    pub(super) fn free_mut(&mut self, inner: &Inner) -> &mut Resources {
        self.free
            .get_or_insert_with(|| inner.config.agent_resources.clone())
    }
}

pub(super) fn router(inner: Arc<Inner>) -> Router {
    Router::new()
        .route("/api/v1/scheduler", post(scheduler_api))
        .route("/master/api/v1/scheduler", post(scheduler_api))
        .route("/state", get(agent_state))
        .route("/slave(1)/state", get(agent_state))
        .route("/files/read", get(files_read))
        .route(
            "/version",
            get(|| async { Json(serde_json::json!({"version": "1.11.0"})) }),
        )
        .with_state(inner)
}

/// A `text/plain` error response.
fn text(status: StatusCode, message: impl Into<String>) -> Response {
    (status, message.into()).into_response()
}

async fn scheduler_api(
    AxumState(inner): AxumState<Arc<Inner>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(content_type) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return text(
            StatusCode::BAD_REQUEST,
            "Expecting 'Content-Type' to be present",
        );
    };
    let Some(content_type) = ContentType::from_mime(content_type) else {
        return text(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Unsupported 'Content-Type'",
        );
    };
    let call: Call = match codec::decode(&body, content_type) {
        Ok(call) => call,
        Err(e) => return text(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let stream_id = headers
        .get(STREAM_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    // A real master redirects and refuses before parsing; the fake parses
    // first only so that these answers are recorded too.
    let response = if let Some(leader) = redirect(&inner) {
        (
            StatusCode::TEMPORARY_REDIRECT,
            [(LOCATION, format!("//{leader}/master/api/v1/scheduler"))],
        )
            .into_response()
    } else if take_unavailable(&inner) {
        text(
            StatusCode::SERVICE_UNAVAILABLE,
            "Master has not finished recovery",
        )
    } else if call.r#type == Some(call::Type::Subscribe as i32) {
        let accept = headers
            .get(ACCEPT)
            .and_then(|v| v.to_str().ok())
            .map_or(Some(ContentType::Json), ContentType::from_accept);
        match accept {
            Some(accept) => subscribe(&inner, &call, accept, stream_id.is_some()),
            None => text(StatusCode::NOT_ACCEPTABLE, "Unsupported 'Accept'"),
        }
    } else {
        let (status, message) = handle_call(&inner, &call, stream_id.as_deref());
        text(status, message)
    };
    inner.lock().calls.push(RecordedCall {
        call,
        body: body.to_vec(),
        content_type,
        stream_id,
        status: response.status().as_u16(),
    });
    response
}

fn redirect(inner: &Inner) -> Option<SocketAddr> {
    if let Some(leader) = inner.config.redirect_to {
        return Some(leader);
    }
    let mut state = inner.lock();
    if state.redirect_next == 0 {
        return None;
    }
    state.redirect_next -= 1;
    state.redirect_leader
}

fn take_unavailable(inner: &Inner) -> bool {
    let mut state = inner.lock();
    if state.unavailable_next == 0 {
        return false;
    }
    state.unavailable_next -= 1;
    true
}

/// The event stream's body: whatever the fake pushes into the channel, ended
/// when the sender is dropped.
struct EventBody(mpsc::UnboundedReceiver<Bytes>);

impl hyper::body::Body for EventBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|b| Ok(Frame::data(b))))
    }
}

fn subscribe(
    inner: &Arc<Inner>,
    call: &Call,
    accept: ContentType,
    has_stream_id: bool,
) -> Response {
    if has_stream_id {
        return text(
            StatusCode::BAD_REQUEST,
            "Expecting 'Mesos-Stream-Id' to be not present with SUBSCRIBE",
        );
    }
    let Some(subscribe) = call.subscribe.as_ref() else {
        return text(
            StatusCode::BAD_REQUEST,
            "Expecting 'subscribe' to be present",
        );
    };
    let requested = call
        .framework_id
        .as_ref()
        .or(subscribe.framework_info.id.as_ref())
        .map(|id| id.value.clone());
    let (tx, rx) = mpsc::unbounded_channel();
    let stream_id = uuid::Uuid::new_v4().to_string();
    {
        let mut state = inner.lock();
        let framework_id = requested.unwrap_or_else(|| {
            state.frameworks_created += 1;
            format!(
                "{}-{:04}",
                inner.config.master_id,
                state.frameworks_created - 1
            )
        });
        state.framework_id = Some(framework_id.clone());
        state.subscriptions += 1;
        // Offers made on an earlier stream are void, as after a Mesos
        // re-subscription.
        let stale: Vec<Resources> = state.outstanding.drain().map(|(_, r)| r).collect();
        for resources in stale {
            state.free_mut(inner).add(&resources);
        }
        let subscribed = Event {
            r#type: Some(event::Type::Subscribed as i32),
            subscribed: Some(event::Subscribed {
                framework_id: v1::FrameworkId {
                    value: framework_id,
                },
                heartbeat_interval_seconds: Some(inner.config.heartbeat_interval),
                master_info: Some(master_info(inner)),
            }),
            ..Default::default()
        };
        let _ = tx.send(record(&subscribed, accept));
        if inner.config.send_heartbeats {
            spawn_heartbeats(tx.downgrade(), accept, inner.config.heartbeat_interval);
        }
        state.stream = Some(Stream {
            id: stream_id.clone(),
            tx,
            content_type: accept,
        });
    }
    if inner.config.offer_on_subscribe {
        offer_free_resources(inner);
    }
    Response::builder()
        .status(StatusCode::OK)
        .header(CONTENT_TYPE, accept.mime())
        .header(STREAM_ID_HEADER, stream_id)
        .body(Body::new(EventBody(rx)))
        .unwrap_or_else(|e| text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

fn master_info(inner: &Inner) -> v1::MasterInfo {
    v1::MasterInfo {
        id: inner.config.master_id.clone(),
        ip: u32::from(std::net::Ipv4Addr::LOCALHOST),
        port: u32::from(inner.addr.port()),
        hostname: Some("localhost".into()),
        version: Some("1.11.0".into()),
        address: Some(v1::Address {
            hostname: Some("localhost".into()),
            ip: Some("127.0.0.1".into()),
            port: i32::from(inner.addr.port()),
        }),
        ..Default::default()
    }
}

fn spawn_heartbeats(tx: mpsc::WeakUnboundedSender<Bytes>, content_type: ContentType, seconds: f64) {
    let interval = Duration::from_secs_f64(seconds.max(0.001));
    let heartbeat = record(
        &Event {
            r#type: Some(event::Type::Heartbeat as i32),
            ..Default::default()
        },
        content_type,
    );
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(interval).await;
            // A weak sender, so heartbeats never keep a dropped stream open.
            let Some(tx) = tx.upgrade() else { return };
            if tx.send(heartbeat.clone()).is_err() {
                return;
            }
        }
    });
}

/// Sends `event` on the current stream.
pub(super) fn send_event(inner: &Inner, event: &Event) -> bool {
    let state = inner.lock();
    match &state.stream {
        Some(stream) => stream.tx.send(record(event, stream.content_type)).is_ok(),
        None => false,
    }
}

fn handle_call(inner: &Arc<Inner>, call: &Call, stream_id: Option<&str>) -> (StatusCode, String) {
    let kind = call::Type::try_from(call.r#type.unwrap_or_default()).unwrap_or(call::Type::Unknown);
    let mut state = inner.lock();
    let Some(stream) = &state.stream else {
        return (StatusCode::FORBIDDEN, "Framework is not subscribed".into());
    };
    match stream_id {
        None => {
            return (
                StatusCode::BAD_REQUEST,
                "All non-subscribe calls should include the 'Mesos-Stream-Id' header".into(),
            )
        }
        Some(id) if id != stream.id => {
            return (
                StatusCode::BAD_REQUEST,
                format!("The stream ID '{id}' included in this request didn't match the stream ID currently associated with the framework"),
            )
        }
        Some(_) => {}
    }
    if call.framework_id.as_ref().map(|id| &id.value) != state.framework_id.as_ref() {
        return (
            StatusCode::BAD_REQUEST,
            "Framework ID does not match".into(),
        );
    }
    match kind {
        call::Type::Accept => {
            if let Some(accept) = &call.accept {
                accept_offers(inner, &mut state, accept);
            }
            drop(state);
            schedule_reoffer(inner);
        }
        call::Type::Decline => {
            for id in call.decline.iter().flat_map(|d| &d.offer_ids) {
                if let Some(resources) = state.outstanding.remove(&id.value) {
                    state.free_mut(inner).add(&resources);
                }
            }
            drop(state);
            schedule_reoffer(inner);
        }
        call::Type::Revive => {
            drop(state);
            schedule_reoffer(inner);
        }
        call::Type::Kill => {
            if let Some(kill) = &call.kill {
                tasks::kill(&state, &kill.task_id.value);
            }
        }
        call::Type::Acknowledge => {
            if let Some(ack) = &call.acknowledge {
                tasks::acknowledge(&mut state, ack);
            }
        }
        call::Type::Teardown => {
            state.stream = None;
            state.framework_id = None;
            state.outstanding.clear();
            for task in state.tasks.values_mut() {
                task.torn_down = true;
            }
            state.free = None;
        }
        _ => {}
    }
    (StatusCode::ACCEPTED, String::new())
}

fn accept_offers(inner: &Arc<Inner>, state: &mut State, accept: &call::Accept) {
    let tasks: Vec<v1::TaskInfo> = accept
        .operations
        .iter()
        .filter_map(|op| op.launch.as_ref())
        .flat_map(|launch| launch.task_infos.clone())
        .collect();
    let known = accept
        .offer_ids
        .iter()
        .all(|id| state.outstanding.contains_key(&id.value));
    if !known {
        for task in &tasks {
            master_update(
                state,
                task,
                TaskState::TaskLost,
                task_status::Reason::InvalidOffers,
                "Task launched with invalid offers",
            );
        }
        return;
    }
    let mut offered = Resources::new();
    for id in &accept.offer_ids {
        if let Some(resources) = state.outstanding.remove(&id.value) {
            offered.add(&resources);
        }
    }
    for task in tasks {
        let needed = Resources::from(task.resources.clone());
        if needed.is_empty() || !offered.contains(&needed) {
            master_update(
                state,
                &task,
                TaskState::TaskError,
                task_status::Reason::TaskInvalid,
                "Task uses more resources than offered",
            );
            continue;
        }
        offered.subtract(&needed);
        tasks::launch(inner, state, task, needed);
    }
    state.free_mut(inner).add(&offered);
}

/// A master-generated update: no uuid, nothing to acknowledge.
fn master_update(
    state: &State,
    task: &v1::TaskInfo,
    task_state: TaskState,
    reason: task_status::Reason,
    message: &str,
) {
    let Some(stream) = &state.stream else { return };
    let status = v1::TaskStatus {
        task_id: task.task_id.clone(),
        state: task_state as i32,
        message: Some(message.into()),
        source: Some(task_status::Source::Master as i32),
        reason: Some(reason as i32),
        ..Default::default()
    };
    let event = Event {
        r#type: Some(event::Type::Update as i32),
        update: Some(event::Update { status }),
        ..Default::default()
    };
    let _ = stream.tx.send(record(&event, stream.content_type));
}

/// Offers the free resources again after the re-offer delay, once.
pub(super) fn schedule_reoffer(inner: &Arc<Inner>) {
    {
        let mut state = inner.lock();
        if state.reoffer_scheduled {
            return;
        }
        state.reoffer_scheduled = true;
    }
    let inner = inner.clone();
    tokio::spawn(async move {
        tokio::time::sleep(inner.config.reoffer_delay).await;
        inner.lock().reoffer_scheduled = false;
        offer_free_resources(&inner);
    });
}

/// One offer of everything free, if a framework is subscribed and no offer
/// is outstanding.
pub(super) fn offer_free_resources(inner: &Inner) {
    let mut state = inner.lock();
    let Some(framework_id) = state.framework_id.clone() else {
        return;
    };
    if state.stream.is_none() || !state.outstanding.is_empty() {
        return;
    }
    let free = std::mem::take(state.free_mut(inner));
    if free.cpus().unwrap_or_default() <= 0.0 && free.mem().unwrap_or_default() <= 0.0 {
        *state.free_mut(inner) = free;
        return;
    }
    state.next_offer += 1;
    let offer_id = format!("{}-O{}", inner.config.master_id, state.next_offer);
    let offer = v1::Offer {
        id: v1::OfferId {
            value: offer_id.clone(),
        },
        framework_id: v1::FrameworkId {
            value: framework_id,
        },
        agent_id: v1::AgentId {
            value: inner.agent_id(),
        },
        hostname: "localhost".into(),
        url: Some(v1::Url {
            scheme: "http".into(),
            address: v1::Address {
                hostname: Some("localhost".into()),
                ip: Some("127.0.0.1".into()),
                port: i32::from(inner.addr.port()),
            },
            path: Some("/slave(1)".into()),
            ..Default::default()
        }),
        resources: free.to_pre_refinement(),
        ..Default::default()
    };
    state.outstanding.insert(offer_id, free);
    let event = Event {
        r#type: Some(event::Type::Offers as i32),
        offers: Some(event::Offers {
            offers: vec![offer],
        }),
        ..Default::default()
    };
    if let Some(stream) = &state.stream {
        let _ = stream.tx.send(record(&event, stream.content_type));
    }
}

async fn agent_state(AxumState(inner): AxumState<Arc<Inner>>) -> Json<serde_json::Value> {
    Json(tasks::agent_state_json(&inner))
}

struct ReadQuery {
    path: String,
    offset: i64,
    length: Option<usize>,
}

async fn files_read(
    AxumState(inner): AxumState<Arc<Inner>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let parsed = (|| {
        Some(ReadQuery {
            path: query.get("path")?.clone(),
            offset: query.get("offset")?.parse().ok()?,
            length: query.get("length").and_then(|l| l.parse().ok()),
        })
    })();
    let Some(query) = parsed else {
        return text(
            StatusCode::BAD_REQUEST,
            "Expecting 'path' and a numeric 'offset'",
        );
    };
    let Some(content) = tasks::file_content(&inner, &query.path) else {
        return text(StatusCode::NOT_FOUND, "File not found");
    };
    if query.offset < 0 {
        return Json(serde_json::json!({"data": "", "offset": content.len()})).into_response();
    }
    let start = usize::try_from(query.offset)
        .unwrap_or(usize::MAX)
        .min(content.len());
    let end = query.length.map_or(content.len(), |l| {
        start.saturating_add(l).min(content.len())
    });
    let data = String::from_utf8_lossy(&content.as_bytes()[start..end]).into_owned();
    Json(serde_json::json!({"data": data, "offset": start})).into_response()
}
