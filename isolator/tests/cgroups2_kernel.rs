//! Real-kernel tests of the v2 driver. They run only as root on a unified host whose
//! `/sys/fs/cgroup` (cgroup2) offers the cpu and memory controllers, such as the
//! pure-v2 qemu guest of `../shared/reference/cgroup-v2-guest.md`; elsewhere (the
//! hybrid CI host) they print why they skip. Run the binary from a process in the
//! cgroup2 root (the guest's `/init`), as the agent would before moving itself.
//!
//! Build for the guest: `cargo test -p mesos-isolator --test cgroups2_kernel --no-run`,
//! then run the printed binary inside the guest with `--test-threads=1 --nocapture`
//! (it needs `/bin/sh`, `sleep` and `dd`, e.g. from busybox).

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use mesos_isolator::{detect_layout, ContainerCgroup, ContainerLimits, Layout, LimitationReason};

const ISOLATION: &str = "cgroups/cpu,cgroups/mem,cgroups/pids";

/// Root, cgroup2 at /sys/fs/cgroup, cpu and memory controllers available. Inside the
/// CI guest (`MESOS_RS_V2_GUEST=1`) a skip would hide a broken guest, so it fails.
fn gate(test: &str) -> bool {
    let in_guest = std::env::var_os("MESOS_RS_V2_GUEST").is_some_and(|v| v == "1");
    let runnable = runnable(test);
    assert!(runnable || !in_guest, "{test} cannot run in the v2 guest");
    runnable
}

fn runnable(test: &str) -> bool {
    if !root_or_skip(test) {
        return false;
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let layout = detect_layout(&mountinfo, Path::new("/sys/fs/cgroup"));
    if !matches!(layout, Ok(Layout::Unified)) {
        eprintln!(
            "SKIPPED {test}: /sys/fs/cgroup is not cgroup2 ({layout:?}); run in a pure-v2 guest"
        );
        return false;
    }
    let controllers =
        std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers").unwrap_or_default();
    let listed: Vec<&str> = controllers.split_whitespace().collect();
    if !(listed.contains(&"cpu") && listed.contains(&"memory")) {
        eprintln!("SKIPPED {test}: cgroup2 lacks cpu/memory controllers ({controllers:?})");
        return false;
    }
    true
}

#[tokio::test]
async fn v2_cpu_max_holds_a_process_to_half_a_core() {
    if !gate("v2_cpu_max_holds_a_process_to_half_a_core") {
        return;
    }
    let isolator = TestIsolator::new(ISOLATION, |c| c.enable_cfs = true);
    assert_eq!(isolator.driver(), "cgroups2");
    // Shield the test root from other load; the cap under test is the container's.
    let root = &isolator.roots()[0];
    std::fs::write(root.join("cpu.weight"), "10000").expect("raise test root weight");

    let container = isolator
        .prepare("cpu", &ContainerLimits::new(0.5, 64 * MB))
        .unwrap();
    let cg = &container.paths()[0];
    assert_eq!(read(&cg.join("cpu.max")), "50000 100000");
    assert_eq!(read(&cg.join("cpu.weight")), "50");
    let mut child = Gated::spawn("while :; do :; done");
    container.attach(child.pid).unwrap();
    child.release();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let mut ratios = Vec::new();
    let mut previous = container.usage().unwrap();
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let now = container.usage().unwrap();
        let cpu = |u: &mesos_isolator::Usage| {
            u.cpus_user_time_secs.unwrap() + u.cpus_system_time_secs.unwrap()
        };
        let ratio = (cpu(&now) - cpu(&previous)) / (now.timestamp - previous.timestamp);
        println!(
            "v2 0.5-cpu container: {ratio:.3} of a core; throttled {} of {} periods",
            now.cpus_nr_throttled.unwrap_or(0),
            now.cpus_nr_periods.unwrap_or(0)
        );
        assert!(ratio <= 0.55, "cpu.max exceeded: {ratio:.3} of a core");
        ratios.push(ratio);
        if ratios.len() >= 2 && ratios.iter().any(|r| (0.45..=0.55).contains(r)) {
            break;
        }
        previous = now;
    }
    assert!(
        ratios.iter().any(|r| (0.45..=0.55).contains(r)),
        "never reached 0.5 ± 0.05 of a core: {ratios:?}"
    );
    assert_eq!(container.usage().unwrap().cpus_limit, Some(0.5));
}

#[tokio::test]
async fn v2_oom_kill_takes_the_whole_container_and_resolves_the_limitation() {
    if !gate("v2_oom_kill_takes_the_whole_container_and_resolves_the_limitation") {
        return;
    }
    let isolator = TestIsolator::new(ISOLATION, |_| {});
    let container = isolator
        .prepare("oom", &ContainerLimits::new(0.5, 64 * MB))
        .unwrap();
    let cg = container.paths()[0].clone();
    assert_eq!(read(&cg.join("memory.max")), (64 * MB).to_string());
    assert_eq!(read(&cg.join("memory.oom.group")), "1");
    // A bystander sleep plus dd's 128 MB buffer, twice the limit.
    let mut child = Gated::spawn("sleep 1000 & exec dd if=/dev/zero of=/dev/null bs=128M count=1");
    container.attach(child.pid).unwrap();

    let limitation = async {
        let limitation = container.limitation().await;
        (limitation, Instant::now())
    };
    tokio::pin!(limitation);
    tokio::select! {
        biased;
        _ = &mut limitation => panic!("limitation before any allocation"),
        _ = tokio::time::sleep(Duration::from_millis(20)) => {}
    }
    let events = cg.join("memory.events");
    let kill_seen = std::thread::spawn(move || {
        eventually(Duration::from_secs(120), || {
            std::fs::read_to_string(&events)
                .map(|t| !t.contains("oom_kill 0"))
                .unwrap_or(true)
        });
        Instant::now()
    });
    let released = Instant::now();
    child.release();
    let reaper = child.reap_in_background();
    let (limitation, seen) = tokio::time::timeout(Duration::from_secs(120), limitation)
        .await
        .expect("an OOM limitation within 120 s");
    let (status, _) = reaper.join().expect("reaper thread");
    let killed = kill_seen.join().expect("oom_kill poller");

    assert!(killed_by_sigkill(status), "{status:?}");
    assert_eq!(limitation.reason, LimitationReason::Memory);
    assert!(
        limitation
            .message
            .starts_with("Memory limit exceeded: Requested: 64MB Maximum Used: "),
        "{}",
        limitation.message
    );
    // memory.oom.group: the bystander died with dd.
    assert!(
        eventually(Duration::from_secs(10), || container
            .pids()
            .unwrap()
            .is_empty()),
        "left after a group OOM kill: {:?}",
        container.pids()
    );
    let ms = |t: Instant| t.duration_since(released).as_secs_f64() * 1e3;
    println!(
        "v2 OOM: oom_kill seen at {:.2} ms, limitation at {:.2} ms (delay {:+.2} ms)",
        ms(killed),
        ms(seen),
        ms(seen) - ms(killed)
    );
}

#[tokio::test]
async fn v2_destroy_leaves_no_cgroup_and_no_process() {
    if !gate("v2_destroy_leaves_no_cgroup_and_no_process") {
        return;
    }
    let isolator = TestIsolator::new(ISOLATION, |_| {});
    let container = isolator
        .prepare("gone", &ContainerLimits::new(0.5, 64 * MB))
        .unwrap();
    let mut child = Gated::spawn("sleep 1000 & sleep 1000 & wait");
    container.attach(child.pid).unwrap();
    child.release();
    assert!(eventually(Duration::from_secs(10), || container
        .pids()
        .unwrap()
        .len()
        == 3));
    let pids = container.pids().unwrap();
    let path = container.paths()[0].clone();
    let reaper = child.reap_in_background();
    container.destroy().await.unwrap();
    assert!(killed_by_sigkill(reaper.join().expect("reaper").0));
    assert!(!path.exists(), "{} remains", path.display());
    for pid in pids {
        assert!(
            eventually(Duration::from_secs(5), || !is_running(pid)),
            "pid {pid} survived"
        );
    }
}

#[tokio::test]
async fn v2_pids_max_caps_forks() {
    if !gate("v2_pids_max_caps_forks") {
        return;
    }
    let isolator = TestIsolator::new(ISOLATION, |c| c.pids_max = Some(5));
    // On v2 `pids.max` is in the container's cgroup, above its leaf.
    let limit_dir = |c: &ContainerCgroup| c.paths()[0].clone();
    assert_pids_max_caps_forks(&isolator, limit_dir, Duration::from_secs(10)).await;
}

#[tokio::test]
async fn v2_clone3_lands_in_the_leaf() {
    if !gate("v2_clone3_lands_in_the_leaf") {
        return;
    }
    let isolator = TestIsolator::new(ISOLATION, |_| {});
    let root = isolator.config().root.clone();
    let container = isolator
        .prepare("clone", &ContainerLimits::new(0.5, 64 * MB))
        .unwrap();
    let fd = container.clone_into_fd().expect("a leaf fd on v2");
    let pid = clone3_into_cgroup(fd).expect("clone3(CLONE_INTO_CGROUP)");
    let reaper = waitpid_in_background(pid);
    let cgroup = cgroup_of(pid, "").expect("cgroup2 membership");
    assert!(cgroup.ends_with(&format!("/{root}/clone/leaf")), "{cgroup}");
    container.attach(pid).unwrap();
    container.destroy().await.unwrap();
    let status = reaper.join().expect("reaper").expect("waitpid");
    assert!(matches!(
        status,
        nix::sys::wait::WaitStatus::Signaled(_, nix::sys::signal::Signal::SIGKILL, _)
    ));
}

#[tokio::test]
async fn v2_kernel_accepts_the_extreme_values() {
    if !gate("v2_kernel_accepts_the_extreme_values") {
        return;
    }
    let isolator = TestIsolator::new(ISOLATION, |c| {
        c.enable_cfs = true;
        c.pids_max = Some(64);
    });
    let tiny = isolator
        .prepare("tiny", &ContainerLimits::new(0.01, 16 * MB))
        .unwrap();
    let cg = &tiny.paths()[0];
    assert_eq!(read(&cg.join("cpu.weight")), "1");
    assert_eq!(read(&cg.join("cpu.max")), "1000 100000");
    assert_eq!(read(&cg.join("memory.max")), (32 * MB).to_string());
    assert_eq!(read(&cg.join("pids.max")), "64");
    let huge = isolator
        .prepare("huge", &ContainerLimits::new(10_000.0, 64 * MB))
        .unwrap();
    let cg = &huge.paths()[0];
    assert_eq!(read(&cg.join("cpu.weight")), "10000");
    assert_eq!(read(&cg.join("cpu.max")), "1000000000 100000");

    // Memory limits only grow.
    huge.update(&ContainerLimits::new(1.0, 128 * MB)).unwrap();
    assert_eq!(read(&cg.join("memory.max")), (128 * MB).to_string());
    huge.update(&ContainerLimits::new(1.0, 64 * MB)).unwrap();
    assert_eq!(read(&cg.join("memory.max")), (128 * MB).to_string());
    assert_eq!(read(&cg.join("memory.low")), (64 * MB).to_string());
}

#[tokio::test]
async fn v2_agent_moves_to_its_leaf_with_controllers_enabled_above() {
    if !gate("v2_agent_moves_to_its_leaf_with_controllers_enabled_above") {
        return;
    }
    let isolator = TestIsolator::new(ISOLATION, |_| {});
    let root = isolator.roots()[0].clone();
    // A stand-in for the agent: moving the test process itself would disturb the
    // other tests.
    let mut agent = Gated::spawn("exit 0");
    isolator.move_agent_to_leaf(agent.pid).unwrap();
    let leaf = isolator.agent_cgroup().expect("v2 has an agent cgroup");
    assert_eq!(read(&leaf.join("cgroup.procs")), agent.pid.to_string());
    let cgroup = cgroup_of(agent.pid, "").unwrap();
    assert!(cgroup.ends_with("/agent/leaf"), "{cgroup}");
    let enabled = read(&root.join("cgroup.subtree_control"));
    for controller in ["cpu", "memory", "pids"] {
        assert!(
            enabled.contains(controller),
            "{controller} not in {enabled}"
        );
    }
    // Containers still get their limits next to the agent.
    let container = isolator
        .prepare("next-to-agent", &ContainerLimits::new(1.0, 64 * MB))
        .unwrap();
    assert!(container.paths()[0].join("memory.max").exists());
    agent.release();
    let _ = agent.reap_in_background().join();
}
