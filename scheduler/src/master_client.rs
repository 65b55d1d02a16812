//! HTTP to the master's `/api/v1/scheduler`: one `POST` per call, redirects
//! to the leader, `503` retries, and the `SUBSCRIBE` response whose body is
//! the event stream.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE, LOCATION};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use mesos_proto::codec::{self, ContentType};
use mesos_proto::v1::scheduler::Call;

use crate::backoff::Backoff;
use crate::config::DriverConfig;
use crate::endpoint::MasterEndpoint;

/// The header carrying the subscription's stream id.
pub(crate) const STREAM_ID_HEADER: &str = "Mesos-Stream-Id";

/// How much of an error response body is kept for the message.
const ERROR_BODY_LIMIT: usize = 4096;

/// Why a request to the master failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HttpError {
    /// No TCP connection, or it broke before the response headers.
    #[error("cannot reach master {master}: {reason}")]
    Connect {
        /// The master's `host:port`.
        master: String,
        /// The connection error, with its causes.
        reason: String,
    },
    /// No response headers within the request timeout.
    #[error("master {master} did not answer within {timeout:?}")]
    Timeout {
        /// The master's `host:port`.
        master: String,
        /// The limit that expired.
        timeout: Duration,
    },
    /// `503 Service Unavailable`: the master is still recovering.
    #[error("master {master} is not ready yet (503 Service Unavailable)")]
    Unavailable {
        /// The master's `host:port`.
        master: String,
    },
    /// A `307` without a usable `Location`.
    #[error("master {master} redirected to an unusable location '{location}': {reason}")]
    BadRedirect {
        /// The master's `host:port`.
        master: String,
        /// The `Location` header, if any.
        location: String,
        /// What is wrong with it.
        reason: String,
    },
    /// More redirects than [`DriverConfig::max_redirects`].
    #[error("gave up after {redirects} redirects (last: master {master})")]
    TooManyRedirects {
        /// The last master tried.
        master: String,
        /// How many redirects were followed.
        redirects: u32,
    },
    /// Any other unexpected status; `body` is the master's explanation.
    #[error("master {master} answered {status}: {body}")]
    Status {
        /// The master's `host:port`.
        master: String,
        /// The status code.
        status: StatusCode,
        /// The start of the response body.
        body: String,
    },
    /// A `SUBSCRIBE` answered `200` without the stream id every later call
    /// needs.
    #[error("master {master} answered SUBSCRIBE without a {STREAM_ID_HEADER} header")]
    MissingStreamId {
        /// The master's `host:port`.
        master: String,
    },
    /// The request could not be built (e.g. a stream id that is not a valid
    /// header value).
    #[error("cannot build a request for master {master}: {reason}")]
    Request {
        /// The master's `host:port`.
        master: String,
        /// Why.
        reason: String,
    },
}

impl HttpError {
    /// Whether trying again later may succeed. Rejections (`4xx`) and broken
    /// redirects are final.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Connect { .. }
            | Self::Timeout { .. }
            | Self::Unavailable { .. }
            | Self::TooManyRedirects { .. } => true,
            Self::Status { status, .. } => status.is_server_error(),
            Self::BadRedirect { .. } | Self::MissingStreamId { .. } | Self::Request { .. } => false,
        }
    }
}

/// A successful `SUBSCRIBE`: the stream id and the still-open event stream.
#[derive(Debug)]
pub(crate) struct Subscription {
    /// The `Mesos-Stream-Id` for every later call.
    pub(crate) stream_id: String,
    /// Encoding of the events.
    pub(crate) content_type: ContentType,
    /// The chunked RecordIO body.
    pub(crate) body: Incoming,
    /// The master that answered (after redirects).
    pub(crate) master: MasterEndpoint,
}

/// Talks to the current leading master; shared by the subscription task and
/// the call sender.
#[derive(Debug)]
pub(crate) struct MasterClient {
    client: Client<HttpConnector, Full<Bytes>>,
    leader: Mutex<MasterEndpoint>,
    content_type: ContentType,
    request_timeout: Duration,
    max_redirects: u32,
    call_retries: u32,
}

impl MasterClient {
    /// A client for the config's master, encoding and timeouts.
    pub(crate) fn new(config: &DriverConfig) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(config.request_timeout));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .build(connector);
        Self {
            client,
            leader: Mutex::new(config.master.clone()),
            content_type: config.content_type,
            request_timeout: config.request_timeout,
            max_redirects: config.max_redirects,
            call_retries: config.call_retries,
        }
    }

    /// The master requests currently go to.
    pub(crate) fn leader(&self) -> MasterEndpoint {
        self.leader
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set_leader(&self, master: MasterEndpoint) {
        *self.leader.lock().unwrap_or_else(PoisonError::into_inner) = master;
    }

    /// Sends `SUBSCRIBE` and returns the open event stream.
    pub(crate) async fn subscribe(&self, call: &Call) -> Result<Subscription, HttpError> {
        let (response, master) = self.post(call, None).await?;
        if response.status() != StatusCode::OK {
            let status = response.status();
            return Err(HttpError::Status {
                master: master.to_string(),
                status,
                body: error_body(response, self.request_timeout).await,
            });
        }
        let stream_id = response
            .headers()
            .get(STREAM_ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .ok_or_else(|| HttpError::MissingStreamId {
                master: master.to_string(),
            })?;
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(ContentType::from_mime)
            .unwrap_or(self.content_type);
        Ok(Subscription {
            stream_id,
            content_type,
            body: response.into_body(),
            master,
        })
    }

    /// Sends a non-`SUBSCRIBE` call, retrying `503`s with a short backoff.
    pub(crate) async fn send_call(&self, call: &Call, stream_id: &str) -> Result<(), HttpError> {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        let mut retries = 0;
        loop {
            match self.post(call, Some(stream_id)).await {
                Ok((response, _)) => {
                    // Drain the (normally empty) body so the connection is reused.
                    let _ = tokio::time::timeout(self.request_timeout, response.collect()).await;
                    return Ok(());
                }
                Err(HttpError::Unavailable { .. }) if retries < self.call_retries => {
                    retries += 1;
                    tokio::time::sleep(backoff.next_delay()).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// One `POST`, following redirects. Returns the `2xx` response and the
    /// master that gave it; `503` and every other status are errors.
    async fn post(
        &self,
        call: &Call,
        stream_id: Option<&str>,
    ) -> Result<(Response<Incoming>, MasterEndpoint), HttpError> {
        let body = Bytes::from(codec::encode(call, self.content_type));
        let mut redirects = 0;
        loop {
            let master = self.leader();
            let request = self.request(&master, body.clone(), stream_id)?;
            let response = tokio::time::timeout(self.request_timeout, self.client.request(request))
                .await
                .map_err(|_| HttpError::Timeout {
                    master: master.to_string(),
                    timeout: self.request_timeout,
                })?
                .map_err(|e| HttpError::Connect {
                    master: master.to_string(),
                    reason: error_chain(&e),
                })?;
            let status = response.status();
            if status == StatusCode::TEMPORARY_REDIRECT || status == StatusCode::PERMANENT_REDIRECT
            {
                redirects += 1;
                if redirects > self.max_redirects {
                    return Err(HttpError::TooManyRedirects {
                        master: master.to_string(),
                        redirects: self.max_redirects,
                    });
                }
                let leader = redirect_target(&master, &response)?;
                tracing::info!(from = %master, to = %leader, "following the master's redirect to the leader");
                self.set_leader(leader);
                continue;
            }
            if status == StatusCode::SERVICE_UNAVAILABLE {
                return Err(HttpError::Unavailable {
                    master: master.to_string(),
                });
            }
            if status.is_success() {
                return Ok((response, master));
            }
            return Err(HttpError::Status {
                master: master.to_string(),
                status,
                body: error_body(response, self.request_timeout).await,
            });
        }
    }

    fn request(
        &self,
        master: &MasterEndpoint,
        body: Bytes,
        stream_id: Option<&str>,
    ) -> Result<Request<Full<Bytes>>, HttpError> {
        let mime = self.content_type.mime();
        let mut builder = Request::post(master.scheduler_uri())
            .header(CONTENT_TYPE, mime)
            .header(ACCEPT, mime);
        if let Some(stream_id) = stream_id {
            builder = builder.header(STREAM_ID_HEADER, stream_id);
        }
        builder
            .body(Full::new(body))
            .map_err(|e| HttpError::Request {
                master: master.to_string(),
                reason: e.to_string(),
            })
    }
}

/// The leader named by a redirect's `Location` (`//host:port/path` in Mesos).
fn redirect_target(
    master: &MasterEndpoint,
    response: &Response<Incoming>,
) -> Result<MasterEndpoint, HttpError> {
    let location = response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    MasterEndpoint::parse(location).map_err(|e| HttpError::BadRedirect {
        master: master.to_string(),
        location: location.to_owned(),
        reason: e.to_string(),
    })
}

/// The start of an error response's body, as text.
async fn error_body(response: Response<Incoming>, timeout: Duration) -> String {
    let limited = Limited::new(response.into_body(), ERROR_BODY_LIMIT);
    match tokio::time::timeout(timeout, limited.collect()).await {
        Ok(Ok(collected)) => String::from_utf8_lossy(&collected.to_bytes())
            .trim()
            .to_owned(),
        Ok(Err(e)) => format!("<unreadable body: {e}>"),
        Err(_) => "<body not received in time>".to_owned(),
    }
}

/// An error and its causes, `outer: inner: root`; hyper's own message alone
/// ("client error (Connect)") hides the useful part ("Connection refused").
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
