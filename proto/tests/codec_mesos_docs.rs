//! JSON documents written by hand from the Mesos v1 API documentation
//! (docs/scheduler-http-api.md, docs/executor-http-api.md) decode to the
//! expected values and re-encode to the same document.

#![allow(clippy::unwrap_used)]

use mesos_proto::codec::{self, CodecError, ContentType};
use mesos_proto::v1::scheduler::{call, event, Call, Event};
use mesos_proto::v1::{self, offer, task_status, value, TaskState};
use serde_json::{json, Value as Json};

/// Decodes `doc`, re-encodes it, and checks the output is the same document
/// (as JSON values, so key order does not matter) and a fixed point.
fn round_trip<M>(doc: &Json) -> M
where
    M: prost_reflect::ReflectMessage + Default + PartialEq + std::fmt::Debug,
{
    let bytes = serde_json::to_vec(doc).unwrap();
    let msg: M = codec::decode(&bytes, ContentType::Json).unwrap();
    let out = codec::encode(&msg, ContentType::Json);
    let reparsed: Json = serde_json::from_slice(&out).unwrap();
    assert_eq!(&reparsed, doc, "re-encoded JSON differs");
    let again: M = codec::decode(&out, ContentType::Json).unwrap();
    assert_eq!(again, msg);
    assert_eq!(codec::encode(&again, ContentType::Json), out);
    // And the protobuf encoding carries the same value.
    let pb = codec::encode(&msg, ContentType::Protobuf);
    assert_eq!(codec::decode::<M>(&pb, ContentType::Protobuf).unwrap(), msg);
    msg
}

#[test]
fn subscribe_call() {
    let doc = json!({
        "type": "SUBSCRIBE",
        "subscribe": {
            "framework_info": {
                "user": "foo",
                "name": "Example HTTP Framework",
                "failover_timeout": 0.0,
                "checkpoint": false,
                "roles": ["test"],
                "capabilities": [{"type": "MULTI_ROLE"}]
            }
        }
    });
    let call: Call = round_trip(&doc);
    assert_eq!(call.r#type(), call::Type::Subscribe);
    let info = &call.subscribe.as_ref().unwrap().framework_info;
    assert_eq!(info.user, "foo");
    assert_eq!(info.roles, vec!["test".to_string()]);
    assert_eq!(
        info.capabilities[0].r#type(),
        v1::framework_info::capability::Type::MultiRole
    );
}

#[test]
fn offers_event() {
    let doc = json!({
        "type": "OFFERS",
        "offers": {
            "offers": [{
                "id": {"value": "12214-23523-O235235"},
                "framework_id": {"value": "12124-235325-32425"},
                "agent_id": {"value": "12325-23523-S23523"},
                "hostname": "agent.host",
                "resources": [
                    {"name": "cpus", "type": "SCALAR", "scalar": {"value": 2.0}, "role": "*",
                     "allocation_info": {"role": "engineering"}},
                    {"name": "ports", "type": "RANGES",
                     "ranges": {"range": [{"begin": 31000, "end": 32000}]}, "role": "*"}
                ],
                "executor_ids": [{"value": "12214-23523-E235235"}],
                "attributes": [{"name": "rack", "type": "TEXT", "text": {"value": "r1"}}],
                "url": {
                    "scheme": "http",
                    "address": {"hostname": "agent.host", "ip": "10.0.0.1", "port": 5051},
                    "path": "/slave(1)"
                },
                "allocation_info": {"role": "engineering"}
            }]
        }
    });
    let event: Event = round_trip(&doc);
    assert_eq!(event.r#type(), event::Type::Offers);
    let offer = &event.offers.as_ref().unwrap().offers[0];
    assert_eq!(offer.hostname, "agent.host");
    let ports = offer.resources[1].ranges.as_ref().unwrap();
    assert_eq!(
        ports.range[0],
        value::Range {
            begin: 31000,
            end: 32000
        }
    );
    assert_eq!(offer.resources[0].scalar.as_ref().unwrap().value, 2.0);
    // 64-bit integers stay JSON numbers on the wire.
    let text = codec::to_json(&event);
    assert!(text.contains(r#""begin":31000,"end":32000"#), "{text}");
}

#[test]
fn accept_with_launch_call() {
    let doc = json!({
        "framework_id": {"value": "12220-3440-12532-2345"},
        "type": "ACCEPT",
        "accept": {
            "offer_ids": [{"value": "12220-3440-12532-O12"}],
            "operations": [{
                "type": "LAUNCH",
                "launch": {
                    "task_infos": [{
                        "name": "My Task",
                        "task_id": {"value": "12220-3440-12532-my-task"},
                        "agent_id": {"value": "12220-3440-12532-S1233"},
                        "command": {"shell": true, "value": "sleep 1000"},
                        "resources": [
                            {"name": "cpus", "type": "SCALAR", "scalar": {"value": 1.0}, "role": "*"},
                            {"name": "mem", "type": "SCALAR", "scalar": {"value": 128.0}, "role": "*"}
                        ]
                    }]
                }
            }],
            "filters": {"refuse_seconds": 5.0}
        }
    });
    let call: Call = round_trip(&doc);
    let accept = call.accept.as_ref().unwrap();
    assert_eq!(
        accept.operations[0].r#type(),
        offer::operation::Type::Launch
    );
    let task = &accept.operations[0].launch.as_ref().unwrap().task_infos[0];
    assert_eq!(task.command.as_ref().unwrap().value(), "sleep 1000");
    assert_eq!(task.resources[1].scalar.as_ref().unwrap().value, 128.0);
}

#[test]
fn update_event_with_uuid() {
    let doc = json!({
        "type": "UPDATE",
        "update": {
            "status": {
                "task_id": {"value": "12344-my-task"},
                "state": "TASK_RUNNING",
                "agent_id": {"value": "12325-23523-S23523"},
                "source": "SOURCE_EXECUTOR",
                "uuid": "5nq0EXzFT9OcvIjUg/5fJQ==",
                "timestamp": 1.5e9
            }
        }
    });
    let event: Event = round_trip(&doc);
    let status = &event.update.as_ref().unwrap().status;
    assert_eq!(status.state(), TaskState::TaskRunning);
    assert_eq!(status.source(), task_status::Source::Executor);
    assert_eq!(status.uuid().len(), 16);
}

#[test]
fn defaults_are_emitted_and_deprecated_ones_are_not() {
    // Filters.refuse_seconds [default = 5.0] is emitted when unset;
    // Resource.role [default = "*", deprecated] is not.
    let decline = Call {
        r#type: Some(call::Type::Decline as i32),
        decline: Some(call::Decline {
            offer_ids: vec![v1::OfferId { value: "o1".into() }],
            filters: Some(v1::Filters::default()),
        }),
        ..Default::default()
    };
    let text = codec::to_json(&decline);
    assert!(
        text.contains(r#""filters":{"refuse_seconds":5.0}"#),
        "{text}"
    );
    let resource = v1::Resource {
        name: "cpus".into(),
        r#type: value::Type::Scalar as i32,
        scalar: Some(value::Scalar { value: 1.0 }),
        ..Default::default()
    };
    let text = codec::to_json(&resource);
    assert!(!text.contains("role"), "{text}");
    // CommandInfo.shell [default = true] appears.
    let text = codec::to_json(&v1::CommandInfo::default());
    assert_eq!(text, r#"{"shell":true}"#);
}

#[test]
fn missing_required_fields_are_named() {
    let err = codec::decode::<Call>(
        br#"{"type":"SUBSCRIBE","subscribe":{"framework_info":{"name":"x"}}}"#,
        ContentType::Json,
    )
    .unwrap_err();
    assert!(matches!(err, CodecError::MissingRequired(_)));
    assert_eq!(
        err.to_string(),
        "Missing required fields: subscribe.framework_info.user"
    );
    // The same rule applies to protobuf bodies.
    let info = v1::FrameworkInfo::default();
    let mut bytes = Vec::new();
    // name (2) only: user (1) is required and absent.
    prost::encoding::string::encode(2, &"x".to_string(), &mut bytes);
    let err = codec::decode::<v1::FrameworkInfo>(&bytes, ContentType::Protobuf).unwrap_err();
    assert_eq!(err.to_string(), "Missing required fields: user");
    drop(info);
}

#[test]
fn lenient_input_rules() {
    // Unknown keys ignored, numeric strings accepted for numbers, unknown enum
    // names drop optional fields, null means unset, camelCase is not a proto name.
    let status: v1::TaskStatus = codec::decode(
        br#"{"task_id":{"value":"t"},"state":"TASK_FAILED","reason":"REASON_NOT_A_REASON",
            "timestamp":"12.5","healthy":null,"whatever":{"x":1},"agentId":{"value":"a"}}"#,
        ContentType::Json,
    )
    .unwrap();
    assert_eq!(status.state(), TaskState::TaskFailed);
    assert_eq!(status.reason, None);
    assert_eq!(status.timestamp, Some(12.5));
    assert_eq!(status.healthy, None);
    assert_eq!(status.agent_id, None);
    let range: value::Range =
        codec::decode(br#"{"begin":"31000","end":32000}"#, ContentType::Json).unwrap();
    assert_eq!(range.begin, 31000);
    // An unknown enum name on a required field is an error.
    let err = codec::decode::<v1::TaskStatus>(
        br#"{"task_id":{"value":"t"},"state":"TASK_NOPE"}"#,
        ContentType::Json,
    )
    .unwrap_err();
    assert!(err.to_string().contains("state"), "{err}");
}

#[test]
fn type_errors_name_the_field() {
    let err = codec::decode::<v1::TaskStatus>(
        br#"{"task_id":{"value":"t"},"state":"TASK_RUNNING","timestamp":[1]}"#,
        ContentType::Json,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Failed to convert JSON into mesos.v1.TaskStatus protobuf: timestamp: expected a number, got an array"
    );
    let err = codec::decode::<v1::TaskStatus>(b"{not json", ContentType::Json).unwrap_err();
    assert!(matches!(err, CodecError::Syntax(_)));
    let err = codec::decode::<v1::TaskStatus>(&[0xff, 0xff], ContentType::Protobuf).unwrap_err();
    assert!(matches!(err, CodecError::Protobuf { .. }));
}

#[test]
fn output_is_ascii_single_line() {
    let status = v1::TaskStatus {
        task_id: v1::TaskId { value: "t".into() },
        state: TaskState::TaskFailed as i32,
        message: Some("héllo\nwörld 🚀 \"quoted\"".into()),
        ..Default::default()
    };
    let text = codec::to_json(&status);
    assert!(text.is_ascii(), "{text}");
    assert!(!text.contains('\n'));
    assert!(
        text.contains(r#"h\u00e9llo\nw\u00f6rld \ud83d\ude80 \"quoted\""#),
        "{text}"
    );
    let back: v1::TaskStatus = codec::decode(text.as_bytes(), ContentType::Json).unwrap();
    assert_eq!(back, status);
}

#[test]
fn maps_are_objects() {
    let mut task = v1::TaskInfo {
        name: "t".into(),
        task_id: v1::TaskId { value: "t".into() },
        agent_id: v1::AgentId { value: "a".into() },
        ..Default::default()
    };
    task.limits
        .insert("cpus".into(), value::Scalar { value: 0.5 });
    let text = codec::to_json(&task);
    assert!(
        text.contains(r#""limits":{"cpus":{"value":0.5}}"#),
        "{text}"
    );
    let back: v1::TaskInfo = codec::decode(text.as_bytes(), ContentType::Json).unwrap();
    assert_eq!(back, task);
}

#[test]
fn content_type_negotiation() {
    assert_eq!(
        ContentType::from_mime("application/json; charset=utf-8"),
        Some(ContentType::Json)
    );
    assert_eq!(
        ContentType::from_mime("application/x-protobuf"),
        Some(ContentType::Protobuf)
    );
    assert_eq!(ContentType::from_mime("text/plain"), None);
    assert_eq!(
        ContentType::from_accept("text/html, */*;q=0.1"),
        Some(ContentType::Json)
    );
    assert_eq!(
        ContentType::from_accept("application/x-protobuf"),
        Some(ContentType::Protobuf)
    );
    assert_eq!(ContentType::from_accept("text/html"), None);
}
