//! The `mesos-execute` binary against the fake master: output, exit codes
//! and the calls it makes.

use std::process::Output;
use std::time::Duration;

use mesos_proto::v1::scheduler::call;
use mesos_scheduler::testing::{FakeMaster, TaskScript};

async fn execute(args: &[&str]) -> Output {
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_mesos-execute"))
        .args(args)
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(Duration::from_secs(60), child)
        .await
        .expect("mesos-execute did not exit")
        .expect("mesos-execute did not start")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn master_flag(master: &FakeMaster) -> String {
    format!("--master={}", master.address())
}

#[tokio::test]
async fn finished_task_exits_0_and_shows_updates_sandbox_and_output() {
    let master = FakeMaster::builder()
        .task_script(|_| TaskScript::finished().stdout("hello world\n"))
        .start()
        .await
        .unwrap();
    let output = execute(&[
        &master_flag(&master),
        "--name=hello",
        "--command=echo hello world",
        "--resources=cpus:0.5;mem:128",
    ])
    .await;
    let stdout = text(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{}",
        text(&output.stderr)
    );

    let sandbox = master.sandbox("hello").unwrap();
    for expected in [
        "Subscribed with ID fake-master-0000".to_string(),
        "Submitted task 'hello' to agent 'fake-master-S0'".into(),
        "Received status update TASK_STARTING for task 'hello'".into(),
        "Received status update TASK_RUNNING for task 'hello'".into(),
        "Received status update TASK_FINISHED for task 'hello'".into(),
        format!("Sandbox: {sandbox}"),
        "--- stdout (12 bytes) ---\nhello world\n".into(),
        "--- stderr: empty ---".into(),
    ] {
        assert!(
            stdout.contains(&expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
    let update_line = stdout.lines().find(|l| l.contains("TASK_RUNNING")).unwrap();
    assert!(
        update_line.starts_with("[20") && update_line.contains(" UTC] "),
        "{update_line}"
    );

    let accept = &master.calls_of(call::Type::Accept)[0].json();
    let task = &accept["accept"]["operations"][0]["launch"]["task_infos"][0];
    assert_eq!(task["task_id"]["value"], "hello");
    assert_eq!(task["command"]["value"], "echo hello world");
    assert_eq!(task["command"]["shell"], true);
    assert_eq!(task["resources"][0]["scalar"]["value"], 0.5);
    assert_eq!(task["resources"][1]["scalar"]["value"], 128.0);
    let subscribe = &master.calls_of(call::Type::Subscribe)[0].json();
    assert_eq!(
        subscribe["subscribe"]["framework_info"]["name"],
        "mesos-execute instance"
    );
    assert_eq!(
        subscribe["subscribe"]["framework_info"]["capabilities"][0]["type"],
        "TASK_KILLING_STATE"
    );
    assert!(master.torn_down());
}

#[tokio::test]
async fn task_exiting_7_is_failed_with_its_message_and_stderr() {
    let master = FakeMaster::builder()
        .task_script(|task| {
            if task.command.as_ref().and_then(|c| c.value.as_deref()) == Some("exit 7") {
                TaskScript::exits(7).stderr("boom\n")
            } else {
                TaskScript::finished()
            }
        })
        .start()
        .await
        .unwrap();
    let output = execute(&[
        &master_flag(&master),
        "--name=seven",
        "--command=exit 7",
        "--resources=cpus:0.1;mem:32",
    ])
    .await;
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    for expected in [
        "Received status update TASK_FAILED for task 'seven'",
        "message: 'Command exited with status 7'",
        "source: SOURCE_EXECUTOR",
        "reason: REASON_COMMAND_EXECUTOR_FAILED",
        "--- stderr (5 bytes) ---\nboom\n",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
}

#[tokio::test]
async fn kill_after_kills_the_task_and_exits_3() {
    let master = FakeMaster::builder()
        .task_script(|_| TaskScript::runs_until_killed())
        .start()
        .await
        .unwrap();
    let output = execute(&[
        &master_flag(&master),
        "--name=sleeper",
        "--command=sleep 1000",
        "--resources=cpus:0.1;mem:32",
        "--kill_after=100ms",
    ])
    .await;
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(3), "{stdout}");
    assert!(
        stdout.contains("Killing task 'sleeper' after 100ms (--kill_after)"),
        "{stdout}"
    );
    assert!(stdout.contains("TASK_KILLED"), "{stdout}");
    let kill = &master.calls_of(call::Type::Kill)[0].json();
    assert_eq!(kill["kill"]["task_id"]["value"], "sleeper");
    assert_eq!(kill["kill"]["agent_id"]["value"], "fake-master-S0");
}

#[tokio::test]
async fn bad_resources_exit_2_naming_the_flag_before_contacting_the_master() {
    let master = FakeMaster::start().await.unwrap();
    let output = execute(&[
        &master_flag(&master),
        "--name=x",
        "--command=true",
        "--resources=cpus:lots",
    ])
    .await;
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("--resources"), "{stderr}");
    assert!(stderr.contains("cpus"), "{stderr}");
    assert!(master.calls().is_empty());
}

#[tokio::test]
async fn unreachable_master_exits_5_naming_it() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let master = format!("--master=127.0.0.1:{port}");
    let output = execute(&[
        &master,
        "--name=x",
        "--command=true",
        "--connect_timeout=500ms",
    ])
    .await;
    assert_eq!(output.status.code(), Some(5));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "cannot reach the master at 127.0.0.1:{port} (--master)"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("refused"), "{stderr}");
    assert!(
        stderr.contains("gave up after 500ms (--connect_timeout)"),
        "{stderr}"
    );
}
