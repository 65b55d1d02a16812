//! RecordIO, the framing of Mesos's event streams (`docs/recordio.md`):
//! `<decimal byte length>\n<bytes>`, records back to back, no trailer.
//!
//! The decoder is incremental: it accepts chunks split anywhere (HTTP chunk
//! boundaries are arbitrary), rejects malformed length lines and records above
//! a configurable maximum, and never allocates a record's claimed length up
//! front, so a hostile peer cannot make it reserve gigabytes with one line.

/// Default upper bound on one record (64 MiB).
pub const DEFAULT_MAX_RECORD_LEN: usize = 64 * 1024 * 1024;

/// `u64::MAX` has 20 decimal digits; a longer length line cannot be valid.
const MAX_HEADER_DIGITS: usize = 20;

/// Frames one record.
pub fn encode(record: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(record.len() + MAX_HEADER_DIGITS + 1);
    encode_into(record, &mut out);
    out
}

/// Appends one framed record to `out`.
pub fn encode_into(record: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(record.len().to_string().as_bytes());
    out.push(b'\n');
    out.extend_from_slice(record);
}

/// Why a stream cannot be decoded. After an error the stream is corrupt and
/// the decoder keeps returning it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordIoError {
    /// A byte other than a digit or the terminating newline in a length line.
    #[error(
        "invalid RecordIO length line: unexpected byte 0x{byte:02x} at stream offset {offset}"
    )]
    NonDigit {
        /// The offending byte.
        byte: u8,
        /// Its offset from the start of the stream.
        offset: u64,
    },
    /// A length line with no digits.
    #[error("invalid RecordIO length line: empty at stream offset {offset}")]
    EmptyLength {
        /// Offset of the newline.
        offset: u64,
    },
    /// A length line longer than any valid length.
    #[error("invalid RecordIO length line: more than {MAX_HEADER_DIGITS} digits at stream offset {offset}")]
    LengthTooLong {
        /// Offset where the line started.
        offset: u64,
    },
    /// A record larger than the configured maximum.
    #[error("RecordIO record of {length} bytes exceeds the maximum of {max} bytes")]
    RecordTooLarge {
        /// The announced length.
        length: u64,
        /// The configured maximum.
        max: usize,
    },
}

#[derive(Debug)]
enum State {
    /// Reading the decimal length; holds the digits seen so far.
    Header {
        digits: usize,
        value: u64,
    },
    /// Reading `remaining` more bytes of the current record.
    Body {
        remaining: usize,
    },
    Failed(RecordIoError),
}

/// Incremental RecordIO decoder.
#[derive(Debug)]
pub struct Decoder {
    max_record_len: usize,
    state: State,
    record: Vec<u8>,
    offset: u64,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_RECORD_LEN)
    }
}

impl Decoder {
    /// A decoder that rejects records longer than `max_record_len` bytes.
    pub fn new(max_record_len: usize) -> Self {
        Self {
            max_record_len,
            state: State::Header {
                digits: 0,
                value: 0,
            },
            record: Vec::new(),
            offset: 0,
        }
    }

    /// Feeds a chunk and returns every record it completes, in order.
    pub fn decode(&mut self, mut chunk: &[u8]) -> Result<Vec<Vec<u8>>, RecordIoError> {
        let mut records = Vec::new();
        while !chunk.is_empty() {
            match &mut self.state {
                State::Failed(e) => return Err(e.clone()),
                State::Header { digits, value } => {
                    let byte = chunk[0];
                    let offset = self.offset;
                    chunk = &chunk[1..];
                    self.offset += 1;
                    match byte {
                        b'0'..=b'9' => {
                            *digits += 1;
                            if *digits > MAX_HEADER_DIGITS {
                                let start = offset + 1 - *digits as u64;
                                return self.fail(RecordIoError::LengthTooLong { offset: start });
                            }
                            *value = value
                                .saturating_mul(10)
                                .saturating_add(u64::from(byte - b'0'));
                        }
                        b'\n' if *digits == 0 => {
                            return self.fail(RecordIoError::EmptyLength { offset })
                        }
                        b'\n' => {
                            let length = *value;
                            match usize::try_from(length) {
                                Ok(len) if len <= self.max_record_len => {
                                    if len == 0 {
                                        records.push(Vec::new());
                                        self.state = State::Header {
                                            digits: 0,
                                            value: 0,
                                        };
                                    } else {
                                        self.state = State::Body { remaining: len };
                                    }
                                }
                                _ => {
                                    return self.fail(RecordIoError::RecordTooLarge {
                                        length,
                                        max: self.max_record_len,
                                    })
                                }
                            }
                        }
                        other => {
                            return self.fail(RecordIoError::NonDigit {
                                byte: other,
                                offset,
                            })
                        }
                    }
                }
                State::Body { remaining } => {
                    let take = (*remaining).min(chunk.len());
                    // Grow with the data actually received, never by the claim.
                    self.record.extend_from_slice(&chunk[..take]);
                    chunk = &chunk[take..];
                    self.offset += take as u64;
                    *remaining -= take;
                    if *remaining == 0 {
                        records.push(std::mem::take(&mut self.record));
                        self.state = State::Header {
                            digits: 0,
                            value: 0,
                        };
                    }
                }
            }
        }
        if let State::Failed(e) = &self.state {
            return Err(e.clone());
        }
        Ok(records)
    }

    /// True when the stream so far ended exactly at a record boundary, i.e.
    /// a close now would not cut a record in half.
    pub fn is_at_boundary(&self) -> bool {
        matches!(self.state, State::Header { digits: 0, .. })
    }

    fn fail(&mut self, error: RecordIoError) -> Result<Vec<Vec<u8>>, RecordIoError> {
        self.record = Vec::new();
        self.state = State::Failed(error.clone());
        Err(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_back_to_back_records() {
        let mut stream = encode(br#"{"type":"SUBSCRIBED"}"#);
        stream.extend(encode(br#"{"type":"HEARTBEAT"}"#));
        let records = Decoder::default().decode(&stream).unwrap();
        assert_eq!(
            records,
            vec![
                br#"{"type":"SUBSCRIBED"}"#.to_vec(),
                br#"{"type":"HEARTBEAT"}"#.to_vec()
            ]
        );
    }

    #[test]
    fn matches_the_mesos_documentation_example() {
        // docs/recordio.md: a 20-byte HEARTBEAT record.
        assert_eq!(
            encode(br#"{"type":"HEARTBEAT"}"#),
            b"20\n{\"type\":\"HEARTBEAT\"}"
        );
    }

    #[test]
    fn rejects_non_digit_length() {
        let err = Decoder::default().decode(b" 5\nhello").unwrap_err();
        assert_eq!(
            err,
            RecordIoError::NonDigit {
                byte: b' ',
                offset: 0
            }
        );
    }

    #[test]
    fn rejects_empty_length_line() {
        let err = Decoder::default().decode(b"\n").unwrap_err();
        assert_eq!(err, RecordIoError::EmptyLength { offset: 0 });
    }

    #[test]
    fn rejects_overlong_length_line() {
        let err = Decoder::default().decode(&[b'1'; 21]).unwrap_err();
        assert_eq!(err, RecordIoError::LengthTooLong { offset: 0 });
    }

    #[test]
    fn rejects_records_above_the_maximum_without_allocating_them() {
        let mut decoder = Decoder::new(10);
        let err = decoder.decode(b"11\n").unwrap_err();
        assert_eq!(
            err,
            RecordIoError::RecordTooLarge {
                length: 11,
                max: 10
            }
        );
        // The stream stays failed.
        assert_eq!(decoder.decode(b"1\na").unwrap_err(), err);
        // A huge claim within the maximum reserves nothing up front.
        let mut decoder = Decoder::new(usize::MAX);
        assert!(decoder
            .decode(b"18446744073709551615\nab")
            .unwrap()
            .is_empty());
        assert!(decoder.record.capacity() < 1024);
    }

    #[test]
    fn boundary_tracking() {
        let mut decoder = Decoder::default();
        assert!(decoder.is_at_boundary());
        decoder.decode(b"3\nab").unwrap();
        assert!(!decoder.is_at_boundary());
        assert_eq!(decoder.decode(b"c").unwrap(), vec![b"abc".to_vec()]);
        assert!(decoder.is_at_boundary());
    }
}
