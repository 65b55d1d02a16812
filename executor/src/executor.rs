//! The callbacks an executor implements.

use mesos_proto::v1::executor::event::Subscribed;
use mesos_proto::v1::{KillPolicy, TaskGroupInfo, TaskId, TaskInfo};

use crate::driver::ExecutorDriver;

/// An executor: the code the agent starts to run a framework's tasks.
///
/// The [`ExecutorDriver`] calls these methods one at a time, in the order the
/// agent's events arrive, on the driver's runtime thread: a callback may call
/// `tokio::spawn` for work that takes time, and must not block. Every
/// callback gets the driver, to send status updates and messages or to stop.
///
/// Semantics follow the Mesos v1 executor API (`executor.proto`) and the v0
/// `Executor` interface it replaced.
pub trait Executor: Send + 'static {
    /// The agent accepted the first SUBSCRIBE: `subscribed` carries this
    /// executor's `ExecutorInfo`, the framework's `FrameworkInfo` (its
    /// capabilities decide, e.g., whether `TASK_KILLING` may be sent), the
    /// `AgentInfo` and the `ContainerId`. Tasks arrive after this.
    fn registered(&mut self, driver: &ExecutorDriver, subscribed: &Subscribed) {
        let _ = (driver, subscribed);
    }

    /// The driver re-subscribed after losing the agent (checkpointing
    /// frameworks only, see [`crate::Config::checkpoint`]); the agent may be a
    /// restarted one. Unacknowledged updates were re-sent with the SUBSCRIBE.
    fn reregistered(&mut self, driver: &ExecutorDriver, subscribed: &Subscribed) {
        let _ = (driver, subscribed);
    }

    /// The connection to the agent broke. With checkpointing the driver
    /// reconnects (then [`Executor::reregistered`] follows) for up to
    /// `MESOS_RECOVERY_TIMEOUT`; otherwise [`Executor::shutdown`] follows at
    /// once. Status updates sent meanwhile are kept and re-sent.
    fn disconnected(&mut self, driver: &ExecutorDriver) {
        let _ = driver;
    }

    /// LAUNCH: run `task`. The executor reports progress with
    /// [`ExecutorDriver::send_status_update`] (usually `TASK_STARTING` or
    /// `TASK_RUNNING` first, and exactly one terminal state in the end). The
    /// driver remembers the task until an update for it is acknowledged, so
    /// an agent that restarts meanwhile learns about it again.
    fn launch_task(&mut self, driver: &ExecutorDriver, task: TaskInfo);

    /// LAUNCH_GROUP: run all tasks of `task_group` together (only the agent's
    /// default executor gets these). The default reports an error through
    /// [`Executor::error`].
    fn launch_group(&mut self, driver: &ExecutorDriver, task_group: TaskGroupInfo) {
        let ids: Vec<&str> = task_group
            .tasks
            .iter()
            .map(|t| t.task_id.value.as_str())
            .collect();
        self.error(
            driver,
            &format!("LAUNCH_GROUP of tasks {ids:?} is not supported by this executor"),
        );
    }

    /// KILL: stop `task_id` and send its terminal update (`TASK_KILLED`).
    /// `kill_policy`, if present, overrides the one in the `TaskInfo`; its
    /// grace period is how long the task may take between the polite and the
    /// forced kill. A kill may be retried by the scheduler.
    fn kill_task(
        &mut self,
        driver: &ExecutorDriver,
        task_id: TaskId,
        kill_policy: Option<KillPolicy>,
    );

    /// ACKNOWLEDGED: the agent has durably recorded the update `uuid` of
    /// `task_id`; the driver has already forgotten it. An executor that is
    /// done may stop once its terminal updates are acknowledged.
    fn acknowledged(&mut self, driver: &ExecutorDriver, task_id: &TaskId, uuid: &[u8]) {
        let _ = (driver, task_id, uuid);
    }

    /// MESSAGE: opaque `data` from the scheduler (delivery is best effort).
    fn framework_message(&mut self, driver: &ExecutorDriver, data: Vec<u8>) {
        let _ = (driver, data);
    }

    /// SHUTDOWN, sent by the agent or injected by the driver after losing
    /// the agent for good: kill every task, send their terminal updates and
    /// stop the driver. After `MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD` the
    /// driver ends anyway (killing its process group if it leads one, as
    /// Mesos does).
    fn shutdown(&mut self, driver: &ExecutorDriver) {
        let _ = driver;
    }

    /// ERROR from the agent, or a problem the driver found (an event it could
    /// not decode, a call the agent rejected). Informational: the driver keeps
    /// running.
    fn error(&mut self, driver: &ExecutorDriver, message: &str) {
        let _ = driver;
        tracing::error!("executor error: {message}");
    }
}
