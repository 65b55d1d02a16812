//! The executor's HTTP/1.1 client for `POST /api/v1/executor`.
//!
//! Like Mesos's executor library it uses two connections: one carries the
//! SUBSCRIBE request and its endless chunked RecordIO response of events,
//! the other every other call (UPDATE, MESSAGE, HEARTBEAT), each answered
//! with `202 Accepted`. Connections are plain hyper `client::conn`
//! connections over a tokio `TcpStream`: no pool, no extra threads.

use std::collections::VecDeque;

use bytes::Bytes;
use http::header::{ACCEPT, CONNECTION, CONTENT_TYPE, HOST};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use mesos_proto::codec::{self, ContentType};
use mesos_proto::recordio::{self, RecordIoError};
use mesos_proto::v1::executor::{Call, Event};
use prost::Message as _;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

/// The agent's executor API path (`/api/v1/executor` is routed to
/// `/slave(1)/api/v1/executor`).
pub(crate) const EXECUTOR_API_PATH: &str = "/api/v1/executor";

/// At most this much of an error response body is kept for messages.
const MAX_ERROR_BODY: usize = 4096;

/// Why a request could not be made or was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TransportError {
    /// TCP connect failed.
    #[error("cannot connect to the agent at {endpoint}: {source}")]
    Connect {
        /// The agent's `ip:port`.
        endpoint: String,
        /// The socket error.
        source: std::io::Error,
    },
    /// The HTTP exchange failed (connection reset, malformed response...).
    #[error("HTTP exchange with the agent at {endpoint} failed: {source}")]
    Http {
        /// The agent's `ip:port`.
        endpoint: String,
        /// hyper's error.
        source: hyper::Error,
    },
    /// The request could not be built (e.g. an endpoint that is not a valid
    /// `Host` header).
    #[error("cannot build a request for the agent at {endpoint}: {source}")]
    Request {
        /// The agent's `ip:port`.
        endpoint: String,
        /// The builder's error.
        source: http::Error,
    },
    /// The agent answered with an unexpected status.
    #[error("agent at {endpoint} answered {status}: {body}")]
    Status {
        /// The agent's `ip:port`.
        endpoint: String,
        /// The HTTP status.
        status: StatusCode,
        /// The start of the response body (Mesos puts the reason there).
        body: String,
    },
}

/// Why the event stream ended abnormally.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StreamError {
    /// Reading the chunked body failed (connection reset, bad chunking).
    #[error("reading the event stream failed: {0}")]
    Http(#[source] hyper::Error),
    /// The RecordIO framing is corrupt.
    #[error("the event stream is corrupt: {0}")]
    Framing(#[from] RecordIoError),
    /// The connection closed in the middle of a record.
    #[error("the agent closed the event stream in the middle of a record")]
    Truncated,
}

/// Aborts the spawned connection task when the connection's user goes away.
#[derive(Debug)]
struct ConnectionTask(JoinHandle<()>);

impl Drop for ConnectionTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// An open HTTP/1.1 connection to the agent.
struct Connection {
    sender: SendRequest<Full<Bytes>>,
    _task: ConnectionTask,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection").finish_non_exhaustive()
    }
}

impl Connection {
    async fn open(endpoint: &str) -> Result<Self, TransportError> {
        let stream =
            TcpStream::connect(endpoint)
                .await
                .map_err(|source| TransportError::Connect {
                    endpoint: endpoint.to_owned(),
                    source,
                })?;
        // Calls are small and latency matters more than packet count.
        let _ = stream.set_nodelay(true);
        let (sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|source| http_error(endpoint, source))?;
        let task = tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!("agent connection ended: {e}");
            }
        });
        Ok(Self {
            sender,
            _task: ConnectionTask(task),
        })
    }

    async fn send(
        &mut self,
        endpoint: &str,
        content_type: ContentType,
        body: Vec<u8>,
    ) -> Result<http::Response<Incoming>, TransportError> {
        let request = Request::builder()
            .method(Method::POST)
            .uri(EXECUTOR_API_PATH)
            .header(HOST, endpoint)
            .header(CONTENT_TYPE, content_type.mime())
            .header(ACCEPT, content_type.mime())
            .header(CONNECTION, "keep-alive")
            .body(Full::new(Bytes::from(body)))
            .map_err(|source| TransportError::Request {
                endpoint: endpoint.to_owned(),
                source,
            })?;
        self.sender
            .ready()
            .await
            .map_err(|source| http_error(endpoint, source))?;
        self.sender
            .send_request(request)
            .await
            .map_err(|source| http_error(endpoint, source))
    }
}

fn http_error(endpoint: &str, source: hyper::Error) -> TransportError {
    TransportError::Http {
        endpoint: endpoint.to_owned(),
        source,
    }
}

/// Reads up to [`MAX_ERROR_BODY`] bytes of a response body as text.
async fn error_body(mut body: Incoming) -> String {
    let mut text = Vec::new();
    while let Some(Ok(frame)) = body.frame().await {
        if let Ok(data) = frame.into_data() {
            text.extend_from_slice(&data);
        }
        if text.len() >= MAX_ERROR_BODY {
            text.truncate(MAX_ERROR_BODY);
            break;
        }
    }
    String::from_utf8_lossy(&text).into_owned()
}

/// Encodes a call in the configured content type.
pub(crate) fn encode_call(call: &Call, content_type: ContentType) -> Vec<u8> {
    codec::encode(call, content_type)
}

/// Decodes one event. Protobuf goes straight through prost: the codec's
/// reflection-based decoder (which also rejects missing `required` fields)
/// would load the whole Mesos descriptor pool into every executor, several
/// hundred KiB of resident memory per task; the agent is trusted to send
/// well-formed events.
fn decode_event(record: &[u8], content_type: ContentType) -> Result<Event, String> {
    match content_type {
        ContentType::Protobuf => Event::decode(record).map_err(|e| e.to_string()),
        ContentType::Json => codec::decode(record, content_type).map_err(|e| e.to_string()),
    }
}

/// Sends SUBSCRIBE on a fresh connection and returns the event stream once
/// the agent answers `200 OK`.
pub(crate) async fn subscribe(
    endpoint: &str,
    content_type: ContentType,
    call: &Call,
) -> Result<EventStream, TransportError> {
    let mut connection = Connection::open(endpoint).await?;
    let response = connection
        .send(endpoint, content_type, encode_call(call, content_type))
        .await?;
    let status = response.status();
    if status != StatusCode::OK {
        return Err(TransportError::Status {
            endpoint: endpoint.to_owned(),
            status,
            body: error_body(response.into_body()).await,
        });
    }
    Ok(EventStream {
        body: response.into_body(),
        decoder: recordio::Decoder::default(),
        records: VecDeque::new(),
        content_type,
        _connection: connection,
    })
}

/// One item of the event stream.
#[derive(Debug)]
pub(crate) enum StreamItem {
    /// A decoded event.
    Event(Box<Event>),
    /// A well-framed record that is not a valid event; Mesos reports these
    /// as errors and keeps reading.
    Undecodable(String),
}

/// The SUBSCRIBE response: RecordIO-framed events.
#[derive(Debug)]
pub(crate) struct EventStream {
    body: Incoming,
    decoder: recordio::Decoder,
    records: VecDeque<Vec<u8>>,
    content_type: ContentType,
    _connection: Connection,
}

impl EventStream {
    /// The next event; `Ok(None)` when the agent closed the stream cleanly.
    /// Cancel-safe: a partially read record stays in the decoder.
    pub(crate) async fn next(&mut self) -> Result<Option<StreamItem>, StreamError> {
        loop {
            if let Some(record) = self.records.pop_front() {
                return Ok(Some(match decode_event(&record, self.content_type) {
                    Ok(event) => StreamItem::Event(Box::new(event)),
                    Err(e) => StreamItem::Undecodable(format!("Failed to de-serialize event: {e}")),
                }));
            }
            match self.body.frame().await {
                None if self.decoder.is_at_boundary() => return Ok(None),
                None => return Err(StreamError::Truncated),
                Some(Err(e)) => return Err(StreamError::Http(e)),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.records.extend(self.decoder.decode(&data)?);
                    }
                }
            }
        }
    }
}

/// Sends non-SUBSCRIBE calls on one keep-alive connection, reopened after
/// a failure.
#[derive(Debug)]
pub(crate) struct CallSender {
    endpoint: String,
    content_type: ContentType,
    connection: Option<Connection>,
}

impl CallSender {
    pub(crate) fn new(endpoint: String, content_type: ContentType) -> Self {
        Self {
            endpoint,
            content_type,
            connection: None,
        }
    }

    /// POSTs `call`; any 2xx is success (the agent answers `202 Accepted`).
    pub(crate) async fn send(&mut self, call: &Call) -> Result<(), TransportError> {
        let body = encode_call(call, self.content_type);
        let connection = match &mut self.connection {
            Some(connection) => connection,
            slot => slot.insert(Connection::open(&self.endpoint).await?),
        };
        let response = match connection
            .send(&self.endpoint, self.content_type, body)
            .await
        {
            Ok(response) => response,
            Err(e) => {
                // The next call starts over on a new connection.
                self.connection = None;
                return Err(e);
            }
        };
        let status = response.status();
        let body = response.into_body();
        if status.is_success() {
            // Drain the (empty) body so the connection can be reused.
            let _ = body.collect().await;
            return Ok(());
        }
        Err(TransportError::Status {
            endpoint: self.endpoint.clone(),
            status,
            body: error_body(body).await,
        })
    }
}
