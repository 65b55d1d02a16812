//! The agent's HTTP endpoints `mesos-execute` reads: `/state` for the
//! sandbox directory and `/files/read` for the tail of stdout and stderr.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt as _, Empty, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use mesos_proto::v1::Offer;

/// Mesos's default agent port, used when an offer has no `url`.
const DEFAULT_AGENT_PORT: i32 = 5051;

/// Largest response body read (an agent's `/state` with many tasks).
const MAX_BODY: usize = 64 * 1024 * 1024;

/// Why the agent could not tell us something.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// No answer.
    #[error("GET {url}: {reason}")]
    Http {
        /// The URL requested.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// An error status.
    #[error("GET {url}: {status}: {body}")]
    Status {
        /// The URL requested.
        url: String,
        /// The status code.
        status: StatusCode,
        /// The start of the body.
        body: String,
    },
    /// A body that is not the JSON expected.
    #[error("GET {url}: unexpected response: {reason}")]
    Json {
        /// The URL requested.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `/state` does not list the executor.
    #[error(
        "the agent's /state does not list executor '{executor_id}' of framework '{framework_id}'"
    )]
    UnknownExecutor {
        /// The framework.
        framework_id: String,
        /// The executor.
        executor_id: String,
    },
}

/// The end of a sandbox file.
#[derive(Debug, Clone, PartialEq)]
pub struct Tail {
    /// The bytes read, as text.
    pub data: String,
    /// Offset of `data` in the file.
    pub offset: u64,
    /// The file's size.
    pub size: u64,
}

/// One agent, addressed as its offers' `url` says.
#[derive(Debug, Clone)]
pub struct AgentClient {
    /// `host:port`.
    authority: String,
    /// The agent process's path prefix, `/slave(1)`.
    process_path: String,
    client: Client<HttpConnector, Empty<Bytes>>,
    timeout: Duration,
}

impl AgentClient {
    /// The agent an offer came from: its `url` (`http://ip:port/slave(1)`),
    /// else its hostname on port 5051.
    pub fn for_offer(offer: &Offer, timeout: Duration) -> Self {
        let (host, port, path) = match &offer.url {
            Some(url) => (
                url.address
                    .ip
                    .clone()
                    .or_else(|| url.address.hostname.clone())
                    .unwrap_or_else(|| offer.hostname.clone()),
                url.address.port,
                url.path.clone().unwrap_or_default(),
            ),
            None => (offer.hostname.clone(), DEFAULT_AGENT_PORT, String::new()),
        };
        let host = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]")
        } else {
            host
        };
        Self {
            process_path: path.trim_end_matches('/').to_owned(),
            ..Self::for_authority(&format!("{host}:{port}"), timeout)
        }
    }

    /// An agent (or master) at `host:port`, serving at the root path.
    pub fn for_authority(authority: &str, timeout: Duration) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(timeout));
        Self {
            authority: authority.to_owned(),
            process_path: String::new(),
            client: Client::builder(TokioExecutor::new()).build(connector),
            timeout,
        }
    }

    /// `host:port` of the agent.
    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// The sandbox directory of an executor, from the agent's `/state`
    /// (running or completed executors).
    pub async fn sandbox(
        &self,
        framework_id: &str,
        executor_id: &str,
    ) -> Result<String, AgentError> {
        // Mesos serves the state under the agent process (`/slave(1)/state`)
        // and, delegated, at `/state`.
        let mut paths = vec![format!("{}/state", self.process_path)];
        if !self.process_path.is_empty() {
            paths.push("/state".to_owned());
        }
        let mut last_error = None;
        for path in paths {
            match self.get_json(&path).await {
                Ok(state) => {
                    return find_directory(&state, framework_id, executor_id).ok_or_else(|| {
                        AgentError::UnknownExecutor {
                            framework_id: framework_id.to_owned(),
                            executor_id: executor_id.to_owned(),
                        }
                    })
                }
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| AgentError::Http {
            url: self.authority.clone(),
            reason: "no state endpoint".into(),
        }))
    }

    /// The last `max_bytes` of the file at `path`, with `/files/read`.
    pub async fn tail(&self, path: &str, max_bytes: u64) -> Result<Tail, AgentError> {
        let encoded = percent_encode(path);
        let size_query = format!("/files/read?path={encoded}&offset=-1");
        let size = self.get_json(&size_query).await?;
        let size = json_u64(&size, "offset", &size_query)?;
        let offset = size.saturating_sub(max_bytes);
        let length = size - offset;
        if length == 0 {
            return Ok(Tail {
                data: String::new(),
                offset,
                size,
            });
        }
        let query = format!("/files/read?path={encoded}&offset={offset}&length={length}");
        let read = self.get_json(&query).await?;
        let data = read
            .get("data")
            .and_then(|d| d.as_str())
            .ok_or_else(|| AgentError::Json {
                url: self.url(&query),
                reason: "no 'data' string".into(),
            })?
            .to_owned();
        Ok(Tail { data, offset, size })
    }

    fn url(&self, path_and_query: &str) -> String {
        format!("http://{}{path_and_query}", self.authority)
    }

    /// GETs `path_and_query` and parses the JSON body.
    pub async fn get_json(&self, path_and_query: &str) -> Result<serde_json::Value, AgentError> {
        let url = self.url(path_and_query);
        let http = |reason: String| AgentError::Http {
            url: url.clone(),
            reason,
        };
        let uri: Uri = url
            .parse()
            .map_err(|e: http::uri::InvalidUri| http(e.to_string()))?;
        let request = Request::get(uri)
            .body(Empty::new())
            .map_err(|e| http(e.to_string()))?;
        let response = tokio::time::timeout(self.timeout, self.client.request(request))
            .await
            .map_err(|_| http(format!("no answer within {:?}", self.timeout)))?
            .map_err(|e| http(error_chain(&e)))?;
        let status = response.status();
        let body = tokio::time::timeout(
            self.timeout,
            Limited::new(response.into_body(), MAX_BODY).collect(),
        )
        .await
        .map_err(|_| http(format!("body not received within {:?}", self.timeout)))?
        .map_err(|e| http(e.to_string()))?
        .to_bytes();
        if !status.is_success() {
            return Err(AgentError::Status {
                url,
                status,
                body: String::from_utf8_lossy(&body[..body.len().min(512)])
                    .trim()
                    .to_owned(),
            });
        }
        serde_json::from_slice(&body).map_err(|e| AgentError::Json {
            url,
            reason: e.to_string(),
        })
    }
}

fn json_u64(value: &serde_json::Value, key: &str, query: &str) -> Result<u64, AgentError> {
    value
        .get(key)
        .and_then(serde_json::Value::as_u64)
        .ok_or_else(|| AgentError::Json {
            url: query.to_owned(),
            reason: format!("no numeric '{key}'"),
        })
}

/// The `directory` of `executor_id` of `framework_id` in an agent's `/state`.
fn find_directory(
    state: &serde_json::Value,
    framework_id: &str,
    executor_id: &str,
) -> Option<String> {
    let list = |value: &serde_json::Value, key: &str| -> Vec<serde_json::Value> {
        value
            .get(key)
            .and_then(|v| v.as_array())
            .cloned()
            .unwrap_or_default()
    };
    let frameworks = [
        list(state, "frameworks"),
        list(state, "completed_frameworks"),
    ]
    .concat();
    let framework = frameworks
        .iter()
        .find(|f| f.get("id").and_then(|id| id.as_str()) == Some(framework_id))?;
    let executors = [
        list(framework, "executors"),
        list(framework, "completed_executors"),
    ]
    .concat();
    executors
        .iter()
        .find(|e| e.get("id").and_then(|id| id.as_str()) == Some(executor_id))?
        .get("directory")?
        .as_str()
        .map(str::to_owned)
}

/// Percent-encodes a query value (RFC 3986 unreserved characters and `/`
/// stay as they are).
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// An error with its causes ("client error (Connect): Connection refused").
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_running_and_completed_executors() {
        let state = json!({
            "frameworks": [{"id": "F", "executors": [{"id": "A", "directory": "/w/a"}],
                            "completed_executors": [{"id": "B", "directory": "/w/b"}]}],
            "completed_frameworks": [{"id": "G", "completed_executors": [{"id": "C", "directory": "/w/c"}]}]
        });
        assert_eq!(find_directory(&state, "F", "A").as_deref(), Some("/w/a"));
        assert_eq!(find_directory(&state, "F", "B").as_deref(), Some("/w/b"));
        assert_eq!(find_directory(&state, "G", "C").as_deref(), Some("/w/c"));
        assert_eq!(find_directory(&state, "F", "C"), None);
    }

    #[test]
    fn encodes_query_values() {
        assert_eq!(
            percent_encode("/w/a b&c=d/stdout"),
            "/w/a%20b%26c%3Dd/stdout"
        );
    }

    #[test]
    fn addresses_the_agent_from_the_offer_url() {
        let mut offer = Offer {
            hostname: "agent.example".into(),
            ..Default::default()
        };
        let client = AgentClient::for_offer(&offer, Duration::from_secs(1));
        assert_eq!(client.authority(), "agent.example:5051");
        offer.url = Some(mesos_proto::v1::Url {
            scheme: "http".into(),
            address: mesos_proto::v1::Address {
                hostname: Some("agent.example".into()),
                ip: Some("10.0.0.7".into()),
                port: 5052,
            },
            path: Some("/slave(1)".into()),
            ..Default::default()
        });
        let client = AgentClient::for_offer(&offer, Duration::from_secs(1));
        assert_eq!(client.authority(), "10.0.0.7:5052");
        assert_eq!(client.process_path, "/slave(1)");
    }
}
