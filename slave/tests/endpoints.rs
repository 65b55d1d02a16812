//! The agent's HTTP surface over a real socket, seen the way pymesos and
//! operators see it: the v1 executor API (status codes, chunked RecordIO, no
//! stream id), `/files`, `/state`, `/metrics/snapshot`, `/flags`, `/health`.

mod support;

use std::time::Duration;

use serde_json::json;
use support::http::{get, request, EventStream};
use support::{settle, Harness, AGENT, FRAMEWORK};

const JSON: (&str, &str) = ("Content-Type", "application/json");
const WAIT: Duration = Duration::from_secs(5);

fn subscribe_body(executor: &str) -> Vec<u8> {
    json!({
        "type": "SUBSCRIBE",
        "framework_id": {"value": FRAMEWORK},
        "executor_id": {"value": executor},
        "subscribe": {"unacknowledged_tasks": [], "unacknowledged_updates": []}
    })
    .to_string()
    .into_bytes()
}

/// pymesos's UPDATE: integer timestamp, no executor_id or agent_id.
fn update_body(executor: &str, task: &str, state: &str, uuid_b64: &str) -> Vec<u8> {
    json!({
        "type": "UPDATE",
        "framework_id": {"value": FRAMEWORK},
        "executor_id": {"value": executor},
        "update": {"status": {
            "task_id": {"value": task},
            "state": state,
            "timestamp": 1700000000,
            "uuid": uuid_b64,
            "source": "SOURCE_EXECUTOR"
        }}
    })
    .to_string()
    .into_bytes()
}

#[tokio::test]
async fn executor_api_speaks_mesos_http() {
    let h = Harness::new(&[]);
    h.register();
    h.run_command_task("t1", "echo hello");
    settle().await;
    let addr = h.serve().await;

    // Method, content type and body errors, with Mesos's codes.
    let r = get(addr, "/api/v1/executor").await;
    assert_eq!(r.status, 405, "{}", r.text());
    let r = request(addr, "POST", "/api/v1/executor", &[], b"{}").await;
    assert_eq!(
        (r.status, r.text().as_str()),
        (400, "Expecting 'Content-Type' to be present")
    );
    let r = request(
        addr,
        "POST",
        "/api/v1/executor",
        &[("Content-Type", "text/plain")],
        b"{}",
    )
    .await;
    assert_eq!(r.status, 415);
    let r = request(addr, "POST", "/api/v1/executor", &[JSON], b"{not json").await;
    assert_eq!(r.status, 400);
    let r = request(
        addr,
        "POST",
        "/api/v1/executor",
        &[JSON],
        &update_body("t1", "t1", "TASK_RUNNING", "AAAA"),
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(r.text().contains("16 bytes"), "{}", r.text());
    let r = request(
        addr,
        "POST",
        "/api/v1/executor",
        &[JSON, ("Accept", "text/html")],
        &subscribe_body("t1"),
    )
    .await;
    assert_eq!(r.status, 406);
    // Not subscribed yet: 403; unknown executor: 400.
    let uuid = "AQEBAQEBAQEBAQEBAQEBAQ=="; // 16 bytes of 0x01
    let r = request(
        addr,
        "POST",
        "/api/v1/executor",
        &[JSON],
        &update_body("t1", "t1", "TASK_RUNNING", uuid),
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.text());
    let r = request(
        addr,
        "POST",
        "/api/v1/executor",
        &[JSON],
        &update_body("nope", "t1", "TASK_RUNNING", uuid),
    )
    .await;
    assert_eq!(
        (r.status, r.text().as_str()),
        (400, "Executor cannot be found")
    );
    let heartbeat =
        json!({"type": "HEARTBEAT", "framework_id": {"value": "x"}, "executor_id": {"value": "y"}});
    let r = request(
        addr,
        "POST",
        "/api/v1/executor",
        &[JSON],
        heartbeat.to_string().as_bytes(),
    )
    .await;
    assert_eq!(r.status, 202, "HEARTBEAT is accepted before any lookup");

    // SUBSCRIBE exactly as pymesos sends it.
    let mut stream = EventStream::open(
        addr,
        "/slave(1)/api/v1/executor",
        &[JSON, ("Accept", "application/json")],
        &subscribe_body("t1"),
    )
    .await;
    assert_eq!(stream.status, 200);
    assert_eq!(stream.header("transfer-encoding"), Some("chunked"));
    assert_eq!(stream.header("content-type"), Some("application/json"));
    assert_eq!(
        stream.header("mesos-stream-id"),
        None,
        "executors get no stream id"
    );
    let subscribed = stream.next(WAIT).await.unwrap();
    assert_eq!(subscribed["type"], "SUBSCRIBED");
    assert_eq!(
        subscribed["subscribed"]["executor_info"]["executor_id"],
        json!({"value": "t1"})
    );
    assert_eq!(
        subscribed["subscribed"]["framework_info"]["id"],
        json!({"value": FRAMEWORK})
    );
    assert_eq!(
        subscribed["subscribed"]["agent_info"]["id"],
        json!({"value": AGENT})
    );
    let launch = stream.next(WAIT).await.unwrap();
    assert_eq!(launch["type"], "LAUNCH");
    assert_eq!(launch["launch"]["task"]["task_id"]["value"], "t1");

    // UPDATE → 202, then ACKNOWLEDGED with the same uuid on the stream.
    let r = request(
        addr,
        "POST",
        "/api/v1/executor",
        &[JSON],
        &update_body("t1", "t1", "TASK_RUNNING", uuid),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let ack = stream.next(WAIT).await.unwrap();
    assert_eq!(ack["type"], "ACKNOWLEDGED");
    assert_eq!(
        ack["acknowledged"],
        json!({"task_id": {"value": "t1"}, "uuid": uuid})
    );
    let forwarded = h.outbox.updates();
    assert_eq!(forwarded[0].agent_id.as_ref().unwrap().value, AGENT);
    assert_eq!(forwarded[0].timestamp, Some(1_700_000_000.0));

    // TASK_STAGING from an executor is refused.
    let r = request(
        addr,
        "POST",
        "/api/v1/executor",
        &[JSON],
        &update_body("t1", "t1", "TASK_STAGING", uuid),
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(r.text().contains("TASK_STAGING"));
}

#[tokio::test]
async fn sandbox_files_are_served_and_nothing_else() {
    let h = Harness::new(&[]);
    h.register();
    h.run_command_task("t1", "echo hello");
    settle().await;
    let addr = h.serve().await;
    let sandbox = h.containers.last_launch().sandbox;
    let virtual_path = format!("/frameworks/{FRAMEWORK}/executors/t1/runs/latest");

    let r = get(
        addr,
        &format!("/files/read?path={virtual_path}/stdout&offset=0"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({"data": "hello from the sandbox\n", "offset": 0})
    );
    let r = get(
        addr,
        &format!("/files/read?path={virtual_path}/stdout&offset=-1"),
    )
    .await;
    assert_eq!(r.json(), json!({"data": "", "offset": 23}));
    let r = get(
        addr,
        &format!(
            "/files/read?path={}/stdout&offset=6&length=4",
            sandbox.display()
        ),
    )
    .await;
    assert_eq!(r.json()["data"], "from");
    let r = get(addr, &format!("/files/browse?path={virtual_path}")).await;
    assert_eq!(r.json()[0]["path"], format!("{virtual_path}/stdout"));
    let r = get(addr, &format!("/files/download?path={virtual_path}/stdout")).await;
    assert_eq!(r.text(), "hello from the sandbox\n");

    std::os::unix::fs::symlink("/etc/passwd", sandbox.join("passwd")).unwrap();
    for (path, status) in [
        ("/etc/passwd".to_string(), 404),
        (format!("{virtual_path}/../../../../../../etc/passwd"), 403),
        (format!("{virtual_path}/passwd"), 403),
        (format!("{virtual_path}/missing"), 404),
    ] {
        let r = get(addr, &format!("/files/read?path={path}&offset=0")).await;
        assert_eq!(r.status, status, "{path}: {}", r.text());
        assert!(!r.text().contains("root:"), "{path} leaked /etc/passwd");
    }
    let r = get(addr, "/files/read").await;
    assert_eq!(
        (r.status, r.text().trim()),
        (400, "Expecting 'path=value' in query.")
    );
}

#[tokio::test]
async fn operator_endpoints_have_mesos_shapes() {
    let h = Harness::new(&["--attributes=rack:2"]);
    h.register();
    h.run_command_task("t1", "sleep 100");
    settle().await;
    let addr = h.serve().await;

    for path in ["/state", "/slave(1)/state"] {
        let state = get(addr, path).await.json();
        assert_eq!(state["id"], AGENT);
        assert_eq!(state["pid"], "slave(1)@127.0.0.1:5051");
        assert_eq!(state["resources"]["cpus"], 2.0);
        assert_eq!(state["flags"]["port"], "5051");
        let executor = &state["frameworks"][0]["executors"][0];
        assert_eq!(executor["id"], "t1");
        assert_eq!(executor["queued_tasks"][0]["id"], "t1");
        assert_eq!(executor["queued_tasks"][0]["state"], "TASK_STAGING");
    }
    let metrics = get(addr, "/metrics/snapshot").await.json();
    assert_eq!(metrics["slave/registered"], 1.0);
    assert_eq!(metrics["slave/executors_registering"], 1.0);
    assert_eq!(metrics["slave/tasks_staging"], 1.0);
    assert_eq!(metrics["slave/cpus_total"], 2.0);
    assert!((metrics["slave/cpus_used"].as_f64().unwrap() - 0.6).abs() < 1e-9);
    let flags = get(addr, "/flags").await.json();
    assert_eq!(flags["flags"]["executor_shutdown_grace_period"], "5secs");
    assert_eq!(get(addr, "/health").await.status, 200);
    assert_eq!(get(addr, "/version").await.json()["version"], "1.11.0");
    let statistics = get(addr, "/monitor/statistics").await.json();
    assert_eq!(statistics[0]["executor_id"], "t1");
    assert_eq!(statistics[0]["framework_id"], FRAMEWORK);
    assert!(statistics[0]["statistics"].is_object());
}
