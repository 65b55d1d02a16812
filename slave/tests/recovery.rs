//! Fault injection, as root on this host, with the real `mesos-master`, the
//! real `mesos-agent` (cgroups, namespaces), the real command executor and a
//! framework on the `mesos-scheduler` SDK with `checkpoint: true`:
//!
//! 1. `kill -9` of the agent under 50 running tasks: the restarted agent
//!    takes every executor back (same pids), nothing is launched twice, the
//!    update of a task that finished while the agent was down arrives.
//! 2. An executor killed by a signal, a framework that never acknowledges.
//! 3. Damaged checkpoint files: the agent names the file and refuses to
//!    start, or recovers the rest (a torn update log); `--recover=cleanup`
//!    is the way out; a reboot re-attaches nothing.
//!
//! Each test prints what it observed (`observed:` lines) for the closing
//! note. Everything is killed and removed when a test ends, failed or not
//! (`AgentProcess`/`MasterProcess` drop, framework teardown).

// Test code: a failed unwrap is a failed test, with its location.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mesos_proto::v1::task_status::{Reason, Source};
use mesos_proto::v1::{TaskState, TaskStatus};
use mesos_slave::paths::{RunIds, WorkDir};
use serde_json::Value;
use support::http;
use support::process::{
    alive, build_binaries, build_example, child_cgroups, executor_pids, skip_reason,
    wait_listening, AgentProcess, MasterProcess,
};
use support::sdk::{command_task, custom_executor_task, Framework, Seen};

const WAIT: Duration = Duration::from_secs(60);

fn agent_flags(resources: &str) -> Vec<String> {
    vec![
        "--launcher=linux".into(),
        "--isolation=cgroups/cpu,cgroups/mem,namespaces/pid,filesystem/linux".into(),
        format!("--resources={resources}"),
        "--executor_shutdown_grace_period=2secs".into(),
    ]
}

/// Master and agent, or why the test cannot run here.
async fn cluster(agent_extra: &[String]) -> Result<(MasterProcess, AgentProcess), String> {
    if let Some(reason) = skip_reason() {
        return Err(reason);
    }
    // A build failure is a test failure, not a reason to skip.
    if let Err(error) = build_binaries(&["mesos-master", "mesos-executor", "mesos-containerizer"]) {
        panic!("{error}");
    }
    let master = MasterProcess::spawn(&[]).await?;
    let extra: Vec<&str> = agent_extra.iter().map(String::as_str).collect();
    let agent = AgentProcess::spawn(master.address, &extra);
    if !wait_listening(agent.address, Duration::from_secs(10)).await {
        return Err(format!("mesos-agent did not listen; log:\n{}", agent.log()));
    }
    if !registered(&agent, true, Duration::from_secs(30)).await {
        panic!("agent did not register; log:\n{}", agent.log());
    }
    Ok((master, agent))
}

/// Waits until the agent's `slave/registered` metric is `expected`.
async fn registered(agent: &AgentProcess, expected: bool, timeout: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    let want = f64::from(u8::from(expected));
    while tokio::time::Instant::now() < deadline {
        let metrics = http::get(agent.address, "/metrics/snapshot").await;
        if metrics.status == 200 && metrics.json()["slave/registered"] == want {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// Restarts the agent and waits until it is registered again.
async fn restart(agent: &mut AgentProcess, extra: &[&str]) {
    agent.restart(extra);
    assert!(
        wait_listening(agent.address, Duration::from_secs(20)).await,
        "restarted agent did not listen; log:\n{}",
        agent.log()
    );
    assert!(
        registered(agent, true, WAIT).await,
        "restarted agent did not re-register; log:\n{}",
        agent.log()
    );
}

fn state_name(status: &TaskStatus) -> &'static str {
    TaskState::try_from(status.state).map_or("?", |s| s.as_str_name())
}

/// Updates per task, as the framework sees them.
#[derive(Default)]
struct Updates {
    by_task: BTreeMap<String, Vec<TaskStatus>>,
}

impl Updates {
    fn push(&mut self, status: TaskStatus) {
        self.by_task
            .entry(status.task_id.value.clone())
            .or_default()
            .push(status);
    }

    /// Reads updates until every task of `tasks` has reached `state`.
    async fn until_all(&mut self, framework: &mut Framework, tasks: &[String], state: TaskState) {
        let deadline = Instant::now() + Duration::from_secs(240);
        loop {
            let missing: Vec<&String> = tasks.iter().filter(|t| !self.reached(t, state)).collect();
            if missing.is_empty() {
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(status) = framework.update(left).await else {
                panic!(
                    "{} task(s) never reached {state:?}, e.g. {:?}; updates: {:?}",
                    missing.len(),
                    missing.first(),
                    missing.first().and_then(|t| self.by_task.get(*t))
                );
            };
            self.push(status);
        }
    }

    /// Reads updates until `task` has one matching `done`.
    async fn until(
        &mut self,
        framework: &mut Framework,
        task: &str,
        done: impl Fn(&TaskStatus) -> bool,
    ) -> TaskStatus {
        loop {
            if let Some(found) = self
                .by_task
                .get(task)
                .and_then(|l| l.iter().find(|s| done(s)))
            {
                return found.clone();
            }
            let Some(status) = framework.update(WAIT).await else {
                panic!(
                    "no matching update for {task}; seen: {:?}",
                    self.by_task.get(task)
                );
            };
            self.push(status);
        }
    }

    fn reached(&self, task: &str, state: TaskState) -> bool {
        self.by_task
            .get(task)
            .is_some_and(|l| l.iter().any(|s| s.state == state as i32))
    }

    /// Distinct uuids of `task`'s updates in `state`: 1 unless it ran twice.
    fn distinct(&self, task: &str, state: TaskState) -> usize {
        self.by_task
            .get(task)
            .map(|l| {
                l.iter()
                    .filter(|s| s.state == state as i32)
                    .map(|s| s.uuid.clone())
                    .collect::<BTreeSet<_>>()
                    .len()
            })
            .unwrap_or(0)
    }
}

/// The log without terminal colour codes (`ESC [ ... m`).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Seconds since midnight of a log line's RFC 3339 timestamp
/// (`2026-01-01T10:17:35.334224Z ...`).
fn seconds_of_day(line: &str) -> Option<f64> {
    let time = line.split_whitespace().next()?.split('T').nth(1)?;
    let mut parts = time.trim_end_matches('Z').split(':');
    let hours: f64 = parts.next()?.parse().ok()?;
    let minutes: f64 = parts.next()?.parse().ok()?;
    let seconds: f64 = parts.next()?.parse().ok()?;
    Some(hours * 3600.0 + minutes * 60.0 + seconds)
}

/// `slave(1)/state` as JSON.
async fn agent_state(agent: &AgentProcess) -> Value {
    http::get(agent.address, "/state").await.json()
}

/// Tasks of the agent's `/state` by id, with their state.
async fn agent_tasks(agent: &AgentProcess) -> BTreeMap<String, String> {
    let state = agent_state(agent).await;
    let mut tasks = BTreeMap::new();
    for framework in state["frameworks"].as_array().into_iter().flatten() {
        for executor in framework["executors"].as_array().into_iter().flatten() {
            for task in executor["tasks"].as_array().into_iter().flatten() {
                tasks.insert(
                    task["id"].as_str().unwrap_or_default().to_string(),
                    task["state"].as_str().unwrap_or_default().to_string(),
                );
            }
        }
    }
    tasks
}

/// Container ids of an executor's runs in its sandbox directory.
fn sandbox_runs(work: &Path, agent: &str, framework: &str, executor: &str) -> Vec<String> {
    let runs = WorkDir::new(work)
        .executor_dir(agent, framework, executor)
        .join("runs");
    let mut names: Vec<String> = std::fs::read_dir(runs)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n != "latest")
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_tasks_survive_kill_9_of_the_agent() {
    const SLEEPERS: usize = 50;
    // 51 containers of 0.01 cpus + 16 MB, plus the command executor's
    // 0.1 cpus + 32 MB each: 5.61 cpus, 2448 MB.
    let flags = agent_flags("cpus:8;mem:4096;disk:1024;ports:[31000-31100]");
    let (master, mut agent) = match cluster(&flags).await {
        Ok(cluster) => cluster,
        Err(reason) => {
            eprintln!("skipping: {reason}");
            return;
        }
    };
    let mut framework = Framework::start(master.address, "recovery-50", true).await;
    let fw = framework.id.value.clone();
    let sleepers: Vec<String> = (0..SLEEPERS).map(|i| format!("sleeper-{i:02}")).collect();
    let mut tasks: Vec<_> = sleepers
        .iter()
        .map(|id| command_task(id, "sleep 600", 0.01, 16.0))
        .collect();
    // Finishes when the test says so: while the agent is down.
    tasks.push(command_task(
        "finisher",
        "while [ ! -e \"$MESOS_SANDBOX/go\" ]; do sleep 0.2; done",
        0.01,
        16.0,
    ));
    let launched = Instant::now();
    let agent_id = framework.launch(tasks).await.value;
    let mut all = sleepers.clone();
    all.push("finisher".into());
    let mut updates = Updates::default();
    updates
        .until_all(&mut framework, &all, TaskState::TaskRunning)
        .await;
    eprintln!(
        "observed: {} tasks TASK_RUNNING {:.1}s after the launch",
        all.len(),
        launched.elapsed().as_secs_f64()
    );
    // Let the acknowledgements of TASK_RUNNING reach the agent.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = executor_pids(&fw);
    assert_eq!(before.len(), all.len(), "one executor per task: {before:?}");
    let metrics_before = http::get(agent.address, "/metrics/snapshot").await.json();

    agent.kill9();
    let killed = Instant::now();
    assert!(
        before.values().all(|pid| alive(*pid)),
        "executors survive the agent"
    );
    let finisher_sandbox = WorkDir::new(agent.work())
        .executor_dir(&agent_id, &fw, "finisher")
        .join("runs/latest");
    std::fs::write(finisher_sandbox.join("go"), b"").unwrap();
    // The task ends now; its TASK_FINISHED cannot reach anyone yet.
    assert!(
        framework.update(Duration::from_secs(2)).await.is_none(),
        "no update while the agent is down"
    );
    // Mesos's maximum re-registration window (the default is 2 s): 51
    // executors re-subscribing must not fail the test when the shared test
    // host stalls for a few seconds. Recovery still ends as soon as all are back.
    restart(&mut agent, &["--executor_reregistration_timeout=15secs"]).await;
    let back = killed.elapsed();

    let finished = updates
        .until(&mut framework, "finisher", |s| {
            s.state == TaskState::TaskFinished as i32
        })
        .await;
    assert_eq!(finished.source, Some(Source::Executor as i32));

    // Reconciliation: the master, rebuilt from the re-registration, has
    // every sleeper running.
    framework.driver.reconcile_tasks(&[]).unwrap();
    let mut reconciled = BTreeMap::new();
    let deadline = Instant::now() + WAIT;
    while reconciled.len() < SLEEPERS && Instant::now() < deadline {
        let Some(status) = framework.update(Duration::from_secs(10)).await else {
            break;
        };
        if status.reason == Some(Reason::Reconciliation as i32) {
            reconciled.insert(status.task_id.value.clone(), state_name(&status));
        } else {
            updates.push(status);
        }
    }
    let running_reconciled = reconciled
        .iter()
        .filter(|(t, s)| t.starts_with("sleeper-") && **s == "TASK_RUNNING")
        .count();

    let after = executor_pids(&fw);
    let same_pids = sleepers
        .iter()
        .filter(|t| before.contains_key(*t) && before.get(*t) == after.get(*t))
        .count();
    let agent_view = agent_tasks(&agent).await;
    let running_at_agent = agent_view
        .iter()
        .filter(|(t, s)| t.starts_with("sleeper-") && *s == "TASK_RUNNING")
        .count();
    let single_runs = sleepers
        .iter()
        .filter(|t| sandbox_runs(&agent.work(), &agent_id, &fw, t).len() == 1)
        .count();
    let started_once = sleepers
        .iter()
        .filter(|t| updates.distinct(t, TaskState::TaskStarting) == 1)
        .count();
    let metrics = http::get(agent.address, "/metrics/snapshot").await.json();
    let log = strip_ansi(&agent.log());
    let second_run = log.rsplit("---- restarted ----").next().unwrap_or_default();
    let resubscribed = second_run
        .lines()
        .filter(|l| l.contains("executor subscribed") && l.contains("after_restart=true"))
        .count();
    let at = |needle: &str| {
        second_run
            .lines()
            .find(|l| l.contains(needle))
            .and_then(seconds_of_day)
    };
    let recovery = at("finished recovery").zip(at("agent started; recovering"));
    eprintln!(
        "observed: {resubscribed} executors re-subscribed to the restarted agent; recovery took {:.2}s",
        recovery.map_or(f64::NAN, |(end, start)| end - start)
    );
    assert_eq!(resubscribed, all.len(), "every executor re-subscribed");
    eprintln!(
        "observed: before kill: {} executors, {} tasks running; agent back and registered {:.1}s after kill -9",
        before.len(),
        all.len(),
        back.as_secs_f64()
    );
    eprintln!(
        "observed: after restart: {running_at_agent}/{SLEEPERS} sleepers TASK_RUNNING at the agent, \
         {running_reconciled}/{SLEEPERS} TASK_RUNNING on reconciliation, {same_pids}/{SLEEPERS} same executor pids, \
         {single_runs}/{SLEEPERS} with a single run, {started_once}/{SLEEPERS} started once; finisher TASK_FINISHED delivered after the restart"
    );
    eprintln!(
        "observed: updates: framework received {} and acknowledged {}; agent valid_status_updates {} before kill, {} after restart",
        framework.counts.received.load(std::sync::atomic::Ordering::SeqCst),
        framework.counts.acknowledged.load(std::sync::atomic::Ordering::SeqCst),
        metrics_before["slave/valid_status_updates"],
        metrics["slave/valid_status_updates"],
    );
    assert_eq!(running_at_agent, SLEEPERS, "{agent_view:?}");
    assert_eq!(running_reconciled, SLEEPERS, "{reconciled:?}");
    assert_eq!(same_pids, SLEEPERS, "before {before:?}\nafter {after:?}");
    assert_eq!(single_runs, SLEEPERS, "no task launched twice");
    assert_eq!(started_once, SLEEPERS, "no task started twice");
    assert!(
        !after.contains_key("finisher"),
        "the finisher's executor exited once its update was acknowledged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn executor_killed_by_a_signal_fails_its_task_and_the_framework_hears_failure() {
    let executor = match build_example("sleepy_executor") {
        Ok(path) => path,
        Err(error) if skip_reason().is_some() => {
            eprintln!("skipping: {error}");
            return;
        }
        Err(error) => panic!("{error}"),
    };
    let flags = agent_flags("cpus:2;mem:1024;disk:1024;ports:[31000-31100]");
    let (master, agent) = match cluster(&flags).await {
        Ok(cluster) => cluster,
        Err(reason) => {
            eprintln!("skipping: {reason}");
            return;
        }
    };
    let mut framework = Framework::start(master.address, "signal", true).await;
    framework
        .launch(vec![custom_executor_task("sleepy", &executor)])
        .await;
    let mut updates = Updates::default();
    updates
        .until(&mut framework, "sleepy", |s| {
            s.state == TaskState::TaskRunning as i32
        })
        .await;
    let pid = executor_pids(&framework.id.value)["sleepy"];
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let failed = updates
        .until(&mut framework, "sleepy", |s| {
            s.state == TaskState::TaskFailed as i32
        })
        .await;
    assert_eq!(failed.reason, Some(Reason::ExecutorTerminated as i32));
    assert_eq!(failed.source, Some(Source::Agent as i32));
    assert!(
        failed
            .message
            .as_deref()
            .unwrap_or_default()
            .contains("SIGKILL"),
        "{failed:?}"
    );
    let lost = framework
        .next(WAIT, |e| match e {
            Seen::ExecutorLost {
                executor_id,
                status,
            } => Some((executor_id.value.clone(), *status)),
            _ => None,
        })
        .await
        .expect("FAILURE event");
    assert_eq!(lost, ("sleepy".to_string(), Some(9)), "killed by SIGKILL");
    eprintln!(
        "observed: executor pid {pid} killed by SIGKILL: TASK_FAILED/{} ({}), FAILURE for executor '{}' with status {:?}",
        Reason::try_from(failed.reason.unwrap_or_default()).map_or("?", |r| r.as_str_name()),
        failed.message.unwrap_or_default(),
        lost.0,
        lost.1
    );
    assert!(agent.wait_idle(WAIT).await, "executor cleaned up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unacknowledged_head_is_retried_and_later_updates_wait_behind_it() {
    let mut flags = agent_flags("cpus:2;mem:1024;disk:1024;ports:[31000-31100]");
    // Test-only: retries after 1 s, 2 s, 4 s... instead of 10 s, 20 s, ...
    flags.push("--status_update_retry_interval_min=1secs".into());
    let (master, agent) = match cluster(&flags).await {
        Ok(cluster) => cluster,
        Err(reason) => {
            eprintln!("skipping: {reason}");
            return;
        }
    };
    let mut framework = Framework::start(master.address, "no-acks", false).await;
    framework
        .launch(vec![command_task("unacked", "sleep 1", 0.1, 32.0)])
        .await;
    // The task starts, runs and finishes; the framework acknowledges nothing.
    let mut copies: Vec<(TaskStatus, Instant)> = Vec::new();
    let watch_until = Instant::now() + Duration::from_secs(10);
    while Instant::now() < watch_until {
        let left = watch_until.saturating_duration_since(Instant::now());
        if let Some(status) = framework.update(left).await {
            copies.push((status, Instant::now()));
        }
    }
    let states: BTreeSet<&str> = copies.iter().map(|(s, _)| state_name(s)).collect();
    let uuids: BTreeSet<Option<Vec<u8>>> = copies.iter().map(|(s, _)| s.uuid.clone()).collect();
    let gaps: Vec<f64> = copies
        .windows(2)
        .map(|w| (w[1].1 - w[0].1).as_secs_f64())
        .collect();
    let tasks =
        agent_state(&agent).await["frameworks"][0]["executors"][0]["completed_tasks"].clone();
    eprintln!(
        "observed: unacknowledged TASK_STARTING delivered {} times in 10s (gaps {gaps:.1?}s), states seen {states:?}; agent's latest state {}",
        copies.len(),
        tasks[0]["state"]
    );
    assert!(copies.len() >= 3, "head retried: {copies:?}");
    assert_eq!(
        states,
        BTreeSet::from(["TASK_STARTING"]),
        "nothing overtakes the head"
    );
    assert_eq!(uuids.len(), 1, "the same update each time");
    assert_eq!(
        tasks[0]["state"], "TASK_FINISHED",
        "the agent knows the task ended"
    );

    // Acknowledging lets the queued updates through, in order.
    let mut order = vec![copies[0].0.state];
    let mut head = copies[0].0.clone();
    for _ in 0..2 {
        framework.driver.acknowledge_status_update(&head).unwrap();
        head = framework
            .next(WAIT, |e| match e {
                Seen::Update(s) if s.state != head.state => Some(s.as_ref().clone()),
                _ => None,
            })
            .await
            .expect("next update after the acknowledgement");
        order.push(head.state);
    }
    framework.driver.acknowledge_status_update(&head).unwrap();
    let names: Vec<&str> = order
        .iter()
        .map(|s| TaskState::try_from(*s).map_or("?", |s| s.as_str_name()))
        .collect();
    eprintln!("observed: after acknowledging, the queued updates came in order: {names:?}");
    assert_eq!(names, ["TASK_STARTING", "TASK_RUNNING", "TASK_FINISHED"]);
    assert!(
        agent.wait_idle(WAIT).await,
        "executor gone once all is acknowledged"
    );
}

/// How a checkpoint file is damaged.
#[derive(Debug, Clone, Copy)]
enum Damage {
    /// The bytes after the length prefix (or the text) overwritten.
    Garbage,
    /// The last bytes cut off.
    Truncated,
}

fn damage(path: &Path, how: Damage) {
    let mut bytes = std::fs::read(path).unwrap();
    let text = path.extension().is_some_and(|e| e == "pid");
    match (how, text) {
        (Damage::Garbage, true) => bytes = b"not-a-pid".to_vec(),
        (Damage::Garbage, false) => bytes[4..].fill(0xff),
        (Damage::Truncated, _) => bytes.truncate(bytes.len() - 3),
    }
    std::fs::write(path, bytes).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_checkpoints_are_named_and_refused_and_cleanup_is_the_way_out() {
    let flags = agent_flags("cpus:2;mem:1024;disk:1024;ports:[31000-31100]");
    let (master, mut agent) = match cluster(&flags).await {
        Ok(cluster) => cluster,
        Err(reason) => {
            eprintln!("skipping: {reason}");
            return;
        }
    };
    let mut framework = Framework::start(master.address, "damage", true).await;
    let fw = framework.id.value.clone();
    let agent_id = framework
        .launch(vec![command_task("victim", "sleep 600", 0.1, 32.0)])
        .await
        .value;
    let mut updates = Updates::default();
    updates
        .until(&mut framework, "victim", |s| {
            s.state == TaskState::TaskRunning as i32
        })
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let pid = executor_pids(&fw)["victim"];
    agent.kill9();

    let work = WorkDir::new(agent.work());
    let latest = work
        .meta_executor_dir(&agent_id, &fw, "victim")
        .join("runs/latest");
    let container = std::fs::read_link(&latest)
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let ids = RunIds {
        agent: &agent_id,
        framework: &fw,
        executor: "victim",
        container: &container,
    };
    let cases: Vec<(PathBuf, Damage)> = vec![
        (work.agent_info_file(&agent_id), Damage::Garbage),
        (work.agent_info_file(&agent_id), Damage::Truncated),
        (work.framework_info_file(&agent_id, &fw), Damage::Garbage),
        (work.framework_info_file(&agent_id, &fw), Damage::Truncated),
        (
            work.executor_info_file(&agent_id, &fw, "victim"),
            Damage::Garbage,
        ),
        (
            work.executor_info_file(&agent_id, &fw, "victim"),
            Damage::Truncated,
        ),
        (work.forked_pid_file(ids), Damage::Garbage),
        (work.task_info_file(ids, "victim"), Damage::Garbage),
        (work.task_info_file(ids, "victim"), Damage::Truncated),
        (work.task_updates_file(ids, "victim"), Damage::Garbage),
    ];
    let mut refused = 0;
    for (path, how) in &cases {
        let original = std::fs::read(path).unwrap();
        damage(path, *how);
        let (code, stderr) = agent.run_to_exit(&[], Duration::from_secs(30));
        std::fs::write(path, &original).unwrap();
        let name = path.file_name().unwrap().to_string_lossy();
        assert_eq!(
            code,
            Some(1),
            "{name} {how:?}: exit code; stderr:\n{stderr}"
        );
        assert!(
            stderr.contains(&path.display().to_string()),
            "{name} {how:?}: the error names the file:\n{stderr}"
        );
        assert!(stderr.contains("--recover=cleanup"), "{stderr}");
        assert!(
            alive(pid),
            "{name} {how:?}: a refused start leaves the executor alone"
        );
        let line = stderr
            .lines()
            .find(|l| l.starts_with("error:"))
            .unwrap_or("");
        eprintln!("observed: {name} {how:?} -> exit 1: {line}");
        refused += 1;
    }

    // A torn last record of task.updates (the agent died mid-append) is cut
    // off and the rest recovered, as Mesos does.
    let updates_file = work.task_updates_file(ids, "victim");
    let valid = std::fs::metadata(&updates_file).unwrap().len();
    let mut torn = std::fs::read(&updates_file).unwrap();
    torn.extend_from_slice(&[100, 0, 0, 0, 1, 2, 3]);
    std::fs::write(&updates_file, &torn).unwrap();
    restart(&mut agent, &[]).await;
    assert_eq!(
        agent_tasks(&agent).await.get("victim").map(String::as_str),
        Some("TASK_RUNNING")
    );
    assert_eq!(
        executor_pids(&fw).get("victim"),
        Some(&pid),
        "same executor"
    );
    assert_eq!(
        std::fs::metadata(&updates_file).unwrap().len(),
        valid,
        "torn tail cut"
    );
    eprintln!(
        "observed: {refused}/{} damaged files refused (exit 1, file named, executor untouched); torn task.updates tail cut and the task recovered with the same pid {pid}",
        cases.len()
    );

    // --recover=cleanup is the way out of a damaged checkpoint: it kills the
    // old executors, forgets their checkpoint, and exits.
    agent.kill9();
    damage(&work.framework_info_file(&agent_id, &fw), Damage::Garbage);
    let (code, stderr) = agent.run_to_exit(&["--recover=cleanup"], Duration::from_secs(60));
    assert_eq!(code, Some(0), "cleanup exits 0:\n{stderr}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(pid) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!alive(pid), "cleanup killed the executor");
    assert!(!work.meta_agent_dir(&agent_id).join("frameworks").exists());
    for root in agent.cgroup_roots() {
        assert!(
            child_cgroups(&root).is_empty(),
            "container cgroup left under {}",
            root.display()
        );
    }
    // The next start registers under the same id with no tasks; the master
    // reconciles the task it knew and the agent reports it lost.
    restart(&mut agent, &[]).await;
    assert_eq!(agent_state(&agent).await["id"], agent_id.as_str());
    let lost = updates
        .until(&mut framework, "victim", |s| {
            s.state == TaskState::TaskLost as i32
        })
        .await;
    eprintln!(
        "observed: --recover=cleanup with a damaged framework.info: exit 0, executor {pid} killed, frameworks forgotten; after the next start the task is {} ({})",
        state_name(&lost),
        Reason::try_from(lost.reason.unwrap_or_default()).map_or("?", |r| r.as_str_name())
    );

    // After a reboot (another boot id) nothing is re-attached: the old
    // executor is an orphan and its task fails.
    framework
        .launch(vec![command_task("before-reboot", "sleep 600", 0.1, 32.0)])
        .await;
    updates
        .until(&mut framework, "before-reboot", |s| {
            s.state == TaskState::TaskRunning as i32
        })
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let old_pid = executor_pids(&fw)["before-reboot"];
    agent.kill9();
    std::fs::write(work.boot_id_file(), b"00000000-0000-0000-0000-000000000000").unwrap();
    restart(&mut agent, &[]).await;
    let failed = updates
        .until(&mut framework, "before-reboot", |s| {
            s.state == TaskState::TaskFailed as i32
        })
        .await;
    assert_eq!(failed.reason, Some(Reason::ExecutorTerminated as i32));
    assert!(
        failed
            .message
            .as_deref()
            .unwrap_or_default()
            .contains("Abnormal executor termination"),
        "{failed:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(old_pid) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!alive(old_pid), "the orphaned executor was destroyed");
    eprintln!(
        "observed: after a (simulated) reboot: executor {old_pid} destroyed as an orphan, task {} ({}: {})",
        state_name(&failed),
        Reason::try_from(failed.reason.unwrap_or_default()).map_or("?", |r| r.as_str_name()),
        failed.message.unwrap_or_default()
    );
}
