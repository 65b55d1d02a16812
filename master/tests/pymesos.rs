//! An unmodified pymesos 0.3.15 scheduler against the master and a fake
//! agent: it subscribes, gets an offer, launches a command task and sees
//! TASK_RUNNING then TASK_FINISHED (acknowledging both). Skipped with a
//! message if pymesos is not importable (CI installs it with
//! scripts/install-pymesos.sh).

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod support;

use std::process::Stdio;
use std::time::Duration;

use mesos_proto::internal::{RunTaskMessage, StatusUpdateAcknowledgementMessage};
use mesos_proto::v1::TaskState;
use support::*;
use tokio::io::AsyncReadExt;
use tokio::process::Command;

fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_string())
}

fn pymesos_available() -> bool {
    std::process::Command::new(python())
        .args(["-c", "import pymesos, http_parser.pyparser"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[tokio::test]
async fn pymesos_scheduler_launches_a_task_and_sees_it_finish() {
    if !pymesos_available() {
        eprintln!("SKIPPED: pymesos is not importable; run scripts/install-pymesos.sh");
        return;
    }
    let master = master(&[]).await;
    let mut agent =
        FakeAgent::register(&master, "cpus:2;mem:1024;disk:4096;ports:[31000-32000]").await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/pymesos_scheduler.py");
    let mut child = Command::new(python())
        .arg(script)
        .arg(format!("127.0.0.1:{}", master.address.port()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python runs");

    let run: RunTaskMessage = agent.expect().await;
    assert_eq!(run.task.task_id.value, "pymesos-task-1");
    assert_eq!(run.framework.name, "pymesos-compat");
    let framework_id = run.framework.id.unwrap().value;

    // pymesos acknowledges implicitly, echoing our uuid.
    for (state, uuid) in [
        (TaskState::TaskRunning, [7u8; 16]),
        (TaskState::TaskFinished, [8u8; 16]),
    ] {
        agent.send_update(&framework_id, "pymesos-task-1", state, &uuid);
        let ack: StatusUpdateAcknowledgementMessage = agent.expect().await;
        assert_eq!(ack.uuid, uuid.to_vec());
        assert_eq!(ack.task_id.value, "pymesos-task-1");
    }

    let status = tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .expect("pymesos scheduler exits")
        .unwrap();
    let mut stdout = String::new();
    let mut stderr = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .await
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .await
        .unwrap();
    assert!(
        status.success(),
        "pymesos failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("registered"), "{stdout}");
    assert!(
        stdout.contains("update pymesos-task-1 TASK_RUNNING"),
        "{stdout}"
    );
    assert!(
        stdout.contains("update pymesos-task-1 TASK_FINISHED"),
        "{stdout}"
    );
    master.shutdown().await;
}
