//! The real `mesos-executor` binary against a fake agent.

#![allow(clippy::unwrap_used)]

mod fake_agent;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use fake_agent::{duration_info, kill_policy, shell, task, FakeAgent, Setup, PATIENCE};
use mesos_proto::v1::task_status::{Reason, Source};
use mesos_proto::v1::{CommandInfo, Environment, TaskState, TaskStatus};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tempfile::TempDir;
use tokio::process::{Child, Command};

/// A running `mesos-executor` in a process group of its own (as the agent
/// starts executors), with its sandbox. Everything is killed on drop.
struct Executor {
    child: Child,
    sandbox: TempDir,
    task_group: Option<i32>,
}

impl Executor {
    fn spawn(agent: &FakeAgent, env: &[(&str, &str)]) -> Self {
        Self::spawn_binary(env!("CARGO_BIN_EXE_mesos-executor"), agent, env)
    }

    fn spawn_binary(binary: &str, agent: &FakeAgent, env: &[(&str, &str)]) -> Self {
        let sandbox = tempfile::tempdir().unwrap();
        let path = sandbox.path();
        let mut command = Command::new(binary);
        command
            .arg("--launcher_dir=/usr/libexec/mesos")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("MESOS_AGENT_ENDPOINT", agent.addr.to_string())
            .env("MESOS_FRAMEWORK_ID", fake_agent::FRAMEWORK_ID)
            .env("MESOS_EXECUTOR_ID", fake_agent::EXECUTOR_ID)
            .env("MESOS_DIRECTORY", path)
            .env("MESOS_SANDBOX", path)
            .env("MESOS_CHECKPOINT", "0")
            .env("MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD", "5secs")
            .env("MESOS_HTTP_COMMAND_EXECUTOR", "1")
            .envs(env.iter().copied())
            .current_dir(path)
            .stdin(Stdio::null())
            .stdout(File::create(path.join("stdout")).unwrap())
            .stderr(File::create(path.join("stderr")).unwrap())
            .process_group(0)
            .kill_on_drop(true);
        let child = command.spawn().unwrap();
        Self {
            child,
            sandbox,
            task_group: None,
        }
    }

    fn sandbox(&self) -> &Path {
        self.sandbox.path()
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.sandbox().join("stderr")).unwrap_or_default()
    }

    async fn exit(&mut self) -> ExitStatus {
        match tokio::time::timeout(PATIENCE, self.child.wait()).await {
            Ok(status) => status.unwrap(),
            Err(_) => panic!("executor still running; stderr:\n{}", self.stderr()),
        }
    }

    /// Waits for the task to write its process group id to `file`.
    async fn read_task_group(&mut self, file: &str) -> i32 {
        let path = self.sandbox().join(file);
        let group = wait_for(|| {
            std::fs::read_to_string(&path)
                .ok()
                .and_then(|s| s.trim().parse().ok())
        })
        .await;
        self.task_group = Some(group);
        group
    }
}

impl Drop for Executor {
    fn drop(&mut self) {
        for group in [self.child.id().map(|p| p as i32), self.task_group]
            .into_iter()
            .flatten()
        {
            let _ = killpg(Pid::from_raw(group), Signal::SIGKILL);
        }
    }
}

async fn wait_for<T>(mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met within {PATIENCE:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Live (non-zombie) processes in process group `group`.
fn group_members(group: i32) -> Vec<i32> {
    let mut members = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // Fields after the parenthesised command name: state ppid pgrp ...
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.len() > 2 && fields[0] != "Z" && fields[2] == group.to_string() {
            members.push(pid);
        }
    }
    members
}

fn state(status: &TaskStatus) -> TaskState {
    TaskState::try_from(status.state).unwrap()
}

fn assert_from_executor(status: &TaskStatus) {
    assert_eq!(status.uuid.as_ref().map(Vec::len), Some(16), "{status:?}");
    assert_eq!(status.source, Some(Source::Executor as i32), "{status:?}");
    assert_eq!(
        status.executor_id.as_ref().map(|e| e.value.as_str()),
        Some(fake_agent::EXECUTOR_ID)
    );
    assert_eq!(status.task_id.value, fake_agent::TASK_ID);
    assert!(status.timestamp.is_some_and(|t| t > 0.0));
}

fn setup(command: CommandInfo) -> Setup {
    Setup {
        task: Some(task(command)),
        auto_ack: true,
        ..Default::default()
    }
}

async fn expect_running(agent: &mut FakeAgent) {
    assert_eq!(state(&agent.next_update().await), TaskState::TaskStarting);
    assert_eq!(state(&agent.next_update().await), TaskState::TaskRunning);
}

#[tokio::test]
async fn successful_command_reports_starting_running_finished_and_exits_0() {
    let mut agent = FakeAgent::start(setup(shell("exit 0"))).await;
    let mut executor = Executor::spawn(&agent, &[]);

    let subscribe = agent.next_subscribe().await;
    let payload = subscribe.subscribe.unwrap();
    assert!(payload.unacknowledged_updates.is_empty());

    let updates = [
        agent.next_update().await,
        agent.next_update().await,
        agent.next_update().await,
    ];
    let states: Vec<TaskState> = updates.iter().map(state).collect();
    assert_eq!(
        states,
        [
            TaskState::TaskStarting,
            TaskState::TaskRunning,
            TaskState::TaskFinished
        ]
    );
    updates.iter().for_each(assert_from_executor);
    assert_ne!(updates[0].uuid, updates[1].uuid);
    assert_ne!(updates[1].uuid, updates[2].uuid);
    assert_eq!(
        updates[2].message.as_deref(),
        Some("Command exited with status 0")
    );

    let status = executor.exit().await;
    assert!(
        status.success(),
        "{status:?}; stderr:\n{}",
        executor.stderr()
    );
}

#[tokio::test]
async fn failing_command_reports_its_exit_status() {
    let mut agent = FakeAgent::start(setup(shell("exit 3"))).await;
    let mut executor = Executor::spawn(&agent, &[]);
    expect_running(&mut agent).await;
    let last = agent.next_update().await;
    assert_eq!(state(&last), TaskState::TaskFailed);
    assert_eq!(
        last.message.as_deref(),
        Some("Command exited with status 3")
    );
    assert_from_executor(&last);
    assert!(executor.exit().await.success());
}

#[tokio::test]
async fn kill_terminates_the_whole_process_group_politely() {
    let script = "sleep 100 & echo $$ > task.pgid; wait";
    let mut agent = FakeAgent::start(Setup {
        task_killing_capable: true,
        ..setup(shell(script))
    })
    .await;
    let mut executor = Executor::spawn(&agent, &[]);
    expect_running(&mut agent).await;
    let group = executor.read_task_group("task.pgid").await;
    assert!(
        group_members(group).len() >= 2,
        "sh and sleep run in the task's group"
    );

    // A grace period far longer than the test: only SIGTERM can end it.
    agent.kill(Some(Duration::from_secs(600)));
    assert_eq!(state(&agent.next_update().await), TaskState::TaskKilling);
    let killed = agent.next_update().await;
    assert_eq!(state(&killed), TaskState::TaskKilled);
    assert_eq!(
        killed.message.as_deref(),
        Some("Command terminated with signal Terminated")
    );
    wait_for(|| group_members(group).is_empty().then_some(())).await;
    assert!(executor.exit().await.success());
}

#[tokio::test]
async fn kill_escalates_to_sigkill_after_the_grace_period() {
    // The task ignores SIGTERM (and its child inherits that).
    let script = "trap '' TERM; sleep 100 & echo $$ > task.pgid; wait; wait";
    let mut agent = FakeAgent::start(setup(shell(script))).await;
    let mut executor = Executor::spawn(&agent, &[]);
    expect_running(&mut agent).await;
    let group = executor.read_task_group("task.pgid").await;

    agent.kill(Some(Duration::from_millis(300)));
    // No TASK_KILLING: the framework lacks TASK_KILLING_STATE.
    let killed = agent.next_update().await;
    assert_eq!(state(&killed), TaskState::TaskKilled);
    assert_eq!(
        killed.message.as_deref(),
        Some("Command terminated with signal Killed")
    );
    wait_for(|| group_members(group).is_empty().then_some(())).await;
    assert!(executor.exit().await.success());
}

#[tokio::test]
async fn non_shell_command_gets_arguments_as_argv_in_the_sandbox() {
    let command = CommandInfo {
        shell: Some(false),
        value: Some("/bin/sh".into()),
        arguments: vec![
            "custom-argv0".into(),
            "-c".into(),
            "tr '\\0' ' ' < /proc/$$/cmdline > argv.txt; pwd > cwd.txt".into(),
            "name".into(),
            "one two".into(),
        ],
        ..Default::default()
    };
    let mut agent = FakeAgent::start(setup(command)).await;
    let mut executor = Executor::spawn(&agent, &[]);
    expect_running(&mut agent).await;
    assert_eq!(state(&agent.next_update().await), TaskState::TaskFinished);
    assert!(executor.exit().await.success());

    let argv = std::fs::read_to_string(executor.sandbox().join("argv.txt")).unwrap();
    assert!(
        argv.starts_with("custom-argv0 -c tr "),
        "argv[0] is arguments[0]: {argv:?}"
    );
    assert!(argv.ends_with(" name one two "), "{argv:?}");
    let cwd = PathBuf::from(
        std::fs::read_to_string(executor.sandbox().join("cwd.txt"))
            .unwrap()
            .trim(),
    );
    assert_eq!(
        cwd.canonicalize().unwrap(),
        executor.sandbox().canonicalize().unwrap()
    );
}

#[tokio::test]
async fn command_environment_reaches_the_task() {
    let mut command =
        shell(r#"printf '%s|%s|%s' "$GREETING" "$MESOS_SANDBOX" "$FROM_AGENT" > env.txt"#);
    command.environment = Some(Environment {
        variables: vec![mesos_proto::v1::environment::Variable {
            name: "GREETING".into(),
            value: Some("hello world".into()),
            ..Default::default()
        }],
    });
    let mut agent = FakeAgent::start(setup(command)).await;
    let mut executor = Executor::spawn(&agent, &[("FROM_AGENT", "inherited")]);
    expect_running(&mut agent).await;
    assert_eq!(state(&agent.next_update().await), TaskState::TaskFinished);
    assert!(executor.exit().await.success());

    let env = std::fs::read_to_string(executor.sandbox().join("env.txt")).unwrap();
    assert_eq!(
        env,
        format!("hello world|{}|inherited", executor.sandbox().display())
    );
}

#[tokio::test]
async fn unacknowledged_updates_are_resent_when_resubscribing() {
    let mut agent = FakeAgent::start(Setup {
        auto_ack: false,
        ..setup(shell("exit 0"))
    })
    .await;
    let mut executor = Executor::spawn(
        &agent,
        &[
            ("MESOS_CHECKPOINT", "1"),
            ("MESOS_RECOVERY_TIMEOUT", "1mins"),
            ("MESOS_SUBSCRIPTION_BACKOFF_MAX", "100ms"),
        ],
    );
    agent.next_subscribe().await;
    let sent = [
        agent.next_update().await,
        agent.next_update().await,
        agent.next_update().await,
    ];
    assert_eq!(state(&sent[2]), TaskState::TaskFinished);

    // The agent "restarts" before acknowledging anything.
    agent.set_auto_ack(true);
    agent.drop_stream();

    let resubscribe = agent.next_subscribe().await.subscribe.unwrap();
    let resent: Vec<Option<Vec<u8>>> = resubscribe
        .unacknowledged_updates
        .iter()
        .map(|u| u.status.uuid.clone())
        .collect();
    let original: Vec<Option<Vec<u8>>> = sent.iter().map(|s| s.uuid.clone()).collect();
    assert_eq!(resent, original, "same updates, same uuids, same order");
    let tasks: Vec<&str> = resubscribe
        .unacknowledged_tasks
        .iter()
        .map(|t| t.task_id.value.as_str())
        .collect();
    assert_eq!(tasks, [fake_agent::TASK_ID]);

    // The fake agent acknowledges the re-sent updates; the terminal one ends
    // the executor.
    let status = executor.exit().await;
    assert!(
        status.success(),
        "{status:?}; stderr:\n{}",
        executor.stderr()
    );
}

#[tokio::test]
async fn max_completion_time_fails_the_task() {
    let mut info = task(shell("sleep 100"));
    info.max_completion_time = Some(duration_info(Duration::from_millis(300)));
    info.kill_policy = Some(kill_policy(Duration::from_secs(600)));
    let mut agent = FakeAgent::start(Setup {
        task: Some(info),
        auto_ack: true,
        task_killing_capable: true,
    })
    .await;
    let mut executor = Executor::spawn(&agent, &[]);
    expect_running(&mut agent).await;
    // No TASK_KILLING for a max-completion kill, and no 600 s grace either.
    let failed = agent.next_update().await;
    assert_eq!(state(&failed), TaskState::TaskFailed);
    assert_eq!(failed.reason, Some(Reason::MaxCompletionTimeReached as i32));
    assert!(executor.exit().await.success());
}

#[tokio::test]
async fn shutdown_kills_the_task_and_exits() {
    let mut agent = FakeAgent::start(setup(shell("sleep 100 & echo $$ > task.pgid; wait"))).await;
    let mut executor = Executor::spawn(&agent, &[]);
    expect_running(&mut agent).await;
    let group = executor.read_task_group("task.pgid").await;

    agent.shutdown();
    let killed = agent.next_update().await;
    assert_eq!(state(&killed), TaskState::TaskKilled);
    wait_for(|| group_members(group).is_empty().then_some(())).await;
    assert!(executor.exit().await.success());
}

#[tokio::test]
async fn losing_the_agent_without_checkpointing_kills_task_and_executor() {
    let script = "trap '' TERM; sleep 100 & echo $$ > task.pgid; wait; wait";
    let mut agent = FakeAgent::start(setup(shell(script))).await;
    let mut executor =
        Executor::spawn(&agent, &[("MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD", "2secs")]);
    expect_running(&mut agent).await;
    let group = executor.read_task_group("task.pgid").await;

    agent.drop_stream();
    // The task dies (SIGKILL after the shutdown grace period minus a
    // margin), and so does the executor: nobody can acknowledge its
    // TASK_KILLED, so the grace period ends it by killing its group.
    wait_for(|| group_members(group).is_empty().then_some(())).await;
    let status = executor.exit().await;
    assert!(!status.success(), "{status:?}");
}

#[tokio::test]
async fn second_task_is_refused() {
    let mut agent = FakeAgent::start(Setup {
        auto_ack: false,
        ..setup(shell("sleep 100"))
    })
    .await;
    let mut executor = Executor::spawn(&agent, &[]);
    expect_running(&mut agent).await;
    let mut second = task(shell("true"));
    second.task_id.value = "task-2".into();
    agent.send(mesos_proto::v1::executor::Event {
        r#type: Some(mesos_proto::v1::executor::event::Type::Launch as i32),
        launch: Some(mesos_proto::v1::executor::event::Launch { task: second }),
        ..Default::default()
    });
    let refused = agent.next_update().await;
    assert_eq!(refused.task_id.value, "task-2");
    assert_eq!(state(&refused), TaskState::TaskFailed);
    assert_eq!(
        refused.message.as_deref(),
        Some("Attempted to run multiple tasks using a \"command\" executor")
    );
    agent.set_auto_ack(true);
    agent.kill(Some(Duration::from_secs(5)));
    let killed = agent.next_update().await;
    assert_eq!(state(&killed), TaskState::TaskKilled);
    assert!(executor.exit().await.success());
}

#[tokio::test]
async fn missing_environment_is_reported_by_name() {
    let output = Command::new(env!("CARGO_BIN_EXE_mesos-executor"))
        .env_clear()
        .env("MESOS_FRAMEWORK_ID", "f")
        .env("MESOS_EXECUTOR_ID", "e")
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("'MESOS_AGENT_ENDPOINT'"), "{stderr}");
}

#[tokio::test]
async fn unknown_flag_is_reported_by_name() {
    let output = Command::new(env!("CARGO_BIN_EXE_mesos-executor"))
        .arg("--no_such_flag=1")
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("unknown flag '--no_such_flag'"), "{stderr}");
}

/// `VmRSS`, `RssAnon` and `RssFile` lines of /proc/<pid>/status.
fn memory_lines(pid: u32) -> Vec<String> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("VmRSS") || l.starts_with("RssAnon") || l.starts_with("RssFile"))
        .map(str::to_owned)
        .collect()
}

/// Measurement, not a pass/fail check of the figure: prints the executor's
/// resident memory while idle next to a running task. Run with
/// `cargo test -p mesos-executor --test command_executor -- --ignored --nocapture`;
/// `MESOS_EXECUTOR_BIN` selects another build (e.g. target/release/mesos-executor).
#[tokio::test]
#[ignore = "measurement; run explicitly"]
async fn measure_idle_rss_with_a_running_task() {
    let mut agent = FakeAgent::start(setup(shell("sleep 100"))).await;
    let binary = std::env::var("MESOS_EXECUTOR_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_mesos-executor").to_owned());
    let mut executor = Executor::spawn_binary(&binary, &agent, &[]);
    expect_running(&mut agent).await;
    // Let start-up allocations settle.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let pid = executor.child.id().unwrap();
    println!("{binary}: idle with a running task:");
    for line in memory_lines(pid) {
        println!("  {line}");
    }
    if std::env::var_os("MESOS_EXECUTOR_SMAPS").is_some() {
        let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap();
        println!("{smaps}");
    }
    agent.kill(None);
    assert_eq!(state(&agent.next_update().await), TaskState::TaskKilled);
    assert!(executor.exit().await.success());
}
