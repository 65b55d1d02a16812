//! The command executor (`mesos-executor`), built on the SDK: the executor
//! the agent starts for tasks that carry a `CommandInfo` and no
//! `ExecutorInfo`, as Mesos's `src/launcher/executor.cpp`.
//!
//! It accepts exactly one task and:
//! * sends `TASK_STARTING`, runs the command (`/bin/sh -c value`, or `value`
//!   with `arguments` as argv) in a process group of its own, in the
//!   sandbox, with the command's environment added to its own, and sends
//!   `TASK_RUNNING` once the process exists;
//! * on exit sends `TASK_FINISHED` (status 0) or `TASK_FAILED` with
//!   "Command exited with status N" / "Command terminated with signal X";
//! * on KILL sends `TASK_KILLING` (if the framework has the
//!   `TASK_KILLING_STATE` capability), SIGTERMs the group, SIGKILLs it after
//!   the kill policy's grace period (default 3 s) and sends `TASK_KILLED`;
//! * past `max_completion_time` kills the task at once and sends
//!   `TASK_FAILED` with `REASON_MAX_COMPLETION_TIME_REACHED`;
//! * on SHUTDOWN kills the task within the shutdown grace period;
//! * exits 0 once the terminal update is acknowledged (1 if no
//!   acknowledgement comes within 60 s, as Mesos).
//!
//! Health checks and `CheckInfo` are not run.

mod flags;
mod launch;
mod process_group;
mod runner;
mod termination;

pub use flags::{Args, Flags, FlagsError, USAGE};
pub use runner::Outcome;

use mesos_proto::v1::executor::event::Subscribed;
use mesos_proto::v1::{KillPolicy, TaskGroupInfo, TaskId, TaskInfo};
use tokio::sync::mpsc;

use crate::config::Config;
use crate::driver::{DriverError, ExecutorDriver};
use crate::executor::Executor;
use runner::{Input, Settings, TaskRunner};

/// The [`Executor`] half of the command executor: forwards every callback to
/// the task runner, which owns all state.
#[derive(Debug)]
pub(crate) struct CommandExecutor {
    inputs: mpsc::UnboundedSender<Input>,
}

impl CommandExecutor {
    fn forward(&self, input: Input) {
        // The runner only goes away when the executor is finishing.
        let _ = self.inputs.send(input);
    }

    fn subscribed(&self, subscribed: &Subscribed) {
        tracing::info!("subscribed executor on {}", subscribed.agent_info.hostname);
        self.forward(Input::Subscribed(Box::new(
            subscribed.framework_info.clone(),
        )));
    }
}

impl Executor for CommandExecutor {
    fn registered(&mut self, _: &ExecutorDriver, subscribed: &Subscribed) {
        self.subscribed(subscribed);
    }

    fn reregistered(&mut self, _: &ExecutorDriver, subscribed: &Subscribed) {
        self.subscribed(subscribed);
    }

    fn disconnected(&mut self, _: &ExecutorDriver) {
        tracing::warn!("disconnected from the agent");
    }

    fn launch_task(&mut self, _: &ExecutorDriver, task: TaskInfo) {
        self.forward(Input::Launch(Box::new(task)));
    }

    fn launch_group(&mut self, _: &ExecutorDriver, _: TaskGroupInfo) {
        self.forward(Input::LaunchGroup);
    }

    fn kill_task(&mut self, _: &ExecutorDriver, task_id: TaskId, kill_policy: Option<KillPolicy>) {
        self.forward(Input::Kill {
            task_id,
            kill_policy,
        });
    }

    fn acknowledged(&mut self, _: &ExecutorDriver, _: &TaskId, uuid: &[u8]) {
        self.forward(Input::Acknowledged(uuid.to_vec()));
    }

    fn framework_message(&mut self, _: &ExecutorDriver, data: Vec<u8>) {
        tracing::info!("ignoring a framework message of {} bytes", data.len());
    }

    fn shutdown(&mut self, _: &ExecutorDriver) {
        self.forward(Input::Shutdown);
    }

    fn error(&mut self, _: &ExecutorDriver, message: &str) {
        tracing::error!("error: {message}");
    }
}

/// Runs the command executor to completion on a current-thread runtime
/// (one thread: the executor sits next to every task, so it stays small).
pub fn run(flags: Flags, config: Config) -> Result<Outcome, DriverError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(DriverError::Runtime)?;
    runtime.block_on(serve(flags, config))
}

async fn serve(flags: Flags, config: Config) -> Result<Outcome, DriverError> {
    let settings = Settings {
        shutdown_grace_period: config.shutdown_grace_period,
        working_directory: flags.working_directory.or_else(|| config.sandbox.clone()),
        task_command: flags.task_command,
        task_environment: flags.task_environment,
    };
    let (inputs, receiver) = mpsc::unbounded_channel();
    let driver = ExecutorDriver::with_config(CommandExecutor { inputs }, config);
    let runner = tokio::spawn(TaskRunner::new(driver.clone(), settings, receiver).run());
    let exit = driver.serve().await?;
    if runner.is_finished() {
        return Ok(runner.await.unwrap_or(Outcome::DriverEnded));
    }
    // The driver gave up first (shutdown grace period); dropping the runner
    // kills a task that is still alive.
    tracing::warn!("executor driver ended ({exit:?}) before the task was done");
    runner.abort();
    let _ = runner.await;
    Ok(Outcome::DriverEnded)
}
