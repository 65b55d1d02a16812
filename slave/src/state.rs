//! Reading the checkpoint back at start-up (Mesos `state::recover`,
//! src/slave/state.{hpp,cpp}): typed [`State`] → [`AgentState`] →
//! [`FrameworkState`] → [`ExecutorState`] → [`RunState`] → [`TaskState`].
//!
//! What each file kind does when it is missing, empty or unreadable follows
//! Mesos:
//!
//! | file | missing or empty | unreadable (truncated, garbage) |
//! |---|---|---|
//! | `meta/boot_id` | not rebooted | warning; not rebooted |
//! | `meta/slaves/latest` | fresh agent | error |
//! | `slave.info` | nothing recovered: the agent registers anew | error* |
//! | `framework.info`, `framework.pid` | framework's executors not recovered | error* |
//! | `executor.info` | executor not recovered | error* |
//! | `forked.pid` | executor recovered without a pid (its container is not re-adopted) | error* (a non-number always) |
//! | `task.info` | task not recovered | error* |
//! | `task.updates` | task recovered with no updates | a torn last record is cut off; other damage is an error* |
//!
//! What is not recovered is unknown to the containerizer too: its container
//! is destroyed as an orphan.
//!
//! Empty files are what a hard reboot leaves when it comes between a file's
//! creation and the sync of its data, so they are tolerated. *With
//! `--strict` (the default) an unreadable file stops recovery with an error
//! naming the file; with `--strict=false` it is counted in
//! `slave/recovery_errors` and recovery goes on with what could be read, as
//! in Mesos.
//!
//! After a reboot (`meta/boot_id` differs from the running boot) pids are
//! meaningless: `forked.pid` files are removed and not read, so no executor
//! is re-adopted.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mesos_proto::internal::{status_update_record, StatusUpdate, StatusUpdateRecord};
use mesos_proto::v1::{AgentInfo, ExecutorInfo, FrameworkInfo, Task};
use prost::Message;

use crate::checkpoint::SENTINEL_FILE;
use crate::paths::{RunIds, WorkDir, LATEST};
use crate::status_update_manager::{StatusUpdateError, UpdateLog};

/// What `framework.pid` holds for a scheduler without a libprocess pid
/// (HTTP schedulers): Mesos checkpoints `stringify(UPID())`.
pub const NO_PID: &str = "@0.0.0.0:0";

/// The remedy printed with every recovery error.
pub const REMEDY: &str = "to start anyway, run the agent once with --recover=cleanup \
     (kills the executors of the earlier run and forgets its checkpoint), or set \
     --strict=false to recover what can be read";

/// A checkpoint that cannot be recovered; names the file.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// A file or directory could not be read.
    #[error("cannot read checkpoint '{}': {source}", path.display())]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A file's contents are damaged.
    #[error("corrupt checkpoint file '{}': {reason}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A `task.updates` log is damaged before its end.
    #[error(transparent)]
    Updates(#[from] StatusUpdateError),
}

impl StateError {
    /// The file the error is about.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Self::Read { path, .. } | Self::Corrupt { path, .. } => Some(path),
            Self::Updates(
                StatusUpdateError::Io { path, .. } | StatusUpdateError::Corrupt { path, .. },
            ) => Some(path),
            Self::Updates(_) => None,
        }
    }
}

/// Everything recovered from `<work_dir>/meta`.
#[derive(Debug, Default)]
pub struct State {
    /// The host rebooted since the checkpoint was written.
    pub rebooted: bool,
    /// The latest agent, if one registered.
    pub agent: Option<AgentState>,
    /// Unreadable files skipped (only with `--strict=false`).
    pub errors: u32,
}

/// One agent (`meta/slaves/<id>`).
#[derive(Debug, Default)]
pub struct AgentState {
    /// The agent id (from `meta/slaves/latest`).
    pub id: String,
    /// `slave.info`.
    pub info: Option<AgentInfo>,
    /// Frameworks by id.
    pub frameworks: BTreeMap<String, FrameworkState>,
}

/// One framework.
#[derive(Debug, Default)]
pub struct FrameworkState {
    /// The framework id.
    pub id: String,
    /// `framework.info`.
    pub info: Option<FrameworkInfo>,
    /// `framework.pid`: the scheduler's libprocess pid, `None` for HTTP
    /// schedulers.
    pub pid: Option<String>,
    /// Whether `framework.pid` was read (executors are recovered only then).
    pub pid_recovered: bool,
    /// Executors by id.
    pub executors: BTreeMap<String, ExecutorState>,
}

/// One executor and its runs.
#[derive(Debug, Default)]
pub struct ExecutorState {
    /// The executor id.
    pub id: String,
    /// `executor.info`.
    pub info: Option<ExecutorInfo>,
    /// The container of the latest run (`runs/latest`).
    pub latest: Option<String>,
    /// Runs by container id.
    pub runs: BTreeMap<String, RunState>,
    /// The agent generated it for a command task (Mesos's heuristic: a
    /// `mesos-executor` command named "Command Executor ...").
    pub generated_for_command_task: bool,
}

/// One run (container) of an executor.
#[derive(Debug, Default)]
pub struct RunState {
    /// The container id.
    pub id: String,
    /// `executor.sentinel` exists: the run is over.
    pub completed: bool,
    /// `pids/forked.pid`.
    pub forked_pid: Option<u32>,
    /// Tasks by id.
    pub tasks: BTreeMap<String, TaskState>,
}

/// One task of a run.
#[derive(Debug, Default)]
pub struct TaskState {
    /// The task id.
    pub id: String,
    /// `task.info`: the Task as launched.
    pub info: Option<Task>,
    /// `task.updates`, when it exists.
    pub updates_file: Option<PathBuf>,
    /// Its records, in order.
    pub records: Vec<StatusUpdateRecord>,
}

impl TaskState {
    /// The updates of the log, in order.
    pub fn updates(&self) -> impl Iterator<Item = &StatusUpdate> {
        self.records
            .iter()
            .filter(|r| r.r#type == status_update_record::Type::Update as i32)
            .filter_map(|r| r.update.as_ref())
    }

    /// Whether the log acknowledges `uuid`.
    pub fn acknowledged(&self, uuid: &[u8]) -> bool {
        self.records.iter().any(|r| {
            r.r#type == status_update_record::Type::Ack as i32 && r.uuid.as_deref() == Some(uuid)
        })
    }
}

/// Reading state: strictness and the count of tolerated errors.
struct Reader<'a> {
    work_dir: &'a WorkDir,
    strict: bool,
    rebooted: bool,
    errors: u32,
}

impl Reader<'_> {
    /// An unreadable file: fatal when strict, else counted and skipped.
    fn tolerate(&mut self, error: StateError) -> Result<(), StateError> {
        if self.strict {
            return Err(error);
        }
        tracing::warn!(%error, "skipping unreadable checkpoint file (--strict=false)");
        self.errors += 1;
        Ok(())
    }
}

/// Reads the checkpoint of `work_dir`. `current_boot_id` is the running
/// boot's id (`None` if unknown).
pub fn recover(
    work_dir: &WorkDir,
    strict: bool,
    current_boot_id: Option<&str>,
) -> Result<State, StateError> {
    let meta = work_dir.meta_dir();
    if !meta.exists() {
        return Ok(State::default());
    }
    let rebooted = rebooted(&work_dir.boot_id_file(), current_boot_id);
    let mut reader = Reader {
        work_dir,
        strict,
        rebooted,
        errors: 0,
    };
    let latest = work_dir.latest_agent_link();
    if std::fs::symlink_metadata(&latest).is_err() {
        // The agent never registered (or was asked to forget its state).
        tracing::info!(path = %latest.display(), "no checkpointed agent to recover");
        return Ok(State {
            rebooted,
            ..State::default()
        });
    }
    let id = latest_id(&latest)?;
    let agent = recover_agent(&mut reader, &id)?;
    Ok(State {
        rebooted,
        agent: Some(agent),
        errors: reader.errors,
    })
}

/// Whether the checkpointed boot id differs from the running one. An
/// unreadable file is only a warning in Mesos.
fn rebooted(path: &Path, current: Option<&str>) -> bool {
    let (Some(current), Ok(text)) = (current, std::fs::read_to_string(path)) else {
        return false;
    };
    let checkpointed = text.trim();
    let rebooted = !checkpointed.is_empty() && checkpointed != current;
    if rebooted {
        tracing::info!(checkpointed, current, "agent host rebooted");
    }
    rebooted
}

/// The id a `latest` link names; the link must lead to an existing directory.
fn latest_id(link: &Path) -> Result<String, StateError> {
    let resolved = std::fs::canonicalize(link).map_err(|source| StateError::Read {
        path: link.to_path_buf(),
        source,
    })?;
    resolved
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| StateError::Corrupt {
            path: link.to_path_buf(),
            reason: "does not name a directory".into(),
        })
}

/// Names of the subdirectories of `dir` (none if it does not exist).
fn entries(dir: &Path) -> Result<Vec<String>, StateError> {
    let read = match std::fs::read_dir(dir) {
        Ok(read) => read,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(StateError::Read {
                path: dir.to_path_buf(),
                source,
            })
        }
    };
    let mut names: Vec<String> = read
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|name| !name.starts_with('.'))
        .collect();
    names.sort();
    Ok(names)
}

/// Reads a stout-framed protobuf file: `Ok(None)` if it is missing or
/// empty, an error naming the file if it is truncated or does not decode.
pub fn read_message<M: Message + Default>(path: &Path) -> Result<Option<M>, StateError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(StateError::Read {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    if bytes.is_empty() {
        tracing::warn!(path = %path.display(), "found an empty checkpoint file");
        return Ok(None);
    }
    let corrupt = |reason: String| StateError::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    let Some((header, body)) = bytes.split_first_chunk::<4>() else {
        return Err(corrupt(format!(
            "truncated: {} bytes, shorter than the 4-byte length prefix",
            bytes.len()
        )));
    };
    let length = u32::from_ne_bytes(*header) as usize;
    if body.len() < length {
        return Err(corrupt(format!(
            "truncated: the record is {length} bytes long but only {} follow",
            body.len()
        )));
    }
    if body.len() > length {
        return Err(corrupt(format!(
            "{} unexpected bytes after the {length}-byte record",
            body.len() - length
        )));
    }
    M::decode(body)
        .map(Some)
        .map_err(|e| corrupt(format!("does not decode: {e}")))
}

/// Reads a text checkpoint (`Ok(None)` if missing or empty).
fn read_text(path: &Path) -> Result<Option<String>, StateError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(StateError::Read {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let text = String::from_utf8(bytes).map_err(|_| StateError::Corrupt {
        path: path.to_path_buf(),
        reason: "not UTF-8 text".into(),
    })?;
    let text = text.trim().to_string();
    if text.is_empty() {
        tracing::warn!(path = %path.display(), "found an empty checkpoint file");
        return Ok(None);
    }
    Ok(Some(text))
}

fn recover_agent(reader: &mut Reader<'_>, id: &str) -> Result<AgentState, StateError> {
    let mut state = AgentState {
        id: id.to_string(),
        ..AgentState::default()
    };
    let path = reader.work_dir.agent_info_file(id);
    match read_message::<AgentInfo>(&path) {
        Ok(Some(info)) => state.info = Some(info),
        Ok(None) => {
            tracing::warn!(path = %path.display(), "no agent info to recover");
            return Ok(state);
        }
        Err(error) => {
            reader.tolerate(error)?;
            return Ok(state);
        }
    }
    let frameworks = reader.work_dir.meta_agent_dir(id).join("frameworks");
    for framework in entries(&frameworks)? {
        let recovered = recover_framework(reader, id, &framework)?;
        state.frameworks.insert(framework, recovered);
    }
    Ok(state)
}

fn recover_framework(
    reader: &mut Reader<'_>,
    agent: &str,
    id: &str,
) -> Result<FrameworkState, StateError> {
    let mut state = FrameworkState {
        id: id.to_string(),
        ..FrameworkState::default()
    };
    let path = reader.work_dir.framework_info_file(agent, id);
    match read_message::<FrameworkInfo>(&path) {
        Ok(Some(info)) => state.info = Some(info),
        Ok(None) => return Ok(state),
        Err(error) => {
            reader.tolerate(error)?;
            return Ok(state);
        }
    }
    let path = reader.work_dir.framework_pid_file(agent, id);
    match read_text(&path) {
        Ok(Some(pid)) => {
            state.pid = (pid != NO_PID).then_some(pid);
            state.pid_recovered = true;
        }
        Ok(None) => return Ok(state),
        Err(error) => {
            reader.tolerate(error)?;
            return Ok(state);
        }
    }
    let executors = reader
        .work_dir
        .meta_framework_dir(agent, id)
        .join("executors");
    for executor in entries(&executors)? {
        let recovered = recover_executor(reader, agent, id, &executor)?;
        state.executors.insert(executor, recovered);
    }
    Ok(state)
}

fn recover_executor(
    reader: &mut Reader<'_>,
    agent: &str,
    framework: &str,
    id: &str,
) -> Result<ExecutorState, StateError> {
    let mut state = ExecutorState {
        id: id.to_string(),
        ..ExecutorState::default()
    };
    let runs = reader
        .work_dir
        .meta_executor_dir(agent, framework, id)
        .join("runs");
    for run in entries(&runs)? {
        if run == LATEST {
            match std::fs::canonicalize(runs.join(LATEST)) {
                Ok(target) => {
                    state.latest = target.file_name().map(|n| n.to_string_lossy().into_owned());
                }
                // Mesos: a dangling link is left by a half-done GC.
                Err(_) => tracing::warn!(executor = id, "dangling 'latest' run link"),
            }
            continue;
        }
        let ids = RunIds {
            agent,
            framework,
            executor: id,
            container: &run,
        };
        let recovered = recover_run(reader, ids)?;
        state.runs.insert(run, recovered);
    }
    if state.latest.is_none() {
        tracing::warn!(executor = id, framework, "no latest run to recover");
        return Ok(state);
    }
    let path = reader.work_dir.executor_info_file(agent, framework, id);
    match read_message::<ExecutorInfo>(&path) {
        Ok(Some(info)) => {
            state.generated_for_command_task = is_generated_for_command_task(&info);
            state.info = Some(info);
        }
        Ok(None) => {}
        Err(error) => reader.tolerate(error)?,
    }
    Ok(state)
}

/// Mesos's heuristic for checkpoints that do not record it.
fn is_generated_for_command_task(info: &ExecutorInfo) -> bool {
    let command = info
        .command
        .as_ref()
        .and_then(|c| c.value.as_deref())
        .unwrap_or_default();
    command.ends_with(crate::command_executor::BINARY)
        && info
            .name
            .as_deref()
            .is_some_and(|n| n.starts_with("Command Executor"))
}

fn recover_run(reader: &mut Reader<'_>, ids: RunIds<'_>) -> Result<RunState, StateError> {
    let run_dir = reader.work_dir.meta_run_dir(ids);
    let mut state = RunState {
        id: ids.container.to_string(),
        completed: run_dir.join(SENTINEL_FILE).exists(),
        ..RunState::default()
    };
    for task in entries(&run_dir.join("tasks"))? {
        let recovered = recover_task(reader, ids, &task)?;
        state.tasks.insert(task, recovered);
    }
    let path = reader.work_dir.forked_pid_file(ids);
    if reader.rebooted {
        // The pid belongs to the previous boot; removing the file keeps a
        // later restart (after the new boot id is checkpointed) from
        // reading it.
        if let Err(source) = std::fs::remove_file(&path) {
            if source.kind() != std::io::ErrorKind::NotFound {
                return Err(StateError::Read { path, source });
            }
        }
        return Ok(state);
    }
    match read_text(&path) {
        Ok(Some(text)) => {
            let pid = text
                .parse::<u32>()
                .ok()
                .filter(|pid| *pid > 0)
                .ok_or_else(|| StateError::Corrupt {
                    path: path.clone(),
                    reason: format!("'{text}' is not a pid"),
                })?;
            state.forked_pid = Some(pid);
        }
        Ok(None) => tracing::warn!(path = %path.display(), "no forked pid to recover"),
        Err(error) => reader.tolerate(error)?,
    }
    Ok(state)
}

fn recover_task(
    reader: &mut Reader<'_>,
    ids: RunIds<'_>,
    id: &str,
) -> Result<TaskState, StateError> {
    let mut state = TaskState {
        id: id.to_string(),
        ..TaskState::default()
    };
    let path = reader.work_dir.task_info_file(ids, id);
    match read_message::<Task>(&path) {
        Ok(Some(info)) => state.info = Some(info),
        Ok(None) => return Ok(state),
        Err(error) => {
            reader.tolerate(error)?;
            return Ok(state);
        }
    }
    let path = reader.work_dir.task_updates_file(ids, id);
    if !path.exists() {
        return Ok(state);
    }
    match read_updates(&path) {
        Ok(records) => {
            state.records = records;
            state.updates_file = Some(path);
        }
        Err(error) => reader.tolerate(error)?,
    }
    Ok(state)
}

/// Reads `task.updates`, cutting a torn last record off the file.
fn read_updates(path: &Path) -> Result<Vec<StatusUpdateRecord>, StateError> {
    let (records, valid) = UpdateLog::read_valid(path)?;
    let length = std::fs::metadata(path)
        .map_err(|source| StateError::Read {
            path: path.to_path_buf(),
            source,
        })?
        .len();
    if valid < length {
        tracing::warn!(path = %path.display(), torn_bytes = length - valid,
            "truncating a torn last record of the status update log");
        UpdateLog::truncate(path, valid)?;
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use mesos_proto::internal::StatusUpdateRecord;
    use mesos_proto::v1::{
        AgentId, CommandInfo, ExecutorId, FrameworkId, TaskId, TaskState as V1TaskState, TaskStatus,
    };

    use super::*;
    use crate::checkpoint::Checkpointer;

    const AGENT: &str = "A-S0";
    const FRAMEWORK: &str = "F-0000";
    const EXECUTOR: &str = "task-1";
    const CONTAINER: &str = "c0ffee";
    const TASK: &str = "task-1";

    fn ids() -> RunIds<'static> {
        RunIds {
            agent: AGENT,
            framework: FRAMEWORK,
            executor: EXECUTOR,
            container: CONTAINER,
        }
    }

    fn update(state: V1TaskState, n: u8) -> StatusUpdateRecord {
        StatusUpdateRecord {
            r#type: status_update_record::Type::Update as i32,
            update: Some(StatusUpdate {
                framework_id: FrameworkId {
                    value: FRAMEWORK.into(),
                },
                status: TaskStatus {
                    task_id: TaskId { value: TASK.into() },
                    state: state as i32,
                    uuid: Some(vec![n; 16]),
                    ..TaskStatus::default()
                },
                uuid: Some(vec![n; 16]),
                ..StatusUpdate::default()
            }),
            uuid: None,
        }
    }

    /// A complete checkpoint of one running command task.
    fn checkpoint() -> (tempfile::TempDir, WorkDir) {
        let dir = tempfile::tempdir().unwrap();
        let work = WorkDir::new(dir.path());
        let checkpointer = Checkpointer::new(work.clone());
        checkpointer.boot_id("boot-1").unwrap();
        checkpointer
            .agent(&AgentInfo {
                id: Some(AgentId {
                    value: AGENT.into(),
                }),
                hostname: "h".into(),
                ..AgentInfo::default()
            })
            .unwrap();
        let framework = FrameworkInfo {
            id: Some(FrameworkId {
                value: FRAMEWORK.into(),
            }),
            checkpoint: Some(true),
            ..FrameworkInfo::default()
        };
        checkpointer.framework(AGENT, &framework, None).unwrap();
        let executor = ExecutorInfo {
            executor_id: ExecutorId {
                value: EXECUTOR.into(),
            },
            name: Some("Command Executor (Task: task-1)".into()),
            command: Some(CommandInfo {
                value: Some("/opt/mesos/mesos-executor".into()),
                ..CommandInfo::default()
            }),
            ..ExecutorInfo::default()
        };
        checkpointer.executor(ids(), &executor).unwrap();
        checkpointer.forked_pid(ids(), 4242).unwrap();
        checkpointer
            .task(
                ids(),
                &Task {
                    task_id: TaskId { value: TASK.into() },
                    ..Task::default()
                },
            )
            .unwrap();
        let mut log = UpdateLog::open(&work.task_updates_file(ids(), TASK)).unwrap();
        log.append(&update(V1TaskState::TaskRunning, 1)).unwrap();
        (dir, work)
    }

    fn run(state: &State) -> &RunState {
        &state.agent.as_ref().unwrap().frameworks[FRAMEWORK].executors[EXECUTOR].runs[CONTAINER]
    }

    #[test]
    fn a_complete_checkpoint_recovers_everything() {
        let (_dir, work) = checkpoint();
        let state = recover(&work, true, Some("boot-1")).unwrap();
        assert!(!state.rebooted);
        let agent = state.agent.as_ref().unwrap();
        assert_eq!(agent.id, AGENT);
        assert_eq!(agent.info.as_ref().unwrap().hostname, "h");
        let framework = &agent.frameworks[FRAMEWORK];
        assert_eq!(framework.pid, None, "HTTP scheduler");
        let executor = &framework.executors[EXECUTOR];
        assert_eq!(executor.latest.as_deref(), Some(CONTAINER));
        assert!(executor.generated_for_command_task);
        let run = run(&state);
        assert_eq!(run.forked_pid, Some(4242));
        assert!(!run.completed);
        let task = &run.tasks[TASK];
        assert!(task.info.is_some());
        assert_eq!(task.updates().count(), 1);
    }

    #[test]
    fn no_meta_directory_is_a_fresh_agent() {
        let dir = tempfile::tempdir().unwrap();
        let state = recover(&WorkDir::new(dir.path()), true, Some("b")).unwrap();
        assert!(state.agent.is_none());
    }

    #[test]
    fn after_a_reboot_pids_are_forgotten() {
        let (_dir, work) = checkpoint();
        let state = recover(&work, true, Some("boot-2")).unwrap();
        assert!(state.rebooted);
        assert_eq!(run(&state).forked_pid, None);
        assert!(!work.forked_pid_file(ids()).exists(), "stale pid removed");
        assert!(run(&state).tasks[TASK].info.is_some(), "tasks still known");
    }

    /// Every protobuf file kind: truncation and garbage are errors naming the
    /// file (strict) or skipped (non-strict); an empty file is tolerated.
    #[test]
    fn damaged_protobuf_files_name_the_file_or_are_skipped() {
        type PathOf = fn(&WorkDir) -> PathBuf;
        let files: [(&str, PathOf); 4] = [
            ("slave.info", |w| w.agent_info_file(AGENT)),
            ("framework.info", |w| {
                w.framework_info_file(AGENT, FRAMEWORK)
            }),
            ("executor.info", |w| {
                w.executor_info_file(AGENT, FRAMEWORK, EXECUTOR)
            }),
            ("task.info", |w| w.task_info_file(ids(), TASK)),
        ];
        for (name, path_of) in files {
            for damage in ["truncate", "garbage", "empty"] {
                let (_dir, work) = checkpoint();
                let path = path_of(&work);
                let mut bytes = std::fs::read(&path).unwrap();
                match damage {
                    "truncate" => bytes.truncate(bytes.len() - 3),
                    "garbage" => bytes[4..].fill(0xff),
                    _ => bytes.clear(),
                }
                std::fs::write(&path, &bytes).unwrap();
                let strict = recover(&work, true, Some("boot-1"));
                if damage == "empty" {
                    assert!(strict.is_ok(), "{name} {damage}: {strict:?}");
                    continue;
                }
                let error = strict.unwrap_err();
                assert_eq!(error.path(), Some(path.as_path()), "{name} {damage}");
                assert!(error.to_string().contains(name), "{error}");
                let lenient = recover(&work, false, Some("boot-1")).unwrap();
                assert_eq!(lenient.errors, 1, "{name} {damage}");
            }
        }
    }

    #[test]
    fn an_empty_task_info_skips_only_that_task() {
        let (_dir, work) = checkpoint();
        std::fs::write(work.task_info_file(ids(), TASK), b"").unwrap();
        let state = recover(&work, true, Some("boot-1")).unwrap();
        let task = &run(&state).tasks[TASK];
        assert!(task.info.is_none());
        assert_eq!(run(&state).forked_pid, Some(4242), "the run is recovered");
    }

    #[test]
    fn forked_pid_must_be_a_number_but_may_be_empty() {
        let (_dir, work) = checkpoint();
        let path = work.forked_pid_file(ids());
        std::fs::write(&path, b"42x").unwrap();
        let error = recover(&work, false, Some("boot-1")).unwrap_err();
        assert_eq!(error.path(), Some(path.as_path()), "even when not strict");
        assert!(error.to_string().contains("forked.pid"), "{error}");
        std::fs::write(&path, b"").unwrap();
        let state = recover(&work, true, Some("boot-1")).unwrap();
        assert_eq!(run(&state).forked_pid, None);
    }

    #[test]
    fn torn_update_log_is_cut_and_garbage_is_an_error() {
        let (_dir, work) = checkpoint();
        let path = work.task_updates_file(ids(), TASK);
        let good = std::fs::read(&path).unwrap();
        let mut torn = good.clone();
        torn.extend_from_slice(&[100, 0, 0, 0, 1, 2, 3]);
        std::fs::write(&path, &torn).unwrap();
        let state = recover(&work, true, Some("boot-1")).unwrap();
        assert_eq!(run(&state).tasks[TASK].records.len(), 1);
        assert_eq!(std::fs::read(&path).unwrap(), good, "torn tail cut off");

        let mut garbage = good.clone();
        garbage[4..].fill(0xff);
        std::fs::write(&path, &garbage).unwrap();
        let error = recover(&work, true, Some("boot-1")).unwrap_err();
        assert_eq!(error.path(), Some(path.as_path()));
        assert!(error.to_string().contains("task.updates"), "{error}");
    }

    #[test]
    fn missing_framework_pid_leaves_executors_unrecovered() {
        let (_dir, work) = checkpoint();
        std::fs::remove_file(work.framework_pid_file(AGENT, FRAMEWORK)).unwrap();
        let state = recover(&work, true, Some("boot-1")).unwrap();
        let framework = &state.agent.as_ref().unwrap().frameworks[FRAMEWORK];
        assert!(framework.info.is_some());
        assert!(framework.executors.is_empty());
    }

    #[test]
    fn sentinel_marks_a_completed_run() {
        let (_dir, work) = checkpoint();
        Checkpointer::new(work.clone()).sentinel(ids()).unwrap();
        let state = recover(&work, true, Some("boot-1")).unwrap();
        assert!(run(&state).completed);
    }
}
