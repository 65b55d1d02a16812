//! The v2 driver against a fake cgroupfs.

use std::fs;
use std::time::Duration;

use crate::testutil::{at, read, FakeHost, MB};
use crate::{CgroupsConfig, ContainerLimits, IsolatorError, LimitationReason};

const ALL: &str = "cgroups/cpu,cgroups/mem,cgroups/pids";

fn unified() -> FakeHost {
    FakeHost::unified("cpuset cpu io memory hugetlb pids", "/")
}

#[test]
fn prepare_enables_controllers_down_to_the_container_and_writes_limits() {
    let host = unified();
    let config = CgroupsConfig {
        enable_cfs: true,
        ..host.config()
    };
    let isolator = host.isolator(config, ALL);
    assert_eq!(isolator.driver(), "cgroups2");
    let container = isolator
        .prepare("c1", &ContainerLimits::new(0.5, 128 * MB))
        .unwrap();

    let root = host.path().join("mesos");
    let cg = root.join("c1");
    for dir in [host.path(), &root, &cg] {
        assert_eq!(
            read(dir.join("cgroup.subtree_control")),
            "+cpu +memory +pids",
            "{}",
            dir.display()
        );
    }
    assert_eq!(read(cg.join("cpu.weight")), "50");
    assert_eq!(read(cg.join("cpu.max")), "50000 100000");
    assert_eq!(read(cg.join("memory.low")), (128 * MB).to_string());
    assert_eq!(read(cg.join("memory.max")), (128 * MB).to_string());
    assert_eq!(read(cg.join("memory.swap.max")), "0");
    assert_eq!(read(cg.join("memory.oom.group")), "1");
    assert_eq!(read(cg.join("pids.max")), "max");
    assert!(cg.join("leaf").is_dir());
    assert!(container.clone_into_fd().is_some());
    assert_eq!(container.paths(), vec![cg]);
}

#[test]
fn tiny_requests_hit_the_minimums() {
    let host = unified();
    let config = CgroupsConfig {
        enable_cfs: true,
        ..host.config()
    };
    let isolator = host.isolator(config, ALL);
    isolator
        .prepare("tiny", &ContainerLimits::new(0.01, 16 * MB))
        .unwrap();
    let cg = at(host.path(), "mesos/tiny");
    assert_eq!(read(cg.join("cpu.weight")), "1");
    assert_eq!(read(cg.join("cpu.max")), "1000 100000");
    assert_eq!(read(cg.join("memory.low")), (32 * MB).to_string());
    assert_eq!(read(cg.join("memory.max")), (32 * MB).to_string());
}

#[test]
fn huge_requests_are_clamped() {
    let host = unified();
    let isolator = host.isolator(host.config(), ALL);
    isolator
        .prepare("huge", &ContainerLimits::new(10_000.0, 64 * MB))
        .unwrap();
    let cg = at(host.path(), "mesos/huge");
    assert_eq!(read(cg.join("cpu.weight")), "10000");
    // No --cgroups_enable_cfs and no limit: no cap.
    assert_eq!(read(cg.join("cpu.max")), "max 100000");
}

#[test]
fn limits_override_requests() {
    let host = unified();
    let isolator = host.isolator(
        CgroupsConfig {
            pids_max: Some(100),
            ..host.config()
        },
        ALL,
    );
    let limits = ContainerLimits {
        cpus: 0.5,
        mem_bytes: 64 * MB,
        cpus_limit: Some(2.0),
        mem_limit_bytes: Some(512 * MB),
        pids: None,
    };
    isolator.prepare("burst", &limits).unwrap();
    let cg = at(host.path(), "mesos/burst");
    assert_eq!(read(cg.join("cpu.weight")), "50");
    assert_eq!(read(cg.join("cpu.max")), "200000 100000");
    assert_eq!(read(cg.join("memory.low")), (64 * MB).to_string());
    assert_eq!(read(cg.join("memory.max")), (512 * MB).to_string());
    assert_eq!(read(cg.join("pids.max")), "100");

    let unlimited = ContainerLimits {
        cpus_limit: Some(f64::INFINITY),
        mem_limit_bytes: Some(u64::MAX),
        pids: Some(7),
        ..limits
    };
    isolator.prepare("free", &unlimited).unwrap();
    let cg = at(host.path(), "mesos/free");
    assert_eq!(read(cg.join("cpu.max")), "max 100000");
    assert_eq!(read(cg.join("memory.max")), "max");
    assert_eq!(read(cg.join("pids.max")), "7");
}

#[test]
fn update_raises_but_never_lowers_memory_max() {
    let host = unified();
    let isolator = host.isolator(host.config(), ALL);
    let container = isolator
        .prepare("grow", &ContainerLimits::new(1.0, 256 * MB))
        .unwrap();
    let cg = at(host.path(), "mesos/grow");

    container
        .update(&ContainerLimits::new(2.0, 512 * MB))
        .unwrap();
    assert_eq!(read(cg.join("memory.max")), (512 * MB).to_string());
    assert_eq!(read(cg.join("cpu.weight")), "200");

    // Shrinking: the soft limit and CPU follow, the hard limit stays.
    container
        .update(&ContainerLimits::new(0.5, 128 * MB))
        .unwrap();
    assert_eq!(read(cg.join("memory.max")), (512 * MB).to_string());
    assert_eq!(read(cg.join("memory.low")), (128 * MB).to_string());
    assert_eq!(read(cg.join("cpu.weight")), "50");
}

#[test]
fn attach_writes_the_leaf() {
    let host = unified();
    let isolator = host.isolator(host.config(), ALL);
    let container = isolator
        .prepare("c", &ContainerLimits::new(1.0, 64 * MB))
        .unwrap();
    container.attach(4242).unwrap();
    assert_eq!(read(at(host.path(), "mesos/c/leaf/cgroup.procs")), "4242");
    assert_eq!(container.pids().unwrap(), vec![4242]);
}

#[test]
fn prepare_twice_is_an_error_naming_the_cgroup() {
    let host = unified();
    let isolator = host.isolator(host.config(), ALL);
    let limits = ContainerLimits::new(1.0, 64 * MB);
    let _first = isolator.prepare("dup", &limits).unwrap();
    let err = isolator.prepare("dup", &limits).unwrap_err();
    assert!(matches!(err, IsolatorError::AlreadyExists { .. }), "{err}");
    assert!(err.to_string().contains("dup"), "{err}");
}

#[test]
fn missing_controller_is_named_with_its_isolator() {
    let host = FakeHost::unified("cpu io pids", "/");
    let err = host.try_isolator(host.config(), ALL).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("'memory'") && text.contains("cgroups/mem"),
        "{text}"
    );
}

#[test]
fn usage_reads_cpu_memory_and_processes() {
    let host = unified();
    let isolator = host.isolator(host.config(), ALL);
    let container = isolator
        .prepare("u", &ContainerLimits::new(1.5, 64 * MB))
        .unwrap();
    let cg = at(host.path(), "mesos/u");
    fs::write(
        cg.join("cpu.stat"),
        "usage_usec 3500000\nuser_usec 2500000\nsystem_usec 1000000\n\
         nr_periods 40\nnr_throttled 10\nthrottled_usec 250000\n",
    )
    .unwrap();
    fs::write(cg.join("memory.current"), "50000000\n").unwrap();
    fs::write(
        cg.join("memory.stat"),
        "anon 40000000\nfile 9000000\nkernel 1000000\n",
    )
    .unwrap();
    fs::write(cg.join("leaf/cgroup.procs"), "10\n11\n").unwrap();

    let usage = container.usage().unwrap();
    assert_eq!(usage.cpus_user_time_secs, Some(2.5));
    assert_eq!(usage.cpus_system_time_secs, Some(1.0));
    assert_eq!(usage.cpus_nr_periods, Some(40));
    assert_eq!(usage.cpus_nr_throttled, Some(10));
    assert_eq!(usage.cpus_throttled_time_secs, Some(0.25));
    // Uncapped: the limit reported is the weight's cpus.
    assert_eq!(usage.cpus_limit, Some(1.5));
    assert_eq!(usage.mem_total_bytes, Some(50_000_000));
    assert_eq!(usage.mem_anon_bytes, Some(40_000_000));
    assert_eq!(usage.mem_file_bytes, Some(9_000_000));
    assert_eq!(usage.mem_limit_bytes, Some(64 * MB));
    assert_eq!(usage.mem_low_bytes, Some(64 * MB));
    assert_eq!(usage.processes, Some(2));
    assert!(usage.timestamp > 1.5e9);
}

#[tokio::test]
async fn limitation_resolves_on_an_oom_kill_only() {
    let host = unified();
    let isolator = host.isolator(host.config(), ALL);
    let container = isolator
        .prepare("oom", &ContainerLimits::new(1.0, 64 * MB))
        .unwrap();
    let cg = at(host.path(), "mesos/oom");
    let events = cg.join("memory.events");
    fs::write(&events, "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n").unwrap();
    fs::write(cg.join("memory.peak"), (64 * MB).to_string()).unwrap();
    fs::write(
        cg.join("memory.stat"),
        "anon 66060288\nfile 1052672\nkernel 45056\nsock 0\n",
    )
    .unwrap();

    let watch = container.limitation();
    tokio::pin!(watch);
    // Hitting memory.max without a kill is not a limitation.
    tokio::select! {
        _ = &mut watch => panic!("limitation without an OOM kill"),
        _ = tokio::time::sleep(Duration::from_millis(50)) => {}
    }
    fs::write(&events, "low 0\nhigh 0\nmax 12\noom 0\noom_kill 0\n").unwrap();
    tokio::select! {
        _ = &mut watch => panic!("limitation without an OOM kill"),
        _ = tokio::time::sleep(Duration::from_millis(50)) => {}
    }
    fs::write(&events, "low 0\nhigh 0\nmax 13\noom 1\noom_kill 1\n").unwrap();
    let limitation = tokio::time::timeout(Duration::from_secs(5), watch)
        .await
        .expect("the oom_kill increment resolves the limitation");
    assert_eq!(limitation.reason, LimitationReason::Memory);
    assert!(
        limitation
            .message
            .starts_with("Memory limit exceeded: Requested: 64MB Maximum Used: 64MB"),
        "{}",
        limitation.message
    );
    assert!(
        limitation.message.contains("anon 66060288"),
        "{}",
        limitation.message
    );
    assert!(
        !limitation.message.contains("sock"),
        "{}",
        limitation.message
    );

    // An OOM that happened before the watch started is reported at once.
    let again = tokio::time::timeout(Duration::from_secs(1), container.limitation()).await;
    assert!(again.is_ok());
}

#[tokio::test]
async fn destroy_kills_and_removes_the_tree() {
    let host = unified();
    let isolator = host.isolator(host.config(), ALL);
    let container = isolator
        .prepare("gone", &ContainerLimits::new(1.0, 64 * MB))
        .unwrap();
    let cg = at(host.path(), "mesos/gone");
    container.destroy().await.unwrap();
    assert!(!cg.exists());
    assert!(host.path().join("mesos").is_dir());
}

#[tokio::test]
async fn destroy_times_out_with_the_remaining_pids() {
    let host = unified();
    let config = CgroupsConfig {
        destroy_timeout: Duration::from_millis(30),
        ..host.config()
    };
    let isolator = host.isolator(config, ALL);
    let container = isolator
        .prepare("stuck", &ContainerLimits::new(1.0, 64 * MB))
        .unwrap();
    // A "process" the fake kill cannot remove (pid_max is far below this).
    fs::write(
        at(host.path(), "mesos/stuck/leaf/cgroup.procs"),
        "2000000000\n",
    )
    .unwrap();
    let err = container.destroy().await.unwrap_err();
    assert!(
        matches!(&err, IsolatorError::DestroyTimeout { pids, .. } if pids == &[2_000_000_000]),
        "{err}"
    );
    assert!(err.to_string().contains("stuck"), "{err}");
}

#[test]
fn agent_moves_to_its_leaf_and_controllers_are_enabled_on_the_way_down() {
    let host = FakeHost::unified("cpu memory pids", "/system.slice/agent.service");
    let base = at(host.path(), "system.slice/agent.service");
    // A delegated unit: the agent is alone in its cgroup.
    fs::create_dir_all(&base).unwrap();
    fs::write(
        base.join("cgroup.procs"),
        format!("{}\n", std::process::id()),
    )
    .unwrap();
    let isolator = host.isolator(host.config(), "cgroups/cpu,cgroups/mem");
    let root = base.join("mesos");
    assert_eq!(isolator.roots(), vec![root.clone()]);
    assert_eq!(isolator.agent_cgroup(), Some(root.join("agent/leaf")));

    isolator.move_agent_to_leaf(777).unwrap();
    assert_eq!(read(root.join("agent/leaf/cgroup.procs")), "777");
    for dir in [
        host.path().to_owned(),
        host.path().join("system.slice"),
        base.clone(),
        root.clone(),
    ] {
        assert_eq!(
            read(dir.join("cgroup.subtree_control")),
            "+cpu +memory",
            "{}",
            dir.display()
        );
    }

    // After a restart the agent finds itself in <root>/agent/leaf; the tree stays put.
    let restarted = crate::HostInfo {
        mountinfo: host.host.mountinfo.clone(),
        self_cgroup: "0::/system.slice/agent.service/mesos/agent/leaf\n".to_owned(),
    };
    let again = crate::Isolator::with_host(
        host.config(),
        "cgroups/cpu,cgroups/mem".parse().unwrap(),
        &restarted,
        crate::CgroupFs::fake(),
    )
    .unwrap();
    assert_eq!(again.roots(), vec![root]);
}

#[test]
fn containers_listed_exclude_the_agent() {
    let host = unified();
    let isolator = host.isolator(host.config(), ALL);
    isolator.move_agent_to_leaf(1).unwrap();
    isolator
        .prepare("x", &ContainerLimits::new(1.0, 64 * MB))
        .unwrap();
    let ids = match &isolator.driver {
        crate::Driver::V2(d) => d.container_ids().unwrap(),
        crate::Driver::V1(_) => unreachable!("unified host"),
    };
    assert_eq!(ids, vec!["x".to_owned()]);
}

#[test]
fn a_shared_cgroup_sends_containers_to_the_cgroup2_root() {
    // Started from an ssh session: sshd shares the agent's cgroup, which can
    // therefore never enable controllers for children; Mesos's place is the root.
    let host = FakeHost::unified("cpu memory pids", "/system.slice/ssh.service");
    let own = at(host.path(), "system.slice/ssh.service");
    fs::create_dir_all(&own).unwrap();
    fs::write(
        own.join("cgroup.procs"),
        format!("1234\n{}\n", std::process::id()),
    )
    .unwrap();
    let isolator = host.isolator(host.config(), "cgroups/cpu,cgroups/mem");
    assert_eq!(isolator.roots(), vec![at(host.path(), "mesos")]);
}
