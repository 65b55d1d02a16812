//! Where things live on disk: Mesos's work_dir layout (src/slave/paths.hpp)
//! plus the containerizer's runtime and provisioner directories.
//!
//! ```text
//! <work_dir>/slaves/<aid>/frameworks/<fid>/executors/<eid>/runs/<cid>/     sandbox
//! <work_dir>/slaves/<aid>/frameworks/<fid>/executors/<eid>/runs/latest -> <cid>
//! <work_dir>/meta/slaves/<aid>/frameworks/<fid>/executors/<eid>/runs/<cid>/pids/forked.pid
//! <work_dir>/provisioner/layers/<algorithm>/<hex>/                         unpacked layer
//! <work_dir>/provisioner/containers/<cid>/{rootfs,upper,work}/            overlay per container
//! <runtime_dir>/containers/<cid>/{config.json,pid}
//! ```

use std::path::{Path, PathBuf};

/// An ID that cannot be used as a path component.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} '{id}': {reason}")]
pub struct InvalidId {
    /// Which ID (container, agent, framework, executor).
    pub kind: &'static str,
    /// The offending value.
    pub id: String,
    /// Why it is rejected.
    pub reason: &'static str,
}

/// Checks that an ID is a single, safe path component, as Mesos's
/// `common::validation::validateID` does.
pub fn validate_id(kind: &'static str, id: &str) -> Result<(), InvalidId> {
    let reason = if id.is_empty() {
        Some("must not be empty")
    } else if id == "." || id == ".." {
        Some("must not be '.' or '..'")
    } else if id.contains('/') {
        Some("must not contain '/'")
    } else if id.chars().any(|c| c.is_control() || c.is_whitespace()) {
        Some("must not contain whitespace or control characters")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(InvalidId {
            kind,
            id: id.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

/// The IDs that place a container in the work_dir layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerIds {
    /// The agent's ID.
    pub agent_id: String,
    /// The framework's ID.
    pub framework_id: String,
    /// The executor's ID (the task ID for command tasks).
    pub executor_id: String,
    /// The container's ID (a UUID in Mesos).
    pub container_id: String,
}

impl ContainerIds {
    /// Validates every ID.
    pub fn validate(&self) -> Result<(), InvalidId> {
        validate_id("agent id", &self.agent_id)?;
        validate_id("framework id", &self.framework_id)?;
        validate_id("executor id", &self.executor_id)?;
        validate_id("container id", &self.container_id)
    }

    fn executor_suffix(&self) -> PathBuf {
        Path::new("slaves")
            .join(&self.agent_id)
            .join("frameworks")
            .join(&self.framework_id)
            .join("executors")
            .join(&self.executor_id)
    }

    /// `<work_dir>/slaves/<aid>/frameworks/<fid>/executors/<eid>/runs`.
    pub fn runs_dir(&self, work_dir: &Path) -> PathBuf {
        work_dir.join(self.executor_suffix()).join("runs")
    }

    /// The sandbox, `MESOS_DIRECTORY`.
    pub fn sandbox_dir(&self, work_dir: &Path) -> PathBuf {
        self.runs_dir(work_dir).join(&self.container_id)
    }

    /// The meta directory of this run, used for checkpointing frameworks.
    pub fn meta_run_dir(&self, work_dir: &Path) -> PathBuf {
        work_dir
            .join("meta")
            .join(self.executor_suffix())
            .join("runs")
            .join(&self.container_id)
    }

    /// `.../runs/<cid>/pids/forked.pid` under meta.
    pub fn forked_pid_file(&self, work_dir: &Path) -> PathBuf {
        self.meta_run_dir(work_dir).join("pids").join("forked.pid")
    }
}

/// `<runtime_dir>/containers/<cid>`.
pub fn runtime_container_dir(runtime_dir: &Path, container_id: &str) -> PathBuf {
    runtime_dir.join("containers").join(container_id)
}

/// `<runtime_dir>/containers`.
pub fn runtime_containers_dir(runtime_dir: &Path) -> PathBuf {
    runtime_dir.join("containers")
}

/// The OCI runtime spec of a container.
pub const CONFIG_FILE: &str = "config.json";
/// The checkpointed pid of a container's executor.
pub const PID_FILE: &str = "pid";

/// `<work_dir>/provisioner/layers`: the content-addressed layer cache.
pub fn layer_cache_dir(work_dir: &Path) -> PathBuf {
    work_dir.join("provisioner").join("layers")
}

/// `<work_dir>/provisioner/containers/<cid>`: a container's overlay dirs.
pub fn provisioner_container_dir(work_dir: &Path, container_id: &str) -> PathBuf {
    work_dir
        .join("provisioner")
        .join("containers")
        .join(container_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> ContainerIds {
        ContainerIds {
            agent_id: "a1-S0".into(),
            framework_id: "f1-0000".into(),
            executor_id: "task.1".into(),
            container_id: "c0ffee".into(),
        }
    }

    #[test]
    fn sandbox_and_meta_follow_the_mesos_layout() {
        let work = Path::new("/var/lib/mesos");
        assert_eq!(
            ids().sandbox_dir(work),
            Path::new(
                "/var/lib/mesos/slaves/a1-S0/frameworks/f1-0000/executors/task.1/runs/c0ffee"
            )
        );
        assert_eq!(
            ids().forked_pid_file(work),
            Path::new(
                "/var/lib/mesos/meta/slaves/a1-S0/frameworks/f1-0000/executors/task.1/runs/c0ffee/pids/forked.pid"
            )
        );
    }

    #[test]
    fn ids_that_escape_the_layout_are_rejected() {
        for bad in ["", ".", "..", "a/b", "a b", "a\nb"] {
            let mut ids = ids();
            ids.executor_id = bad.into();
            let error = ids.validate().expect_err(bad);
            assert_eq!(error.kind, "executor id");
        }
        assert!(ids().validate().is_ok());
    }
}
