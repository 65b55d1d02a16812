//! The life of the command executor's one task: launch, watch, kill with
//! escalation, enforce `max_completion_time`, report, and decide when the
//! executor is done. Mirrors `CommandExecutor` in Mesos's
//! `src/launcher/executor.cpp`.
//!
//! It runs as one task on the driver's runtime, fed by the executor
//! callbacks through a channel, so all state lives in one place.

use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

use mesos_proto::v1::framework_info::capability;
use mesos_proto::v1::{
    task_status::Reason, CommandInfo, Environment, FrameworkInfo, KillPolicy, TaskId, TaskInfo,
    TaskState, TaskStatus,
};
use nix::sys::signal::Signal;
use tokio::process::Child;
use tokio::sync::mpsc;
use tokio::time::{sleep_until, Instant};

use super::launch::{self, CommandLine, LaunchError};
use super::process_group::ProcessGroup;
use super::termination::{self, KillCause};
use crate::driver::ExecutorDriver;

/// Mesos's command executor defaults the kill grace period to 3 s "for
/// backwards compatibility" when neither KILL nor TaskInfo has a KillPolicy.
pub(crate) const DEFAULT_KILL_GRACE_PERIOD: Duration = Duration::from_secs(3);
/// On SHUTDOWN the task gets the executor's grace period minus this, so the
/// forced kill and TASK_KILLED happen before the agent's own deadline.
const SHUTDOWN_KILL_MARGIN: Duration = Duration::from_secs(1);
/// How long to wait for the terminal update's acknowledgement (Mesos's
/// fail-safe for HTTP command executors).
pub(crate) const TERMINAL_ACK_TIMEOUT: Duration = Duration::from_secs(60);

/// What the executor callbacks forward.
#[derive(Debug)]
pub(crate) enum Input {
    Subscribed(Box<FrameworkInfo>),
    Launch(Box<TaskInfo>),
    LaunchGroup,
    Kill {
        task_id: TaskId,
        kill_policy: Option<KillPolicy>,
    },
    Acknowledged(Vec<u8>),
    Shutdown,
}

/// How the command executor ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The terminal update was acknowledged, or a shutdown came before any
    /// task: exit 0.
    Done,
    /// The agent never acknowledged the terminal update: exit 1.
    TerminalUpdateNotAcknowledged,
    /// Something Mesos's command executor treats as fatal (e.g. KILL before
    /// LAUNCH): exit 1.
    Aborted(String),
    /// The driver ended first (shutdown grace period over): exit 1.
    DriverEnded,
}

impl Outcome {
    /// The process exit code for this outcome.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Done => 0,
            _ => 1,
        }
    }
}

/// Settings that come from flags and the environment.
#[derive(Debug, Clone, Default)]
pub(crate) struct Settings {
    pub(crate) shutdown_grace_period: Duration,
    pub(crate) working_directory: Option<PathBuf>,
    pub(crate) task_command: Option<CommandInfo>,
    pub(crate) task_environment: Option<Environment>,
}

/// The launched task's process and kill state.
#[derive(Debug)]
struct Task {
    id: TaskId,
    kill_policy: Option<KillPolicy>,
    group: ProcessGroup,
    /// `None` once reaped.
    child: Option<Child>,
    kill_cause: KillCause,
    kill_started: Option<Instant>,
    /// When SIGTERM escalates to SIGKILL.
    escalation: Option<Instant>,
    /// When `max_completion_time` runs out.
    completion: Option<Instant>,
}

impl Drop for Task {
    /// Never leave a task behind when the executor goes away.
    fn drop(&mut self) {
        if self.child.is_some() {
            self.group.signal(Signal::SIGKILL);
        }
    }
}

pub(crate) struct TaskRunner {
    driver: ExecutorDriver,
    settings: Settings,
    inputs: mpsc::UnboundedReceiver<Input>,
    framework: Option<FrameworkInfo>,
    /// A LAUNCH was accepted (even if the process then failed to start).
    launched: bool,
    task: Option<Task>,
    /// The uuid of the terminal update, once sent.
    terminal_update: Option<[u8; 16]>,
    ack_deadline: Option<Instant>,
}

impl TaskRunner {
    pub(crate) fn new(
        driver: ExecutorDriver,
        settings: Settings,
        inputs: mpsc::UnboundedReceiver<Input>,
    ) -> Self {
        Self {
            driver,
            settings,
            inputs,
            framework: None,
            launched: false,
            task: None,
            terminal_update: None,
            ack_deadline: None,
        }
    }

    /// Runs until the executor is done, then stops the driver.
    pub(crate) async fn run(mut self) -> Outcome {
        let outcome = self.run_until_done().await;
        self.driver.stop();
        outcome
    }

    async fn run_until_done(&mut self) -> Outcome {
        loop {
            let (child, escalation, completion) = match self.task.as_mut() {
                Some(task) => (task.child.as_mut(), task.escalation, task.completion),
                None => (None, None, None),
            };
            tokio::select! {
                input = self.inputs.recv() => match input {
                    Some(input) => if let Some(outcome) = self.handle(input) {
                        return outcome;
                    },
                    None => return Outcome::DriverEnded,
                },
                status = wait_opt(child) => self.reaped(status),
                () = sleep_opt(escalation) => self.escalate(),
                () = sleep_opt(completion) => self.max_completion_time_reached(),
                () = sleep_opt(self.ack_deadline) => {
                    tracing::error!(
                        "did not receive an acknowledgement for the terminal status update \
                         within {TERMINAL_ACK_TIMEOUT:?}"
                    );
                    return Outcome::TerminalUpdateNotAcknowledged;
                }
            }
        }
    }

    fn handle(&mut self, input: Input) -> Option<Outcome> {
        match input {
            Input::Subscribed(framework) => self.framework = Some(*framework),
            Input::Launch(task) => self.launch(*task),
            Input::LaunchGroup => {
                // Task groups only ever go to the default executor.
                tracing::error!("LAUNCH_GROUP event is not supported");
                return self.shutdown();
            }
            Input::Kill {
                task_id,
                kill_policy,
            } => return self.kill(&task_id, kill_policy),
            Input::Acknowledged(uuid) => {
                if self.terminal_update.is_some_and(|t| t[..] == uuid[..]) {
                    tracing::info!("terminal status update acknowledged");
                    return Some(Outcome::Done);
                }
            }
            Input::Shutdown => return self.shutdown(),
        }
        None
    }

    fn launch(&mut self, task: TaskInfo) {
        if self.launched {
            self.send(
                &task.task_id,
                TaskState::TaskFailed,
                None,
                Some("Attempted to run multiple tasks using a \"command\" executor".into()),
            );
            return;
        }
        self.launched = true;
        let id = task.task_id.clone();
        self.send(&id, TaskState::TaskStarting, None, None);

        match self.start_process(&task) {
            Ok(task) => {
                tracing::info!(
                    "forked command for task '{}' as process group {}",
                    id.value,
                    task.group.id()
                );
                self.task = Some(task);
                self.send(&id, TaskState::TaskRunning, None, None);
            }
            Err(error) => {
                tracing::error!("{error}");
                self.finish(&id, TaskState::TaskFailed, None, error.to_string());
            }
        }
    }

    fn start_process(&self, task: &TaskInfo) -> Result<Task, LaunchError> {
        let id = &task.task_id.value;
        let command = self
            .settings
            .task_command
            .as_ref()
            .or(task.command.as_ref())
            .ok_or_else(|| LaunchError::NoCommand(id.clone()))?;
        let line = CommandLine::of(id, command)?;
        let environment =
            launch::environment(task, command, self.settings.task_environment.as_ref());
        tracing::info!("starting task '{id}': {:?}", line.argv);
        let child = launch::spawn(
            id,
            &line,
            &environment,
            self.settings.working_directory.as_deref(),
        )?;
        let group =
            child
                .id()
                .and_then(ProcessGroup::led_by)
                .ok_or_else(|| LaunchError::Spawn {
                    task_id: id.clone(),
                    program: line.program.clone(),
                    source: std::io::Error::other("the process exited before it could be watched"),
                })?;
        let completion = task
            .max_completion_time
            .as_ref()
            .and_then(|d| u64::try_from(d.nanoseconds).ok())
            .filter(|nanos| *nanos > 0)
            .map(|nanos| Instant::now() + Duration::from_nanos(nanos));
        Ok(Task {
            id: task.task_id.clone(),
            kill_policy: task.kill_policy,
            group,
            child: Some(child),
            kill_cause: KillCause::None,
            kill_started: None,
            escalation: None,
            completion,
        })
    }

    /// KILL: the event's policy beats the TaskInfo's, else 3 s.
    fn kill(&mut self, task_id: &TaskId, kill_policy: Option<KillPolicy>) -> Option<Outcome> {
        if !self.launched {
            // Mesos's command executor aborts here (MESOS-8297).
            let message = format!(
                "kill for task '{}' received before the task was launched",
                task_id.value
            );
            tracing::error!("{message}; terminating");
            return Some(Outcome::Aborted(message));
        }
        let Some(task) = self.task.as_mut() else {
            // The task never started; its TASK_FAILED is already out.
            return None;
        };
        if &task.id != task_id {
            tracing::warn!("ignoring kill for unknown task '{}'", task_id.value);
            return None;
        }
        task.completion = None;
        let grace = grace_period(kill_policy.as_ref())
            .or_else(|| grace_period(task.kill_policy.as_ref()))
            .unwrap_or(DEFAULT_KILL_GRACE_PERIOD);
        tracing::info!(
            "received kill for task '{}' with grace period {grace:?}",
            task_id.value
        );
        self.kill_with_grace(grace, KillCause::Requested);
        None
    }

    /// SIGTERM the group now, SIGKILL after `grace`. A repeated kill may
    /// only shorten the remaining grace period, never extend it (retries are
    /// no-ops), as in Mesos.
    fn kill_with_grace(&mut self, grace: Duration, cause: KillCause) {
        let killing_capable = self.framework_has(capability::Type::TaskKillingState);
        let Some(task) = self.task.as_mut() else {
            return;
        };
        if task.child.is_none() {
            return;
        }
        let now = Instant::now();
        if task.kill_cause != KillCause::None {
            if let (Some(started), Some(escalation)) = (task.kill_started, task.escalation) {
                let requested = started + grace;
                if requested < escalation {
                    task.escalation = Some(requested.max(now));
                }
            }
            return;
        }
        task.kill_cause = cause;
        task.kill_started = Some(now);
        task.escalation = Some(now + grace);
        let (id, group) = (task.id.clone(), task.group);
        if cause == KillCause::Requested && killing_capable {
            self.send(&id, TaskState::TaskKilling, None, None);
        }
        group.signal(Signal::SIGTERM);
    }

    /// The grace period is over: SIGKILL the group.
    fn escalate(&mut self) {
        if let Some(task) = self.task.as_mut() {
            task.escalation = None;
            if task.child.is_some() {
                tracing::info!(
                    "task '{}' did not terminate within its grace period",
                    task.id.value
                );
                task.group.signal(Signal::SIGKILL);
            }
        }
    }

    fn max_completion_time_reached(&mut self) {
        if let Some(task) = self.task.as_mut() {
            task.completion = None;
            tracing::info!(
                "killing task '{}' which exceeded its maximum completion time",
                task.id.value
            );
        }
        self.kill_with_grace(Duration::ZERO, KillCause::MaxCompletionTime);
    }

    /// The task's process ended: report its terminal state.
    fn reaped(&mut self, status: std::io::Result<ExitStatus>) {
        let Some(task) = self.task.as_mut() else {
            return;
        };
        task.child = None;
        task.escalation = None;
        task.completion = None;
        if task.kill_cause != KillCause::None {
            // Take down anything the command left behind in its group.
            task.group.signal(Signal::SIGKILL);
        }
        let (state, reason, message) = match status {
            Ok(status) => {
                let (state, reason) =
                    termination::terminal_state(status.success(), task.kill_cause);
                (state, reason, termination::message(status))
            }
            Err(e) => (
                TaskState::TaskFailed,
                None,
                format!("Failed to get exit status for Command: {e}"),
            ),
        };
        tracing::info!("{message} (task '{}')", task.id.value);
        let id = task.id.clone();
        self.finish(&id, state, reason, message);
    }

    /// SHUTDOWN: kill the task within the executor's own grace period, or
    /// be done at once if there is none.
    fn shutdown(&mut self) -> Option<Outcome> {
        tracing::info!("shutting down");
        if !self.launched {
            return Some(Outcome::Done);
        }
        if let Some(task) = self.task.as_mut() {
            task.completion = None;
        }
        let grace = self
            .settings
            .shutdown_grace_period
            .saturating_sub(SHUTDOWN_KILL_MARGIN);
        self.kill_with_grace(grace, KillCause::Requested);
        None
    }

    /// Sends the terminal update and starts waiting for its acknowledgement.
    fn finish(&mut self, id: &TaskId, state: TaskState, reason: Option<Reason>, message: String) {
        self.terminal_update = self.send(id, state, reason, Some(message));
        self.ack_deadline = Some(Instant::now() + TERMINAL_ACK_TIMEOUT);
    }

    fn send(
        &self,
        id: &TaskId,
        state: TaskState,
        reason: Option<Reason>,
        message: Option<String>,
    ) -> Option<[u8; 16]> {
        let status = TaskStatus {
            task_id: id.clone(),
            state: state as i32,
            reason: reason.map(|r| r as i32),
            message,
            ..Default::default()
        };
        match self.driver.send_status_update(status) {
            Ok(uuid) => Some(uuid),
            Err(e) => {
                tracing::error!(
                    "cannot send {} for task '{}': {e}",
                    state.as_str_name(),
                    id.value
                );
                None
            }
        }
    }

    fn framework_has(&self, wanted: capability::Type) -> bool {
        self.framework.as_ref().is_some_and(|framework| {
            framework
                .capabilities
                .iter()
                .any(|c| c.r#type == Some(wanted as i32))
        })
    }
}

fn grace_period(policy: Option<&KillPolicy>) -> Option<Duration> {
    let nanos = policy?.grace_period.as_ref()?.nanoseconds;
    // A negative grace period means "kill at once".
    Some(Duration::from_nanos(u64::try_from(nanos).unwrap_or(0)))
}

async fn wait_opt(child: Option<&mut Child>) -> std::io::Result<ExitStatus> {
    match child {
        Some(child) => child.wait().await,
        None => std::future::pending().await,
    }
}

async fn sleep_opt(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use mesos_proto::v1::DurationInfo;

    use super::*;

    fn policy(nanos: i64) -> KillPolicy {
        KillPolicy {
            grace_period: Some(DurationInfo { nanoseconds: nanos }),
        }
    }

    #[test]
    fn grace_period_comes_from_the_policy() {
        assert_eq!(grace_period(None), None);
        assert_eq!(grace_period(Some(&KillPolicy::default())), None);
        assert_eq!(
            grace_period(Some(&policy(1_500_000_000))),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(grace_period(Some(&policy(-1))), Some(Duration::ZERO));
    }

    #[test]
    fn only_success_exits_zero() {
        assert_eq!(Outcome::Done.exit_code(), 0);
        assert_eq!(Outcome::TerminalUpdateNotAcknowledged.exit_code(), 1);
        assert_eq!(Outcome::Aborted("x".into()).exit_code(), 1);
        assert_eq!(Outcome::DriverEnded.exit_code(), 1);
    }
}
