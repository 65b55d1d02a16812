//! The fake agent's tasks: scripted status updates with reliable delivery,
//! kills, and the sandbox files and `/state` a framework reads.

use std::sync::Arc;
use std::time::Duration;

use mesos_proto::resources::Resources;
use mesos_proto::v1::scheduler::{call, event, Event};
use mesos_proto::v1::{task_status, TaskInfo, TaskState};
use tokio::sync::Notify;

use super::server::{schedule_reoffer, State};
use super::{record, status, Inner};

/// What a launched task does on the fake agent.
#[derive(Debug, Clone)]
pub struct TaskScript {
    /// Time between `TASK_RUNNING` and the end state (unless killed).
    pub run_for: Duration,
    /// The end state.
    pub end_state: TaskState,
    /// The end update's `message`.
    pub message: Option<String>,
    /// The end update's `reason`.
    pub reason: Option<task_status::Reason>,
    /// Contents of the sandbox's `stdout`.
    pub stdout: String,
    /// Contents of the sandbox's `stderr`.
    pub stderr: String,
}

impl TaskScript {
    /// Exits 0 at once: `TASK_FINISHED`.
    pub fn finished() -> Self {
        Self {
            run_for: Duration::ZERO,
            end_state: TaskState::TaskFinished,
            message: Some("Command exited with status 0".into()),
            reason: None,
            stdout: String::new(),
            stderr: String::new(),
        }
    }

    /// Exits with `code`: `TASK_FINISHED` for 0, else `TASK_FAILED` with the
    /// command executor's message.
    pub fn exits(code: i32) -> Self {
        if code == 0 {
            return Self::finished();
        }
        Self {
            end_state: TaskState::TaskFailed,
            message: Some(format!("Command exited with status {code}")),
            reason: Some(task_status::Reason::CommandExecutorFailed),
            ..Self::finished()
        }
    }

    /// Runs until killed (or for a day).
    pub fn runs_until_killed() -> Self {
        Self {
            run_for: Duration::from_secs(86_400),
            ..Self::finished()
        }
    }

    /// With this `stdout` content.
    pub fn stdout(mut self, text: &str) -> Self {
        self.stdout = text.into();
        self
    }

    /// With this `stderr` content.
    pub fn stderr(mut self, text: &str) -> Self {
        self.stderr = text.into();
        self
    }

    /// Running for this long before the end state.
    pub fn run_for(mut self, duration: Duration) -> Self {
        self.run_for = duration;
        self
    }
}

/// A task on the fake agent.
pub(super) struct FakeTask {
    framework_id: String,
    pub(super) sandbox: String,
    stdout: String,
    stderr: String,
    pub(super) sent_states: Vec<TaskState>,
    pending_ack: Option<Vec<u8>>,
    kill: Arc<Notify>,
    done: bool,
    /// The framework was torn down: no more updates, but the sandbox stays
    /// readable, as on a Mesos agent until garbage collection.
    pub(super) torn_down: bool,
    resources: Resources,
}

/// Starts a task's script.
pub(super) fn launch(inner: &Arc<Inner>, state: &mut State, task: TaskInfo, resources: Resources) {
    let script = (inner.config.script)(&task);
    let task_id = task.task_id.value.clone();
    let framework_id = state.framework_id.clone().unwrap_or_default();
    let sandbox = format!(
        "/var/lib/mesos-fake/slaves/{}/frameworks/{framework_id}/executors/{task_id}/runs/{}",
        inner.agent_id(),
        uuid::Uuid::new_v4()
    );
    let kill = Arc::new(Notify::new());
    state.tasks.insert(
        task_id.clone(),
        FakeTask {
            framework_id,
            sandbox,
            stdout: script.stdout.clone(),
            stderr: script.stderr.clone(),
            sent_states: Vec::new(),
            pending_ack: None,
            kill: kill.clone(),
            done: false,
            torn_down: false,
            resources,
        },
    );
    tokio::spawn(run(inner.clone(), task_id, script, kill));
}

async fn run(inner: Arc<Inner>, task_id: String, script: TaskScript, kill: Arc<Notify>) {
    for state in [TaskState::TaskStarting, TaskState::TaskRunning] {
        if !deliver(&inner, &task_id, state, None, None).await {
            return;
        }
    }
    let killed = tokio::select! {
        _ = tokio::time::sleep(script.run_for) => false,
        _ = kill.notified() => true,
    };
    let delivered = if killed {
        deliver(
            &inner,
            &task_id,
            TaskState::TaskKilled,
            Some("Command terminated with signal Terminated".into()),
            None,
        )
        .await
    } else {
        deliver(
            &inner,
            &task_id,
            script.end_state,
            script.message,
            script.reason,
        )
        .await
    };
    if delivered {
        finish(&inner, &task_id);
    }
}

/// Sends one update until it is acknowledged; `false` if the task vanished
/// (teardown) meanwhile.
async fn deliver(
    inner: &Arc<Inner>,
    task_id: &str,
    task_state: TaskState,
    message: Option<String>,
    reason: Option<task_status::Reason>,
) -> bool {
    let mut update = status(task_id, &inner.agent_id(), task_state);
    update.message = message;
    update.reason = reason.map(|r| r as i32);
    let uuid = update.uuid.clone().unwrap_or_default();
    {
        let mut state = inner.lock();
        let Some(task) = state.tasks.get_mut(task_id) else {
            return false;
        };
        task.sent_states.push(task_state);
        task.pending_ack = Some(uuid);
    }
    let event = Event {
        r#type: Some(event::Type::Update as i32),
        update: Some(event::Update { status: update }),
        ..Default::default()
    };
    loop {
        {
            let state = inner.lock();
            if let Some(stream) = &state.stream {
                let _ = stream.tx.send(record(&event, stream.content_type));
            }
        }
        if !inner.config.require_acks {
            return true;
        }
        let deadline = tokio::time::Instant::now() + inner.config.update_retry;
        while tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
            match inner.lock().tasks.get(task_id) {
                None => return false,
                Some(task) if task.torn_down => return false,
                Some(task) if task.pending_ack.is_none() => return true,
                Some(_) => {}
            }
        }
    }
}

fn finish(inner: &Arc<Inner>, task_id: &str) {
    {
        let mut state = inner.lock();
        let Some(task) = state.tasks.get_mut(task_id) else {
            return;
        };
        task.done = true;
        let resources = task.resources.clone();
        state.free_mut(inner).add(&resources);
    }
    schedule_reoffer(inner);
}

/// `KILL`: a running task ends with `TASK_KILLED`.
pub(super) fn kill(state: &State, task_id: &str) {
    if let Some(task) = state.tasks.get(task_id) {
        task.kill.notify_one();
    }
}

/// `ACKNOWLEDGE`: releases the task's next update if the uuid matches.
pub(super) fn acknowledge(state: &mut State, ack: &call::Acknowledge) {
    if let Some(task) = state.tasks.get_mut(&ack.task_id.value) {
        if task.pending_ack.as_deref() == Some(ack.uuid.as_slice()) {
            task.pending_ack = None;
        }
    }
}

/// The agent's `/state`, reduced to what frameworks read: each task's
/// executor with its sandbox `directory`.
pub(super) fn agent_state_json(inner: &Inner) -> serde_json::Value {
    let state = inner.lock();
    let mut frameworks: std::collections::BTreeMap<&str, (Vec<_>, Vec<_>)> = Default::default();
    for (task_id, task) in &state.tasks {
        let executor = serde_json::json!({
            "id": task_id,
            "name": format!("Command Executor (Task: {task_id})"),
            "directory": task.sandbox,
            "tasks": [],
        });
        let entry = frameworks.entry(&task.framework_id).or_default();
        if task.done {
            entry.1.push(executor);
        } else {
            entry.0.push(executor);
        }
    }
    let frameworks: Vec<_> = frameworks
        .into_iter()
        .map(|(id, (executors, completed))| {
            serde_json::json!({"id": id, "executors": executors, "completed_executors": completed})
        })
        .collect();
    serde_json::json!({
        "id": inner.agent_id(),
        "hostname": "localhost",
        "frameworks": frameworks,
    })
}

/// The content of a sandbox file, by real or virtual
/// (`/frameworks/F/executors/E/runs/latest/…`) path.
pub(super) fn file_content(inner: &Inner, path: &str) -> Option<String> {
    let state = inner.lock();
    state.tasks.iter().find_map(|(task_id, task)| {
        let virtual_dir = format!(
            "/frameworks/{}/executors/{task_id}/runs/latest",
            task.framework_id
        );
        [task.sandbox.as_str(), virtual_dir.as_str()]
            .iter()
            .find_map(|dir| match path.strip_prefix(dir) {
                Some("/stdout") => Some(task.stdout.clone()),
                Some("/stderr") => Some(task.stderr.clone()),
                _ => None,
            })
    })
}
