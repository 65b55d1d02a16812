//! Messages sent with `Sender` reach a `routes` handler in order.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use mesos_transport::{message_name, routes, Message, Sender, Upid};
use prost_types::Timestamp;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

async fn serve(
    process: &str,
) -> (
    Upid,
    mpsc::UnboundedReceiver<Message>,
    tokio::task::JoinHandle<()>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upid = Upid::new(process, listener.local_addr().unwrap());
    let (tx, rx) = mpsc::unbounded_channel();
    let app = routes(process, move |m| {
        let _ = tx.send(m);
    });
    let server = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (upid, rx, server)
}

async fn next(rx: &mut mpsc::UnboundedReceiver<Message>) -> Message {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("message within 10 s")
        .expect("channel open")
}

#[tokio::test]
async fn delivers_in_order_with_sender_and_name() {
    let (agent, mut rx, _server) = serve("slave(1)").await;
    let sender = Sender::new("master@127.0.0.1:5050".parse().unwrap());
    for seconds in 0..200 {
        sender.send(&agent, &Timestamp { seconds, nanos: 0 });
    }
    for seconds in 0..200 {
        let message = next(&mut rx).await;
        assert_eq!(message.from.to_string(), "master@127.0.0.1:5050");
        assert_eq!(message.name, "google.protobuf.Timestamp");
        assert!(message.is::<Timestamp>());
        assert_eq!(message.decode::<Timestamp>().unwrap().seconds, seconds);
    }
    assert_eq!(message_name::<Timestamp>(), "google.protobuf.Timestamp");
}

#[tokio::test]
async fn rejects_requests_without_libprocess_from() {
    let (agent, _rx, _server) = serve("slave(1)").await;
    let mut stream = tokio::net::TcpStream::connect(agent.address).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream
        .write_all(b"POST /slave(1)/x.Y HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 400"), "{response}");
    assert!(
        response.contains("Missing 'Libprocess-From' header"),
        "{response}"
    );
}

#[tokio::test]
async fn recovers_after_peer_restart() {
    let (agent, mut rx, server) = serve("slave(1)").await;
    let sender = Sender::new("master@127.0.0.1:5050".parse().unwrap());
    sender.send(
        &agent,
        &Timestamp {
            seconds: 1,
            nanos: 0,
        },
    );
    assert_eq!(
        next(&mut rx).await.decode::<Timestamp>().unwrap().seconds,
        1
    );

    // The peer goes away: messages sent meanwhile are lost (at most once).
    server.abort();
    let _ = server.await;
    sender.send(
        &agent,
        &Timestamp {
            seconds: 2,
            nanos: 0,
        },
    );
    tokio::time::sleep(Duration::from_millis(200)).await;

    // It comes back on the same address: later messages get through.
    let listener = TcpListener::bind(agent.address).await.unwrap();
    let (tx, mut rx2) = mpsc::unbounded_channel();
    let app = routes("slave(1)", move |m| {
        let _ = tx.send(m);
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    sender.send(
        &agent,
        &Timestamp {
            seconds: 3,
            nanos: 0,
        },
    );
    assert_eq!(
        next(&mut rx2).await.decode::<Timestamp>().unwrap().seconds,
        3
    );
}
