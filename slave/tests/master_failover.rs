//! Master failover under load, as root on this host (`issues show 10`,
//! scenario 2): the real `mesos-master` with its durable registry
//! (`--registry=replicated_log` on its own `--work_dir`), the real
//! `mesos-agent` (cgroups, namespaces), the real command executor and a
//! framework on the `mesos-scheduler` SDK with `checkpoint: true`.
//!
//! The master is killed with SIGKILL while tasks are starting, running and
//! finishing, and restarted on the same work dir and port. After the agent
//! re-registers and the framework re-subscribes (with its framework id),
//! every task must be accounted for, no update may be lost (Mesos is
//! at-least-once: duplicates are allowed) and no task's updates may go
//! backwards.
//!
//! Everything is killed and removed when the test ends, failed or not
//! (`AgentProcess`/`MasterProcess` drop, framework teardown).

// Test code: a failed unwrap is a failed test, with its location.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use mesos_proto::v1::task_status::Reason;
use mesos_proto::v1::{TaskState, TaskStatus};
use serde_json::Value;
use support::http;
use support::process::{build_binaries, skip_reason, wait_listening, AgentProcess, MasterProcess};
use support::sdk::{command_task, Framework};

/// Tasks that start, run and finish around the master's crash.
const SHORT: usize = 10;
/// Tasks still running long after the master is back.
const LONG: usize = 3;

fn agent_flags() -> [&'static str; 4] {
    [
        "--launcher=linux",
        "--isolation=cgroups/cpu,cgroups/mem,namespaces/pid,filesystem/linux",
        "--resources=cpus:4;mem:2048;disk:1024;ports:[31000-31100]",
        "--executor_shutdown_grace_period=2secs",
    ]
}

/// Master (durable registry) and agent, or why the test cannot run here.
async fn cluster() -> Result<(MasterProcess, AgentProcess), String> {
    if let Some(reason) = skip_reason() {
        return Err(reason);
    }
    // A build failure is a test failure, not a reason to skip.
    if let Err(error) = build_binaries(&["mesos-master", "mesos-executor", "mesos-containerizer"]) {
        panic!("{error}");
    }
    // The registry survives the crash in the master's work dir; pings every
    // second, so the agent notices the dead master within ~2 s.
    let master = MasterProcess::spawn(&[
        "--registry=replicated_log",
        "--agent_ping_timeout=1secs",
        "--max_agent_ping_timeouts=2",
    ])
    .await?;
    let agent = AgentProcess::spawn(master.address, &agent_flags());
    if !wait_listening(agent.address, Duration::from_secs(10)).await {
        return Err(format!("mesos-agent did not listen; log:\n{}", agent.log()));
    }
    if !agent_registered(&agent, true, Duration::from_secs(30)).await {
        panic!("agent did not register; log:\n{}", agent.log());
    }
    Ok((master, agent))
}

/// Waits until the agent's `slave/registered` metric is `expected`.
async fn agent_registered(agent: &AgentProcess, expected: bool, timeout: Duration) -> bool {
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

/// Waits until the master's `/state` lists framework `id` as active and
/// one agent: both came back after the restart.
async fn master_knows(master: &MasterProcess, id: &str, timeout: Duration) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + timeout;
    while tokio::time::Instant::now() < deadline {
        let state = http::get(master.address, "/state").await;
        if state.status == 200 {
            let state = state.json();
            let active = state["frameworks"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|f| f["id"] == id && f["active"] == true);
            let agents = state["slaves"].as_array().map_or(0, Vec::len);
            if active && agents == 1 {
                return Some(state);
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    None
}

/// The `tasks` of framework `id` in the master's `/state` (running ones and
/// terminal ones not yet acknowledged), by id.
fn master_tasks(state: &Value, id: &str) -> BTreeMap<String, String> {
    state["frameworks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f["id"] == id)
        .flat_map(|f| f["tasks"].as_array().into_iter().flatten())
        .map(|t| {
            (
                t["id"].as_str().unwrap_or_default().to_string(),
                t["state"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// Position of a state in a command task's life; updates of one task must
/// never go down it.
fn rank(state: i32) -> u8 {
    match TaskState::try_from(state) {
        Ok(TaskState::TaskStaging) => 0,
        Ok(TaskState::TaskStarting) => 1,
        Ok(TaskState::TaskRunning) => 2,
        _ => 3,
    }
}

fn state_name(state: i32) -> &'static str {
    TaskState::try_from(state).map_or("?", |s| s.as_str_name())
}

/// Updates per task as the framework saw them, in arrival order, with a
/// mark for those that arrived after the master was killed.
#[derive(Default)]
struct Updates {
    by_task: BTreeMap<String, Vec<(TaskStatus, bool)>>,
    after_kill: bool,
}

impl Updates {
    fn push(&mut self, status: TaskStatus) {
        let after = self.after_kill;
        self.by_task
            .entry(status.task_id.value.clone())
            .or_default()
            .push((status, after));
    }

    fn reached(&self, task: &str, state: TaskState) -> bool {
        self.states(task).contains(&(state as i32))
    }

    fn states(&self, task: &str) -> Vec<i32> {
        self.by_task
            .get(task)
            .map(|l| l.iter().map(|(s, _)| s.state).collect())
            .unwrap_or_default()
    }

    fn names(&self, task: &str) -> Vec<&'static str> {
        self.states(task).into_iter().map(state_name).collect()
    }

    /// Whether `task`'s updates never go backwards.
    fn in_order(&self, task: &str) -> bool {
        self.states(task)
            .windows(2)
            .all(|w| rank(w[0]) <= rank(w[1]))
    }

    /// Updates seen again (same uuid) — redeliveries after the restart.
    fn duplicates(&self) -> usize {
        self.by_task
            .values()
            .map(|l| {
                let distinct: BTreeSet<_> = l.iter().map(|(s, _)| s.uuid.clone()).collect();
                l.len() - distinct.len()
            })
            .sum()
    }

    fn total(&self, after_kill: bool) -> usize {
        self.by_task
            .values()
            .flatten()
            .filter(|(_, after)| *after == after_kill)
            .count()
    }

    /// Reads updates until `done` holds, or `deadline`.
    async fn until(
        &mut self,
        framework: &mut Framework,
        deadline: Instant,
        done: impl Fn(&Self) -> bool,
    ) -> bool {
        while !done(self) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            if let Some(status) = framework.update(left).await {
                self.push(status);
            }
        }
        true
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_and_updates_survive_kill_9_of_the_master() {
    let (mut master, agent) = match cluster().await {
        Ok(cluster) => cluster,
        Err(reason) => {
            eprintln!("skipping: {reason}");
            return;
        }
    };
    let mut framework = Framework::start(master.address, "master-failover", true).await;
    let fw = framework.id.value.clone();

    // Staggered lengths: some finish before the crash, some while the master
    // is down, some after it is back.
    let short: Vec<String> = (0..SHORT).map(|i| format!("short-{i:02}")).collect();
    let long: Vec<String> = (0..LONG).map(|i| format!("long-{i}")).collect();
    let mut tasks: Vec<_> = short
        .iter()
        .enumerate()
        .map(|(i, id)| command_task(id, &format!("sleep {}; exit 0", 1 + i % 5), 0.05, 16.0))
        .collect();
    tasks.extend(
        long.iter()
            .map(|id| command_task(id, "sleep 600", 0.05, 16.0)),
    );
    let all: Vec<String> = short.iter().chain(&long).cloned().collect();
    framework.launch(tasks).await;

    // Kill the master once updates flow: the first TASK_RUNNING, plus a
    // moment so the first short tasks are finishing.
    let mut updates = Updates::default();
    let started = updates
        .until(
            &mut framework,
            Instant::now() + Duration::from_secs(30),
            |u| all.iter().any(|t| u.reached(t, TaskState::TaskRunning)),
        )
        .await;
    assert!(started, "no task reached TASK_RUNNING before the crash");
    let _ = updates
        .until(
            &mut framework,
            Instant::now() + Duration::from_millis(1500),
            |_| false,
        )
        .await;
    let finished_before = short
        .iter()
        .filter(|t| updates.reached(t, TaskState::TaskFinished))
        .count();
    let received_before = framework.counts.received.load(Ordering::SeqCst);

    let tasks_before = master_tasks(&http::get(master.address, "/state").await.json(), &fw);

    // SIGKILL, then a moment down: short tasks finish while no master is
    // there to take their updates.
    let _ = master.child.kill();
    let killed = Instant::now();
    updates.after_kill = true;
    let _ = updates
        .until(&mut framework, killed + Duration::from_secs(2), |_| false)
        .await;
    let while_down = updates.total(true);
    master.restart().await.expect("master restarts");

    // Every update eventually arrives: TASK_FINISHED of the short tasks,
    // TASK_RUNNING of the long ones (the agent retries what the crashed
    // master never had acknowledged).
    let complete = updates
        .until(
            &mut framework,
            Instant::now() + Duration::from_secs(40),
            |u| {
                short.iter().all(|t| u.reached(t, TaskState::TaskFinished))
                    && long.iter().all(|t| u.reached(t, TaskState::TaskRunning))
            },
        )
        .await;
    let recovered_after = killed.elapsed();
    let master_state = master_knows(&master, &fw, Duration::from_secs(20)).await;
    assert!(
        master_state.is_some(),
        "restarted master never had the framework active and the agent back; \
         master log:\n{}\nagent log:\n{}",
        master.log(),
        agent.log()
    );
    assert!(
        complete,
        "updates missing after the master restart: {:?}\nmaster log:\n{}",
        all.iter()
            .map(|t| (t.as_str(), updates.names(t)))
            .collect::<Vec<_>>(),
        master.log()
    );

    // Implicit reconciliation: the restarted master, rebuilt from the
    // registry and the agent's re-registration, has every long task running.
    framework.driver.reconcile_tasks(&[]).unwrap();
    let mut reconciled = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    while reconciled.len() < LONG && Instant::now() < deadline {
        let Some(status) = framework.update(Duration::from_secs(5)).await else {
            break;
        };
        if status.reason == Some(Reason::Reconciliation as i32) {
            reconciled.insert(status.task_id.value.clone(), state_name(status.state));
        } else {
            updates.push(status);
        }
    }

    let tasks_after = master_tasks(&master_state.unwrap(), &fw);
    let out_of_order: Vec<(&String, Vec<&str>)> = all
        .iter()
        .filter(|t| !updates.in_order(t))
        .map(|t| (t, updates.names(t)))
        .collect();
    let missing_starting: Vec<&String> = all
        .iter()
        .filter(|t| !updates.reached(t, TaskState::TaskStarting))
        .collect();
    let finished = short
        .iter()
        .filter(|t| updates.reached(t, TaskState::TaskFinished))
        .count();
    let running_reconciled = long
        .iter()
        .filter(|t| reconciled.get(*t) == Some(&"TASK_RUNNING"))
        .count();

    eprintln!(
        "observed: before kill: {} tasks launched, master /state `tasks`: {}, \
         {received_before} updates received, {finished_before}/{SHORT} short tasks TASK_FINISHED; \
         {while_down} updates received while the master was down",
        all.len(),
        tasks_before.len()
    );
    eprintln!(
        "observed: after restart: all updates in {:.1}s; {finished}/{SHORT} short tasks \
         TASK_FINISHED, {running_reconciled}/{LONG} long tasks TASK_RUNNING on reconciliation; \
         master /state `tasks` after: {} {:?}",
        recovered_after.as_secs_f64(),
        tasks_after.len(),
        tasks_after
    );
    eprintln!(
        "observed: updates: {} before kill, {} after; framework received {} and acknowledged {}; \
         {} duplicates; out of order: {out_of_order:?}",
        updates.total(false),
        updates.total(true),
        framework.counts.received.load(Ordering::SeqCst),
        framework.counts.acknowledged.load(Ordering::SeqCst),
        updates.duplicates(),
    );

    assert!(
        out_of_order.is_empty(),
        "updates went backwards: {out_of_order:?}"
    );
    assert!(
        missing_starting.is_empty(),
        "TASK_STARTING lost for {missing_starting:?}"
    );
    assert_eq!(finished, SHORT, "every short task delivered TASK_FINISHED");
    assert_eq!(
        running_reconciled, LONG,
        "reconciliation after the restart: {reconciled:?}"
    );
    for task in &long {
        assert_eq!(
            tasks_after.get(task).map(String::as_str),
            Some("TASK_RUNNING"),
            "the restarted master knows {task}: {tasks_after:?}"
        );
    }
    assert!(
        agent_registered(&agent, true, Duration::from_secs(1)).await,
        "agent registered with the restarted master"
    );
}
