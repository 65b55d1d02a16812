//! Reliable, ordered delivery of task status updates to the scheduler (seed
//! step 8), as Mesos's `TaskStatusUpdateManager`
//! (src/slave/task_status_update_manager.cpp):
//!
//! * one stream per (framework, task); only the head update is in flight, the
//!   next one is sent when the scheduler acknowledges the head;
//! * the head is re-sent after 10 s, doubling up to 10 min, until acknowledged;
//!   retries pause while the master is unreachable and every head is re-sent
//!   at once when it comes back;
//! * each forwarded update carries `latest_state`, the newest state the agent
//!   has for the task, so the master is current while old updates queue;
//! * for checkpointing frameworks every update and acknowledgement is
//!   appended to `task.updates` and fsync'ed *before* the call returns, so
//!   the agent acknowledges to the executor only what survives a crash.
//!
//! The manager is plain state: callers pass the current time and send what it
//! returns, so ordering, retry and replay are testable without a runtime.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mesos_proto::internal::{status_update_record, StatusUpdate, StatusUpdateRecord};
use mesos_proto::v1::TaskState;
use prost::Message as _;

/// First retry interval (Mesos `STATUS_UPDATE_RETRY_INTERVAL_MIN`).
pub const RETRY_INTERVAL_MIN: Duration = Duration::from_secs(10);
/// Retry interval cap (Mesos `STATUS_UPDATE_RETRY_INTERVAL_MAX`).
pub const RETRY_INTERVAL_MAX: Duration = Duration::from_secs(600);

/// Errors of the status update manager; each names the stream or file.
#[derive(Debug, thiserror::Error)]
pub enum StatusUpdateError {
    /// The update has no 16-byte uuid to be acknowledged by.
    #[error("status update for task {task} of framework {framework} has no valid uuid")]
    MissingUuid {
        /// Framework id.
        framework: String,
        /// Task id.
        task: String,
    },
    /// An acknowledgement for a task with no stream.
    #[error("no status update stream for task {task} of framework {framework}")]
    UnknownStream {
        /// Framework id.
        framework: String,
        /// Task id.
        task: String,
    },
    /// An acknowledgement that does not match the in-flight update.
    #[error("unexpected acknowledgement for task {task} of framework {framework}: {reason}")]
    UnexpectedAck {
        /// Framework id.
        framework: String,
        /// Task id.
        task: String,
        /// Expected vs received.
        reason: String,
    },
    /// Writing or reading the checkpoint failed.
    #[error("status update checkpoint {path}: {source}")]
    Io {
        /// The `task.updates` file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The checkpoint holds a record that does not decode.
    #[error("corrupt status update checkpoint {path} at byte {offset}: {reason}")]
    Corrupt {
        /// The `task.updates` file.
        path: PathBuf,
        /// Where the bad record starts.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
}

/// The uuid that identifies an update (`status.uuid`, else the deprecated
/// top-level `uuid`).
pub fn update_uuid(update: &StatusUpdate) -> Option<&[u8]> {
    update
        .status
        .uuid
        .as_deref()
        .or(update.uuid.as_deref())
        .filter(|uuid| uuid.len() == 16)
}

/// Whether a state is terminal for the status update stream (Mesos's
/// `protobuf::isTerminalState`, shared as [`TaskState::is_terminal`]).
pub fn is_terminal(state: i32) -> bool {
    TaskState::try_from(state).is_ok_and(TaskState::is_terminal)
}

/// The per-task `task.updates` file: stout `protobuf::write` framing, i.e.
/// each `StatusUpdateRecord` preceded by its length as a native-endian u32.
#[derive(Debug)]
pub struct UpdateLog {
    path: PathBuf,
    file: File,
}

impl UpdateLog {
    /// Opens (creating if needed) the log at `path` for appending.
    pub fn open(path: &Path) -> Result<Self, StatusUpdateError> {
        let io = |source| StatusUpdateError::Io {
            path: path.to_path_buf(),
            source,
        };
        let parent = path.parent().unwrap_or(Path::new("/"));
        std::fs::create_dir_all(parent).map_err(io)?;
        let existed = path.exists();
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io)?;
        if !existed {
            // The new directory entry must survive a crash too.
            File::open(parent)
                .and_then(|dir| dir.sync_all())
                .map_err(io)?;
        }
        Ok(Self {
            path: path.to_path_buf(),
            file,
        })
    }

    /// Appends one record and fsyncs.
    pub fn append(&mut self, record: &StatusUpdateRecord) -> Result<(), StatusUpdateError> {
        let body = record.encode_to_vec();
        let length = u32::try_from(body.len()).map_err(|_| StatusUpdateError::Io {
            path: self.path.clone(),
            source: std::io::Error::other("record larger than 4 GiB"),
        })?;
        let mut frame = Vec::with_capacity(4 + body.len());
        frame.extend_from_slice(&length.to_ne_bytes());
        frame.extend_from_slice(&body);
        self.file
            .write_all(&frame)
            .and_then(|()| self.file.sync_data())
            .map_err(|source| StatusUpdateError::Io {
                path: self.path.clone(),
                source,
            })
    }

    /// Reads every complete record of the log at `path`. A torn last record
    /// (the agent died mid-append, before the fsync that would have let it
    /// acknowledge anything) is ignored, as Mesos does; garbage before the
    /// end is an error naming the file and offset.
    pub fn read(path: &Path) -> Result<Vec<StatusUpdateRecord>, StatusUpdateError> {
        Self::read_valid(path).map(|(records, _)| records)
    }

    /// Like [`UpdateLog::read`], also returning the length of the valid
    /// prefix: where a torn last record starts, else the file's length.
    pub fn read_valid(path: &Path) -> Result<(Vec<StatusUpdateRecord>, u64), StatusUpdateError> {
        let mut bytes = Vec::new();
        File::open(path)
            .and_then(|mut f| f.read_to_end(&mut bytes))
            .map_err(|source| StatusUpdateError::Io {
                path: path.to_path_buf(),
                source,
            })?;
        let mut records = Vec::new();
        let mut offset = 0usize;
        while offset < bytes.len() {
            let Some(header) = bytes.get(offset..offset + 4) else {
                break; // torn length prefix
            };
            let length = u32::from_ne_bytes([header[0], header[1], header[2], header[3]]) as usize;
            let Some(body) = bytes.get(offset + 4..offset + 4 + length) else {
                break; // torn body
            };
            let record =
                StatusUpdateRecord::decode(body).map_err(|e| StatusUpdateError::Corrupt {
                    path: path.to_path_buf(),
                    offset: offset as u64,
                    reason: e.to_string(),
                })?;
            records.push(record);
            offset += 4 + length;
        }
        Ok((records, offset as u64))
    }

    /// Cuts a torn last record off the log (Mesos truncates `task.updates`
    /// to its valid records on recovery), so that appends after recovery
    /// follow the last complete record instead of the garbage.
    pub fn truncate(path: &Path, length: u64) -> Result<(), StatusUpdateError> {
        let io = |source| StatusUpdateError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = OpenOptions::new().write(true).open(path).map_err(io)?;
        file.set_len(length).map_err(io)?;
        file.sync_all().map_err(io)
    }
}

/// Retry schedule of a stream's in-flight head.
#[derive(Debug, Clone, Copy)]
struct Retry {
    deadline: Instant,
    interval: Duration,
}

/// One task's stream.
#[derive(Debug)]
struct Stream {
    log: Option<UpdateLog>,
    pending: VecDeque<StatusUpdate>,
    received: HashSet<Vec<u8>>,
    acknowledged: HashSet<Vec<u8>>,
    /// A terminal update has been acknowledged.
    terminated: bool,
    /// Set while the head is in flight.
    retry: Option<Retry>,
}

impl Stream {
    fn new(log: Option<UpdateLog>) -> Self {
        Self {
            log,
            pending: VecDeque::new(),
            received: HashSet::new(),
            acknowledged: HashSet::new(),
            terminated: false,
            retry: None,
        }
    }

    /// The head as it goes to the master: with `latest_state`.
    fn head_to_send(&self) -> Option<StatusUpdate> {
        let mut head = self.pending.front()?.clone();
        let latest = self.pending.back().map(|u| u.status.state);
        head.latest_state = latest;
        Some(head)
    }

    fn checkpoint(&mut self, record: StatusUpdateRecord) -> Result<(), StatusUpdateError> {
        match &mut self.log {
            Some(log) => log.append(&record),
            None => Ok(()),
        }
    }
}

/// What happened to an acknowledgement.
#[derive(Debug, Default, PartialEq)]
pub struct AckOutcome {
    /// The next update to send to the master, if one was queued.
    pub next: Option<StatusUpdate>,
    /// The acknowledged update was terminal: the stream is closed.
    pub terminated: bool,
    /// The ack repeated one already processed; nothing changed.
    pub duplicate: bool,
}

/// Key of a stream: (framework id, task id).
type StreamKey = (String, String);

/// All status update streams of the agent.
#[derive(Debug)]
pub struct StatusUpdateManager {
    streams: HashMap<StreamKey, Stream>,
    paused: bool,
    min_interval: Duration,
    max_interval: Duration,
}

impl Default for StatusUpdateManager {
    fn default() -> Self {
        Self::new(RETRY_INTERVAL_MIN, RETRY_INTERVAL_MAX)
    }
}

fn key(update: &StatusUpdate) -> StreamKey {
    (
        update.framework_id.value.clone(),
        update.status.task_id.value.clone(),
    )
}

fn update_record(update: &StatusUpdate) -> StatusUpdateRecord {
    StatusUpdateRecord {
        r#type: status_update_record::Type::Update as i32,
        update: Some(update.clone()),
        uuid: None,
    }
}

fn ack_record(uuid: &[u8]) -> StatusUpdateRecord {
    StatusUpdateRecord {
        r#type: status_update_record::Type::Ack as i32,
        update: None,
        uuid: Some(uuid.to_vec()),
    }
}

impl StatusUpdateManager {
    /// A manager retrying after `min_interval`, doubling up to `max_interval`.
    /// It starts paused: nothing is sent before the agent is registered.
    pub fn new(min_interval: Duration, max_interval: Duration) -> Self {
        Self {
            streams: HashMap::new(),
            paused: true,
            min_interval,
            max_interval,
        }
    }

    /// Handles a new update from an executor or the agent. When `checkpoint`
    /// is given the update is durably appended there before this returns.
    /// Returns the update to send to the master now, if it became the head.
    pub fn update(
        &mut self,
        update: StatusUpdate,
        checkpoint: Option<&Path>,
        now: Instant,
    ) -> Result<Option<StatusUpdate>, StatusUpdateError> {
        let key = key(&update);
        let uuid = update_uuid(&update)
            .ok_or_else(|| StatusUpdateError::MissingUuid {
                framework: key.0.clone(),
                task: key.1.clone(),
            })?
            .to_vec();
        if !self.streams.contains_key(&key) {
            let log = checkpoint.map(UpdateLog::open).transpose()?;
            self.streams.insert(key.clone(), Stream::new(log));
        }
        let paused = self.paused;
        let min_interval = self.min_interval;
        let stream = self
            .streams
            .get_mut(&key)
            .expect("stream inserted just above");
        // Executors retry unacknowledged updates (e.g. on re-subscribe):
        // a repeat is acknowledged again but not queued twice.
        if stream.received.contains(&uuid) || stream.acknowledged.contains(&uuid) {
            return Ok(None);
        }
        stream.checkpoint(update_record(&update))?;
        stream.received.insert(uuid);
        stream.pending.push_back(update);
        if stream.pending.len() > 1 || paused {
            return Ok(None);
        }
        stream.retry = Some(Retry {
            deadline: now + min_interval,
            interval: min_interval,
        });
        Ok(stream.head_to_send())
    }

    /// Handles the scheduler's acknowledgement of `uuid` for a task.
    pub fn acknowledge(
        &mut self,
        framework: &str,
        task: &str,
        uuid: &[u8],
        now: Instant,
    ) -> Result<AckOutcome, StatusUpdateError> {
        let key = (framework.to_string(), task.to_string());
        let paused = self.paused;
        let min_interval = self.min_interval;
        let stream =
            self.streams
                .get_mut(&key)
                .ok_or_else(|| StatusUpdateError::UnknownStream {
                    framework: framework.to_string(),
                    task: task.to_string(),
                })?;
        if stream.acknowledged.contains(uuid) {
            return Ok(AckOutcome {
                duplicate: true,
                ..AckOutcome::default()
            });
        }
        let unexpected = |reason: String| StatusUpdateError::UnexpectedAck {
            framework: framework.to_string(),
            task: task.to_string(),
            reason,
        };
        let head = stream
            .pending
            .front()
            .ok_or_else(|| unexpected("no update is pending".into()))?;
        let head_uuid = update_uuid(head).unwrap_or_default();
        if head_uuid != uuid {
            return Err(unexpected(format!(
                "expected {}, received {}",
                uuid_text(head_uuid),
                uuid_text(uuid)
            )));
        }
        stream.checkpoint(ack_record(uuid))?;
        let acked = stream
            .pending
            .pop_front()
            .expect("head checked to exist above");
        stream.acknowledged.insert(uuid.to_vec());
        stream.retry = None;
        if is_terminal(acked.status.state) {
            stream.terminated = true;
            // Mesos drops the stream at a terminal ack, even with updates
            // still queued behind it (they can no longer matter).
            self.streams.remove(&key);
            return Ok(AckOutcome {
                terminated: true,
                ..AckOutcome::default()
            });
        }
        let next = if paused { None } else { stream.head_to_send() };
        if next.is_some() {
            stream.retry = Some(Retry {
                deadline: now + min_interval,
                interval: min_interval,
            });
        }
        Ok(AckOutcome {
            next,
            ..AckOutcome::default()
        })
    }

    /// The update in flight for a task (the head of its stream), if any.
    pub fn head(&self, framework: &str, task: &str) -> Option<&StatusUpdate> {
        self.streams
            .get(&(framework.to_string(), task.to_string()))
            .and_then(|s| s.pending.front())
    }

    /// Whether the stream has seen (received or acknowledged) `uuid`.
    pub fn has_seen(&self, framework: &str, task: &str, uuid: &[u8]) -> bool {
        self.streams
            .get(&(framework.to_string(), task.to_string()))
            .is_some_and(|s| s.received.contains(uuid) || s.acknowledged.contains(uuid))
    }

    /// Heads whose retry deadline passed; their interval doubles.
    pub fn due(&mut self, now: Instant) -> Vec<StatusUpdate> {
        if self.paused {
            return Vec::new();
        }
        let max = self.max_interval;
        let mut out = Vec::new();
        for stream in self.streams.values_mut() {
            let Some(retry) = stream.retry.as_mut() else {
                continue;
            };
            if retry.deadline > now {
                continue;
            }
            retry.interval = (retry.interval * 2).min(max);
            retry.deadline = now + retry.interval;
            out.extend(stream.head_to_send());
        }
        out
    }

    /// The earliest retry deadline, for the agent's timer.
    pub fn next_deadline(&self) -> Option<Instant> {
        if self.paused {
            return None;
        }
        self.streams
            .values()
            .filter_map(|s| s.retry.map(|r| r.deadline))
            .min()
    }

    /// Stops retries (the master is unreachable).
    pub fn pause(&mut self) {
        self.paused = true;
    }

    /// Resumes after (re-)registration: every head is sent again now.
    pub fn resume(&mut self, now: Instant) -> Vec<StatusUpdate> {
        self.paused = false;
        let min_interval = self.min_interval;
        let mut out = Vec::new();
        for stream in self.streams.values_mut() {
            if let Some(head) = stream.head_to_send() {
                stream.retry = Some(Retry {
                    deadline: now + min_interval,
                    interval: min_interval,
                });
                out.push(head);
            }
        }
        out
    }

    /// Whether retries are paused.
    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// Restores a stream from its checkpoint (agent recovery): updates not
    /// yet acknowledged are pending again, in order. Returns how many are.
    pub fn recover_stream(&mut self, path: &Path) -> Result<usize, StatusUpdateError> {
        let records = UpdateLog::read(path)?;
        self.recover_records(path, records)
    }

    /// Restores a stream from the `records` already read from its log at
    /// `path` (which stays open for appending). Returns how many updates are
    /// pending again.
    pub fn recover_records(
        &mut self,
        path: &Path,
        records: Vec<StatusUpdateRecord>,
    ) -> Result<usize, StatusUpdateError> {
        let mut stream = Stream::new(None);
        let mut key = None;
        for (index, record) in records.into_iter().enumerate() {
            let corrupt = |reason: &str| StatusUpdateError::Corrupt {
                path: path.to_path_buf(),
                offset: index as u64,
                reason: reason.to_string(),
            };
            if record.r#type == status_update_record::Type::Update as i32 {
                let update = record
                    .update
                    .ok_or_else(|| corrupt("UPDATE record without update"))?;
                let uuid = update_uuid(&update)
                    .ok_or_else(|| corrupt("update without uuid"))?
                    .to_vec();
                key.get_or_insert_with(|| self::key(&update));
                if stream.received.insert(uuid) {
                    stream.pending.push_back(update);
                }
            } else {
                let uuid = record
                    .uuid
                    .ok_or_else(|| corrupt("ACK record without uuid"))?;
                let head = stream
                    .pending
                    .pop_front()
                    .ok_or_else(|| corrupt("ACK with nothing pending"))?;
                if update_uuid(&head) != Some(uuid.as_slice()) {
                    return Err(corrupt("ACK does not match the oldest pending update"));
                }
                stream.terminated |= is_terminal(head.status.state);
                stream.acknowledged.insert(uuid);
            }
        }
        let Some(key) = key else {
            return Ok(0);
        };
        if stream.terminated {
            return Ok(0);
        }
        stream.log = Some(UpdateLog::open(path)?);
        let pending = stream.pending.len();
        self.streams.insert(key, stream);
        Ok(pending)
    }

    /// Drops every stream of a framework (it was shut down).
    pub fn remove_framework(&mut self, framework: &str) {
        self.streams.retain(|(fw, _), _| fw != framework);
    }

    /// Drops one task's stream.
    pub fn remove_stream(&mut self, framework: &str, task: &str) {
        self.streams
            .remove(&(framework.to_string(), task.to_string()));
    }

    /// Updates of a task not yet acknowledged by the scheduler, oldest first.
    pub fn pending(&self, framework: &str, task: &str) -> Vec<StatusUpdate> {
        self.streams
            .get(&(framework.to_string(), task.to_string()))
            .map(|s| s.pending.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Whether the task has a stream with anything unacknowledged.
    pub fn has_pending(&self, framework: &str, task: &str) -> bool {
        self.streams
            .get(&(framework.to_string(), task.to_string()))
            .is_some_and(|s| !s.pending.is_empty())
    }
}

/// Hyphenated text of a 16-byte uuid, for messages.
pub fn uuid_text(bytes: &[u8]) -> String {
    uuid::Uuid::from_slice(bytes)
        .map(|u| u.to_string())
        .unwrap_or_else(|_| format!("{bytes:02x?}"))
}

#[cfg(test)]
mod tests {
    use mesos_proto::v1::{FrameworkId, TaskId, TaskStatus};

    use super::*;

    fn update(task: &str, state: TaskState, n: u8) -> StatusUpdate {
        let uuid = vec![n; 16];
        StatusUpdate {
            framework_id: FrameworkId { value: "fw".into() },
            executor_id: None,
            slave_id: None,
            status: TaskStatus {
                task_id: TaskId { value: task.into() },
                state: state as i32,
                uuid: Some(uuid.clone()),
                ..TaskStatus::default()
            },
            timestamp: 1.0,
            uuid: Some(uuid),
            latest_state: None,
        }
    }

    fn running_manager() -> (StatusUpdateManager, Instant) {
        let mut manager = StatusUpdateManager::default();
        let now = Instant::now();
        assert!(manager.resume(now).is_empty());
        (manager, now)
    }

    #[test]
    fn one_update_in_flight_per_task_in_order() {
        let (mut m, now) = running_manager();
        let first = m
            .update(update("t", TaskState::TaskStarting, 1), None, now)
            .unwrap();
        assert_eq!(first.unwrap().status.state, TaskState::TaskStarting as i32);
        // Queued behind the head, not sent.
        assert!(m
            .update(update("t", TaskState::TaskRunning, 2), None, now)
            .unwrap()
            .is_none());
        assert!(m
            .update(update("t", TaskState::TaskFinished, 3), None, now)
            .unwrap()
            .is_none());
        // Another task's stream is independent.
        assert!(m
            .update(update("u", TaskState::TaskRunning, 9), None, now)
            .unwrap()
            .is_some());

        let ack = m.acknowledge("fw", "t", &[1; 16], now).unwrap();
        let next = ack.next.unwrap();
        assert_eq!(next.status.state, TaskState::TaskRunning as i32);
        assert_eq!(next.latest_state, Some(TaskState::TaskFinished as i32));
        let ack = m.acknowledge("fw", "t", &[2; 16], now).unwrap();
        assert_eq!(
            ack.next.unwrap().status.state,
            TaskState::TaskFinished as i32
        );
        let ack = m.acknowledge("fw", "t", &[3; 16], now).unwrap();
        assert!(ack.terminated);
        assert!(ack.next.is_none());
        assert!(!m.has_pending("fw", "t"));
    }

    #[test]
    fn head_is_retried_with_doubling_interval_until_acked() {
        let (mut m, now) = running_manager();
        m.update(update("t", TaskState::TaskRunning, 1), None, now)
            .unwrap();
        assert_eq!(m.next_deadline(), Some(now + RETRY_INTERVAL_MIN));
        assert!(m.due(now + Duration::from_secs(9)).is_empty());

        let mut at = now + RETRY_INTERVAL_MIN;
        let mut intervals = Vec::new();
        for _ in 0..8 {
            let resent = m.due(at);
            assert_eq!(resent.len(), 1, "head re-sent at its deadline");
            assert_eq!(update_uuid(&resent[0]), Some(&[1u8; 16][..]));
            let deadline = m.next_deadline().unwrap();
            intervals.push(deadline - at);
            at = deadline;
        }
        let secs: Vec<u64> = intervals.iter().map(Duration::as_secs).collect();
        assert_eq!(secs, [20, 40, 80, 160, 320, 600, 600, 600]);

        m.acknowledge("fw", "t", &[1; 16], at).unwrap();
        assert_eq!(m.next_deadline(), None);
        assert!(m.due(at + RETRY_INTERVAL_MAX).is_empty());
    }

    #[test]
    fn paused_manager_holds_updates_and_resume_sends_heads() {
        let mut m = StatusUpdateManager::default();
        let now = Instant::now();
        assert!(m
            .update(update("t", TaskState::TaskRunning, 1), None, now)
            .unwrap()
            .is_none());
        assert!(m.due(now + RETRY_INTERVAL_MAX).is_empty());
        let heads = m.resume(now);
        assert_eq!(heads.len(), 1);
        m.pause();
        assert!(m.due(now + RETRY_INTERVAL_MAX).is_empty());
        assert_eq!(m.resume(now).len(), 1, "head re-sent on every resume");
    }

    #[test]
    fn duplicates_and_wrong_acks_change_nothing() {
        let (mut m, now) = running_manager();
        m.update(update("t", TaskState::TaskRunning, 1), None, now)
            .unwrap();
        assert!(m
            .update(update("t", TaskState::TaskRunning, 1), None, now)
            .unwrap()
            .is_none());
        assert_eq!(m.pending("fw", "t").len(), 1);
        assert!(matches!(
            m.acknowledge("fw", "t", &[7; 16], now),
            Err(StatusUpdateError::UnexpectedAck { .. })
        ));
        assert!(matches!(
            m.acknowledge("fw", "nope", &[1; 16], now),
            Err(StatusUpdateError::UnknownStream { .. })
        ));
        m.acknowledge("fw", "t", &[1; 16], now).unwrap();
        assert!(m.acknowledge("fw", "t", &[1; 16], now).unwrap().duplicate);
        // An executor retrying an acknowledged update does not requeue it.
        assert!(m
            .update(update("t", TaskState::TaskRunning, 1), None, now)
            .unwrap()
            .is_none());
        assert!(!m.has_pending("fw", "t"));
    }

    #[test]
    fn updates_without_uuid_are_rejected() {
        let (mut m, now) = running_manager();
        let mut u = update("t", TaskState::TaskRunning, 1);
        u.status.uuid = None;
        u.uuid = None;
        assert!(matches!(
            m.update(u, None, now),
            Err(StatusUpdateError::MissingUuid { .. })
        ));
    }

    #[test]
    fn checkpoint_is_written_before_return_and_replays() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta/tasks/t/task.updates");
        let (mut m, now) = running_manager();
        m.update(update("t", TaskState::TaskStarting, 1), Some(&path), now)
            .unwrap();
        m.update(update("t", TaskState::TaskRunning, 2), Some(&path), now)
            .unwrap();
        // Durable before acknowledging to the executor: readable right now.
        assert_eq!(UpdateLog::read(&path).unwrap().len(), 2);
        m.acknowledge("fw", "t", &[1; 16], now).unwrap();
        let records = UpdateLog::read(&path).unwrap();
        let kinds: Vec<i32> = records.iter().map(|r| r.r#type).collect();
        assert_eq!(kinds, [0, 0, 1]);

        // A restarted agent finds TASK_RUNNING still unacknowledged.
        let (mut recovered, now) = running_manager();
        assert_eq!(recovered.recover_stream(&path).unwrap(), 1);
        let pending = recovered.pending("fw", "t");
        assert_eq!(pending[0].status.state, TaskState::TaskRunning as i32);
        let heads = recovered.resume(now);
        assert_eq!(update_uuid(&heads[0]), Some(&[2u8; 16][..]));
        // ... and keeps appending to the same log.
        recovered.acknowledge("fw", "t", &[2; 16], now).unwrap();
        assert_eq!(UpdateLog::read(&path).unwrap().len(), 4);
    }

    #[test]
    fn torn_tail_is_ignored_but_corruption_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("task.updates");
        let mut log = UpdateLog::open(&path).unwrap();
        log.append(&update_record(&update("t", TaskState::TaskRunning, 1)))
            .unwrap();
        drop(log);
        let mut bytes = std::fs::read(&path).unwrap();
        let good = bytes.len();
        bytes.extend_from_slice(&[200, 0, 0, 0, 1, 2]);
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(UpdateLog::read(&path).unwrap().len(), 1);

        bytes.truncate(good);
        bytes.extend_from_slice(&[3, 0, 0, 0, 0xff, 0xff, 0xff]);
        std::fs::write(&path, &bytes).unwrap();
        let error = UpdateLog::read(&path).unwrap_err();
        assert!(
            matches!(error, StatusUpdateError::Corrupt { offset, .. } if offset == good as u64)
        );
        assert!(error.to_string().contains("task.updates"));
    }

    #[test]
    fn terminated_stream_is_not_recovered() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("task.updates");
        let (mut m, now) = running_manager();
        m.update(update("t", TaskState::TaskFinished, 1), Some(&path), now)
            .unwrap();
        m.acknowledge("fw", "t", &[1; 16], now).unwrap();
        let (mut recovered, _) = running_manager();
        assert_eq!(recovered.recover_stream(&path).unwrap(), 0);
        assert!(!recovered.has_pending("fw", "t"));
    }
}
