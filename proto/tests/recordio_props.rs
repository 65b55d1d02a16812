//! Property tests for RecordIO: any records, cut into any chunks, decode to
//! the same records; random bytes never panic the decoder.

#![allow(clippy::unwrap_used)]

use mesos_proto::recordio::{self, Decoder};
use proptest::prelude::*;

/// Splits `bytes` at the given (unsorted, possibly duplicate) cut points.
fn chunks<'a>(bytes: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    cuts.sort_unstable();
    cuts.dedup();
    let mut out = Vec::new();
    let mut start = 0;
    for cut in cuts.into_iter().chain([bytes.len()]) {
        out.push(&bytes[start..cut]);
        start = cut;
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_chunking_yields_the_same_records(
        records in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 0..20),
        cuts in prop::collection::vec(any::<usize>(), 0..40),
    ) {
        let mut stream = Vec::new();
        for r in &records {
            recordio::encode_into(r, &mut stream);
        }
        let mut decoder = Decoder::default();
        let mut decoded = Vec::new();
        for chunk in chunks(&stream, &cuts) {
            decoded.extend(decoder.decode(chunk).unwrap());
        }
        prop_assert_eq!(decoded, records);
        prop_assert!(decoder.is_at_boundary());
    }

    #[test]
    fn random_bytes_never_panic_and_stay_bounded(
        bytes in prop::collection::vec(any::<u8>(), 0..4096),
        cuts in prop::collection::vec(any::<usize>(), 0..16),
    ) {
        // A small maximum: whatever the input claims, the decoder buffers at
        // most one record of this size.
        let mut decoder = Decoder::new(1024);
        for chunk in chunks(&bytes, &cuts) {
            match decoder.decode(chunk) {
                Ok(records) => prop_assert!(records.iter().all(|r| r.len() <= 1024)),
                Err(_) => break,
            }
        }
    }

    #[test]
    fn digit_heavy_input_is_rejected_or_decoded(
        bytes in prop::collection::vec(prop::sample::select(b"0123456789\n{}a".to_vec()), 0..512),
    ) {
        let mut decoder = Decoder::new(64);
        let _ = decoder.decode(&bytes);
    }
}
