//! libprocess-style messages between the Mesos master and its agents.
//!
//! Apache Mesos sends internal messages as HTTP requests between libprocess
//! actors; this crate keeps that shape (see `docs/architecture.md`):
//!
//! * every actor has a [`Upid`] `name@ip:port` (`master@10.0.0.1:5050`,
//!   `slave(1)@10.0.0.2:5051`);
//! * a message is `POST /<receiver name>/<protobuf full name>` with the headers
//!   `Libprocess-From: <sender upid>` and `Content-Type: application/x-protobuf`
//!   and the protobuf encoding as body. The receiver answers `202 Accepted` at
//!   once, before handling it;
//! * delivery is at most once and ordered per (sender, receiver): a [`Sender`]
//!   keeps one queue, one task and one keep-alive HTTP/1.1 connection per
//!   destination. Lost messages are the protocols' business (retries, pings).
//!
//! Receiving: mount [`routes`] into the process's axum router; every accepted
//! message reaches the handler as a [`Message`], decoded with
//! [`Message::decode`]. Sending: [`Sender::send`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use mesos_transport::{routes, Message, Sender, Upid};
//! let me: Upid = "slave(1)@127.0.0.1:5051".parse()?;
//! let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Message>();
//! let app = routes(&me.id, move |m| drop(tx.send(m)));
//! # drop(app);
//! let sender = Sender::new(me);
//! let master: Upid = "master@127.0.0.1:5050".parse()?;
//! sender.send(&master, &prost_types::Timestamp::default());
//! while let Some(message) = rx.recv().await {
//!     println!("{} from {}", message.name, message.from);
//! }
//! # Ok(()) }
//! ```

mod receiver;
mod sender;
mod upid;

pub use receiver::{message_name, routes, Message, LIBPROCESS_FROM};
pub use sender::Sender;
pub use upid::{Upid, UpidError};

/// Errors of decoding a received message.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The body is not a valid protobuf encoding of the expected message.
    #[error("failed to decode {name} from {from}: {source}")]
    Decode {
        /// Full protobuf name the message was sent as.
        name: String,
        /// The sender.
        from: Upid,
        /// What prost reported.
        source: prost::DecodeError,
    },
}
