//! A minimal HTTP/1.0 GET for operator endpoints (`/state`,
//! `/metrics/snapshot`): one request per connection, body until close.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TIMEOUT: Duration = Duration::from_secs(5);

/// `GET path` on `addr`, the body parsed as JSON.
pub async fn get_json(addr: SocketAddr, path: &str) -> Result<Value, String> {
    let exchange = async {
        let mut stream = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect {addr}: {e}"))?;
        let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n");
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| format!("send to {addr}: {e}"))?;
        let mut response = Vec::new();
        stream
            .read_to_end(&mut response)
            .await
            .map_err(|e| format!("read from {addr}: {e}"))?;
        Ok::<_, String>(response)
    };
    let response = tokio::time::timeout(TIMEOUT, exchange)
        .await
        .map_err(|_| format!("GET {addr}{path} timed out"))??;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("GET {addr}{path}: no header end in {text:?}"))?;
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        return Err(format!("GET {addr}{path}: {head}"));
    }
    serde_json::from_str(body).map_err(|e| format!("GET {addr}{path}: not JSON ({e}): {body}"))
}

/// Whether something accepts connections on `addr` within `timeout`.
pub async fn wait_listening(addr: SocketAddr, timeout: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    while tokio::time::Instant::now() < deadline {
        // A cut-off host drops SYNs: bound each attempt.
        let attempt = tokio::time::timeout(Duration::from_secs(1), TcpStream::connect(addr));
        if matches!(attempt.await, Ok(Ok(_))) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}
