//! Supervision, destroy, checkpointing, recovery, OOM limitations, and the
//! absence of leftovers after many launches.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::{can_run, Harness};
use mesos_containerizer::{ContainerLimits, ContainerizerError};
use mesos_isolator::LimitationReason;

fn alive(pid: i32) -> bool {
    // A zombie is not alive: it has exited.
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit(')')
            .next()
            .is_some_and(|rest| !rest.trim_start().starts_with('Z'))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destroy_kills_a_pid1_that_ignores_sigterm_and_all_its_children() {
    if !can_run() {
        return;
    }
    Harness::new()
        .run(async |h| {
            let id = "stubborn";
            let launched = h
                .containerizer
                .launch(h.shell(id, "trap '' TERM; sleep 1000 & sleep 1000 & wait"))
                .await
                .expect("launch");
            // Let the shell fork its children.
            tokio::time::sleep(Duration::from_millis(200)).await;
            let members = common::processes_in_cgroups_mentioning(id);
            assert!(members.len() >= 3, "shell and two sleeps: {members:?}");
            h.containerizer.destroy(id).await.expect("destroy");
            assert!(!alive(launched.pid), "the executor is gone");
            for pid in members {
                assert!(!alive(pid), "pid {pid} survived the destroy");
            }
            for dir in h.cgroup_dirs(id) {
                assert!(!dir.exists(), "cgroup {} left", dir.display());
            }
            assert!(!h.runtime_dir().join("containers").join(id).exists());
            assert!(
                launched.sandbox.join("stdout").exists(),
                "the sandbox is kept"
            );
            assert!(matches!(
                h.containerizer.wait(id).await,
                Err(ContainerizerError::UnknownContainer(_))
            ));
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_begun_before_destroy_reports_the_kill() {
    if !can_run() {
        return;
    }
    Harness::new()
        .run(async |h| {
            h.containerizer
                .launch(h.shell("killed", "sleep 1000"))
                .await
                .expect("launch");
            let waiter = {
                let containerizer = h.containerizer.clone();
                tokio::spawn(async move { containerizer.wait("killed").await })
            };
            h.containerizer.destroy("killed").await.expect("destroy");
            let termination = waiter.await.expect("join").expect("termination");
            assert_eq!(termination.signal, Some(libc::SIGKILL), "{termination:?}");
            assert_eq!(termination.status, Some(libc::SIGKILL));
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_code_is_recorded() {
    if !can_run() {
        return;
    }
    Harness::new()
        .run(async |h| {
            let (termination, _, _) = h.run_to_end(h.shell("exit-3", "exit 3")).await;
            assert_eq!(termination.exit_code, Some(3));
            assert_eq!(termination.status, Some(3 << 8));
            assert!(termination.limitation.is_none());
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_limit_kill_is_reported_as_a_limitation() {
    if !can_run() {
        return;
    }
    Harness::new()
        .run(async |h| {
            let mut request = h.shell(
                "oom",
                "dd if=/dev/zero of=/dev/null bs=256M count=1; sleep 1000",
            );
            request.limits = ContainerLimits::new(0.5, 32 << 20);
            let launched = h.containerizer.launch(request).await.expect("launch");
            let termination =
                tokio::time::timeout(Duration::from_secs(60), h.containerizer.wait("oom"))
                    .await
                    .expect("the OOM ends the container")
                    .expect("termination");
            let limitation = termination.limitation.expect("a memory limitation");
            assert_eq!(limitation.reason, LimitationReason::Memory);
            assert!(
                termination.message.contains("Memory limit exceeded"),
                "{}",
                termination.message
            );
            assert!(!alive(launched.pid), "the whole container was killed");
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pid_and_config_are_checkpointed() {
    if !can_run() {
        return;
    }
    Harness::new()
        .run(async |h| {
            let mut request = h.shell("checkpointed", "sleep 1000");
            request.checkpoint = true;
            let ids = request.ids();
            let launched = h.containerizer.launch(request).await.expect("launch");
            let runtime = h.runtime_dir().join("containers/checkpointed");
            assert_eq!(
                std::fs::read_to_string(runtime.join("pid")).expect("pid"),
                launched.pid.to_string()
            );
            let forked = ids.forked_pid_file(&h.work_dir());
            assert_eq!(
                std::fs::read_to_string(forked).expect("forked.pid"),
                launched.pid.to_string()
            );
            let config = runtime.join("config.json");
            let mode = std::fs::metadata(&config)
                .expect("config.json")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
            let spec = mesos_containerizer::spec::load(&config).expect("a valid OCI spec");
            assert_eq!(spec.hostname().as_deref(), Some("checkpointed"));
            let latest = ids.runs_dir(&h.work_dir()).join("latest");
            assert_eq!(
                std::fs::read_link(latest).expect("runs/latest"),
                std::path::Path::new("checkpointed")
            );
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_adopts_known_containers_and_destroys_unknown_ones() {
    if !can_run() {
        return;
    }
    Harness::new()
        .run(async |h| {
            let kept = h
                .containerizer
                .launch(h.shell("kept", "sleep 1000"))
                .await
                .expect("launch kept");
            let orphan = h
                .containerizer
                .launch(h.shell("orphan", "sleep 1000"))
                .await
                .expect("launch orphan");

            // An agent restart: a new containerizer on the same directories.
            let restarted = Harness::containerizer_on(h.dir.path(), &h.cgroups_root);
            let recovered = restarted
                .recover(&["kept".to_string()])
                .await
                .expect("recover");
            assert_eq!(recovered.len(), 1, "{recovered:?}");
            assert_eq!(recovered[0].container_id, "kept");
            assert_eq!(recovered[0].pid, Some(kept.pid));
            assert_eq!(recovered[0].sandbox.as_ref(), Some(&kept.sandbox));
            assert!(recovered[0].running);

            let orphan_gone =
                tokio::time::timeout(Duration::from_secs(10), h.containerizer.wait("orphan"))
                    .await
                    .expect("the orphan is killed")
                    .expect("termination");
            assert_eq!(orphan_gone.signal, Some(libc::SIGKILL));
            assert!(!h.runtime_dir().join("containers/orphan").exists());
            assert!(!alive(orphan.pid));

            let waiter = {
                let restarted = restarted.clone();
                tokio::spawn(async move { restarted.wait("kept").await })
            };
            restarted
                .destroy("kept")
                .await
                .expect("destroy the adopted container");
            let termination = waiter.await.expect("join").expect("termination");
            // In a real restart the executor is no longer our child and its
            // status is unknown; here both containerizers share one process,
            // so whichever supervisor reaps it first sees the SIGKILL.
            assert!(
                termination.status.is_none() || termination.signal == Some(libc::SIGKILL),
                "{termination:?}"
            );
            assert!(!alive(kept.pid));
            // The first containerizer's supervisors see the exits too; forget
            // them so clean-up does not try to destroy twice.
            let _ = h.containerizer.wait("kept").await;
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_launches_and_destroys_leave_nothing_behind() {
    if !can_run() {
        return;
    }
    Harness::new()
        .run(async |h| {
            h.write_test_image();
            for i in 0..200 {
                let id = format!("churn-{i}");
                let mut request = h.shell(&id, "true");
                if i % 10 == 0 {
                    request.image = Some("busybox:test".into());
                }
                h.containerizer.launch(request).await.expect("launch");
                let termination = h.containerizer.wait(&id).await.expect("wait");
                assert_eq!(termination.exit_code, Some(0), "{id}: {termination:?}");
                h.containerizer.destroy(&id).await.expect("destroy");
            }
            for root in h.containerizer.isolator().roots() {
                let left: Vec<_> = std::fs::read_dir(&root)
                    .expect("cgroups root")
                    .filter_map(Result::ok)
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|e| e.path())
                    .collect();
                assert!(
                    left.is_empty(),
                    "cgroups left under {}: {left:?}",
                    root.display()
                );
            }
            let runtime: Vec<_> = std::fs::read_dir(h.runtime_dir().join("containers"))
                .expect("runtime")
                .collect();
            assert!(runtime.is_empty(), "runtime dirs left: {runtime:?}");
            let overlays = h.work_dir().join("provisioner/containers");
            let overlays: Vec<_> = std::fs::read_dir(overlays)
                .map(|d| d.collect())
                .unwrap_or_default();
            assert!(overlays.is_empty(), "overlay dirs left: {overlays:?}");
            let mounts = common::mounts_mentioning(&h.dir.path().display().to_string());
            assert!(mounts.is_empty(), "mounts left: {mounts:?}");
            let processes = common::processes_in_cgroups_mentioning(&h.cgroups_root);
            assert!(processes.is_empty(), "processes left: {processes:?}");
            assert!(h.containerizer.containers().is_empty());
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destroy_during_an_abandoned_launch_waits_for_it_and_cleans_up() {
    if !can_run() {
        return;
    }
    Harness::new()
        .run(async |h| {
            // Polled once (which reserves the id and starts the launch task),
            // then dropped by its caller.
            let abandoned = tokio::time::timeout(
                Duration::ZERO,
                h.containerizer.launch(h.shell("abandoned", "sleep 1000")),
            );
            assert!(
                abandoned.await.is_err(),
                "the launch cannot be done in zero time"
            );
            h.containerizer
                .destroy("abandoned")
                .await
                .expect("destroy waits for the launch");
            assert!(h.containerizer.containers().is_empty());
            for dir in h.cgroup_dirs("abandoned") {
                assert!(!dir.exists(), "cgroup {} left", dir.display());
            }
            assert!(common::processes_in_cgroups_mentioning("abandoned").is_empty());
            assert!(!h.runtime_dir().join("containers/abandoned").exists());
        })
        .await;
}
