//! The README's main command: `mesos-local` starts a master and an agent,
//! runs the sample workload (one task breaching its memory limit), prints a
//! timeline with all eight seed steps for every task, and leaves nothing
//! behind.

use std::path::Path;
use std::process::Command;

#[test]
fn mesos_local_runs_the_workload_and_prints_all_eight_steps() {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("SKIPPED: mesos-local needs root (cgroups and namespaces)");
        return;
    }
    let exe = Path::new(env!("CARGO_BIN_EXE_mesos-local"));
    let dir = exe.parent().expect("target dir");
    for needed in [
        "mesos-master",
        "mesos-agent",
        "mesos-executor",
        "mesos-containerizer",
    ] {
        if !dir.join(needed).exists() {
            eprintln!(
                "SKIPPED: {needed} is not built next to mesos-local; run `cargo test --workspace`"
            );
            return;
        }
    }
    let output = Command::new(exe)
        .args(["--num_agents=2", "--timeout=90"])
        .output()
        .expect("run mesos-local");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "mesos-local failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("3 of 3 task(s) ended as expected"),
        "{stdout}"
    );
    assert!(
        stdout.contains("TASK_FAILED REASON_CONTAINER_LIMITATION_MEMORY"),
        "the memory hog's limit was not enforced:\n{stdout}"
    );

    // Every task's timeline shows each seed step, from the process that
    // really performed it.
    for task in stdout.split("== task ").skip(1) {
        for (step, source) in [
            (1, "master"),
            (2, "master"),
            (3, "scheduler"),
            (4, "scheduler"),
            (5, "scheduler"),
            (6, "agent"),
            (7, "agent"),
            (8, "agent"),
        ] {
            let mark = format!("[{step}] {source}");
            assert!(task.contains(&mark), "no '{mark}' in:\n{task}");
        }
        assert!(
            task.contains("status_update called: TASK_RUNNING") || task.contains("TASK_FAILED"),
            "{task}"
        );
    }

    // The run's temporary directory and cgroups are gone.
    let removed = stdout
        .lines()
        .find_map(|l| l.strip_prefix("stopped the cluster; removed "))
        .and_then(|l| l.strip_suffix(" and its cgroups"))
        .expect("the closing line names the removed directory");
    assert!(!Path::new(removed).exists(), "{removed} was left behind");
    let leftovers: Vec<_> = [
        "/sys/fs/cgroup/cpu",
        "/sys/fs/cgroup/memory",
        "/sys/fs/cgroup/unified",
        "/sys/fs/cgroup",
    ]
    .iter()
    .filter_map(|root| std::fs::read_dir(root).ok())
    .flatten()
    .flatten()
    .map(|e| e.file_name().to_string_lossy().into_owned())
    .filter(|name| name.starts_with(&format!("mesos-local-{}", output_pid(&stdout))))
    .collect();
    assert!(leftovers.is_empty(), "cgroups left behind: {leftovers:?}");
}

/// The pid in the run's cgroups root, read from the hello task's printed
/// `/proc/self/cgroup` (`N:cpu:/mesos-local-<pid>-agent-1/<container>`).
fn output_pid(stdout: &str) -> String {
    stdout
        .split(":/mesos-local-")
        .nth(1)
        .and_then(|rest| rest.split('-').next())
        .unwrap_or("none")
        .to_owned()
}
