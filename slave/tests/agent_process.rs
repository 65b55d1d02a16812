//! The real `mesos-agent` binary, as root, with the Linux launcher (real
//! cgroups and namespaces) and the real command executor, driven by a
//! scripted master over the libprocess-style transport. Covers the agent's
//! half of the seed flow end to end; `seed_flow.rs` repeats it with the real
//! master and schedulers.

mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use mesos_proto::v1::task_status::{Reason, Source};
use mesos_proto::v1::{
    CommandInfo, ExecutorId, ExecutorInfo, FrameworkId, FrameworkInfo, Resource, TaskId, TaskInfo,
    TaskState, TaskStatus,
};
use mesos_slave::status_update_manager::is_terminal;
use support::http;
use support::master::FakeMaster;
use support::process::{
    build_binaries, child_cgroups, processes_of_framework, skip_reason, AgentProcess,
};

const UPDATE_WAIT: Duration = Duration::from_secs(60);

fn resources(text: &str) -> Vec<Resource> {
    mesos_proto::resources::Resources::parse(text, "*")
        .expect("test resources parse")
        .to_pre_refinement()
}

fn command_task(id: &str, command: &str, resources_text: &str) -> TaskInfo {
    TaskInfo {
        name: id.into(),
        task_id: TaskId { value: id.into() },
        resources: resources(resources_text),
        command: Some(CommandInfo {
            value: Some(command.into()),
            ..CommandInfo::default()
        }),
        ..TaskInfo::default()
    }
}

/// Status updates per task, pulled from the master as they arrive.
#[derive(Default)]
struct Updates {
    by_task: HashMap<String, Vec<TaskStatus>>,
}

impl Updates {
    async fn until_terminal(&mut self, master: &mut FakeMaster, task: &str) -> Vec<TaskStatus> {
        self.until(master, task, |s| is_terminal(s.state)).await
    }

    async fn until(
        &mut self,
        master: &mut FakeMaster,
        task: &str,
        done: impl Fn(&TaskStatus) -> bool,
    ) -> Vec<TaskStatus> {
        loop {
            if let Some(list) = self.by_task.get(task) {
                if list.iter().any(&done) {
                    return list.clone();
                }
            }
            let status = master.next_update(UPDATE_WAIT).await;
            self.by_task
                .entry(status.task_id.value.clone())
                .or_default()
                .push(status);
        }
    }
}

fn states(list: &[TaskStatus]) -> Vec<TaskState> {
    list.iter()
        .map(|s| TaskState::try_from(s.state).expect("known state"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_tasks_run_in_real_containers() {
    if let Some(reason) = skip_reason() {
        eprintln!("skipping: {reason}");
        return;
    }
    build_binaries(&["mesos-executor", "mesos-containerizer"]).expect("binaries build");

    let mut master = FakeMaster::start().await;
    let agent = AgentProcess::spawn(
        master.upid.address,
        &[
            "--launcher=linux",
            "--isolation=cgroups/cpu,cgroups/mem,namespaces/pid,filesystem/linux",
            "--resources=cpus:4;mem:2048;disk:1024;ports:[31000-31100]",
            "--executor_shutdown_grace_period=3secs",
        ],
    );
    if let Err(error) = master.accept_registration().await {
        panic!("{error}; agent log:\n{}", agent.log());
    }
    let framework_id = format!("e2e-{}", uuid::Uuid::new_v4().simple());
    let framework = FrameworkInfo {
        user: "root".into(),
        name: "agent-e2e".into(),
        id: Some(FrameworkId {
            value: framework_id.clone(),
        }),
        checkpoint: Some(true),
        ..FrameworkInfo::default()
    };
    let mut updates = Updates::default();
    let started = Instant::now();

    // Exit 0 → STARTING, RUNNING, FINISHED; its stdout via /files/read.
    master.run_task(
        &framework,
        command_task("hello", "echo hello-from-the-task", "cpus:0.1;mem:32"),
    );
    let hello = updates.until_terminal(&mut master, "hello").await;
    assert_eq!(
        states(&hello),
        [
            TaskState::TaskStarting,
            TaskState::TaskRunning,
            TaskState::TaskFinished
        ],
        "agent log:\n{}",
        agent.log()
    );
    let stdout = http::get(
        agent.address,
        &format!("/files/read?path=/frameworks/{framework_id}/executors/hello/runs/latest/stdout&offset=0"),
    )
    .await;
    assert_eq!(stdout.status, 200, "{}", stdout.text());
    assert!(stdout.json()["data"]
        .as_str()
        .unwrap()
        .contains("hello-from-the-task"));

    // Exit 3 → FAILED, with the code in the message.
    master.run_task(
        &framework,
        command_task("three", "exit 3", "cpus:0.1;mem:32"),
    );
    let three = updates.until_terminal(&mut master, "three").await;
    let last = three.last().unwrap();
    assert_eq!(states(&three).last(), Some(&TaskState::TaskFailed));
    assert!(
        last.message.as_deref().unwrap_or_default().contains('3'),
        "{last:?}"
    );

    // Twice its memory → OOM → REASON_CONTAINER_LIMITATION_MEMORY.
    let hog = "python3 -c 'import time; b = bytearray(128 << 20); time.sleep(60)' || \
               (x=$(head -c 134217728 /dev/zero | tr '\\0' a); sleep 60)";
    master.run_task(&framework, command_task("hog", hog, "cpus:0.1;mem:64"));
    let hogged = updates.until_terminal(&mut master, "hog").await;
    let last = hogged.last().unwrap();
    assert_eq!(
        states(&hogged).last(),
        Some(&TaskState::TaskFailed),
        "{hogged:?}"
    );
    assert_eq!(
        last.reason,
        Some(Reason::ContainerLimitationMemory as i32),
        "{last:?}"
    );

    // KILL → TASK_KILLED within the grace period.
    master.run_task(
        &framework,
        command_task("sleeper", "sleep 1000", "cpus:0.1;mem:32"),
    );
    updates
        .until(&mut master, "sleeper", |s| {
            s.state == TaskState::TaskRunning as i32
        })
        .await;
    let asked = Instant::now();
    master.kill_task(
        &FrameworkId {
            value: framework_id.clone(),
        },
        "sleeper",
    );
    let killed = updates.until_terminal(&mut master, "sleeper").await;
    let took = asked.elapsed();
    assert_eq!(
        states(&killed).last(),
        Some(&TaskState::TaskKilled),
        "{killed:?}"
    );
    // Grace period 3 s, plus scheduling slack on a busy 2-core host.
    assert!(
        took < Duration::from_secs(3 + 5),
        "TASK_KILLED took {took:?}"
    );

    // Everything ends: no live executor, no container cgroup, no process.
    assert!(
        agent.wait_idle(Duration::from_secs(30)).await,
        "executors still running: {}",
        agent.state().await
    );
    for root in agent.cgroup_roots() {
        assert!(
            child_cgroups(&root).is_empty(),
            "leftover cgroups under {}: {:?}",
            root.display(),
            child_cgroups(&root)
        );
    }
    eprintln!(
        "4 tasks and cleanup took {:?}; TASK_KILLED {took:?} after the kill",
        started.elapsed()
    );
    assert!(
        processes_of_framework(&framework_id).is_empty(),
        "leftover processes"
    );
    let metrics = http::get(agent.address, "/metrics/snapshot").await.json();
    assert_eq!(metrics["slave/tasks_finished"], 1.0);
    assert_eq!(metrics["slave/tasks_failed"], 2.0);
    assert_eq!(metrics["slave/tasks_killed"], 1.0);
}

/// The interpreter that has pymesos, or why there is none.
fn pymesos_python() -> Result<String, String> {
    let output = std::process::Command::new("python3")
        .args([
            "-c",
            "import sys, pymesos, http_parser.pyparser; print(sys.executable)",
        ])
        .output()
        .map_err(|e| format!("no python3: {e}"))?;
    if !output.status.success() {
        return Err("pymesos is not installed (scripts/install-pymesos.sh)".into());
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pymesos_custom_executor_receives_launch_and_reports_its_own_updates() {
    if let Some(reason) = skip_reason() {
        eprintln!("skipping: {reason}");
        return;
    }
    let python = match pymesos_python() {
        Ok(python) => python,
        Err(reason) => {
            eprintln!("skipping: {reason}");
            return;
        }
    };
    build_binaries(&["mesos-containerizer"]).expect("binaries build");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/pymesos/executor.py");

    let mut master = FakeMaster::start().await;
    let agent = AgentProcess::spawn(
        master.upid.address,
        &[
            "--launcher=linux",
            "--isolation=cgroups/cpu,cgroups/mem,namespaces/pid,filesystem/linux",
            "--resources=cpus:4;mem:2048;disk:1024;ports:[31000-31100]",
            "--executor_shutdown_grace_period=2secs",
        ],
    );
    if let Err(error) = master.accept_registration().await {
        panic!("{error}; agent log:\n{}", agent.log());
    }
    let framework_id = format!("py-{}", uuid::Uuid::new_v4().simple());
    let framework = FrameworkInfo {
        user: "root".into(),
        name: "pymesos-executor-e2e".into(),
        id: Some(FrameworkId {
            value: framework_id.clone(),
        }),
        ..FrameworkInfo::default()
    };
    let executor = ExecutorInfo {
        executor_id: ExecutorId {
            value: "echo-executor".into(),
        },
        framework_id: framework.id.clone(),
        name: Some("pymesos echo executor".into()),
        command: Some(CommandInfo {
            value: Some(format!("{python} {script}")),
            ..CommandInfo::default()
        }),
        resources: resources("cpus:0.1;mem:64"),
        ..ExecutorInfo::default()
    };
    let task = |id: &str, data: &str| TaskInfo {
        executor: Some(executor.clone()),
        command: None,
        data: Some(data.as_bytes().to_vec()),
        ..command_task(id, "", "cpus:0.1;mem:16")
    };
    let mut updates = Updates::default();

    // Two tasks on one executor: the second joins the running executor.
    master.run_task(&framework, task("py-1", "hello"));
    let first = updates.until_terminal(&mut master, "py-1").await;
    assert_eq!(
        states(&first),
        [TaskState::TaskRunning, TaskState::TaskFinished],
        "agent log:\n{}",
        agent.log()
    );
    assert!(first
        .iter()
        .all(|s| s.source == Some(Source::Executor as i32)));
    assert_eq!(first[1].message.as_deref(), Some("echoed hello"));
    assert_eq!(
        first[1].executor_id.as_ref().unwrap().value,
        "echo-executor"
    );

    master.run_task(&framework, task("py-2", "hang"));
    updates
        .until(&mut master, "py-2", |s| {
            s.state == TaskState::TaskRunning as i32
        })
        .await;
    master.kill_task(
        &FrameworkId {
            value: framework_id.clone(),
        },
        "py-2",
    );
    let second = updates.until_terminal(&mut master, "py-2").await;
    assert_eq!(states(&second).last(), Some(&TaskState::TaskKilled));
    assert_eq!(
        second.last().unwrap().message.as_deref(),
        Some("killed by the executor")
    );

    let stdout = http::get(
        agent.address,
        &format!("/files/read?path=/frameworks/{framework_id}/executors/echo-executor/runs/latest/stdout&offset=0"),
    )
    .await
    .json();
    let stdout = stdout["data"].as_str().unwrap();
    assert!(stdout.contains("launched py-1 data: hello"), "{stdout}");
    assert!(stdout.contains("killing py-2"), "{stdout}");

    // SHUTDOWN: pymesos exits; nothing is left.
    master.shutdown_framework(&FrameworkId {
        value: framework_id.clone(),
    });
    assert!(
        agent.wait_idle(Duration::from_secs(30)).await,
        "executor still running: {}",
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
}
