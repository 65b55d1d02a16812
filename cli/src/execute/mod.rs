//! `mesos-execute`: run one command as a Mesos task, like Apache Mesos's
//! CLI framework of the same name.
//!
//! ```text
//! mesos-execute --master=127.0.0.1:5050 --name=hello --command='echo hello' \
//!     --resources='cpus:0.5;mem:128'
//! ```
//!
//! It subscribes as a framework (`--framework_name`, `--role`,
//! `--checkpoint`), launches the task on the first offer that holds
//! `--resources`, prints every status update with its time, the task's
//! sandbox directory (from the agent's `/state`), kills the task after
//! `--kill_after` if given, and at the terminal update prints the tail of the
//! task's `stdout` and `stderr` (the agent's `/files/read`), tears the
//! framework down and exits with a code telling how the task ended (see
//! [`exit::EXIT_CODES_HELP`]).

pub mod agent;
pub mod exit;
pub mod flags;
pub mod report;
pub mod scheduler;
pub mod task;

use std::sync::Arc;

use mesos_proto::codec::ContentType;
use mesos_proto::v1::{framework_info, FrameworkInfo, TaskState};
use mesos_scheduler::{DriverConfig, DriverError, HttpError, SchedulerDriver};

use exit::Exit;
use flags::Flags;
use scheduler::{CommandScheduler, SharedProgress};

/// Runs `mesos-execute` to the end and returns how it ended. Progress goes
/// to stdout, the reason for a non-task failure to stderr.
pub async fn run(flags: Flags) -> Exit {
    let flags = Arc::new(flags);
    let progress = SharedProgress::default();
    let config = match driver_config(&flags) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("mesos-execute: {e}");
            return Exit::BadFlags;
        }
    };
    let driver = SchedulerDriver::new(
        CommandScheduler::new(flags.clone(), progress.clone()),
        config,
    );
    if let Err(e) = driver.start() {
        eprintln!("mesos-execute: {e}");
        return Exit::FrameworkError;
    }
    let result = tokio::select! {
        result = driver.join() => result,
        () = progress.ended() => {
            // Read the sandbox while the framework still exists, then tear
            // it down.
            let lookup = progress.lock().sandbox_lookup.take();
            if let Some(lookup) = lookup {
                let _ = lookup.await;
            }
            print_tails(&flags, &driver, &progress).await;
            let _ = driver.stop(false);
            driver.join().await
        }
    };
    let end = progress.lock().end.clone();
    match end {
        Some(end) => {
            if let Err(e) = result {
                tracing::warn!(error = %e, "the driver did not stop cleanly");
            }
            Exit::for_state(TaskState::try_from(end.state).unwrap_or(TaskState::TaskUnknown))
        }
        None => {
            let failure = progress.lock().failure.clone();
            explain(&flags, result, failure)
        }
    }
}

fn driver_config(flags: &Flags) -> Result<DriverConfig, DriverError> {
    let content_type = match flags.content_type.as_str() {
        "protobuf" => ContentType::Protobuf,
        _ => ContentType::Json,
    };
    Ok(
        DriverConfig::new(flags.master.authority(), framework_info(flags))?
            .content_type(content_type)
            .give_up_after(flags.connect_timeout.get()),
    )
}

/// The framework as Mesos's `mesos-execute` registers it.
fn framework_info(flags: &Flags) -> FrameworkInfo {
    #[allow(deprecated)] // Mesos's mesos-execute sets the single `role`.
    FrameworkInfo {
        user: current_user(),
        name: flags.framework_name.clone(),
        role: Some(flags.role.clone()),
        checkpoint: Some(flags.checkpoint),
        capabilities: vec![framework_info::Capability {
            r#type: Some(framework_info::capability::Type::TaskKillingState as i32),
        }],
        ..Default::default()
    }
}

/// The name of the user running `mesos-execute`, the tasks' default user.
fn current_user() -> String {
    nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map(|user| user.name)
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "root".into())
}

/// Prints where the task ran and the end of its output.
async fn print_tails(flags: &Flags, driver: &SchedulerDriver, progress: &SharedProgress) {
    let (agent, executor_id, sandbox) = {
        let p = progress.lock();
        (p.agent.clone(), p.executor_id.clone(), p.sandbox.clone())
    };
    let (Some(agent), Some(executor_id)) = (agent, executor_id) else {
        return;
    };
    if flags.tail_bytes == 0 {
        return;
    }
    // The agent attaches each sandbox under its real path and under a
    // virtual one, usable even when `/state` could not be read.
    let directory = sandbox.unwrap_or_else(|| {
        let framework_id = driver.framework_id().map(|id| id.value).unwrap_or_default();
        format!("/frameworks/{framework_id}/executors/{executor_id}/runs/latest")
    });
    for name in ["stdout", "stderr"] {
        let tail = agent
            .tail(&format!("{directory}/{name}"), flags.tail_bytes)
            .await;
        report::tail(name, &tail);
    }
}

/// The message and exit for a run that ended without a terminal update.
fn explain(flags: &Flags, result: Result<(), DriverError>, failure: Option<String>) -> Exit {
    if let Some(failure) = failure {
        eprintln!("mesos-execute: {failure}");
        return Exit::FrameworkError;
    }
    match result {
        Err(DriverError::MasterUnreachable { last_error, .. }) => {
            let cause = match last_error {
                HttpError::Connect { reason, .. } => reason,
                other => other.to_string(),
            };
            eprintln!(
                "mesos-execute: cannot reach the master at {} (--master): {cause}; gave up after {} (--connect_timeout)",
                flags.master, flags.connect_timeout
            );
            Exit::MasterUnreachable
        }
        Err(e) => {
            eprintln!("mesos-execute: {e}");
            Exit::FrameworkError
        }
        Ok(()) => {
            eprintln!("mesos-execute: the driver stopped before the task ended");
            Exit::FrameworkError
        }
    }
}
