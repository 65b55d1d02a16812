//! Shared set-up for the real-kernel tests: an isolator on its own cgroup
//! sub-tree (`mesos-test-<uuid>`), a containerizer on temporary work and
//! runtime directories, and clean-up that runs even when the test fails.

#![allow(dead_code)]

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};

use futures::FutureExt;
use mesos_containerizer::image::builder::{busybox_layer, Entry, ImageBuilder};
use mesos_containerizer::image::ImageProvider;
use mesos_containerizer::{
    CommandSpec, ContainerLimits, Containerizer, ContainerizerConfig, LaunchRequest, Termination,
};
use mesos_isolator::{CgroupsConfig, Isolation, Isolator};

/// The `--isolation` of the tests.
pub const ISOLATION: &str =
    "cgroups/cpu,cgroups/mem,filesystem/linux,namespaces/pid,namespaces/ipc";

/// Where Debian's busybox-static installs its binary.
pub const BUSYBOX: &str = "/bin/busybox";

pub struct Harness {
    pub dir: tempfile::TempDir,
    pub cgroups_root: String,
    pub containerizer: Containerizer,
}

/// True when the real-kernel tests can run (root). They are skipped, loudly,
/// otherwise.
pub fn can_run() -> bool {
    if nix::unistd::Uid::effective().is_root() {
        return true;
    }
    eprintln!("skipping: needs root (real cgroups, namespaces, mounts)");
    false
}

pub fn launcher_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_mesos-containerizer"))
        .parent()
        .expect("the helper binary lives in a directory")
        .to_owned()
}

pub fn isolator(cgroups_root: &str) -> Isolator {
    let config = CgroupsConfig {
        root: cgroups_root.to_owned(),
        ..CgroupsConfig::default()
    };
    let isolation: Isolation = ISOLATION.parse().expect("valid --isolation");
    Isolator::new(config, isolation).expect("isolator on this host")
}

impl Harness {
    pub fn new() -> Harness {
        Self::with(|_| {})
    }

    /// A harness whose configuration `adjust` changes.
    pub fn with(adjust: impl FnOnce(&mut ContainerizerConfig)) -> Harness {
        let dir = tempfile::tempdir().expect("tempdir");
        let cgroups_root = format!("mesos-test-{}", uuid::Uuid::new_v4().simple());
        let mut config = Self::config(dir.path(), &cgroups_root);
        adjust(&mut config);
        let containerizer = Containerizer::new(config).expect("containerizer");
        Harness {
            dir,
            cgroups_root,
            containerizer,
        }
    }

    fn config(dir: &Path, cgroups_root: &str) -> ContainerizerConfig {
        let mut config = ContainerizerConfig::new(
            dir.join("work"),
            dir.join("run"),
            launcher_dir(),
            isolator(cgroups_root),
        );
        config.image_providers = vec![ImageProvider::Oci];
        config
    }

    /// A containerizer on the same directories and cgroups root (an agent
    /// restart).
    pub fn containerizer_on(dir: &Path, cgroups_root: &str) -> Containerizer {
        Containerizer::new(Self::config(dir, cgroups_root)).expect("containerizer")
    }

    pub fn work_dir(&self) -> PathBuf {
        self.dir.path().join("work")
    }

    pub fn runtime_dir(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    pub fn store_dir(&self) -> PathBuf {
        self.work_dir().join("store/oci")
    }

    /// Runs `body`, then destroys whatever is left (containers, cgroups),
    /// even if `body` panicked.
    pub async fn run(self, body: impl AsyncFnOnce(&Harness)) {
        let outcome = AssertUnwindSafe(body(&self)).catch_unwind().await;
        self.cleanup().await;
        if let Err(panic) = outcome {
            std::panic::resume_unwind(panic);
        }
    }

    pub async fn cleanup(&self) {
        for id in self.containerizer.containers() {
            if let Err(error) = self.containerizer.destroy(&id).await {
                eprintln!("cleanup: destroying {id}: {error}");
            }
        }
        if let Err(error) = self.containerizer.isolator().destroy_all().await {
            eprintln!(
                "cleanup: removing cgroups root {}: {error}",
                self.cgroups_root
            );
        }
    }

    /// A shell-command request for `container_id`.
    pub fn shell(&self, container_id: &str, script: &str) -> LaunchRequest {
        LaunchRequest {
            container_id: container_id.to_owned(),
            agent_id: "agent-S0".into(),
            framework_id: "framework-0000".into(),
            executor_id: format!("executor-{container_id}"),
            command: CommandSpec {
                shell: true,
                value: script.to_owned(),
                arguments: vec![],
                env: vec![("FOO".into(), "bar".into())],
                user: None,
            },
            limits: ContainerLimits::new(0.5, 64 << 20),
            hostname: None,
            image: None,
            rlimits: vec![],
            checkpoint: false,
        }
    }

    /// Launches, waits for the executor to exit, returns the termination and
    /// the sandbox's stdout and stderr. Leaves the container for destroy.
    pub async fn run_to_end(&self, request: LaunchRequest) -> (Termination, String, String) {
        let id = request.container_id.clone();
        let launched = self.containerizer.launch(request).await.expect("launch");
        let termination = self.containerizer.wait(&id).await.expect("wait");
        let stdout = std::fs::read_to_string(launched.sandbox.join("stdout")).expect("stdout");
        let stderr = std::fs::read_to_string(launched.sandbox.join("stderr")).expect("stderr");
        (termination, stdout, stderr)
    }

    /// The container's cgroup directories (computed from the isolator's
    /// roots, so they can be checked after the destroy too).
    pub fn cgroup_dirs(&self, container_id: &str) -> Vec<PathBuf> {
        self.containerizer
            .isolator()
            .roots()
            .into_iter()
            .map(|root| root.join(container_id))
            .collect()
    }

    /// Writes the busybox test image `busybox:test` into the OCI store: a
    /// busybox layer, then a layer that whites out and replaces files.
    pub fn write_test_image(&self) {
        assert!(
            Path::new(BUSYBOX).is_file(),
            "{BUSYBOX} is missing: `apt-get install -y busybox-static`"
        );
        let mut base = busybox_layer(Path::new(BUSYBOX));
        base.extend([
            Entry::File("etc/marker".into(), b"from-the-image\n".to_vec(), 0o644),
            Entry::File("etc/removed".into(), b"lower\n".to_vec(), 0o644),
            Entry::Dir("opaque".into(), 0o755),
            Entry::File("opaque/old".into(), b"old\n".to_vec(), 0o644),
        ]);
        let top = vec![
            Entry::Whiteout("etc/removed".into()),
            Entry::Opaque("opaque".into()),
            Entry::File("opaque/new".into(), b"new\n".to_vec(), 0o644),
        ];
        ImageBuilder::new()
            .layer(base)
            .layer(top)
            .env(&["PATH=/bin", "FROM_IMAGE=yes"])
            .cmd(&["/bin/sh"])
            .write(&self.store_dir(), "busybox:test")
            .expect("write the test image");
    }
}

/// Lines of `text` starting with `prefix `, without the prefix.
pub fn tagged<'a>(text: &'a str, prefix: &str) -> Vec<&'a str> {
    let prefix = format!("{prefix} ");
    text.lines()
        .filter_map(|line| line.strip_prefix(prefix.as_str()))
        .collect()
}

/// The one line tagged `prefix`.
pub fn one<'a>(text: &'a str, prefix: &str) -> &'a str {
    match tagged(text, prefix).as_slice() {
        [line] => line,
        other => panic!("expected one '{prefix}' line, got {other:?} in:\n{text}"),
    }
}

/// The lines between `begin` and `end` markers.
pub fn block<'a>(text: &'a str, begin: &str, end: &str) -> Vec<&'a str> {
    text.lines()
        .skip_while(|line| *line != begin)
        .skip(1)
        .take_while(|line| *line != end)
        .collect()
}

/// Host mounts whose mount point mentions `needle`.
pub fn mounts_mentioning(needle: &str) -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .expect("mountinfo")
        .lines()
        .filter(|line| line.contains(needle))
        .map(str::to_owned)
        .collect()
}

/// Pids of processes whose /proc/<pid>/cgroup mentions `needle`.
pub fn processes_in_cgroups_mentioning(needle: &str) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
                .is_ok_and(|text| text.contains(needle))
        })
        .collect()
}
