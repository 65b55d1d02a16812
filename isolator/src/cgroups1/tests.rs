//! The v1 driver against a fake cgroupfs.

use std::fs;

use crate::testutil::{at, read, FakeHost, MB};
use crate::{CgroupsConfig, ContainerLimits, IsolatorError};

const ALL: &str = "cgroups/cpu,cgroups/mem,cgroups/pids";

#[test]
fn hybrid_nests_under_our_own_cgroups_and_tracks_in_cgroup2() {
    let host = FakeHost::hybrid("hugetlb");
    let config = CgroupsConfig {
        enable_cfs: true,
        ..host.config()
    };
    let isolator = host.isolator(config, ALL);
    assert_eq!(isolator.driver(), "cgroups1");
    let container = isolator
        .prepare("c1", &ContainerLimits::new(0.5, 64 * MB))
        .unwrap();

    let memory = at(host.path(), "memory/agent.slice/mesos/c1");
    let cpu = at(host.path(), "cpu/mesos/c1");
    let expected = vec![
        cpu.clone(),
        at(host.path(), "cpuacct/mesos/c1"),
        memory.clone(),
        at(host.path(), "pids/mesos/c1"),
        at(host.path(), "unified/mesos/c1"),
    ];
    assert_eq!(container.paths(), expected);
    // cgroup.kill on the tracking tree replaces the freezer.
    assert!(!host.path().join("freezer/mesos").exists());
    assert!(container.clone_into_fd().is_some());

    assert_eq!(read(cpu.join("cpu.shares")), "512");
    assert_eq!(read(cpu.join("cpu.cfs_period_us")), "100000");
    assert_eq!(read(cpu.join("cpu.cfs_quota_us")), "50000");
    assert_eq!(
        read(memory.join("memory.soft_limit_in_bytes")),
        (64 * MB).to_string()
    );
    assert_eq!(
        read(memory.join("memory.limit_in_bytes")),
        (64 * MB).to_string()
    );
    assert_eq!(
        read(memory.join("memory.memsw.limit_in_bytes")),
        (64 * MB).to_string()
    );
    assert_eq!(read(memory.join("memory.oom_control")), "0");
    assert_eq!(read(at(host.path(), "pids/mesos/c1/pids.max")), "max");
}

#[test]
fn legacy_uses_the_freezer_and_comounted_cpu_once() {
    let host = FakeHost::legacy_with(&["cpu,cpuacct", "memory", "freezer"]);
    let isolator = host.isolator(host.config(), "cgroups/cpu,cgroups/mem");
    let container = isolator
        .prepare("c", &ContainerLimits::new(2.0, 16 * MB))
        .unwrap();
    assert_eq!(
        container.paths(),
        vec![
            at(host.path(), "cpu,cpuacct/mesos/c"),
            at(host.path(), "freezer/mesos/c"),
            at(host.path(), "memory/agent.slice/mesos/c"),
        ]
    );
    assert!(container.clone_into_fd().is_none());
    let cpu = at(host.path(), "cpu,cpuacct/mesos/c");
    assert_eq!(read(cpu.join("cpu.shares")), "2048");
    // No --cgroups_enable_cfs, no limit: unlimited.
    assert_eq!(read(cpu.join("cpu.cfs_quota_us")), "-1");
    let memory = at(host.path(), "memory/agent.slice/mesos/c");
    assert_eq!(
        read(memory.join("memory.limit_in_bytes")),
        (32 * MB).to_string()
    );
}

#[test]
fn tiny_and_huge_cpu_requests() {
    let host = FakeHost::hybrid("hugetlb");
    let config = CgroupsConfig {
        enable_cfs: true,
        ..host.config()
    };
    let isolator = host.isolator(config, "cgroups/cpu");
    isolator
        .prepare("tiny", &ContainerLimits::new(0.01, 0))
        .unwrap();
    isolator
        .prepare("huge", &ContainerLimits::new(10_000.0, 0))
        .unwrap();
    let tiny = at(host.path(), "cpu/mesos/tiny");
    assert_eq!(read(tiny.join("cpu.shares")), "10");
    assert_eq!(read(tiny.join("cpu.cfs_quota_us")), "1000");
    let huge = at(host.path(), "cpu/mesos/huge");
    assert_eq!(read(huge.join("cpu.shares")), "262144");
    assert_eq!(read(huge.join("cpu.cfs_quota_us")), "1000000000");
}

#[test]
fn limits_and_swap_flag() {
    let host = FakeHost::hybrid("hugetlb");
    let config = CgroupsConfig {
        limit_swap: false,
        ..host.config()
    };
    let isolator = host.isolator(config, "cgroups/cpu,cgroups/mem");
    let limits = ContainerLimits {
        cpus: 1.0,
        mem_bytes: 64 * MB,
        cpus_limit: Some(1.5),
        mem_limit_bytes: Some(u64::MAX),
        pids: None,
    };
    isolator.prepare("l", &limits).unwrap();
    let memory = at(host.path(), "memory/agent.slice/mesos/l");
    assert_eq!(read(memory.join("memory.limit_in_bytes")), "-1");
    assert_eq!(
        read(memory.join("memory.soft_limit_in_bytes")),
        (64 * MB).to_string()
    );
    assert!(!memory.join("memory.memsw.limit_in_bytes").exists());
    assert_eq!(
        read(at(host.path(), "cpu/mesos/l/cpu.cfs_quota_us")),
        "150000"
    );
}

#[test]
fn update_raises_but_never_lowers_the_hard_limit() {
    let host = FakeHost::hybrid("hugetlb");
    let isolator = host.isolator(host.config(), "cgroups/mem");
    let container = isolator
        .prepare("g", &ContainerLimits::new(1.0, 128 * MB))
        .unwrap();
    let memory = at(host.path(), "memory/agent.slice/mesos/g");
    container
        .update(&ContainerLimits::new(1.0, 256 * MB))
        .unwrap();
    assert_eq!(
        read(memory.join("memory.limit_in_bytes")),
        (256 * MB).to_string()
    );
    assert_eq!(
        read(memory.join("memory.memsw.limit_in_bytes")),
        (256 * MB).to_string()
    );
    container
        .update(&ContainerLimits::new(1.0, 64 * MB))
        .unwrap();
    assert_eq!(
        read(memory.join("memory.limit_in_bytes")),
        (256 * MB).to_string()
    );
    assert_eq!(
        read(memory.join("memory.soft_limit_in_bytes")),
        (64 * MB).to_string()
    );
}

#[test]
fn attach_writes_every_hierarchy() {
    let host = FakeHost::hybrid("hugetlb");
    let isolator = host.isolator(host.config(), ALL);
    let container = isolator
        .prepare("a", &ContainerLimits::new(1.0, 64 * MB))
        .unwrap();
    container.attach(31337).unwrap();
    for dir in container.paths() {
        assert_eq!(read(dir.join("cgroup.procs")), "31337", "{}", dir.display());
    }
    assert_eq!(container.pids().unwrap(), vec![31337]);
}

#[test]
fn usage_converts_ticks_and_nanoseconds() {
    let host = FakeHost::hybrid("hugetlb");
    let config = CgroupsConfig {
        enable_cfs: true,
        ..host.config()
    };
    let isolator = host.isolator(config, ALL);
    let container = isolator
        .prepare("u", &ContainerLimits::new(0.5, 64 * MB))
        .unwrap();
    let cpuacct = at(host.path(), "cpuacct/mesos/u");
    let cpu = at(host.path(), "cpu/mesos/u");
    let memory = at(host.path(), "memory/agent.slice/mesos/u");
    fs::write(cpuacct.join("cpuacct.stat"), "user 150\nsystem 25\n").unwrap();
    fs::write(
        cpu.join("cpu.stat"),
        "nr_periods 20\nnr_throttled 19\nthrottled_time 950000000\n",
    )
    .unwrap();
    fs::write(memory.join("memory.usage_in_bytes"), "30000000\n").unwrap();
    fs::write(
        memory.join("memory.stat"),
        "cache 1\nrss 2\ntotal_cache 4096000\ntotal_rss 25000000\n",
    )
    .unwrap();
    fs::write(memory.join("cgroup.procs"), "7\n8\n").unwrap();
    fs::write(at(host.path(), "unified/mesos/u/cgroup.procs"), "8\n").unwrap();

    let usage = container.usage().unwrap();
    assert_eq!(usage.cpus_user_time_secs, Some(1.5));
    assert_eq!(usage.cpus_system_time_secs, Some(0.25));
    assert_eq!(usage.cpus_nr_periods, Some(20));
    assert_eq!(usage.cpus_nr_throttled, Some(19));
    assert_eq!(usage.cpus_throttled_time_secs, Some(0.95));
    assert_eq!(usage.cpus_limit, Some(0.5));
    assert_eq!(usage.mem_total_bytes, Some(30_000_000));
    assert_eq!(usage.mem_anon_bytes, Some(25_000_000));
    assert_eq!(usage.mem_file_bytes, Some(4_096_000));
    assert_eq!(usage.mem_limit_bytes, Some(64 * MB));
    assert_eq!(usage.processes, Some(2));

    // The kernel's "unlimited" sentinel reads as no limit.
    fs::write(
        memory.join("memory.limit_in_bytes"),
        "9223372036854771712\n",
    )
    .unwrap();
    assert_eq!(container.usage().unwrap().mem_limit_bytes, None);
}

#[test]
fn missing_hierarchy_is_named_with_its_isolator() {
    let host = FakeHost::legacy_with(&["cpu,cpuacct", "memory", "freezer"]);
    let err = host.try_isolator(host.config(), ALL).unwrap_err();
    assert!(
        matches!(err, IsolatorError::ControllerUnavailable { .. }),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains("'pids'") && text.contains("cgroups/pids"),
        "{text}"
    );
}

#[tokio::test]
async fn destroy_removes_every_hierarchy() {
    let host = FakeHost::legacy_with(&["cpu", "cpuacct", "memory", "freezer"]);
    let isolator = host.isolator(host.config(), "cgroups/cpu,cgroups/mem");
    let container = isolator
        .prepare("d", &ContainerLimits::new(1.0, 64 * MB))
        .unwrap();
    let paths = container.paths();
    assert_eq!(paths.len(), 4);
    container.destroy().await.unwrap();
    for path in paths {
        assert!(!path.exists(), "{}", path.display());
    }
    // <root> stays for the next container.
    assert!(host.path().join("freezer/mesos").is_dir());
}
