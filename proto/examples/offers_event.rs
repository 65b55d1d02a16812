//! Prints an example OFFERS event as a scheduler receives it: the Mesos JSON
//! document, then the same event framed as a RecordIO record.

use mesos_proto::codec::{self, ContentType};
use mesos_proto::recordio;
use mesos_proto::v1::scheduler::{event, Event};
use mesos_proto::v1::{self, value};

// Frameworks without RESERVATION_REFINEMENT see the pre-refinement format,
// whose `role` field is deprecated in the proto but still on the wire.
#[allow(deprecated)]
fn scalar(name: &str, amount: f64) -> v1::Resource {
    v1::Resource {
        name: name.into(),
        r#type: value::Type::Scalar as i32,
        scalar: Some(value::Scalar { value: amount }),
        role: Some("*".into()),
        ..Default::default()
    }
}

#[allow(deprecated)]
fn main() {
    let ports = v1::Resource {
        name: "ports".into(),
        r#type: value::Type::Ranges as i32,
        ranges: Some(value::Ranges {
            range: vec![value::Range {
                begin: 31000,
                end: 32000,
            }],
        }),
        role: Some("*".into()),
        ..Default::default()
    };
    let offer = v1::Offer {
        id: v1::OfferId {
            value: "5bd6e8c3-6a43-4fd6-9d8e-0e4f9d3f1a20-O1".into(),
        },
        framework_id: v1::FrameworkId {
            value: "5bd6e8c3-6a43-4fd6-9d8e-0e4f9d3f1a20-0000".into(),
        },
        agent_id: v1::AgentId {
            value: "5bd6e8c3-6a43-4fd6-9d8e-0e4f9d3f1a20-S0".into(),
        },
        hostname: "agent-1.example".into(),
        resources: vec![
            scalar("cpus", 2.0),
            scalar("mem", 1024.0),
            scalar("disk", 4096.0),
            ports,
        ],
        url: Some(v1::Url {
            scheme: "http".into(),
            address: v1::Address {
                hostname: Some("agent-1.example".into()),
                ip: Some("10.0.0.11".into()),
                port: 5051,
            },
            path: Some("/slave(1)".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let event = Event {
        r#type: Some(event::Type::Offers as i32),
        offers: Some(event::Offers {
            offers: vec![offer],
        }),
        ..Default::default()
    };
    let json = codec::encode(&event, ContentType::Json);
    println!("{}", String::from_utf8_lossy(&json));
    println!("{}", String::from_utf8_lossy(&recordio::encode(&json)));
}
