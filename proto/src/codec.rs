//! Request and response bodies: `application/x-protobuf` and `application/json`.
//!
//! The JSON side follows Mesos's stout `protobuf.hpp`, not proto3's canonical
//! JSON mapping (see `mesos-protocol.md` §1.3):
//!
//! * keys are proto field names (snake_case) on output and the only names
//!   accepted on input; unknown keys are ignored; `null` means unset;
//! * enums are written as names; an unknown name on input drops an optional
//!   field but is an error on a required one;
//! * bytes are standard base64; 64-bit integers are JSON numbers (numeric
//!   strings are accepted on input, as current stout does);
//! * unset optional fields with an explicit, non-deprecated `[default=…]` are
//!   emitted (e.g. `Filters.refuse_seconds: 5.0`, `CommandInfo.shell: true`);
//! * a missing `required` field is an error naming its path;
//! * output is compact, single-line, with every non-ASCII character escaped as
//!   `\uXXXX`, so a RecordIO record never holds a raw newline or a multi-byte
//!   character (some clients split streams on newlines and slice by bytes).
//!
//! The walk is done over `prost_reflect` descriptors, so it serves every
//! message type generated from our `.proto` files.

use std::fmt::Write as _;

use base64::Engine as _;
use prost_reflect::{
    Cardinality, DynamicMessage, FieldDescriptor, Kind, MapKey, MessageDescriptor, ReflectMessage,
    Value,
};
use serde_json::Value as Json;

/// The two body encodings Mesos speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContentType {
    /// `application/json`, with Mesos's conventions.
    Json,
    /// `application/x-protobuf`.
    Protobuf,
}

impl ContentType {
    /// The MIME type of JSON bodies.
    pub const JSON_MIME: &'static str = "application/json";
    /// The MIME type of protobuf bodies.
    pub const PROTOBUF_MIME: &'static str = "application/x-protobuf";

    /// Parses a `Content-Type` value; parameters such as `; charset=utf-8` are ignored.
    pub fn from_mime(value: &str) -> Option<Self> {
        let essence = value.split(';').next().unwrap_or_default().trim();
        if essence.eq_ignore_ascii_case(Self::JSON_MIME) {
            Some(Self::Json)
        } else if essence.eq_ignore_ascii_case(Self::PROTOBUF_MIME) {
            Some(Self::Protobuf)
        } else {
            None
        }
    }

    /// Picks the response encoding from an `Accept` header: the first listed
    /// type we can produce, with wildcards meaning JSON. `None` means 406.
    pub fn from_accept(value: &str) -> Option<Self> {
        value.split(',').find_map(|item| {
            let essence = item.split(';').next().unwrap_or_default().trim();
            match essence {
                "*/*" | "application/*" => Some(Self::Json),
                other => Self::from_mime(other),
            }
        })
    }

    /// The MIME type to put in a `Content-Type` header.
    pub fn mime(self) -> &'static str {
        match self {
            Self::Json => Self::JSON_MIME,
            Self::Protobuf => Self::PROTOBUF_MIME,
        }
    }
}

/// Why a body could not be decoded. `Display` is the message Mesos answers
/// with in a 400 response.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The body is not JSON at all.
    #[error("Failed to parse body into JSON: {0}")]
    Syntax(#[from] serde_json::Error),
    /// The JSON does not fit the message's schema.
    #[error("Failed to convert JSON into {message} protobuf: {path}: {reason}")]
    Schema {
        /// Full name of the message being decoded.
        message: String,
        /// Dotted path of the offending field.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The body is not a valid protobuf encoding of the message.
    #[error("Failed to parse body into {message} protobuf: {source}")]
    Protobuf {
        /// Full name of the message being decoded.
        message: String,
        /// The decoder's error.
        source: prost::DecodeError,
    },
    /// `required` fields are absent; the paths are comma-separated, as protobuf's
    /// `InitializationErrorString` lists them.
    #[error("Missing required fields: {0}")]
    MissingRequired(String),
}

/// Encodes `msg` in the given content type.
pub fn encode<M: ReflectMessage>(msg: &M, content_type: ContentType) -> Vec<u8> {
    match content_type {
        ContentType::Json => to_json(msg).into_bytes(),
        ContentType::Protobuf => msg.encode_to_vec(),
    }
}

/// Decodes a body of the given content type, checking `required` fields.
pub fn decode<M: ReflectMessage + Default>(
    body: &[u8],
    content_type: ContentType,
) -> Result<M, CodecError> {
    match content_type {
        ContentType::Json => from_json(body),
        ContentType::Protobuf => from_protobuf(body),
    }
}

/// Mesos-style JSON for `msg` (compact, ASCII-only).
pub fn to_json<M: ReflectMessage>(msg: &M) -> String {
    let mut out = String::with_capacity(msg.encoded_len() * 2 + 16);
    write_message(&mut out, &msg.transcode_to_dynamic());
    out
}

/// Mesos-style JSON for a dynamic message (compact, ASCII-only).
pub fn dynamic_to_json(msg: &DynamicMessage) -> String {
    let mut out = String::new();
    write_message(&mut out, msg);
    out
}

/// Parses Mesos-style JSON into `M`.
pub fn from_json<M: ReflectMessage + Default>(body: &[u8]) -> Result<M, CodecError> {
    let json: Json = serde_json::from_slice(body)?;
    from_json_value(&json)
}

/// Parses Mesos-style JSON into a dynamic message of the given type, checking
/// `required` fields.
pub fn dynamic_from_json(
    descriptor: &MessageDescriptor,
    body: &[u8],
) -> Result<DynamicMessage, CodecError> {
    let json: Json = serde_json::from_slice(body)?;
    let dynamic = json_to_message(descriptor, &json, "")?;
    check_required(&dynamic)?;
    Ok(dynamic)
}

/// Converts an already parsed JSON document into `M`.
pub fn from_json_value<M: ReflectMessage + Default>(json: &Json) -> Result<M, CodecError> {
    let descriptor = M::default().descriptor();
    let dynamic = json_to_message(&descriptor, json, "")?;
    finish(dynamic)
}

/// Decodes protobuf bytes into `M`, rejecting absent `required` fields as
/// Mesos's `ParseFromString` does (prost alone would default them silently).
pub fn from_protobuf<M: ReflectMessage + Default>(body: &[u8]) -> Result<M, CodecError> {
    let descriptor = M::default().descriptor();
    let dynamic = DynamicMessage::decode(descriptor.clone(), body).map_err(|source| {
        CodecError::Protobuf {
            message: descriptor.full_name().to_owned(),
            source,
        }
    })?;
    finish(dynamic)
}

fn check_required(dynamic: &DynamicMessage) -> Result<(), CodecError> {
    let mut missing = Vec::new();
    missing_required(dynamic, "", &mut missing);
    if missing.is_empty() {
        Ok(())
    } else {
        Err(CodecError::MissingRequired(missing.join(", ")))
    }
}

fn finish<M: ReflectMessage + Default>(dynamic: DynamicMessage) -> Result<M, CodecError> {
    check_required(&dynamic)?;
    let name = dynamic.descriptor().full_name().to_owned();
    dynamic
        .transcode_to::<M>()
        .map_err(|source| CodecError::Protobuf {
            message: name,
            source,
        })
}

// ---------------------------------------------------------------------------
// Output.

fn sorted_fields(descriptor: &MessageDescriptor) -> Vec<FieldDescriptor> {
    // stout walks `Reflection::ListFields`, which is in field-number order.
    let mut fields: Vec<_> = descriptor.fields().collect();
    fields.sort_by_key(FieldDescriptor::number);
    fields
}

/// True for an optional field whose `.proto` declares `[default=…]` and that is
/// not deprecated: Mesos emits those even when unset.
fn emits_default(field: &FieldDescriptor) -> bool {
    let proto = field.field_descriptor_proto();
    let deprecated = proto
        .options
        .as_ref()
        .and_then(|o| o.deprecated)
        .unwrap_or(false);
    field.cardinality() == Cardinality::Optional
        && proto.default_value.is_some()
        && !deprecated
        && field.containing_oneof().is_none()
}

fn write_message(out: &mut String, msg: &DynamicMessage) {
    out.push('{');
    let mut first = true;
    for field in sorted_fields(&msg.descriptor()) {
        let present = if field.is_list() || field.is_map() {
            // Repeated fields appear only when non-empty.
            msg.has_field(&field)
        } else {
            msg.has_field(&field) || emits_default(&field)
        };
        if !present {
            continue;
        }
        if !first {
            out.push(',');
        }
        first = false;
        write_string(out, field.name());
        out.push(':');
        write_value(out, &field, &msg.get_field(&field));
    }
    out.push('}');
}

fn write_value(out: &mut String, field: &FieldDescriptor, value: &Value) {
    match value {
        Value::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_scalar(out, &field.kind(), item);
            }
            out.push(']');
        }
        Value::Map(map) => {
            let value_kind = match field.kind() {
                Kind::Message(entry) => entry.map_entry_value_field().kind(),
                other => other,
            };
            let mut entries: Vec<_> = map.iter().map(|(k, v)| (map_key_string(k), v)).collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(out, &key);
                out.push(':');
                write_scalar(out, &value_kind, item);
            }
            out.push('}');
        }
        single => write_scalar(out, &field.kind(), single),
    }
}

fn map_key_string(key: &MapKey) -> String {
    match key {
        MapKey::Bool(b) => b.to_string(),
        MapKey::I32(n) => n.to_string(),
        MapKey::I64(n) => n.to_string(),
        MapKey::U32(n) => n.to_string(),
        MapKey::U64(n) => n.to_string(),
        MapKey::String(s) => s.clone(),
    }
}

fn write_scalar(out: &mut String, kind: &Kind, value: &Value) {
    match value {
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::I32(n) => push_display(out, n),
        Value::I64(n) => push_display(out, n),
        Value::U32(n) => push_display(out, n),
        Value::U64(n) => push_display(out, n),
        Value::F32(n) => write_float(out, f64::from(*n)),
        Value::F64(n) => write_float(out, *n),
        Value::String(s) => write_string(out, s),
        Value::Bytes(b) => write_string(out, &base64::engine::general_purpose::STANDARD.encode(b)),
        Value::EnumNumber(n) => match kind {
            Kind::Enum(e) => match e.get_value(*n) {
                Some(v) => write_string(out, v.name()),
                None => push_display(out, n),
            },
            _ => push_display(out, n),
        },
        Value::Message(m) => write_message(out, m),
        // Lists and maps never nest directly inside each other in protobuf.
        Value::List(_) | Value::Map(_) => out.push_str("null"),
    }
}

fn push_display(out: &mut String, value: impl std::fmt::Display) {
    // Writing to a String cannot fail.
    let _ = write!(out, "{value}");
}

fn write_float(out: &mut String, value: f64) {
    if value.is_finite() {
        // serde_json prints the shortest round-trip form, always with a
        // fraction or exponent (2.0, 0.1, 1e300), as stout does for doubles.
        match serde_json::to_string(&value) {
            Ok(s) => out.push_str(&s),
            Err(_) => out.push_str("null"),
        }
    } else if value.is_nan() {
        out.push_str("\"NaN\"");
    } else if value > 0.0 {
        out.push_str("\"Infinity\"");
    } else {
        out.push_str("\"-Infinity\"");
    }
}

/// Writes a JSON string literal using only ASCII: everything outside
/// printable ASCII becomes `\uXXXX` (UTF-16, surrogate pairs above U+FFFF).
fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
}

// ---------------------------------------------------------------------------
// Input.

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

fn schema_error(
    descriptor: &MessageDescriptor,
    path: &str,
    reason: impl Into<String>,
) -> CodecError {
    CodecError::Schema {
        message: descriptor.full_name().to_owned(),
        path: if path.is_empty() {
            "(root)".to_owned()
        } else {
            path.to_owned()
        },
        reason: reason.into(),
    }
}

fn json_type(json: &Json) -> &'static str {
    match json {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

fn json_to_message(
    descriptor: &MessageDescriptor,
    json: &Json,
    path: &str,
) -> Result<DynamicMessage, CodecError> {
    let Json::Object(object) = json else {
        return Err(schema_error(
            descriptor,
            path,
            format!("expected an object, got {}", json_type(json)),
        ));
    };
    let mut msg = DynamicMessage::new(descriptor.clone());
    for (key, value) in object {
        // Unknown keys are ignored; keys match proto names only.
        let Some(field) = descriptor.get_field_by_name(key) else {
            continue;
        };
        if value.is_null() {
            continue;
        }
        let field_path = join(path, key);
        if field.is_map() {
            let map = json_to_map(descriptor, &field, value, &field_path)?;
            msg.set_field(&field, Value::Map(map));
        } else if field.is_list() {
            let Json::Array(items) = value else {
                return Err(schema_error(
                    descriptor,
                    &field_path,
                    format!("expected an array, got {}", json_type(value)),
                ));
            };
            let mut list = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let item_path = format!("{field_path}[{i}]");
                if let Some(v) = json_to_value(descriptor, &field.kind(), item, &item_path)? {
                    list.push(v);
                }
            }
            if !list.is_empty() {
                msg.set_field(&field, Value::List(list));
            }
        } else {
            match json_to_value(descriptor, &field.kind(), value, &field_path)? {
                Some(v) => msg.set_field(&field, v),
                None if field.cardinality() == Cardinality::Required => {
                    return Err(schema_error(
                        descriptor,
                        &field_path,
                        "unknown enum value on a required field",
                    ));
                }
                // An unknown enum name drops an optional field, as in stout.
                None => {}
            }
        }
    }
    Ok(msg)
}

fn json_to_map(
    descriptor: &MessageDescriptor,
    field: &FieldDescriptor,
    value: &Json,
    path: &str,
) -> Result<std::collections::HashMap<MapKey, Value>, CodecError> {
    let Kind::Message(entry) = field.kind() else {
        return Err(schema_error(
            descriptor,
            path,
            "map field without an entry type",
        ));
    };
    let Json::Object(object) = value else {
        return Err(schema_error(
            descriptor,
            path,
            format!("expected an object, got {}", json_type(value)),
        ));
    };
    let key_kind = entry.map_entry_key_field().kind();
    let value_kind = entry.map_entry_value_field().kind();
    let mut map = std::collections::HashMap::with_capacity(object.len());
    for (key, item) in object {
        let item_path = format!("{path}[{key}]");
        let key = parse_map_key(&key_kind, key)
            .ok_or_else(|| schema_error(descriptor, &item_path, "invalid map key"))?;
        if let Some(v) = json_to_value(descriptor, &value_kind, item, &item_path)? {
            map.insert(key, v);
        }
    }
    Ok(map)
}

fn parse_map_key(kind: &Kind, key: &str) -> Option<MapKey> {
    Some(match kind {
        Kind::String => MapKey::String(key.to_owned()),
        Kind::Bool => MapKey::Bool(key.parse().ok()?),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => MapKey::I32(key.parse().ok()?),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => MapKey::I64(key.parse().ok()?),
        Kind::Uint32 | Kind::Fixed32 => MapKey::U32(key.parse().ok()?),
        Kind::Uint64 | Kind::Fixed64 => MapKey::U64(key.parse().ok()?),
        _ => return None,
    })
}

/// Converts one JSON value to a field value. `Ok(None)` means "drop it"
/// (an unknown enum name).
fn json_to_value(
    descriptor: &MessageDescriptor,
    kind: &Kind,
    json: &Json,
    path: &str,
) -> Result<Option<Value>, CodecError> {
    let mismatch = |expected: &str| {
        schema_error(
            descriptor,
            path,
            format!("expected {expected}, got {}", json_type(json)),
        )
    };
    let value = match kind {
        Kind::Message(inner) => Value::Message(json_to_message(inner, json, path)?),
        Kind::Enum(e) => match json {
            Json::String(name) => match e.get_value_by_name(name) {
                Some(v) => Value::EnumNumber(v.number()),
                None => return Ok(None),
            },
            Json::Number(n) => match n.as_i64().and_then(|n| i32::try_from(n).ok()) {
                Some(n) if e.get_value(n).is_some() => Value::EnumNumber(n),
                _ => return Ok(None),
            },
            _ => return Err(mismatch("an enum name")),
        },
        Kind::String => match json {
            Json::String(s) => Value::String(s.clone()),
            _ => return Err(mismatch("a string")),
        },
        Kind::Bytes => match json {
            Json::String(s) => Value::Bytes(
                base64::engine::general_purpose::STANDARD
                    .decode(s)
                    .map_err(|e| schema_error(descriptor, path, format!("invalid base64: {e}")))?
                    .into(),
            ),
            _ => return Err(mismatch("a base64 string")),
        },
        Kind::Bool => match json {
            Json::Bool(b) => Value::Bool(*b),
            Json::String(s) if s == "true" => Value::Bool(true),
            Json::String(s) if s == "false" => Value::Bool(false),
            _ => return Err(mismatch("a boolean")),
        },
        Kind::Double | Kind::Float => {
            let n = match json {
                Json::Number(n) => n.as_f64().ok_or_else(|| mismatch("a number"))?,
                Json::String(s) => match s.as_str() {
                    "Infinity" => f64::INFINITY,
                    "-Infinity" => f64::NEG_INFINITY,
                    "NaN" => f64::NAN,
                    other => other.trim().parse().map_err(|_| mismatch("a number"))?,
                },
                _ => return Err(mismatch("a number")),
            };
            if matches!(kind, Kind::Float) {
                // Narrowing to the declared float width is the point here.
                #[allow(clippy::cast_possible_truncation)]
                Value::F32(n as f32)
            } else {
                Value::F64(n)
            }
        }
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            let n = json_integer(json).ok_or_else(|| mismatch("an integer"))?;
            Value::I32(i32::try_from(n).map_err(|_| mismatch("a 32-bit integer"))?)
        }
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
            let n = json_integer(json).ok_or_else(|| mismatch("an integer"))?;
            Value::I64(i64::try_from(n).map_err(|_| mismatch("a 64-bit integer"))?)
        }
        Kind::Uint32 | Kind::Fixed32 => {
            let n = json_integer(json).ok_or_else(|| mismatch("an integer"))?;
            Value::U32(u32::try_from(n).map_err(|_| mismatch("an unsigned 32-bit integer"))?)
        }
        Kind::Uint64 | Kind::Fixed64 => {
            let n = json_integer(json).ok_or_else(|| mismatch("an integer"))?;
            Value::U64(u64::try_from(n).map_err(|_| mismatch("an unsigned 64-bit integer"))?)
        }
    };
    Ok(Some(value))
}

/// An integer from a JSON number or a numeric string, widened to i128 so
/// both the i64 and u64 ranges fit before the per-kind range check.
fn json_integer(json: &Json) -> Option<i128> {
    match json {
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                Some(i128::from(i))
            } else if let Some(u) = n.as_u64() {
                Some(i128::from(u))
            } else {
                // Integral doubles such as 5.0 are accepted, fractions are not.
                let f = n.as_f64()?;
                #[allow(clippy::cast_possible_truncation)]
                (f.fract() == 0.0 && f.abs() < 1.8e19).then_some(f as i128)
            }
        }
        Json::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn missing_required(msg: &DynamicMessage, path: &str, missing: &mut Vec<String>) {
    for field in sorted_fields(&msg.descriptor()) {
        let field_path = join(path, field.name());
        if field.cardinality() == Cardinality::Required && !msg.has_field(&field) {
            missing.push(field_path);
            continue;
        }
        if !msg.has_field(&field) {
            continue;
        }
        match &*msg.get_field(&field) {
            Value::Message(inner) => missing_required(inner, &field_path, missing),
            Value::List(items) => {
                for (i, item) in items.iter().enumerate() {
                    if let Value::Message(inner) = item {
                        missing_required(inner, &format!("{field_path}[{i}]"), missing);
                    }
                }
            }
            Value::Map(map) => {
                for (key, item) in map {
                    if let Value::Message(inner) = item {
                        let key = map_key_string(key);
                        missing_required(inner, &format!("{field_path}[{key}]"), missing);
                    }
                }
            }
            _ => {}
        }
    }
}
