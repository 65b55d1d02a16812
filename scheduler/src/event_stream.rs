//! The `SUBSCRIBE` response body as a sequence of events: RecordIO records
//! split across arbitrary HTTP chunks, each one encoded `Event`.

use std::collections::VecDeque;

use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use mesos_proto::codec::{self, CodecError, ContentType};
use mesos_proto::recordio::{self, RecordIoError};
use mesos_proto::v1::scheduler::Event;

use crate::master_client::error_chain;

/// Why the event stream cannot be read further.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StreamError {
    /// The connection broke mid-stream.
    #[error("event stream broke: {0}")]
    Transport(String),
    /// The bytes are not RecordIO.
    #[error("event stream is corrupt: {0}")]
    Framing(#[from] RecordIoError),
    /// A record is not an `Event`.
    #[error("undecodable event: {0}")]
    Decode(#[from] CodecError),
}

/// Reads events one at a time. `next` is cancel-safe: everything read so far
/// lives in the struct, not in the future, so it can sit in a `select!`.
#[derive(Debug)]
pub(crate) struct EventStream {
    body: Incoming,
    decoder: recordio::Decoder,
    records: VecDeque<Vec<u8>>,
    content_type: ContentType,
}

impl EventStream {
    /// Wraps a `SUBSCRIBE` response body in the given encoding.
    pub(crate) fn new(body: Incoming, content_type: ContentType) -> Self {
        Self {
            body,
            decoder: recordio::Decoder::default(),
            records: VecDeque::new(),
            content_type,
        }
    }

    /// The next event, or `None` when the master ended the stream.
    pub(crate) async fn next(&mut self) -> Result<Option<Event>, StreamError> {
        loop {
            if let Some(record) = self.records.pop_front() {
                return Ok(Some(codec::decode(&record, self.content_type)?));
            }
            let Some(frame) = self.body.frame().await else {
                return Ok(None);
            };
            let frame = frame.map_err(|e| StreamError::Transport(error_chain(&e)))?;
            if let Ok(data) = frame.into_data() {
                self.records.extend(self.decoder.decode(&data)?);
            }
        }
    }
}
