//! Sending messages: one ordered queue and keep-alive connection per
//! destination.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HOST};
use http::{Method, Request};
use http_body_util::Full;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use prost_reflect::ReflectMessage;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::receiver::LIBPROCESS_FROM;
use crate::Upid;

/// A peer that does not accept a connection within this time is treated as
/// unreachable for the message at hand (libprocess has no such bound, but a
/// black-holed agent must not stall its queue forever).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Bound on one request/response exchange for the same reason.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// One queued message.
#[derive(Debug)]
struct Envelope {
    name: String,
    body: Bytes,
}

/// Sends messages from one process to others.
///
/// Cloning is cheap and clones share the per-destination links. Messages to
/// one destination are delivered in the order `send` was called; a message
/// that cannot be delivered (peer down, connection reset) is dropped and
/// logged, as libprocess does. Must be used inside a tokio runtime.
#[derive(Debug, Clone)]
pub struct Sender {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    from: Upid,
    links: Mutex<HashMap<Upid, mpsc::UnboundedSender<Envelope>>>,
}

impl Sender {
    /// A sender whose messages carry `Libprocess-From: <from>`.
    pub fn new(from: Upid) -> Self {
        Sender {
            inner: Arc::new(Inner {
                from,
                links: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The UPID messages are sent from.
    pub fn upid(&self) -> &Upid {
        &self.inner.from
    }

    /// Queues `message` for `to`, named by its protobuf full name.
    pub fn send<M: ReflectMessage>(&self, to: &Upid, message: &M) {
        let name = message.descriptor().full_name().to_string();
        self.send_encoded(to, name, Bytes::from(message.encode_to_vec()));
    }

    /// Queues an already encoded message called `name` for `to`.
    pub fn send_encoded(&self, to: &Upid, name: impl Into<String>, body: Bytes) {
        let envelope = Envelope {
            name: name.into(),
            body,
        };
        let mut links = self.inner.links.lock().unwrap_or_else(|e| e.into_inner());
        let link = links
            .entry(to.clone())
            .or_insert_with(|| spawn_link(self.inner.from.clone(), to.clone()));
        if let Err(mpsc::error::SendError(envelope)) = link.send(envelope) {
            // The link task ended (runtime shutting down); start a fresh one.
            let fresh = spawn_link(self.inner.from.clone(), to.clone());
            let _ = fresh.send(envelope);
            *link = fresh;
        }
    }

    /// Forgets the link to `to` (closing its connection once its queue is
    /// drained), e.g. when an agent is removed.
    pub fn disconnect(&self, to: &Upid) {
        let mut links = self.inner.links.lock().unwrap_or_else(|e| e.into_inner());
        links.remove(to);
    }
}

fn spawn_link(from: Upid, to: Upid) -> mpsc::UnboundedSender<Envelope> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(Link::new(from, to).run(rx));
    tx
}

/// The task delivering one destination's queue over one connection.
struct Link {
    from: String,
    to: Upid,
    connection: Option<SendRequest<Full<Bytes>>>,
}

impl Link {
    fn new(from: Upid, to: Upid) -> Self {
        Link {
            from: from.to_string(),
            to,
            connection: None,
        }
    }

    async fn run(mut self, mut queue: mpsc::UnboundedReceiver<Envelope>) {
        while let Some(envelope) = queue.recv().await {
            if let Err(error) = self.deliver(&envelope).await {
                tracing::warn!(to = %self.to, name = %envelope.name, %error, "dropping message");
                self.connection = None;
            }
        }
    }

    async fn deliver(&mut self, envelope: &Envelope) -> Result<(), LinkError> {
        // A kept-alive connection may have been closed by the peer while
        // idle; hyper hands an unsent request back, so retry it once on a
        // fresh connection without risking a duplicate.
        let mut request = self.request(envelope)?;
        for _ in 0..2 {
            let connection = self.connection().await?;
            match tokio::time::timeout(REQUEST_TIMEOUT, connection.try_send_request(request)).await
            {
                Err(_) => return Err(LinkError::Timeout),
                Ok(Ok(response)) if response.status().is_success() => return Ok(()),
                Ok(Ok(response)) => return Err(LinkError::Status(response.status())),
                Ok(Err(mut error)) => match error.take_message() {
                    Some(unsent) => {
                        self.connection = None;
                        request = unsent;
                    }
                    None => return Err(LinkError::Http(error.into_error())),
                },
            }
        }
        Err(LinkError::Closed)
    }

    fn request(&self, envelope: &Envelope) -> Result<Request<Full<Bytes>>, LinkError> {
        Request::builder()
            .method(Method::POST)
            .uri(format!("/{}/{}", self.to.id, envelope.name))
            .header(HOST, self.to.address.to_string())
            .header(LIBPROCESS_FROM, &self.from)
            .header(CONTENT_TYPE, "application/x-protobuf")
            .body(Full::new(envelope.body.clone()))
            .map_err(LinkError::Request)
    }

    async fn connection(&mut self) -> Result<&mut SendRequest<Full<Bytes>>, LinkError> {
        let usable = match &mut self.connection {
            Some(connection) => connection.ready().await.is_ok(),
            None => false,
        };
        if !usable {
            self.connection = Some(self.connect().await?);
        }
        self.connection.as_mut().ok_or(LinkError::Closed)
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, LinkError> {
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(self.to.address))
            .await
            .map_err(|_| LinkError::Timeout)?
            .map_err(LinkError::Connect)?;
        // Messages are small and latency matters more than batching.
        stream.set_nodelay(true).map_err(LinkError::Connect)?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(LinkError::Http)?;
        let to = self.to.clone();
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%to, %error, "connection closed");
            }
        });
        Ok(sender)
    }
}

#[derive(Debug, thiserror::Error)]
enum LinkError {
    #[error("connect: {0}")]
    Connect(std::io::Error),
    #[error("http: {0}")]
    Http(hyper::Error),
    #[error("bad request: {0}")]
    Request(http::Error),
    #[error("peer answered {0}")]
    Status(http::StatusCode),
    #[error("timed out")]
    Timeout,
    #[error("connection closed")]
    Closed,
}
