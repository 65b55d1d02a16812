//! `POST /api/v1/executor` (and `/slave(1)/api/v1/executor`), the v1 executor
//! HTTP API, as Mesos's `Http::executor` (src/slave/http.cpp) and
//! `validation::executor::call::validate` (src/common/validation.cpp):
//!
//! * SUBSCRIBE → `200`, `Transfer-Encoding: chunked`, a RecordIO stream of
//!   events in the `Accept`ed encoding, with **no** `Mesos-Stream-Id`;
//!   SUBSCRIBED comes first, then a LAUNCH per queued task;
//! * UPDATE and MESSAGE → `202`; HEARTBEAT → `202` before any lookup;
//! * 400 for undecodable or invalid calls and unknown frameworks/executors,
//!   403 for calls of an executor that has not subscribed, 405/406/415 for
//!   wrong method, `Accept` or `Content-Type`, 501 for UNKNOWN.
//!
//! One leniency: an UPDATE whose status has no `source` is taken as
//! `SOURCE_EXECUTOR` (Mesos rejects it); any other source is rejected.

use std::convert::Infallible;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use bytes::Bytes;
use futures::StreamExt;
use mesos_proto::codec::{self, ContentType};
use mesos_proto::internal::StatusUpdate;
use mesos_proto::recordio;
use mesos_proto::v1::executor::{call, event, Call, Event};
use mesos_proto::v1::{task_status, AgentId, ContainerId, ContainerStatus, TaskState};
use tokio::sync::mpsc;
use tokio_stream::wrappers::{IntervalStream, UnboundedReceiverStream};

use crate::slave::SlaveHandle;

/// Interval of HEARTBEAT events on executor streams
/// (Mesos `DEFAULT_EXECUTOR_HEARTBEAT_INTERVAL`).
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(30 * 60);

/// A refused executor call: status code and Mesos's message.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ExecutorCallError {
    /// 400.
    #[error("{0}")]
    BadRequest(String),
    /// 403.
    #[error("{0}")]
    Forbidden(String),
    /// 503: the agent is not ready (recovering).
    #[error("{0}")]
    Unavailable(String),
}

impl ExecutorCallError {
    /// The HTTP status of the refusal.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl IntoResponse for ExecutorCallError {
    fn into_response(self) -> Response {
        (self.status(), self.to_string()).into_response()
    }
}

fn call_type(call: &Call) -> call::Type {
    call.r#type
        .and_then(|t| call::Type::try_from(t).ok())
        .unwrap_or(call::Type::Unknown)
}

/// Mesos's `validation::executor::call::validate`, with the message texts.
pub fn validate_call(call: &Call) -> Result<(), String> {
    if call.r#type.is_none() {
        return Err("Expecting 'type' to be present".into());
    }
    let executor = &call.executor_id.value;
    let framework = &call.framework_id.value;
    match call_type(call) {
        call::Type::Subscribe if call.subscribe.is_none() => {
            Err("Expecting 'subscribe' to be present".into())
        }
        call::Type::Update => {
            let update = call
                .update
                .as_ref()
                .ok_or("Expecting 'update' to be present")?;
            validate_status(&update.status, executor, framework)
        }
        call::Type::Message if call.message.is_none() => {
            Err("Expecting 'message' to be present".into())
        }
        _ => Ok(()),
    }
}

fn validate_status(
    status: &mesos_proto::v1::TaskStatus,
    executor: &str,
    framework: &str,
) -> Result<(), String> {
    let uuid = status
        .uuid
        .as_ref()
        .ok_or("Expecting 'uuid' to be present")?;
    if uuid.len() != 16 {
        return Err(format!(
            "Invalid UUID: expected 16 bytes, got {} bytes",
            uuid.len()
        ));
    }
    if let Some(id) = &status.executor_id {
        if id.value != executor {
            return Err(format!(
                "ExecutorID in Call: {executor} does not match ExecutorID in TaskStatus: {}",
                id.value
            ));
        }
    }
    if status
        .source
        .is_some_and(|s| s != task_status::Source::Executor as i32)
    {
        return Err(format!(
            "Received Call from executor {executor} of framework {framework} with invalid source, expecting 'SOURCE_EXECUTOR'"
        ));
    }
    if status.state == TaskState::TaskStaging as i32 {
        return Err(format!(
            "Received TASK_STAGING from executor {executor} of framework {framework} which is not allowed"
        ));
    }
    Ok(())
}

/// Seconds since the epoch, as Mesos timestamps.
pub fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Mesos's `createStatusUpdate` for an executor's UPDATE call: the agent
/// fills in what executors (e.g. pymesos) leave out: `executor_id`,
/// `agent_id`, `source`, `timestamp` and the container status.
pub fn status_update_from_call(
    call: &Call,
    agent_id: &AgentId,
    container_id: &ContainerId,
) -> Option<StatusUpdate> {
    let mut status = call.update.as_ref()?.status.clone();
    status.executor_id = Some(call.executor_id.clone());
    status.agent_id = Some(agent_id.clone());
    status.source = Some(task_status::Source::Executor as i32);
    let timestamp = *status.timestamp.get_or_insert_with(now_secs);
    let container_status = status
        .container_status
        .get_or_insert_with(ContainerStatus::default);
    container_status.container_id = Some(container_id.clone());
    Some(StatusUpdate {
        framework_id: call.framework_id.clone(),
        executor_id: Some(call.executor_id.clone()),
        slave_id: Some(agent_id.clone()),
        uuid: status.uuid.clone(),
        status,
        timestamp,
        latest_state: None,
    })
}

/// The event stream of one subscribed executor.
#[derive(Debug, Clone)]
pub struct ExecutorStream {
    tx: mpsc::UnboundedSender<Bytes>,
    content_type: ContentType,
}

impl ExecutorStream {
    /// A stream in `content_type` and the receiving end for the HTTP body.
    pub fn new(content_type: ContentType) -> (Self, mpsc::UnboundedReceiver<Bytes>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Self { tx, content_type }, rx)
    }

    /// Queues `event`; false once the executor's connection is gone.
    pub fn send(&self, event: &Event) -> bool {
        let record = recordio::encode(&codec::encode(event, self.content_type));
        self.tx.send(Bytes::from(record)).is_ok()
    }

    /// Whether the HTTP connection behind the stream has closed.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

/// Builds an event of `kind` (payload fields are set by the caller).
pub fn event(kind: event::Type) -> Event {
    Event {
        r#type: Some(kind as i32),
        ..Event::default()
    }
}

fn heartbeat_record(content_type: ContentType) -> Bytes {
    Bytes::from(recordio::encode(&codec::encode(
        &event(event::Type::Heartbeat),
        content_type,
    )))
}

/// The chunked response body: queued events, plus a HEARTBEAT every
/// [`HEARTBEAT_INTERVAL`].
fn stream_body(rx: mpsc::UnboundedReceiver<Bytes>, content_type: ContentType) -> Body {
    let heartbeat = heartbeat_record(content_type);
    let mut interval = tokio::time::interval(HEARTBEAT_INTERVAL);
    interval.reset(); // the first tick would fire at once
    let heartbeats = IntervalStream::new(interval).map(move |_| heartbeat.clone());
    // The body ends when the agent drops the stream (executor shut down):
    // the end of the events is marked with a `None` that stops the merge,
    // which would otherwise go on with heartbeats forever.
    let events = UnboundedReceiverStream::new(rx)
        .map(Some)
        .chain(futures::stream::once(futures::future::ready(None)));
    let ended = futures::stream::select(events, heartbeats.map(Some))
        .take_while(|item| futures::future::ready(item.is_some()))
        .filter_map(futures::future::ready)
        .map(Ok::<_, Infallible>);
    Body::from_stream(ended)
}

async fn executor_api(
    State(slave): State<SlaveHandle>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match handle(&slave, &method, &headers, &body) {
        Ok(response) => response,
        Err((status, message)) => (status, message).into_response(),
    }
}

type Refusal = (StatusCode, String);

fn refusal(status: StatusCode, message: impl Into<String>) -> Refusal {
    (status, message.into())
}

fn handle(
    slave: &SlaveHandle,
    method: &Method,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, Refusal> {
    if method != Method::POST {
        return Err(refusal(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("Expecting a 'POST' request, received '{method}'"),
        ));
    }
    let content_type = headers.get(header::CONTENT_TYPE).ok_or_else(|| {
        refusal(
            StatusCode::BAD_REQUEST,
            "Expecting 'Content-Type' to be present",
        )
    })?;
    let content_type = content_type
        .to_str()
        .ok()
        .and_then(ContentType::from_mime)
        .ok_or_else(|| {
            refusal(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Expecting 'Content-Type' of application/json or application/x-protobuf",
            )
        })?;
    let call: Call = codec::decode(body, content_type)
        .map_err(|e| refusal(StatusCode::BAD_REQUEST, e.to_string()))?;
    validate_call(&call).map_err(|e| {
        refusal(
            StatusCode::BAD_REQUEST,
            format!("Failed to validate executor::Call: {e}"),
        )
    })?;
    let refused = |e: ExecutorCallError| (e.status(), e.to_string());
    match call_type(&call) {
        call::Type::Heartbeat => Ok(StatusCode::ACCEPTED.into_response()),
        call::Type::Subscribe => {
            let accept = match headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) {
                None => Some(ContentType::Json),
                Some(value) => ContentType::from_accept(value),
            }
            .ok_or_else(|| {
                refusal(
                    StatusCode::NOT_ACCEPTABLE,
                    "Expecting 'Accept' to allow 'application/json' or 'application/x-protobuf'",
                )
            })?;
            let (stream, rx) = ExecutorStream::new(accept);
            slave.lock().subscribe(&call, stream).map_err(refused)?;
            Ok((
                StatusCode::OK,
                [(header::CONTENT_TYPE, accept.mime())],
                stream_body(rx, accept),
            )
                .into_response())
        }
        call::Type::Update => {
            slave.lock().executor_update(&call).map_err(refused)?;
            Ok(StatusCode::ACCEPTED.into_response())
        }
        call::Type::Message => {
            slave.lock().executor_message(&call).map_err(refused)?;
            Ok(StatusCode::ACCEPTED.into_response())
        }
        call::Type::Unknown => Err(refusal(
            StatusCode::NOT_IMPLEMENTED,
            "Received 'UNKNOWN' call",
        )),
    }
}

/// The executor API routes.
pub fn router(slave: SlaveHandle) -> Router {
    Router::new()
        .route("/api/v1/executor", any(executor_api))
        .route("/slave(1)/api/v1/executor", any(executor_api))
        .with_state(slave)
}

#[cfg(test)]
mod tests {
    use mesos_proto::v1::{ExecutorId, FrameworkId, TaskId, TaskStatus};

    use super::*;

    fn update_call(status: TaskStatus) -> Call {
        Call {
            executor_id: ExecutorId { value: "e".into() },
            framework_id: FrameworkId { value: "f".into() },
            r#type: Some(call::Type::Update as i32),
            update: Some(call::Update { status }),
            ..Call::default()
        }
    }

    fn status(state: TaskState) -> TaskStatus {
        TaskStatus {
            task_id: TaskId { value: "t".into() },
            state: state as i32,
            uuid: Some(vec![7; 16]),
            source: Some(task_status::Source::Executor as i32),
            ..TaskStatus::default()
        }
    }

    #[test]
    fn valid_update_passes() {
        validate_call(&update_call(status(TaskState::TaskRunning))).unwrap();
    }

    #[test]
    fn update_needs_a_sixteen_byte_uuid() {
        let mut s = status(TaskState::TaskRunning);
        s.uuid = None;
        assert_eq!(
            validate_call(&update_call(s.clone())).unwrap_err(),
            "Expecting 'uuid' to be present"
        );
        s.uuid = Some(vec![1; 15]);
        assert!(validate_call(&update_call(s))
            .unwrap_err()
            .contains("16 bytes"));
    }

    #[test]
    fn staging_and_foreign_sources_are_rejected() {
        let err = validate_call(&update_call(status(TaskState::TaskStaging))).unwrap_err();
        assert_eq!(
            err,
            "Received TASK_STAGING from executor e of framework f which is not allowed"
        );
        let mut s = status(TaskState::TaskRunning);
        s.source = Some(task_status::Source::Master as i32);
        assert!(validate_call(&update_call(s))
            .unwrap_err()
            .contains("SOURCE_EXECUTOR"));
        // pymesos-style: no source at all is accepted and filled in.
        let mut s = status(TaskState::TaskRunning);
        s.source = None;
        validate_call(&update_call(s)).unwrap();
    }

    #[test]
    fn mismatched_executor_id_is_rejected() {
        let mut s = status(TaskState::TaskRunning);
        s.executor_id = Some(ExecutorId {
            value: "other".into(),
        });
        assert_eq!(
            validate_call(&update_call(s)).unwrap_err(),
            "ExecutorID in Call: e does not match ExecutorID in TaskStatus: other"
        );
    }

    #[test]
    fn payloads_must_match_the_type() {
        let mut c = update_call(status(TaskState::TaskRunning));
        c.update = None;
        assert_eq!(
            validate_call(&c).unwrap_err(),
            "Expecting 'update' to be present"
        );
        c.r#type = Some(call::Type::Subscribe as i32);
        assert_eq!(
            validate_call(&c).unwrap_err(),
            "Expecting 'subscribe' to be present"
        );
        c.r#type = Some(call::Type::Message as i32);
        assert_eq!(
            validate_call(&c).unwrap_err(),
            "Expecting 'message' to be present"
        );
        c.r#type = None;
        assert_eq!(
            validate_call(&c).unwrap_err(),
            "Expecting 'type' to be present"
        );
        c.r#type = Some(call::Type::Heartbeat as i32);
        validate_call(&c).unwrap();
    }

    #[test]
    fn update_is_completed_by_the_agent() {
        let mut s = status(TaskState::TaskRunning);
        s.source = None;
        s.timestamp = None;
        let update = status_update_from_call(
            &update_call(s),
            &AgentId {
                value: "a-S0".into(),
            },
            &ContainerId {
                value: "c".into(),
                parent: None,
            },
        )
        .unwrap();
        assert_eq!(update.status.executor_id.unwrap().value, "e");
        assert_eq!(update.status.agent_id.unwrap().value, "a-S0");
        assert_eq!(update.slave_id.unwrap().value, "a-S0");
        assert_eq!(
            update.status.source,
            Some(task_status::Source::Executor as i32)
        );
        assert!(update.timestamp > 0.0);
        assert_eq!(update.uuid, Some(vec![7; 16]));
        assert_eq!(
            update
                .status
                .container_status
                .unwrap()
                .container_id
                .unwrap()
                .value,
            "c"
        );
    }

    #[test]
    fn stream_frames_records_in_the_accepted_encoding() {
        let (stream, mut rx) = ExecutorStream::new(ContentType::Json);
        assert!(stream.send(&event(event::Type::Heartbeat)));
        let record = rx.try_recv().unwrap();
        assert_eq!(&record[..], b"20\n{\"type\":\"HEARTBEAT\"}");
        drop(rx);
        assert!(stream.is_closed());
        assert!(!stream.send(&event(event::Type::Heartbeat)));
    }
}
