//! The seed flow end to end, as root on this host: the real `mesos-master`,
//! the real `mesos-agent` (Linux launcher: cgroups and namespaces), the real
//! command executor, a Rust v1 HTTP scheduler and a pymesos scheduler with a
//! pymesos custom executor.

mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::http;
use support::process::{
    build_binaries, child_cgroups, processes_of_framework, skip_reason, wait_listening,
    AgentProcess, MasterProcess,
};
use support::scheduler::{command_task, TestScheduler};

const WAIT: Duration = Duration::from_secs(60);
const TERMINAL: [&str; 7] = [
    "TASK_FINISHED",
    "TASK_FAILED",
    "TASK_KILLED",
    "TASK_ERROR",
    "TASK_LOST",
    "TASK_DROPPED",
    "TASK_GONE",
];

fn agent_flags() -> [&'static str; 4] {
    [
        "--launcher=linux",
        "--isolation=cgroups/cpu,cgroups/mem,namespaces/pid,filesystem/linux",
        "--resources=cpus:4;mem:2048;disk:1024;ports:[31000-31100]",
        "--executor_shutdown_grace_period=3secs",
    ]
}

/// Starts master and agent, or says why the test cannot run.
async fn cluster() -> Result<(MasterProcess, AgentProcess), String> {
    cluster_with(&[]).await
}

async fn cluster_with(master_flags: &[&str]) -> Result<(MasterProcess, AgentProcess), String> {
    if let Some(reason) = skip_reason() {
        return Err(reason);
    }
    // A build failure is a test failure, not a reason to skip.
    if let Err(error) = build_binaries(&["mesos-master", "mesos-executor", "mesos-containerizer"]) {
        panic!("{error}");
    }
    let master = MasterProcess::spawn(master_flags).await?;
    let agent = AgentProcess::spawn(master.address, &agent_flags());
    if !wait_listening(agent.address, Duration::from_secs(10)).await {
        return Err(format!("mesos-agent did not listen; log:\n{}", agent.log()));
    }
    if registered(&agent, true, Duration::from_secs(15)).await {
        return Ok((master, agent));
    }
    Err(format!(
        "agent did not register; agent log:\n{}\nmaster log:\n{}",
        agent.log(),
        master.log()
    ))
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

/// Updates per task, from a scheduler's stream.
#[derive(Default)]
struct Seen {
    by_task: HashMap<String, Vec<Value>>,
}

impl Seen {
    async fn until(
        &mut self,
        scheduler: &mut TestScheduler,
        task: &str,
        done: impl Fn(&Value) -> bool,
    ) -> Vec<Value> {
        loop {
            if let Some(list) = self.by_task.get(task) {
                if list.iter().any(&done) {
                    return list.clone();
                }
            }
            let event = match scheduler.next("UPDATE", WAIT).await {
                Ok(event) => event,
                Err(error) => panic!("{error}; seen so far: {:?}", self.by_task),
            };
            let status = event["update"]["status"].clone();
            let id = status["task_id"]["value"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            self.by_task.entry(id).or_default().push(status);
        }
    }

    async fn until_terminal(&mut self, scheduler: &mut TestScheduler, task: &str) -> Vec<Value> {
        self.until(scheduler, task, |s| {
            TERMINAL.contains(&s["state"].as_str().unwrap_or_default())
        })
        .await
    }
}

fn states(list: &[Value]) -> Vec<&str> {
    list.iter()
        .map(|s| s["state"].as_str().unwrap_or_default())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_scheduler_runs_command_tasks_through_master_and_agent() {
    let (master, agent) = match cluster().await {
        Ok(cluster) => cluster,
        Err(reason) => {
            eprintln!("skipping: {reason}");
            return;
        }
    };
    let mut scheduler = TestScheduler::subscribe(master.address, "rust-seed-flow")
        .await
        .expect("subscribe");
    let framework_id = scheduler.framework_id.clone();
    let offer =
        scheduler.next("OFFERS", WAIT).await.expect("an offer")["offers"]["offers"][0].clone();
    let hog = "python3 -c 'import time; b = bytearray(128 << 20); time.sleep(60)' || \
               (x=$(head -c 134217728 /dev/zero | tr '\\0' a); sleep 60)";
    scheduler
        .launch(
            &offer,
            vec![
                command_task("ok", "echo hello-through-the-master", 0.1, 32.0),
                command_task("three", "exit 3", 0.1, 32.0),
                command_task("hog", hog, 0.1, 64.0),
                command_task("sleeper", "sleep 1000", 0.1, 32.0),
            ],
        )
        .await
        .expect("ACCEPT");
    let mut seen = Seen::default();

    let ok = seen.until_terminal(&mut scheduler, "ok").await;
    assert_eq!(
        states(&ok),
        ["TASK_STARTING", "TASK_RUNNING", "TASK_FINISHED"],
        "agent log:\n{}",
        agent.log()
    );
    let three = seen.until_terminal(&mut scheduler, "three").await;
    assert_eq!(states(&three).last(), Some(&"TASK_FAILED"));
    assert!(
        three.last().unwrap()["message"]
            .as_str()
            .unwrap_or_default()
            .contains('3'),
        "{three:?}"
    );
    let hog = seen.until_terminal(&mut scheduler, "hog").await;
    assert_eq!(states(&hog).last(), Some(&"TASK_FAILED"));
    assert_eq!(
        hog.last().unwrap()["reason"],
        "REASON_CONTAINER_LIMITATION_MEMORY",
        "{hog:?}"
    );

    seen.until(&mut scheduler, "sleeper", |s| s["state"] == "TASK_RUNNING")
        .await;
    let asked = Instant::now();
    scheduler.kill("sleeper").await.expect("KILL");
    let killed = seen.until_terminal(&mut scheduler, "sleeper").await;
    assert_eq!(states(&killed).last(), Some(&"TASK_KILLED"));
    assert!(
        asked.elapsed() < Duration::from_secs(3 + 5),
        "TASK_KILLED after {:?}",
        asked.elapsed()
    );

    let stdout = http::get(
        agent.address,
        &format!(
            "/files/read?path=/frameworks/{framework_id}/executors/ok/runs/latest/stdout&offset=0"
        ),
    )
    .await
    .json();
    assert!(
        stdout["data"]
            .as_str()
            .unwrap_or_default()
            .contains("hello-through-the-master"),
        "{stdout}"
    );

    assert!(
        agent.wait_idle(Duration::from_secs(30)).await,
        "executors still running: {}",
        agent.state().await
    );
    for root in agent.cgroup_roots() {
        assert!(
            child_cgroups(&root).is_empty(),
            "leftover cgroups under {}",
            root.display()
        );
    }
    assert!(
        processes_of_framework(&framework_id).is_empty(),
        "leftover processes"
    );
    scheduler.teardown().await.expect("TEARDOWN");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pymesos_scheduler_and_custom_executor_run_through_master_and_agent() {
    let python = match std::process::Command::new("python3")
        .args([
            "-c",
            "import sys, pymesos, http_parser.pyparser; print(sys.executable)",
        ])
        .output()
    {
        Ok(output) if output.status.success() => {
            String::from_utf8_lossy(&output.stdout).trim().to_string()
        }
        _ => {
            eprintln!("skipping: pymesos is not installed (scripts/install-pymesos.sh)");
            return;
        }
    };
    let (master, agent) = match cluster().await {
        Ok(cluster) => cluster,
        Err(reason) => {
            eprintln!("skipping: {reason}");
            return;
        }
    };
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/pymesos/scheduler.py");
    let run = tokio::process::Command::new(&python)
        .args([script, &master.address.to_string(), &python])
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(150), run)
        .await
        .expect("pymesos scheduler finished")
        .expect("run pymesos scheduler");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "pymesos scheduler failed\nstdout:\n{stdout}\nstderr:\n{}\nagent log:\n{}",
        String::from_utf8_lossy(&output.stderr),
        agent.log()
    );
    // The closing note shows this sequence.
    eprintln!("updates seen by pymesos:\n{stdout}");
    let mut by_task: HashMap<String, Vec<Value>> = HashMap::new();
    for line in stdout.lines() {
        let update: Value = serde_json::from_str(line).expect("JSON line");
        by_task
            .entry(update["task"].as_str().unwrap().to_string())
            .or_default()
            .push(update);
    }
    assert_eq!(
        states(&by_task["py-exit-0"]),
        ["TASK_STARTING", "TASK_RUNNING", "TASK_FINISHED"]
    );
    assert_eq!(states(&by_task["py-exit-3"]).last(), Some(&"TASK_FAILED"));
    let custom = &by_task["py-custom"];
    assert_eq!(states(custom), ["TASK_RUNNING", "TASK_FINISHED"]);
    assert_eq!(custom[1]["message"], "echoed from-pymesos");
    assert!(custom.iter().all(|u| u["source"] == "SOURCE_EXECUTOR"));

    // The scheduler tore its framework down: the custom executor is shut down too.
    assert!(
        agent.wait_idle(Duration::from_secs(30)).await,
        "executors still running: {}\nagent log:\n{}\nmaster log:\n{}",
        agent.state().await["frameworks"],
        agent.log(),
        master.log()
    );
    for root in agent.cgroup_roots() {
        assert!(
            child_cgroups(&root).is_empty(),
            "leftover cgroups under {}",
            root.display()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_reregisters_with_a_restarted_master_and_keeps_its_tasks() {
    // Pings every second, agent removed after 2 missed: the agent gives the
    // master up after 2 s of silence.
    let (mut master, agent) =
        match cluster_with(&["--agent_ping_timeout=1secs", "--max_agent_ping_timeouts=2"]).await {
            Ok(cluster) => cluster,
            Err(reason) => {
                eprintln!("skipping: {reason}");
                return;
            }
        };
    let mut scheduler = TestScheduler::subscribe(master.address, "restart")
        .await
        .expect("subscribe");
    let offer =
        scheduler.next("OFFERS", WAIT).await.expect("an offer")["offers"]["offers"][0].clone();
    scheduler
        .launch(
            &offer,
            vec![command_task("survivor", "sleep 1000", 0.1, 32.0)],
        )
        .await
        .expect("ACCEPT");
    let mut seen = Seen::default();
    seen.until(&mut scheduler, "survivor", |s| s["state"] == "TASK_RUNNING")
        .await;
    let agent_id = agent.state().await["id"].clone();

    master.restart().await.expect("master restarts");
    assert!(
        registered(&agent, false, Duration::from_secs(15)).await,
        "agent never noticed the master was gone; agent log:\n{}",
        agent.log()
    );
    assert!(
        registered(&agent, true, Duration::from_secs(30)).await,
        "agent did not re-register; agent log:\n{}",
        agent.log()
    );
    let state = agent.state().await;
    assert_eq!(state["id"], agent_id, "same agent id after re-registration");
    let executor = &state["frameworks"][0]["executors"][0];
    assert_eq!(executor["tasks"][0]["id"], "survivor");
    assert_eq!(
        executor["tasks"][0]["state"], "TASK_RUNNING",
        "the task survived the master restart"
    );
    let master_state = http::get(master.address, "/state").await.json();
    assert_eq!(
        master_state["slaves"][0]["id"], agent_id,
        "the new master knows the agent again"
    );
}
