//! Mesos executors in Rust, on the agent's v1 executor HTTP API
//! (`POST /api/v1/executor`, see `mesos-protocol.md` §3).
//!
//! * The SDK: implement [`Executor`] and hand it to an [`ExecutorDriver`],
//!   which reads the agent-provided environment ([`Config`]), subscribes,
//!   calls your callbacks, and delivers [`ExecutorDriver::send_status_update`]
//!   reliably (kept until acknowledged, re-sent on re-subscription).
//! * [`command`]: the command executor, the `mesos-executor` binary the agent
//!   runs for command tasks.
//!
//! ```no_run
//! use mesos_executor::{Executor, ExecutorDriver};
//! use mesos_proto::v1::{KillPolicy, TaskId, TaskInfo, TaskState, TaskStatus};
//!
//! struct Hello;
//!
//! impl Executor for Hello {
//!     fn launch_task(&mut self, driver: &ExecutorDriver, task: TaskInfo) {
//!         for state in [TaskState::TaskRunning, TaskState::TaskFinished] {
//!             let status = TaskStatus {
//!                 task_id: task.task_id.clone(),
//!                 state: state as i32,
//!                 ..Default::default()
//!             };
//!             driver.send_status_update(status).ok();
//!         }
//!     }
//!
//!     fn kill_task(&mut self, _: &ExecutorDriver, _: TaskId, _: Option<KillPolicy>) {}
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! ExecutorDriver::new(Hello)?.run()?;
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]

pub mod command;
mod config;
mod driver;
mod executor;
mod http;
mod session;
mod unacknowledged;

pub use config::{
    Config, ConfigError, DEFAULT_RECOVERY_TIMEOUT, DEFAULT_SHUTDOWN_GRACE_PERIOD,
    DEFAULT_SUBSCRIPTION_BACKOFF_MAX,
};
pub use driver::{DriverError, ExecutorDriver, Exit, SendError};
pub use executor::Executor;
pub use mesos_proto::duration::{parse as parse_duration, DurationError};
