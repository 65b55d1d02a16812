//! Driver selection, validation and recovery against fake hosts.

use crate::testutil::{at, FakeHost, MB};
use crate::{CgroupsConfig, ContainerLimits, IsolatorError, Layout};

#[test]
fn driver_follows_the_layout_and_controllers() {
    let unified = FakeHost::unified("cpu memory pids", "/");
    let isolator = unified.isolator(unified.config(), "cgroups/cpu,cgroups/mem");
    assert_eq!(
        (isolator.layout(), isolator.driver()),
        (Layout::Unified, "cgroups2")
    );

    // The CI host: cgroup2 has only hugetlb, so v1.
    let hybrid = FakeHost::hybrid("hugetlb");
    let isolator = hybrid.isolator(hybrid.config(), "cgroups/cpu,cgroups/mem");
    assert_eq!(
        (isolator.layout(), isolator.driver()),
        (Layout::Hybrid, "cgroups1")
    );
    assert_eq!(isolator.agent_cgroup(), None);

    // A hybrid host whose cgroup2 tree has every needed controller gets v2 there.
    let rich = FakeHost::hybrid("cpu memory");
    let isolator = rich.isolator(rich.config(), "cgroups/cpu,cgroups/mem");
    assert_eq!(isolator.driver(), "cgroups2");
    assert_eq!(isolator.roots(), vec![at(rich.path(), "unified/mesos")]);

    // No controllers needed (posix isolation): v1, with cgroup2 for tracking only.
    let isolator = rich.isolator(rich.config(), "posix/cpu,posix/mem");
    assert_eq!(isolator.driver(), "cgroups1");
    assert_eq!(isolator.roots(), vec![at(rich.path(), "unified/mesos")]);

    let legacy = FakeHost::legacy_with(&["cpu,cpuacct", "memory", "freezer"]);
    let isolator = legacy.isolator(legacy.config(), "cgroups/mem");
    assert_eq!(
        (isolator.layout(), isolator.driver()),
        (Layout::Legacy, "cgroups1")
    );
}

#[test]
fn posix_isolation_still_tracks_and_kills_containers() {
    let host = FakeHost::hybrid("hugetlb");
    let isolator = host.isolator(host.config(), "posix/cpu,posix/mem");
    let container = isolator
        .prepare("p", &ContainerLimits::new(1.0, 64 * MB))
        .unwrap();
    assert_eq!(container.paths(), vec![at(host.path(), "unified/mesos/p")]);
    assert!(container.clone_into_fd().is_some());
}

#[test]
fn bad_container_ids_are_rejected_by_name() {
    let host = FakeHost::unified("cpu memory", "/");
    let isolator = host.isolator(host.config(), "cgroups/mem");
    let limits = ContainerLimits::new(1.0, 64 * MB);
    for id in ["", ".", "..", "a/b", "agent", &"x".repeat(256)] {
        let err = isolator.prepare(id, &limits).unwrap_err();
        assert!(
            matches!(err, IsolatorError::InvalidContainerId { .. }),
            "{id}: {err}"
        );
    }
    let err = isolator
        .prepare("nan", &ContainerLimits::new(f64::NAN, 0))
        .unwrap_err();
    assert!(
        err.to_string().contains("nan") && err.to_string().contains("cpus"),
        "{err}"
    );
}

#[test]
fn flag_errors_name_the_flag() {
    let host = FakeHost::hybrid("hugetlb");
    let config = CgroupsConfig {
        pids_max: Some(10),
        ..host.config()
    };
    let err = host.try_isolator(config, "cgroups/cpu").unwrap_err();
    assert!(err.to_string().contains("--cgroups_pids_max"), "{err}");
    let config = CgroupsConfig {
        root: "/abs".to_owned(),
        ..host.config()
    };
    let err = host.try_isolator(config, "cgroups/cpu").unwrap_err();
    assert!(err.to_string().contains("--cgroups_root"), "{err}");
}

#[tokio::test]
async fn recover_reopens_known_and_destroys_orphans_v2() {
    let host = FakeHost::unified("cpu memory", "/");
    let isolator = host.isolator(host.config(), "cgroups/cpu,cgroups/mem");
    let limits = ContainerLimits::new(1.0, 64 * MB);
    for id in ["known", "orphan"] {
        isolator.prepare(id, &limits).unwrap();
    }
    // A restarted agent.
    let restarted = host.isolator(host.config(), "cgroups/cpu,cgroups/mem");
    let known = ["known".to_owned(), "vanished".to_owned()];
    let recovered = restarted.recover(&known).await.unwrap();
    let ids: Vec<&str> = recovered.containers.iter().map(|c| c.id()).collect();
    assert_eq!(ids, ["known"]);
    assert_eq!(recovered.missing, ["vanished"]);
    assert_eq!(recovered.orphans_destroyed, ["orphan"]);
    assert!(recovered.orphans_failed.is_empty());
    assert!(at(host.path(), "mesos/known/leaf").is_dir());
    assert!(!at(host.path(), "mesos/orphan").exists());
}

#[tokio::test]
async fn recover_and_destroy_all_v1() {
    let host = FakeHost::hybrid("hugetlb");
    let isolator = host.isolator(host.config(), "cgroups/cpu,cgroups/mem");
    let limits = ContainerLimits::new(1.0, 64 * MB);
    for id in ["a", "b"] {
        isolator.prepare(id, &limits).unwrap();
    }
    // A container half-created before a crash: only its memory cgroup exists.
    std::fs::remove_dir_all(at(host.path(), "cpu/mesos/b")).unwrap();
    let recovered = isolator.recover(&["b".to_owned()]).await.unwrap();
    assert_eq!(recovered.orphans_destroyed, ["a"]);
    let b = &recovered.containers[0];
    assert!(
        b.paths().iter().all(|p| p.is_dir()),
        "recreated: {:?}",
        b.paths()
    );

    isolator.destroy_all().await.unwrap();
    for root in isolator.roots() {
        assert!(!root.exists(), "{}", root.display());
    }
}

#[test]
fn handles_and_futures_can_cross_tasks() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>(_: &T) {}
    fn spawnable<T: Send + 'static>(_: &T) {}
    send_sync::<crate::Isolator>();
    send_sync::<crate::ContainerCgroup>();
    let host = FakeHost::unified("cpu memory", "/");
    let isolator = host.isolator(host.config(), "cgroups/mem");
    let container = isolator
        .prepare("c", &ContainerLimits::new(1.0, 64 * MB))
        .unwrap();
    send(&container.limitation());
    send(&isolator.recover(&[]));
    spawnable(&container.limitation_watch().wait());
    send(&container.destroy());
}

#[tokio::test]
async fn a_spawned_watch_reports_the_oom_and_a_destroyed_one_stays_quiet() {
    use std::time::Duration;
    let host = FakeHost::unified("cpu memory", "/");
    let isolator = host.isolator(host.config(), "cgroups/mem");
    let limits = ContainerLimits::new(1.0, 64 * MB);

    let oomed = isolator.prepare("oomed", &limits).unwrap();
    let events = at(host.path(), "mesos/oomed/memory.events");
    std::fs::write(&events, "oom 0\noom_kill 0\n").unwrap();
    let task = tokio::spawn(oomed.limitation_watch().try_wait());
    tokio::time::sleep(Duration::from_millis(20)).await;
    std::fs::write(&events, "oom 1\noom_kill 1\n").unwrap();
    let limitation = tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("resolved")
        .expect("task")
        .expect("watch armed");
    assert_eq!(limitation.reason, crate::LimitationReason::Memory);
    // This fake has no memory.current/memory.stat: the OOM is reported all the same.
    assert_eq!(limitation.message, "Memory limit exceeded: Requested: 64MB");

    let destroyed = isolator.prepare("destroyed", &limits).unwrap();
    let watch = destroyed.limitation_watch();
    destroyed.destroy().await.unwrap();
    let quiet = tokio::time::timeout(Duration::from_millis(50), watch.try_wait()).await;
    assert!(
        quiet.is_err(),
        "a destroyed container reports no limitation"
    );

    // Without cgroups/mem there is nothing to report.
    let cpu_only = host.isolator(
        CgroupsConfig {
            root: "cpu-only".to_owned(),
            ..host.config()
        },
        "cgroups/cpu",
    );
    let container = cpu_only.prepare("c", &limits).unwrap();
    let quiet = tokio::time::timeout(Duration::from_millis(20), container.limitation()).await;
    assert!(quiet.is_err());
}
