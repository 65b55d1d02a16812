//! The Mesos `work_dir` layout (src/slave/paths.hpp), so sysadmins and tools
//! find sandboxes and checkpoints where they would under Apache Mesos:
//!
//! ```text
//! <work_dir>/slaves/<agent>/frameworks/<fw>/executors/<executor>/runs/<container>   sandbox
//! <work_dir>/slaves/<agent>/frameworks/<fw>/executors/<executor>/runs/latest        -> <container>
//! <work_dir>/meta/boot_id
//! <work_dir>/meta/slaves/latest
//! <work_dir>/meta/slaves/<agent>/slave.info
//! <work_dir>/meta/slaves/<agent>/frameworks/<fw>/framework.info, framework.pid
//! <work_dir>/meta/slaves/<agent>/frameworks/<fw>/executors/<executor>/executor.info
//! <work_dir>/meta/slaves/<agent>/frameworks/<fw>/executors/<executor>/runs/latest            -> <container>
//! <work_dir>/meta/slaves/<agent>/frameworks/<fw>/executors/<executor>/runs/<container>/executor.sentinel
//! <work_dir>/meta/slaves/<agent>/frameworks/<fw>/executors/<executor>/runs/<container>/pids/forked.pid
//! <work_dir>/meta/slaves/<agent>/frameworks/<fw>/executors/<executor>/runs/<container>/tasks/<task>/task.info
//! <work_dir>/meta/slaves/<agent>/frameworks/<fw>/executors/<executor>/runs/<container>/tasks/<task>/task.updates
//! ```

use std::path::{Path, PathBuf};

/// Name of the symlink to the newest run of an executor.
pub const LATEST: &str = "latest";

/// Builds every path of one agent's work directory.
#[derive(Debug, Clone)]
pub struct WorkDir {
    root: PathBuf,
}

/// The identifiers that locate one executor run.
#[derive(Debug, Clone, Copy)]
pub struct RunIds<'a> {
    /// AgentID value.
    pub agent: &'a str,
    /// FrameworkID value.
    pub framework: &'a str,
    /// ExecutorID value.
    pub executor: &'a str,
    /// ContainerID value.
    pub container: &'a str,
}

impl WorkDir {
    /// Wraps `--work_dir`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// `--work_dir` itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `<work_dir>/slaves/<agent>`.
    pub fn agent_dir(&self, agent: &str) -> PathBuf {
        self.root.join("slaves").join(agent)
    }

    /// `.../frameworks/<fw>/executors/<executor>`: all runs of an executor.
    pub fn executor_dir(&self, agent: &str, framework: &str, executor: &str) -> PathBuf {
        self.agent_dir(agent)
            .join("frameworks")
            .join(framework)
            .join("executors")
            .join(executor)
    }

    /// The sandbox of one run (`MESOS_DIRECTORY`).
    pub fn sandbox(&self, ids: RunIds<'_>) -> PathBuf {
        self.executor_dir(ids.agent, ids.framework, ids.executor)
            .join("runs")
            .join(ids.container)
    }

    /// The `runs/latest` symlink of an executor.
    pub fn latest_run_link(&self, agent: &str, framework: &str, executor: &str) -> PathBuf {
        self.executor_dir(agent, framework, executor)
            .join("runs")
            .join(LATEST)
    }

    /// `<work_dir>/meta`.
    pub fn meta_dir(&self) -> PathBuf {
        self.root.join("meta")
    }

    /// `<work_dir>/meta/boot_id`.
    pub fn boot_id_file(&self) -> PathBuf {
        self.meta_dir().join("boot_id")
    }

    /// `<work_dir>/meta/slaves/latest`: the id of the last registered agent.
    pub fn latest_agent_link(&self) -> PathBuf {
        self.meta_dir().join("slaves").join(LATEST)
    }

    /// `<work_dir>/meta/slaves/<agent>`.
    pub fn meta_agent_dir(&self, agent: &str) -> PathBuf {
        self.meta_dir().join("slaves").join(agent)
    }

    /// `.../slave.info`: the checkpointed AgentInfo.
    pub fn agent_info_file(&self, agent: &str) -> PathBuf {
        self.meta_agent_dir(agent).join("slave.info")
    }

    /// `.../frameworks/<fw>` under meta.
    pub fn meta_framework_dir(&self, agent: &str, framework: &str) -> PathBuf {
        self.meta_agent_dir(agent)
            .join("frameworks")
            .join(framework)
    }

    /// `.../framework.info`: the checkpointed FrameworkInfo.
    pub fn framework_info_file(&self, agent: &str, framework: &str) -> PathBuf {
        self.meta_framework_dir(agent, framework)
            .join("framework.info")
    }

    /// `.../framework.pid`: the scheduler's libprocess pid (empty for HTTP
    /// schedulers).
    pub fn framework_pid_file(&self, agent: &str, framework: &str) -> PathBuf {
        self.meta_framework_dir(agent, framework)
            .join("framework.pid")
    }

    /// `.../executors/<executor>` under meta.
    pub fn meta_executor_dir(&self, agent: &str, framework: &str, executor: &str) -> PathBuf {
        self.meta_framework_dir(agent, framework)
            .join("executors")
            .join(executor)
    }

    /// `.../executor.info`: the checkpointed ExecutorInfo.
    pub fn executor_info_file(&self, agent: &str, framework: &str, executor: &str) -> PathBuf {
        self.meta_executor_dir(agent, framework, executor)
            .join("executor.info")
    }

    /// `.../runs/<container>` under meta.
    pub fn meta_run_dir(&self, ids: RunIds<'_>) -> PathBuf {
        self.meta_executor_dir(ids.agent, ids.framework, ids.executor)
            .join("runs")
            .join(ids.container)
    }

    /// `.../runs/<container>/pids/forked.pid`.
    pub fn forked_pid_file(&self, ids: RunIds<'_>) -> PathBuf {
        self.meta_run_dir(ids).join("pids").join("forked.pid")
    }

    /// `.../tasks/<task>` under a run.
    pub fn meta_task_dir(&self, ids: RunIds<'_>, task: &str) -> PathBuf {
        self.meta_run_dir(ids).join("tasks").join(task)
    }

    /// `.../tasks/<task>/task.info`: the checkpointed Task.
    pub fn task_info_file(&self, ids: RunIds<'_>, task: &str) -> PathBuf {
        self.meta_task_dir(ids, task).join("task.info")
    }

    /// `.../tasks/<task>/task.updates`: the status update stream's log.
    pub fn task_updates_file(&self, ids: RunIds<'_>, task: &str) -> PathBuf {
        self.meta_task_dir(ids, task).join("task.updates")
    }
}

/// Whether an ID can be used as one path component: Mesos's
/// `common::validation::validateID` rules (non-empty, no `/` or NUL, not `.`
/// or `..`), which keep a framework-chosen ID from escaping the work dir.
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty() && id != "." && id != ".." && !id.contains(['/', '\0'])
}

/// The virtual path under which `/files` exposes an executor's latest run.
pub fn virtual_latest_run(framework: &str, executor: &str) -> String {
    format!("/frameworks/{framework}/executors/{executor}/runs/{LATEST}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_that_would_escape_are_invalid() {
        for bad in ["", ".", "..", "../x", "a/b", "a\0b"] {
            assert!(!is_valid_id(bad), "{bad:?}");
        }
        for good in ["task-1", "..x", "x..", "a.b", "c5a6-e1f2"] {
            assert!(is_valid_id(good), "{good:?}");
        }
    }

    #[test]
    fn layout_matches_mesos() {
        let dir = WorkDir::new("/w");
        let ids = RunIds {
            agent: "A-S0",
            framework: "F",
            executor: "E",
            container: "C",
        };
        assert_eq!(
            dir.sandbox(ids),
            Path::new("/w/slaves/A-S0/frameworks/F/executors/E/runs/C")
        );
        assert_eq!(
            dir.latest_run_link("A-S0", "F", "E"),
            Path::new("/w/slaves/A-S0/frameworks/F/executors/E/runs/latest")
        );
        assert_eq!(
            dir.task_updates_file(ids, "T"),
            Path::new("/w/meta/slaves/A-S0/frameworks/F/executors/E/runs/C/tasks/T/task.updates")
        );
        assert_eq!(
            dir.framework_info_file("A-S0", "F"),
            Path::new("/w/meta/slaves/A-S0/frameworks/F/framework.info")
        );
        assert_eq!(
            virtual_latest_run("F", "E"),
            "/frameworks/F/executors/E/runs/latest"
        );
    }
}
