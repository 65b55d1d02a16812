//! Receiving messages: `POST /<process>/<message name>` → 202 → handler.

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use bytes::Bytes;
use prost_reflect::ReflectMessage;

use crate::{TransportError, Upid};

/// The header naming the sending process.
pub const LIBPROCESS_FROM: &str = "libprocess-from";

/// Internal messages can carry task data; be generous like libprocess.
const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// One received message.
#[derive(Debug, Clone)]
pub struct Message {
    /// The sending process (`Libprocess-From`).
    pub from: Upid,
    /// The protobuf full name, e.g. `mesos.internal.RegisterSlaveMessage`.
    pub name: String,
    /// The protobuf encoding.
    pub body: Bytes,
}

impl Message {
    /// Whether this message was sent as `M`.
    pub fn is<M: ReflectMessage + Default>(&self) -> bool {
        self.name == message_name::<M>()
    }

    /// Decodes the body as `M` (the caller matched [`Message::name`] first).
    pub fn decode<M: prost::Message + Default>(&self) -> Result<M, TransportError> {
        M::decode(self.body.clone()).map_err(|source| TransportError::Decode {
            name: self.name.clone(),
            from: self.from.clone(),
            source,
        })
    }
}

/// The protobuf full name of `M`, the last path segment of its messages.
pub fn message_name<M: ReflectMessage + Default>() -> String {
    M::default().descriptor().full_name().to_string()
}

type Handler = Arc<dyn Fn(Message) + Send + Sync>;

/// A router accepting `POST /<process>/<message name>` for the process named
/// `process` (e.g. `master`, `slave(1)`). Each message is answered `202
/// Accepted` and then handed to `handler`, in arrival order per connection.
/// A request without a valid `Libprocess-From` header gets 400.
///
/// Merge it with the process's other routes; static routes such as
/// `/master/state` take precedence over the message route.
pub fn routes<F>(process: &str, handler: F) -> Router
where
    F: Fn(Message) + Send + Sync + 'static,
{
    let handler: Handler = Arc::new(handler);
    Router::new()
        .route(&format!("/{process}/{{name}}"), post(receive))
        .layer(DefaultBodyLimit::max(MAX_MESSAGE_BYTES))
        .with_state(handler)
}

async fn receive(
    State(handler): State<Handler>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let from = match sender_of(&headers) {
        Ok(from) => from,
        Err(message) => return (StatusCode::BAD_REQUEST, message),
    };
    handler(Message { from, name, body });
    (StatusCode::ACCEPTED, String::new())
}

fn sender_of(headers: &HeaderMap) -> Result<Upid, String> {
    let value = headers
        .get(LIBPROCESS_FROM)
        .ok_or_else(|| "Missing 'Libprocess-From' header".to_string())?;
    let value = value
        .to_str()
        .map_err(|_| "Invalid 'Libprocess-From' header".to_string())?;
    value
        .parse()
        .map_err(|e| format!("Invalid 'Libprocess-From' header: {e}"))
}
