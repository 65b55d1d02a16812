//! Writing the agent's checkpoint under `<work_dir>/meta` (Mesos
//! `state::checkpoint`, src/slave/state.hpp), in Mesos's layout and formats
//! so that the files mean the same to operators and tools:
//!
//! * protobuf files (`slave.info`, `framework.info`, `executor.info`,
//!   `task.info`) hold one message framed as stout's `protobuf::write` does:
//!   its length as a native-endian `u32`, then the encoded message;
//! * text files (`boot_id`, `framework.pid`, `forked.pid`) hold the value;
//! * `latest` links are symlinks to the id they name.
//!
//! Every write is atomic and durable: write a temporary file in the same
//! directory, fsync it, rename it over the target, fsync the directory. A
//! crash leaves either the old file or the new one, never a torn one, which
//! is what makes "refuse to start on a corrupt file" safe: corruption means
//! the disk lied, not that the agent died mid-write.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use prost::Message;

use crate::paths::{RunIds, WorkDir, LATEST};

/// Where the kernel publishes the id of the current boot.
pub const BOOT_ID_PATH: &str = "/proc/sys/kernel/random/boot_id";
/// Marks an executor run whose executor is gone (Mesos `executor.sentinel`):
/// recovery skips such runs.
pub const SENTINEL_FILE: &str = "executor.sentinel";

/// A checkpoint file that could not be written; names the file.
#[derive(Debug, thiserror::Error)]
#[error("cannot checkpoint '{}': {source}", path.display())]
pub struct CheckpointError {
    /// The file (or link) being written.
    pub path: PathBuf,
    /// The I/O error.
    #[source]
    pub source: std::io::Error,
}

fn error(path: &Path) -> impl FnOnce(std::io::Error) -> CheckpointError + '_ {
    move |source| CheckpointError {
        path: path.to_path_buf(),
        source,
    }
}

/// A temporary name next to `path`, unique to this process and call, so two
/// writers never share a temporary file.
fn staging_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let unique = uuid::Uuid::new_v4().simple();
    path.with_file_name(format!(".{name}.{unique}.tmp"))
}

fn parent_of(path: &Path) -> &Path {
    path.parent().unwrap_or(Path::new("/"))
}

/// fsyncs a directory so a rename or new entry in it survives a crash.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Writes `bytes` to `path` atomically and durably (temp, fsync, rename,
/// fsync dir), creating missing parent directories.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), CheckpointError> {
    let parent = parent_of(path);
    std::fs::create_dir_all(parent).map_err(error(path))?;
    let staging = staging_path(path);
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&staging)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&staging, path)?;
        sync_dir(parent)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&staging);
    }
    written.map_err(error(path))
}

/// stout's `protobuf::write` framing: native-endian `u32` length, message.
pub fn frame<M: Message>(message: &M) -> Vec<u8> {
    let body = message.encode_to_vec();
    // Checkpointed messages are small; a 4 GiB one cannot be built here.
    let length = u32::try_from(body.len()).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(4 + body.len());
    out.extend_from_slice(&length.to_ne_bytes());
    out.extend_from_slice(&body);
    out
}

/// Checkpoints one protobuf message at `path`.
pub fn write_message<M: Message>(path: &Path, message: &M) -> Result<(), CheckpointError> {
    write_atomic(path, &frame(message))
}

/// Points the symlink `link` at `target` atomically (a new link under a
/// temporary name renamed over the old one), creating the parent directory.
pub fn link_atomic(link: &Path, target: &str) -> Result<(), CheckpointError> {
    let parent = parent_of(link);
    std::fs::create_dir_all(parent).map_err(error(link))?;
    let staging = staging_path(link);
    let linked = std::os::unix::fs::symlink(target, &staging)
        .and_then(|()| std::fs::rename(&staging, link))
        .and_then(|()| sync_dir(parent));
    if linked.is_err() {
        let _ = std::fs::remove_file(&staging);
    }
    linked.map_err(error(link))
}

/// The id of the running boot, trimmed.
pub fn current_boot_id() -> std::io::Result<String> {
    Ok(std::fs::read_to_string(BOOT_ID_PATH)?.trim().to_string())
}

/// Writes the agent's checkpoint files in Mesos's layout.
#[derive(Debug, Clone)]
pub struct Checkpointer {
    work_dir: WorkDir,
}

impl Checkpointer {
    /// Checkpoints under `work_dir`'s `meta` directory.
    pub fn new(work_dir: WorkDir) -> Self {
        Self { work_dir }
    }

    /// `meta/boot_id`: the boot the agent last recovered in.
    pub fn boot_id(&self, boot_id: &str) -> Result<(), CheckpointError> {
        write_atomic(&self.work_dir.boot_id_file(), boot_id.as_bytes())
    }

    /// `meta/slaves/<id>/slave.info`, then `meta/slaves/latest -> <id>`.
    pub fn agent(&self, info: &mesos_proto::v1::AgentInfo) -> Result<(), CheckpointError> {
        let id = info.id.as_ref().map(|i| i.value.as_str()).unwrap_or("");
        write_message(&self.work_dir.agent_info_file(id), info)?;
        link_atomic(&self.work_dir.latest_agent_link(), id)
    }

    /// `framework.info` and `framework.pid` ([`crate::state::NO_PID`] for
    /// HTTP schedulers, as Mesos writes `UPID()`).
    pub fn framework(
        &self,
        agent: &str,
        info: &mesos_proto::v1::FrameworkInfo,
        pid: Option<&str>,
    ) -> Result<(), CheckpointError> {
        let framework = info.id.as_ref().map(|i| i.value.as_str()).unwrap_or("");
        write_message(&self.work_dir.framework_info_file(agent, framework), info)?;
        write_atomic(
            &self.work_dir.framework_pid_file(agent, framework),
            pid.unwrap_or(crate::state::NO_PID).as_bytes(),
        )
    }

    /// `executor.info`, the run's meta directory and its `runs/latest` link
    /// (Mesos `Executor::checkpointExecutor`), before the launch.
    pub fn executor(
        &self,
        ids: RunIds<'_>,
        info: &mesos_proto::v1::ExecutorInfo,
    ) -> Result<(), CheckpointError> {
        write_message(
            &self
                .work_dir
                .executor_info_file(ids.agent, ids.framework, ids.executor),
            info,
        )?;
        let run = self.work_dir.meta_run_dir(ids);
        std::fs::create_dir_all(&run).map_err(error(&run))?;
        let latest = self
            .work_dir
            .meta_executor_dir(ids.agent, ids.framework, ids.executor)
            .join("runs")
            .join(LATEST);
        link_atomic(&latest, ids.container)
    }

    /// `runs/<container>/pids/forked.pid`: the executor's pid.
    pub fn forked_pid(&self, ids: RunIds<'_>, pid: u32) -> Result<(), CheckpointError> {
        write_atomic(
            &self.work_dir.forked_pid_file(ids),
            pid.to_string().as_bytes(),
        )
    }

    /// `tasks/<task>/task.info`: the Task as launched (TASK_STAGING).
    pub fn task(
        &self,
        ids: RunIds<'_>,
        task: &mesos_proto::v1::Task,
    ) -> Result<(), CheckpointError> {
        write_message(
            &self.work_dir.task_info_file(ids, &task.task_id.value),
            task,
        )
    }

    /// `runs/<container>/executor.sentinel`: the run is over.
    pub fn sentinel(&self, ids: RunIds<'_>) -> Result<(), CheckpointError> {
        write_atomic(&self.work_dir.meta_run_dir(ids).join(SENTINEL_FILE), b"")
    }
}

#[cfg(test)]
mod tests {
    use mesos_proto::v1::{AgentId, AgentInfo};

    use super::*;

    #[test]
    fn writes_replace_atomically_and_leave_no_temporary_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/file");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["file"], "no staging file left behind");
    }

    #[test]
    fn messages_are_framed_like_stout() {
        let info = AgentInfo {
            hostname: "h".into(),
            ..AgentInfo::default()
        };
        let framed = frame(&info);
        let length = u32::from_ne_bytes(framed[..4].try_into().unwrap()) as usize;
        assert_eq!(length, framed.len() - 4);
        assert_eq!(AgentInfo::decode(&framed[4..]).unwrap(), info);
    }

    #[test]
    fn agent_checkpoint_points_latest_at_the_id() {
        let dir = tempfile::tempdir().unwrap();
        let work = WorkDir::new(dir.path());
        let checkpointer = Checkpointer::new(work.clone());
        let mut info = AgentInfo {
            id: Some(AgentId {
                value: "A-S0".into(),
            }),
            ..AgentInfo::default()
        };
        checkpointer.agent(&info).unwrap();
        info.id = Some(AgentId {
            value: "A-S1".into(),
        });
        checkpointer.agent(&info).unwrap();
        let latest = std::fs::read_link(work.latest_agent_link()).unwrap();
        assert_eq!(latest, Path::new("A-S1"));
        assert!(work.agent_info_file("A-S1").exists());
    }

    #[test]
    fn failures_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("not-a-dir");
        std::fs::write(&blocker, b"").unwrap();
        let error = write_atomic(&blocker.join("x"), b"1").unwrap_err();
        assert!(error.to_string().contains("not-a-dir/x"), "{error}");
    }
}
