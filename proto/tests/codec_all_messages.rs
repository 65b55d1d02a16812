//! Every message type in our `.proto` files survives both encodings, and
//! random input never panics the JSON or protobuf decoders.

#![allow(clippy::unwrap_used)]

use mesos_proto::codec;
use mesos_proto::DESCRIPTOR_POOL;
use proptest::prelude::*;
use prost::Message as _;
use prost_reflect::{Cardinality, DynamicMessage, Kind, MapKey, MessageDescriptor, Value};

/// A value for one field, varied by `seed` so repeated elements differ.
fn sample(kind: &Kind, seed: u32, depth: usize) -> Value {
    match kind {
        Kind::Double => Value::F64(f64::from(seed) + 0.25),
        Kind::Float => Value::F32(seed as f32 + 0.5),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => Value::I32(-(seed as i32) - 7),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => Value::I64(-(i64::from(seed)) - (1 << 40)),
        Kind::Uint32 | Kind::Fixed32 => Value::U32(seed + 3),
        Kind::Uint64 | Kind::Fixed64 => Value::U64(u64::from(seed) + (1 << 53) + 1),
        Kind::Bool => Value::Bool(seed.is_multiple_of(2)),
        Kind::String => Value::String(format!("s{seed}-é\n\"")),
        Kind::Bytes => Value::Bytes(vec![0, 255, seed as u8, b'\n'].into()),
        Kind::Enum(e) => {
            let values: Vec<_> = e.values().collect();
            Value::EnumNumber(values[seed as usize % values.len()].number())
        }
        Kind::Message(m) => Value::Message(populate(m, depth + 1)),
    }
}

/// Sets every field (required ones always, others down to a depth limit so
/// recursive types such as `ContainerID.parent` terminate).
fn populate(descriptor: &MessageDescriptor, depth: usize) -> DynamicMessage {
    let mut msg = DynamicMessage::new(descriptor.clone());
    for field in descriptor.fields() {
        let required = field.cardinality() == Cardinality::Required;
        if depth > 3 && !required {
            continue;
        }
        // Only one member of a oneof may be set.
        if let Some(oneof) = field.containing_oneof() {
            if oneof.fields().next().map(|f| f.number()) != Some(field.number()) {
                continue;
            }
        }
        let value = if field.is_map() {
            let Kind::Message(entry) = field.kind() else {
                unreachable!()
            };
            let key = match sample(&entry.map_entry_key_field().kind(), 1, depth) {
                Value::String(s) => MapKey::String(s),
                Value::I32(n) => MapKey::I32(n),
                Value::I64(n) => MapKey::I64(n),
                Value::U32(n) => MapKey::U32(n),
                Value::U64(n) => MapKey::U64(n),
                Value::Bool(b) => MapKey::Bool(b),
                other => panic!("bad map key {other:?}"),
            };
            let value = sample(&entry.map_entry_value_field().kind(), 2, depth);
            Value::Map([(key, value)].into_iter().collect())
        } else if field.is_list() {
            Value::List((0..2).map(|i| sample(&field.kind(), i, depth)).collect())
        } else {
            sample(&field.kind(), 5, depth)
        };
        msg.set_field(&field, value);
    }
    msg
}

#[test]
fn every_message_round_trips_in_both_encodings() {
    let mut count = 0;
    for descriptor in DESCRIPTOR_POOL.all_messages() {
        if descriptor.is_map_entry() {
            continue;
        }
        let msg = populate(&descriptor, 0);

        let bytes = msg.encode_to_vec();
        let back = DynamicMessage::decode(descriptor.clone(), bytes.as_slice()).unwrap();
        assert!(
            back == msg,
            "protobuf round trip of {}",
            descriptor.full_name()
        );

        let json = codec::dynamic_to_json(&msg);
        assert!(json.is_ascii() && !json.contains('\n'), "{json}");
        let back = codec::dynamic_from_json(&descriptor, json.as_bytes())
            .unwrap_or_else(|e| panic!("{}: {e}\n{json}", descriptor.full_name()));
        // Decoding materialises emitted `[default]`s, so compare what the two
        // messages say on the wire rather than their presence bits.
        let again = codec::dynamic_to_json(&back);
        assert!(
            again == json,
            "JSON round trip of {}\n{json}\n{again}",
            descriptor.full_name()
        );
        count += 1;
    }
    assert!(count > 150, "only {count} message types");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_bytes_never_panic_the_decoders(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        use mesos_proto::codec::ContentType;
        use mesos_proto::v1::scheduler::Call;
        let _ = codec::decode::<Call>(&bytes, ContentType::Json);
        let _ = codec::decode::<Call>(&bytes, ContentType::Protobuf);
    }

    #[test]
    fn random_json_never_panics_the_decoder(
        doc in r#"\{("(type|subscribe|accept|framework_info|offer_ids|value|operations|launch|task_infos)":(\[|\{|"[A-Z_]*"|-?[0-9]{1,25}(\.[0-9]+)?|null|true|,|\}|\])*)*"#
    ) {
        use mesos_proto::codec::ContentType;
        use mesos_proto::v1::scheduler::Call;
        let _ = codec::decode::<Call>(doc.as_bytes(), ContentType::Json);
    }
}
