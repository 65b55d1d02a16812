//! HTTP-level rules of `/api/v1/scheduler` (status codes and messages as in
//! Mesos) and the operator endpoints.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod support;

use serde_json::json;
use support::*;

const JSON: (&str, &str) = ("Content-Type", "application/json");

fn subscribe_body() -> String {
    json!({"type": "SUBSCRIBE", "subscribe": {"framework_info": framework_info("http")}})
        .to_string()
}

#[tokio::test]
async fn request_level_errors() {
    let master = master(&[]).await;

    let (status, body) = post(&master, "GET", &[], "").await;
    assert_eq!(
        (status, body.as_str()),
        (405, "Expecting one of { 'POST' }, but received 'GET'")
    );

    let (status, body) = post(&master, "POST", &[], &subscribe_body()).await;
    assert_eq!(
        (status, body.as_str()),
        (400, "Expecting 'Content-Type' to be present")
    );

    let (status, body) = post(&master, "POST", &[("Content-Type", "text/plain")], "x").await;
    assert_eq!(
        (status, body.as_str()),
        (
            415,
            "Expecting 'Content-Type' of application/json or application/x-protobuf"
        )
    );

    let (status, body) = post(&master, "POST", &[JSON], "{").await;
    assert_eq!(status, 400);
    assert!(body.starts_with("Failed to parse body into JSON"), "{body}");

    let missing_user =
        json!({"type": "SUBSCRIBE", "subscribe": {"framework_info": {"name": "x"}}}).to_string();
    let (status, body) = post(&master, "POST", &[JSON], &missing_user).await;
    assert_eq!(status, 400);
    assert!(
        body.starts_with("Failed to convert JSON into Call protobuf: Missing required fields:")
            && body.contains("user"),
        "{body}"
    );

    let (status, body) = post(&master, "POST", &[JSON], r#"{"type":"TEARDOWN"}"#).await;
    assert_eq!(
        (status, body.as_str()),
        (
            400,
            "Failed to validate scheduler::Call: Expecting 'framework_id' to be present"
        )
    );

    let (status, body) = post(
        &master,
        "POST",
        &[JSON, ("Accept", "text/html")],
        &subscribe_body(),
    )
    .await;
    assert_eq!(
        (status, body.as_str()),
        (
            406,
            "Expecting 'Accept' to allow 'application/x-protobuf' or 'application/json'"
        )
    );

    let (status, body) = post(
        &master,
        "POST",
        &[JSON, ("Mesos-Stream-Id", "abc")],
        &subscribe_body(),
    )
    .await;
    assert_eq!(
        (status, body.as_str()),
        (
            400,
            "Subscribe calls should not include the 'Mesos-Stream-Id' header"
        )
    );

    let teardown = json!({"type": "TEARDOWN", "framework_id": {"value": "nope"}}).to_string();
    let (status, body) = post(&master, "POST", &[JSON], &teardown).await;
    assert_eq!((status, body.as_str()), (400, "Framework cannot be found"));
    master.shutdown().await;
}

#[tokio::test]
async fn stream_id_rules_for_non_subscribe_calls() {
    let master = master(&[]).await;
    let scheduler = Scheduler::subscribe(&master, framework_info("stream")).await;
    let revive =
        json!({"type": "REVIVE", "framework_id": {"value": scheduler.framework_id}}).to_string();

    let (status, body) = post(&master, "POST", &[JSON], &revive).await;
    assert_eq!(
        (status, body.as_str()),
        (
            400,
            "All non-subscribe calls should include the 'Mesos-Stream-Id' header"
        )
    );
    let (status, body) = post(
        &master,
        "POST",
        &[JSON, ("Mesos-Stream-Id", "wrong")],
        &revive,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        format!(
            "The stream ID 'wrong' included in this request didn't match the stream ID \
             currently associated with framework ID {}",
            scheduler.framework_id
        )
    );
    let (status, body) = post(
        &master,
        "POST",
        &[JSON, ("Mesos-Stream-Id", &scheduler.stream_id)],
        &revive,
    )
    .await;
    assert_eq!((status, body.as_str()), (202, ""));

    // The `/master/...` alias works too.
    master.shutdown().await;
}

#[tokio::test]
async fn invalid_framework_info_gets_error_event() {
    let master = master(&[]).await;
    let mut info = framework_info("bad-role");
    info["role"] = json!("a//b");
    let mut scheduler = Scheduler::subscribe_raw(&master, info, None).await;
    let event = scheduler.next().await.unwrap();
    assert_eq!(
        event.error.unwrap().message,
        "'FrameworkInfo.role' is not a valid role: Role 'a//b' cannot contain two adjacent slashes"
    );
    assert!(scheduler.closed().await);
    master.shutdown().await;
}

#[tokio::test]
async fn protobuf_subscribe_streams_protobuf_records() {
    use bytes::Bytes;
    use http_body_util::{BodyExt, Full};
    use mesos_proto::v1::scheduler::{call, event, Call, Event};
    let master = master(&[]).await;
    let call = Call {
        r#type: Some(call::Type::Subscribe as i32),
        subscribe: Some(call::Subscribe {
            framework_info: mesos_proto::v1::FrameworkInfo {
                user: "root".into(),
                name: "proto".into(),
                ..Default::default()
            },
            ..Default::default()
        }),
        ..Default::default()
    };
    let stream = tokio::net::TcpStream::connect(master.address)
        .await
        .unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    let request = hyper::Request::post("/master/api/v1/scheduler")
        .header("Host", "x")
        .header("Content-Type", "application/x-protobuf")
        .header("Accept", "application/x-protobuf")
        .body(Full::new(Bytes::from(prost::Message::encode_to_vec(&call))))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-protobuf");
    let mut body = response.into_body();
    let mut decoder = mesos_proto::recordio::Decoder::new(1 << 20);
    let record = loop {
        let frame = body.frame().await.unwrap().unwrap();
        let records = decoder.decode(frame.data_ref().unwrap()).unwrap();
        if let Some(record) = records.into_iter().next() {
            break record;
        }
    };
    let event: Event = prost::Message::decode(&record[..]).unwrap();
    assert_eq!(event.r#type, Some(event::Type::Subscribed as i32));
    master.shutdown().await;
}

#[tokio::test]
async fn operator_endpoints() {
    let master = master(&["--allocation_interval=250ms"]).await;
    let agent = FakeAgent::register(&master, "cpus:2;mem:1024;disk:4096;ports:[31000-32000]").await;

    let version = get_json(&master, "/version").await;
    assert_eq!(version["version"], json!("1.11.0"));

    let (status, body, _) = get(&master, "/health").await;
    assert_eq!((status, body.as_str()), (200, ""));

    for path in ["/state", "/master/state"] {
        let state = get_json(&master, path).await;
        for key in [
            "version",
            "id",
            "pid",
            "hostname",
            "leader",
            "leader_info",
            "activated_slaves",
            "frameworks",
            "completed_frameworks",
            "slaves",
            "flags",
            "start_time",
            "elected_time",
            "unregistered_frameworks",
        ] {
            assert!(state.get(key).is_some(), "{path} lacks {key}");
        }
        assert_eq!(state["id"], json!(master.id));
        assert_eq!(state["pid"], json!(master.upid.to_string()));
        assert_eq!(state["activated_slaves"], json!(1));
        assert_eq!(state["slaves"][0]["id"], json!(agent.agent_id));
        assert_eq!(
            state["slaves"][0]["resources"]["ports"],
            json!("[31000-32000]")
        );
        assert_eq!(state["leader_info"]["port"], json!(master.address.port()));
        assert_eq!(state["flags"]["allocation_interval"], json!("250ms"));
    }

    let metrics = get_json(&master, "/metrics/snapshot").await;
    for key in [
        "master/elected",
        "master/uptime_secs",
        "master/tasks_running",
        "master/tasks_finished",
        "master/slaves_active",
        "master/frameworks_active",
        "master/outstanding_offers",
        "master/cpus_total",
        "master/cpus_used",
        "master/mem_total",
        "master/mem_used",
    ] {
        assert!(metrics.get(key).is_some(), "metrics lack {key}");
    }
    assert_eq!(metrics["master/mem_total"], json!(1024.0));

    let flags = get_json(&master, "/flags").await;
    assert_eq!(flags["flags"]["port"], json!("0"));

    let (status, _, headers) = get(&master, "/master/redirect").await;
    assert_eq!(status, 307);
    let location = headers["location"].to_str().unwrap();
    assert!(
        location.starts_with("//")
            && location.ends_with(&format!(":{}", master.upid.address.port())),
        "{location}"
    );
    master.shutdown().await;
}
