//! Real-kernel tests of the v1 driver (legacy and hybrid hosts, such as CI). They need
//! root and skip, saying so, without it; on a unified host `cgroups2_kernel` runs
//! instead. Every test works under its own `mesos-test-*` root, removed on drop.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use mesos_isolator::{
    detect_layout, ContainerCgroup, ContainerLimits, Isolator, Layout, LimitationReason,
};

const ISOLATION: &str = "cgroups/cpu,cgroups/mem";

/// Root, and a host with v1 controllers.
fn gate(test: &str) -> bool {
    if !root_or_skip(test) {
        return false;
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    match detect_layout(&mountinfo, Path::new("/sys/fs/cgroup")) {
        Ok(Layout::Unified) => {
            eprintln!("SKIPPED {test}: unified host (no v1 controllers); see cgroups2_kernel");
            false
        }
        Ok(_) => true,
        Err(error) => panic!("{test}: {error}"),
    }
}

#[tokio::test]
async fn cpu_quota_holds_a_process_to_half_a_core() {
    if !gate("cpu_quota_holds_a_process_to_half_a_core") {
        return;
    }
    let isolator = TestIsolator::new(ISOLATION, |c| c.enable_cfs = true);
    assert_eq!(isolator.driver(), "cgroups1");
    // Give the test's parent cgroup a large weight so that other load on this shared
    // host does not starve the container below its quota; the cap under test is the
    // container's own cpu.cfs_quota_us.
    let cpu_root = dir_with(&isolator.roots(), "cpu.shares").expect("cpu hierarchy root");
    std::fs::write(cpu_root.join("cpu.shares"), "262144").expect("raise test root shares");

    let container = isolator
        .prepare("cpu", &ContainerLimits::new(0.5, 64 * MB))
        .unwrap();
    let mut child = Gated::spawn("while :; do :; done");
    container.attach(child.pid).unwrap();
    child.release();
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Windows of 1.5 s (CFS hands out quota in 5 ms slices per CPU, so short windows
    // overshoot). The cap must hold in every window; the process must reach it in at
    // least one (a loaded host can briefly starve it).
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
            "0.5-cpu container: {ratio:.3} of a core over {:.2} s; throttled {} of {} periods",
            now.timestamp - previous.timestamp,
            now.cpus_nr_throttled.unwrap_or(0),
            now.cpus_nr_periods.unwrap_or(0)
        );
        assert!(ratio <= 0.55, "quota exceeded: {ratio:.3} of a core");
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
    let usage = container.usage().unwrap();
    assert_eq!(usage.cpus_limit, Some(0.5));
    assert!(
        usage.cpus_nr_throttled.unwrap() > 0,
        "a busy loop at 0.5 cpus is throttled"
    );
}

#[tokio::test]
async fn oom_kill_resolves_the_memory_limitation() {
    if !gate("oom_kill_resolves_the_memory_limitation") {
        return;
    }
    let isolator = TestIsolator::new(ISOLATION, |_| {});
    let container = isolator
        .prepare("oom", &ContainerLimits::new(0.5, 64 * MB))
        .unwrap();
    // dd's 128 MB buffer is twice the limit; memsw = limit rules out swapping.
    let mut child = Gated::spawn("exec dd if=/dev/zero of=/dev/null bs=128M count=1");
    container.attach(child.pid).unwrap();

    let limitation = async {
        let limitation = container.limitation().await;
        (limitation, Instant::now())
    };
    tokio::pin!(limitation);
    // Arm the watch before the allocation starts.
    tokio::select! {
        biased;
        _ = &mut limitation => panic!("limitation before any allocation"),
        _ = tokio::time::sleep(Duration::from_millis(20)) => {}
    }
    // Timestamp the kernel's kill: poll the oom_kill counter in a thread.
    let oom_control = dir_with(&container.paths(), "memory.oom_control")
        .expect("memory hierarchy")
        .join("memory.oom_control");
    let kill_seen = std::thread::spawn(move || {
        eventually(Duration::from_secs(60), || {
            std::fs::read_to_string(&oom_control)
                .map(|t| !t.contains("oom_kill 0"))
                .unwrap_or(true)
        });
        Instant::now()
    });
    let released = Instant::now();
    child.release();
    let reaper = child.reap_in_background();
    let (limitation, seen) = tokio::time::timeout(Duration::from_secs(60), limitation)
        .await
        .expect("an OOM limitation within 60 s");
    let (status, exited) = reaper.join().expect("reaper thread");

    assert!(killed_by_sigkill(status), "dd was OOM-killed: {status:?}");
    assert_eq!(limitation.reason, LimitationReason::Memory);
    assert!(
        limitation
            .message
            .starts_with("Memory limit exceeded: Requested: 64MB Maximum Used: "),
        "{}",
        limitation.message
    );
    assert!(
        limitation.message.contains("total_rss"),
        "{}",
        limitation.message
    );
    let killed = kill_seen.join().expect("oom_kill poller");
    let ms = |t: Instant| t.duration_since(released).as_secs_f64() * 1e3;
    println!(
        "OOM after release: oom_kill counter seen at {:.2} ms, limitation resolved at {:.2} ms \
         (detection delay {:+.2} ms), child reaped at {:.2} ms",
        ms(killed),
        ms(seen),
        ms(seen) - ms(killed),
        ms(exited)
    );
    println!(
        "limitation message: {}",
        limitation.message.replace('\n', " | ")
    );
}

#[tokio::test]
async fn destroy_leaves_no_cgroup_and_no_process() {
    if !gate("destroy_leaves_no_cgroup_and_no_process") {
        return;
    }
    let isolator = TestIsolator::new(ISOLATION, |_| {});
    let container = isolator
        .prepare("gone", &ContainerLimits::new(0.5, 64 * MB))
        .unwrap();
    let mut child = Gated::spawn("sleep 1000 & sleep 1000 & wait");
    container.attach(child.pid).unwrap();
    child.release();
    assert!(
        eventually(Duration::from_secs(5), || container.pids().unwrap().len()
            == 3),
        "sh and two sleeps: {:?}",
        container.pids()
    );
    let pids = container.pids().unwrap();
    let paths = container.paths();
    let reaper = child.reap_in_background();

    let started = Instant::now();
    container.destroy().await.unwrap();
    println!(
        "destroy took {:.2} ms",
        started.elapsed().as_secs_f64() * 1e3
    );

    let (status, _) = reaper.join().expect("reaper thread");
    assert!(killed_by_sigkill(status), "{status:?}");
    for path in &paths {
        assert!(!path.exists(), "{} remains", path.display());
    }
    for pid in pids {
        assert!(
            eventually(Duration::from_secs(2), || !is_running(pid)),
            "pid {pid} survived"
        );
    }
}

#[tokio::test]
async fn clone_into_fd_places_a_clone3_child_in_the_tracking_tree() {
    if !gate("clone_into_fd_places_a_clone3_child_in_the_tracking_tree") {
        return;
    }
    let isolator = TestIsolator::new(ISOLATION, |_| {});
    let root = isolator.config().root.clone();
    let container = isolator
        .prepare("clone", &ContainerLimits::new(0.5, 64 * MB))
        .unwrap();
    let Some(fd) = container.clone_into_fd() else {
        eprintln!("SKIPPED clone_into_fd: legacy host without a cgroup2 tree");
        return;
    };
    let started = Instant::now();
    let pid = clone3_into_cgroup(fd).expect("clone3(CLONE_INTO_CGROUP)");
    println!(
        "clone3(CLONE_INTO_CGROUP) returned in {:.3} ms",
        started.elapsed().as_secs_f64() * 1e3
    );
    let reaper = waitpid_in_background(pid);

    // In the cgroup2 tree at once, and nowhere else yet.
    let suffix = format!("/{root}/clone");
    let unified = cgroup_of(pid, "").expect("cgroup2 membership");
    assert!(unified.ends_with(&suffix), "{unified}");
    assert!(container.pids().unwrap().contains(&pid));
    assert!(!cgroup_of(pid, "memory").unwrap().ends_with(&suffix));

    // attach covers the v1 hierarchies, and is idempotent.
    container.attach(pid).unwrap();
    container.attach(pid).unwrap();
    assert!(cgroup_of(pid, "memory").unwrap().ends_with(&suffix));
    assert!(cgroup_of(pid, "cpu").unwrap().ends_with(&suffix));

    container.destroy().await.unwrap();
    let status = reaper.join().expect("reaper thread").expect("waitpid");
    assert_eq!(
        status,
        nix::sys::wait::WaitStatus::Signaled(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
            false
        )
    );
}

#[tokio::test]
async fn kill_stops_every_process() {
    if !gate("kill_stops_every_process") {
        return;
    }
    let isolator = TestIsolator::new(ISOLATION, |_| {});
    let container = isolator
        .prepare("kill", &ContainerLimits::new(0.5, 64 * MB))
        .unwrap();
    let mut child = Gated::spawn("sleep 1000 & wait");
    container.attach(child.pid).unwrap();
    child.release();
    assert!(eventually(Duration::from_secs(5), || container
        .pids()
        .unwrap()
        .len()
        == 2));
    let reaper = child.reap_in_background();
    container.kill().unwrap();
    let (status, _) = reaper.join().expect("reaper thread");
    assert!(killed_by_sigkill(status), "{status:?}");
    assert!(
        eventually(Duration::from_secs(5), || container
            .pids()
            .unwrap()
            .is_empty()),
        "left: {:?}",
        container.pids()
    );
}

#[tokio::test]
async fn update_raises_the_kernel_limits_but_never_lowers_memory() {
    if !gate("update_raises_the_kernel_limits_but_never_lowers_memory") {
        return;
    }
    let isolator = TestIsolator::new(ISOLATION, |_| {});
    let container = isolator
        .prepare("update", &ContainerLimits::new(0.5, 64 * MB))
        .unwrap();
    let memory_dir = dir_with(&container.paths(), "memory.limit_in_bytes").unwrap();
    let memsw = memory_dir.join("memory.memsw.limit_in_bytes");
    assert_eq!(container.usage().unwrap().mem_limit_bytes, Some(64 * MB));

    // Raising needs memsw first (the kernel keeps limit <= memsw), else EINVAL.
    container
        .update(&ContainerLimits::new(1.0, 128 * MB))
        .unwrap();
    assert_eq!(container.usage().unwrap().mem_limit_bytes, Some(128 * MB));
    if memsw.exists() {
        assert_eq!(read(&memsw), (128 * MB).to_string());
    }
    container
        .update(&ContainerLimits::new(1.0, 32 * MB))
        .unwrap();
    let usage = container.usage().unwrap();
    assert_eq!(usage.mem_limit_bytes, Some(128 * MB));
    assert_eq!(usage.mem_low_bytes, Some(32 * MB));

    let mut limits = ContainerLimits::new(1.0, 128 * MB);
    limits.cpus_limit = Some(1.5);
    container.update(&limits).unwrap();
    assert_eq!(container.usage().unwrap().cpus_limit, Some(1.5));
}

#[tokio::test]
async fn pids_max_caps_forks() {
    if !gate("pids_max_caps_forks") {
        return;
    }
    let isolator = TestIsolator::new("cgroups/cpu,cgroups/mem,cgroups/pids", |c| {
        c.pids_max = Some(5)
    });
    let pids_dir = |c: &ContainerCgroup| dir_with(&c.paths(), "pids.max").expect("pids hierarchy");
    assert_pids_max_caps_forks(&isolator, pids_dir, Duration::from_secs(5)).await;
}

#[tokio::test]
async fn recover_destroys_orphans_and_their_processes() {
    if !gate("recover_destroys_orphans_and_their_processes") {
        return;
    }
    let isolator = TestIsolator::new(ISOLATION, |_| {});
    let orphan = isolator
        .prepare("orphan", &ContainerLimits::new(0.5, 64 * MB))
        .unwrap();
    let kept = isolator
        .prepare("kept", &ContainerLimits::new(0.5, 64 * MB))
        .unwrap();
    let mut child = Gated::spawn("sleep 1000");
    orphan.attach(child.pid).unwrap();
    child.release();
    let reaper = child.reap_in_background();

    // A restarted agent with the same flags, whose checkpoint knows "kept" and "lost".
    let restarted = Isolator::new(isolator.config().clone(), isolator.isolation().clone()).unwrap();
    let known = ["kept".to_owned(), "lost".to_owned()];
    let recovered = restarted.recover(&known).await.unwrap();
    assert_eq!(recovered.orphans_destroyed, ["orphan"]);
    assert_eq!(recovered.missing, ["lost"]);
    assert_eq!(recovered.containers.len(), 1);
    assert_eq!(recovered.containers[0].paths(), kept.paths());
    assert!(killed_by_sigkill(reaper.join().expect("reaper").0));
    for path in orphan.paths() {
        assert!(!path.exists(), "{} remains", path.display());
    }
}
