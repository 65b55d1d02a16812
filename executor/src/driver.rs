//! [`ExecutorDriver`]: connects an [`Executor`] to its agent.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use mesos_proto::v1::executor::{call, Call};
use mesos_proto::v1::{task_status, TaskState, TaskStatus};
use tokio::sync::mpsc;

use crate::config::{Config, ConfigError};
use crate::executor::Executor;
use crate::session::Session;
use crate::unacknowledged::Unacknowledged;

/// How a driver run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// [`ExecutorDriver::stop`] was called.
    Stopped,
    /// A shutdown (from the agent, or after losing the agent) was not
    /// finished by a `stop()` within `MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD`.
    /// A driver whose process leads its process group (as every executor the
    /// agent starts does) kills that group instead of returning this.
    ShutdownGracePeriodExpired,
}

/// Why the driver cannot run.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// `run`, `serve` or `start` was already called on this driver.
    #[error("the executor driver was already started")]
    AlreadyStarted,
    /// `join` without a preceding `start`.
    #[error("the executor driver was not started with start()")]
    NotStarted,
    /// The tokio runtime could not be built.
    #[error("cannot create the executor driver's runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// The driver thread could not be spawned.
    #[error("cannot spawn the executor driver thread: {0}")]
    Thread(#[source] std::io::Error),
    /// The driver thread panicked (most likely inside a callback).
    #[error("the executor driver thread panicked")]
    Panicked,
}

/// Why a status update or message was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Only the agent and master may use `TASK_STAGING`.
    #[error("executors may not send TASK_STAGING (task '{task_id}')")]
    Staging {
        /// The task the update was for.
        task_id: String,
    },
    /// The driver has finished; nothing can be sent any more.
    #[error("the executor driver has stopped")]
    Stopped,
}

/// Requests from driver handles to the running session.
#[derive(Debug)]
pub(crate) enum Command {
    /// Send this call when subscribed; dropped otherwise.
    Call(Box<Call>),
    /// End the run.
    Stop,
}

/// What `run` needs and takes exactly once.
struct Parts {
    executor: Box<dyn Executor>,
    commands: mpsc::UnboundedReceiver<Command>,
}

struct Inner {
    config: Config,
    commands: mpsc::UnboundedSender<Command>,
    parts: Mutex<Option<Parts>>,
    unacknowledged: Mutex<Unacknowledged>,
    thread: Mutex<Option<JoinHandle<Result<Exit, DriverError>>>>,
}

/// Runs an [`Executor`] against the agent's v1 executor API, and is the
/// handle the executor uses to talk back.
///
/// The driver subscribes at `MESOS_AGENT_ENDPOINT`, turns the agent's events
/// into [`Executor`] callbacks, sends status updates reliably (they are kept
/// until ACKNOWLEDGED and re-sent with every re-SUBSCRIBE), answers SHUTDOWN,
/// and reconnects after losing a checkpointing framework's agent.
///
/// It is a cheap, cloneable handle (`Send + Sync`); clones share one
/// connection. Run it with [`ExecutorDriver::run`] (blocking, on a
/// current-thread tokio runtime of its own), [`ExecutorDriver::serve`]
/// (inside your runtime) or [`ExecutorDriver::start`] + [`ExecutorDriver::join`]
/// (on a thread of its own).
#[derive(Clone)]
pub struct ExecutorDriver {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ExecutorDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecutorDriver")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl ExecutorDriver {
    /// A driver for `executor`, configured from the environment the agent
    /// set up (see [`Config::from_env`]).
    pub fn new(executor: impl Executor) -> Result<Self, ConfigError> {
        Ok(Self::with_config(executor, Config::from_env()?))
    }

    /// A driver for `executor` with an explicit configuration.
    pub fn with_config(executor: impl Executor, config: Config) -> Self {
        let (commands, receiver) = mpsc::unbounded_channel();
        Self {
            inner: Arc::new(Inner {
                config,
                commands,
                parts: Mutex::new(Some(Parts {
                    executor: Box::new(executor),
                    commands: receiver,
                })),
                unacknowledged: Mutex::new(Unacknowledged::default()),
                thread: Mutex::new(None),
            }),
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Runs the driver on this thread, on a current-thread tokio runtime of
    /// its own, until it stops. Must not be called from inside a tokio
    /// runtime (use [`ExecutorDriver::serve`] there).
    pub fn run(&self) -> Result<Exit, DriverError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(DriverError::Runtime)?;
        runtime.block_on(self.serve())
    }

    /// Runs the driver inside the caller's tokio runtime until it stops.
    pub async fn serve(&self) -> Result<Exit, DriverError> {
        let parts = lock(&self.inner.parts)
            .take()
            .ok_or(DriverError::AlreadyStarted)?;
        Ok(Session::new(self.clone(), parts.executor, parts.commands)
            .run()
            .await)
    }

    /// Runs the driver on a new thread; see [`ExecutorDriver::join`].
    pub fn start(&self) -> Result<(), DriverError> {
        let mut thread = lock(&self.inner.thread);
        if thread.is_some() || lock(&self.inner.parts).is_none() {
            return Err(DriverError::AlreadyStarted);
        }
        let driver = self.clone();
        let handle = std::thread::Builder::new()
            .name("mesos-executor-driver".into())
            .spawn(move || driver.run())
            .map_err(DriverError::Thread)?;
        *thread = Some(handle);
        Ok(())
    }

    /// Waits for a driver started with [`ExecutorDriver::start`] to end.
    pub fn join(&self) -> Result<Exit, DriverError> {
        let handle = lock(&self.inner.thread)
            .take()
            .ok_or(DriverError::NotStarted)?;
        handle.join().map_err(|_| DriverError::Panicked)?
    }

    /// Ends the run: calls already queued (e.g. a final status update) are
    /// still delivered if the agent is connected, then `run`/`serve`/`join`
    /// return [`Exit::Stopped`]. Unacknowledged updates are not waited for.
    pub fn stop(&self) {
        // A closed channel means the run is already over.
        let _ = self.inner.commands.send(Command::Stop);
    }

    /// Sends a status update. The driver sets `uuid` (16 fresh random
    /// bytes), `source` (`SOURCE_EXECUTOR`), `timestamp` (now) and
    /// `executor_id`, as Mesos's driver does, keeps the update until the
    /// agent acknowledges it and re-sends it with every re-SUBSCRIBE.
    /// Returns the uuid, which the matching ACKNOWLEDGED will carry.
    ///
    /// Updates sent while disconnected are not lost: they go out with the
    /// next SUBSCRIBE.
    pub fn send_status_update(&self, mut status: TaskStatus) -> Result<[u8; 16], SendError> {
        if status.state == TaskState::TaskStaging as i32 {
            return Err(SendError::Staging {
                task_id: status.task_id.value,
            });
        }
        let uuid = *uuid::Uuid::new_v4().as_bytes();
        status.uuid = Some(uuid.to_vec());
        status.source = Some(task_status::Source::Executor as i32);
        status.timestamp = Some(now_secs());
        status.executor_id = Some(self.inner.config.executor_id.clone());
        let update = call::Update { status };
        lock(&self.inner.unacknowledged).add_update(update.clone());
        let mut call = self.call(call::Type::Update);
        call.update = Some(update);
        self.send(call)?;
        Ok(uuid)
    }

    /// Sends `data` to the scheduler (best effort, like Mesos: dropped when
    /// the agent is not connected).
    pub fn send_framework_message(&self, data: Vec<u8>) -> Result<(), SendError> {
        let mut call = self.call(call::Type::Message);
        call.message = Some(call::Message { data });
        self.send(call)
    }

    /// Number of status updates the agent has not acknowledged yet.
    pub fn unacknowledged_update_count(&self) -> usize {
        lock(&self.inner.unacknowledged).update_count()
    }

    /// A call of `kind` from this executor, without payload.
    pub(crate) fn call(&self, kind: call::Type) -> Call {
        Call {
            executor_id: self.inner.config.executor_id.clone(),
            framework_id: self.inner.config.framework_id.clone(),
            r#type: Some(kind as i32),
            ..Default::default()
        }
    }

    pub(crate) fn unacknowledged(&self) -> MutexGuard<'_, Unacknowledged> {
        lock(&self.inner.unacknowledged)
    }

    fn send(&self, call: Call) -> Result<(), SendError> {
        self.inner
            .commands
            .send(Command::Call(Box::new(call)))
            .map_err(|_| SendError::Stopped)
    }
}

/// Locks `mutex`, ignoring poisoning: the guarded data stays consistent
/// because no code holding these locks can panic half-way.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Seconds since the epoch, as Mesos's `Clock::now().secs()`.
fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use mesos_proto::v1::{KillPolicy, TaskId, TaskInfo};

    use super::*;

    struct Nop;
    impl Executor for Nop {
        fn launch_task(&mut self, _: &ExecutorDriver, _: TaskInfo) {}
        fn kill_task(&mut self, _: &ExecutorDriver, _: TaskId, _: Option<KillPolicy>) {}
    }

    fn driver() -> ExecutorDriver {
        let config = Config::from_lookup(|name| {
            match name {
                "MESOS_AGENT_ENDPOINT" => Some("127.0.0.1:1"),
                "MESOS_FRAMEWORK_ID" => Some("fw"),
                "MESOS_EXECUTOR_ID" => Some("ex"),
                _ => None,
            }
            .map(str::to_owned)
        })
        .unwrap();
        ExecutorDriver::with_config(Nop, config)
    }

    fn status(state: TaskState) -> TaskStatus {
        TaskStatus {
            task_id: TaskId { value: "t".into() },
            state: state as i32,
            timestamp: Some(1.0),
            ..Default::default()
        }
    }

    #[test]
    fn update_is_filled_in_and_kept_until_acknowledged() {
        let driver = driver();
        let uuid = driver
            .send_status_update(status(TaskState::TaskRunning))
            .unwrap();
        let other = driver
            .send_status_update(status(TaskState::TaskFinished))
            .unwrap();
        assert_ne!(uuid, other);

        let subscribe = driver.unacknowledged().subscribe();
        let sent = &subscribe.unacknowledged_updates[0].status;
        assert_eq!(sent.uuid.as_deref(), Some(&uuid[..]));
        assert_eq!(sent.source, Some(task_status::Source::Executor as i32));
        assert_eq!(
            sent.executor_id.as_ref().map(|e| e.value.as_str()),
            Some("ex")
        );
        // Mesos stamps the send time, whatever the executor put there.
        assert!(sent.timestamp.unwrap() > 1_000_000_000.0);

        assert!(driver
            .unacknowledged()
            .acknowledge(&TaskId { value: "t".into() }, &uuid));
        assert_eq!(driver.unacknowledged_update_count(), 1);
    }

    #[test]
    fn staging_is_rejected() {
        let driver = driver();
        assert_eq!(
            driver.send_status_update(status(TaskState::TaskStaging)),
            Err(SendError::Staging {
                task_id: "t".into()
            })
        );
        assert_eq!(driver.unacknowledged_update_count(), 0);
    }

    #[test]
    fn join_without_start_and_double_start_are_errors() {
        let driver = driver();
        assert!(matches!(driver.join(), Err(DriverError::NotStarted)));
        // Take the parts as `serve` would; starting is then refused.
        drop(lock(&driver.inner.parts).take());
        assert!(matches!(driver.start(), Err(DriverError::AlreadyStarted)));
    }
}
