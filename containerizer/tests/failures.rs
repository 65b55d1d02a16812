//! Launches that fail report the step that failed, and leave nothing behind
//! but the sandbox.

mod common;

use std::path::PathBuf;

use common::{can_run, Harness};
use mesos_containerizer::{LaunchError, Step};

/// Launches `request`, expects a failure, and checks the clean-up.
async fn expect_failure(h: &Harness, request: mesos_containerizer::LaunchRequest) -> LaunchError {
    let id = request.container_id.clone();
    let error = h
        .containerizer
        .launch(request)
        .await
        .expect_err("the launch must fail");
    eprintln!("{id}: {error}");
    assert!(
        !h.containerizer.containers().contains(&id),
        "a failed container is not kept"
    );
    assert!(
        !h.runtime_dir().join("containers").join(&id).exists(),
        "runtime dir removed"
    );
    assert!(
        !h.work_dir()
            .join("provisioner/containers")
            .join(&id)
            .exists(),
        "overlay dirs removed"
    );
    for dir in h.cgroup_dirs(&id) {
        assert!(!dir.exists(), "cgroup {} left behind", dir.display());
    }
    assert!(
        common::processes_in_cgroups_mentioning(&id).is_empty(),
        "processes left behind"
    );
    error
}

fn unified_root(h: &Harness) -> PathBuf {
    h.containerizer
        .isolator()
        .roots()
        .into_iter()
        .find(|root| root.starts_with("/sys/fs/cgroup/unified"))
        .expect("the hybrid host has a cgroup2 tracking tree")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_binary_fails_at_exec_with_enoent() {
    if !can_run() {
        return;
    }
    Harness::new()
        .run(async |h| {
            let mut request = h.shell("missing-binary", "");
            request.command.shell = false;
            request.command.value = "/nonexistent/executor".into();
            let error = expect_failure(h, request).await;
            assert_eq!((error.step, error.errno), (Step::Exec, Some(libc::ENOENT)), "{error}");
            assert!(error.message.contains("/nonexistent/executor"), "{error}");
            let sandbox = h.work_dir().join("slaves/agent-S0/frameworks/framework-0000/executors/executor-missing-binary/runs/missing-binary");
            let stderr = std::fs::read_to_string(sandbox.join("stderr")).expect("the sandbox stays");
            assert!(stderr.contains("launch failed at step 'exec'"), "{stderr}");
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_user_fails_at_resolve_user() {
    if !can_run() {
        return;
    }
    Harness::new()
        .run(async |h| {
            let mut request = h.shell("bad-user", "true");
            request.command.user = Some("no-such-user-mesos-rs".into());
            let error = expect_failure(h, request).await;
            assert_eq!(error.step, Step::ResolveUser, "{error}");
            assert!(error.message.contains("no-such-user-mesos-rs"), "{error}");
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_image_fails_at_provisioning_naming_the_image() {
    if !can_run() {
        return;
    }
    Harness::new()
        .run(async |h| {
            let mut request = h.shell("missing-image", "true");
            request.image = Some("no-such-image:7".into());
            let error = expect_failure(h, request).await;
            assert_eq!(error.step, Step::ProvisionImage, "{error}");
            assert!(error.message.contains("no-such-image:7"), "{error}");
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cgroup_that_cannot_be_created_fails_at_isolator_prepare() {
    if !can_run() {
        return;
    }
    Harness::new()
        .run(async |h| {
            std::fs::write(unified_root(h).join("cgroup.max.descendants"), "0")
                .expect("limit descendants");
            let error = expect_failure(h, h.shell("no-cgroup", "true")).await;
            assert_eq!(error.step, Step::IsolatorPrepare, "{error}");
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cgroup_that_cannot_take_processes_fails_at_clone() {
    if !can_run() {
        return;
    }
    Harness::new()
        .run(async |h| {
            // Below a threaded cgroup a new cgroup is "domain invalid": the
            // kernel refuses to clone a process into it.
            std::fs::write(unified_root(h).join("cgroup.type"), "threaded")
                .expect("make the root threaded");
            let error = expect_failure(h, h.shell("invalid-cgroup", "true")).await;
            assert_eq!(error.step, Step::Clone, "{error}");
            assert!(error.errno.is_some(), "{error}");
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reused_container_id_fails_at_validate() {
    if !can_run() {
        return;
    }
    Harness::new()
        .run(async |h| {
            h.containerizer
                .launch(h.shell("twice", "sleep 100"))
                .await
                .expect("first launch");
            let error = h
                .containerizer
                .launch(h.shell("twice", "true"))
                .await
                .expect_err("second launch");
            assert_eq!(error.step, Step::Validate, "{error}");
            assert!(
                h.containerizer.containers().contains(&"twice".to_string()),
                "the first one is untouched"
            );
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_ids_fail_at_validate_before_touching_anything() {
    if !can_run() {
        return;
    }
    Harness::new()
        .run(async |h| {
            let mut request = h.shell("ok-id", "true");
            request.executor_id = "../escape".into();
            let error = expect_failure(h, request).await;
            assert_eq!(error.step, Step::Validate, "{error}");
            assert!(error.message.contains("executor id"), "{error}");
            assert!(!h.work_dir().join("slaves").exists(), "no sandbox created");
        })
        .await;
}

/// A helper that dies without a word, at once or after a while.
fn fake_helper(dir: &std::path::Path, script: &str) {
    use std::os::unix::fs::PermissionsExt;
    let helper = dir.join("mesos-containerizer");
    std::fs::write(&helper, format!("#!/bin/sh\n{script}\n")).expect("write the fake helper");
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helper_dying_silently_is_reported_instead_of_hanging() {
    if !can_run() {
        return;
    }
    let launcher = tempfile::tempdir().expect("launcher dir");
    // Without a pid namespace: as pid 1 of one the shell could not kill
    // itself (pid 1 ignores even SIGKILL from inside its namespace).
    for (script, expected) in [
        ("exit 3", "exited with status 3"),
        ("kill -9 $$", "killed by signal 9"),
    ] {
        fake_helper(launcher.path(), script);
        Harness::with(|config| {
            config.launcher_dir = launcher.path().to_owned();
            config.namespaces = mesos_containerizer::Namespaces::default();
        })
            .run(async |h| {
                let launch = h.containerizer.launch(h.shell("silent", "true"));
                let error = tokio::time::timeout(std::time::Duration::from_secs(30), launch)
                    .await
                    .expect("the launch must not hang")
                    .expect_err("the launch must fail");
                eprintln!("{error}");
                assert_eq!(error.step, Step::ExecHelper, "{error}");
                let stderr = std::fs::read_to_string(h.work_dir().join(
                    "slaves/agent-S0/frameworks/framework-0000/executors/executor-silent/runs/silent/stderr",
                ))
                .unwrap_or_default();
                assert!(error.message.contains(expected), "{error}\n{stderr}");
                assert!(!h.runtime_dir().join("containers/silent").exists());
            })
            .await;
    }
}
