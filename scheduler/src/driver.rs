//! [`SchedulerDriver`]: the handle a framework holds. It starts the session
//! task, queues calls for the sender task, and reports how the driver ended.
//!
//! Seed step 4 (the user calls `launch_tasks`) is marked here.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use mesos_proto::v1::scheduler::{call, Call};
use mesos_proto::v1::{
    offer, AgentId, ExecutorId, Filters, FrameworkId, OfferId, TaskId, TaskInfo, TaskStatus,
};
use tokio::sync::{mpsc, watch};

use crate::config::DriverConfig;
use crate::endpoint::EndpointError;
use crate::master_client::HttpError;
use crate::scheduler::Scheduler;
use crate::sender::Outgoing;
use crate::{session, TIMELINE_TARGET};

/// Why a driver call was refused, or how a driver ended.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DriverError {
    /// `start` was not called, or the driver has stopped.
    #[error("the scheduler driver is not running")]
    NotRunning,
    /// `start` was called twice.
    #[error("the scheduler driver was already started")]
    AlreadyStarted,
    /// `start` was called outside a tokio runtime.
    #[error("the scheduler driver must be started inside a tokio runtime")]
    NoRuntime,
    /// The call needs a framework id and `SUBSCRIBED` has not arrived yet.
    #[error("the framework is not subscribed yet (no framework id)")]
    NotSubscribed,
    /// `acknowledge_status_update` with implicit acknowledgements on.
    #[error("acknowledge_status_update called although implicit acknowledgements are enabled")]
    ImplicitAcknowledgements,
    /// The update carries no uuid (or no agent id), so there is nothing to
    /// acknowledge.
    #[error("the status update of task '{task_id}' has no uuid and agent id to acknowledge")]
    NothingToAcknowledge {
        /// The task of the update.
        task_id: String,
    },
    /// A call with arguments Mesos would reject (e.g. no offer ids).
    #[error("invalid {call}: {reason}")]
    InvalidCall {
        /// The call's name.
        call: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The master address is unusable.
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
    /// The master stayed unreachable for longer than
    /// [`DriverConfig::give_up_after`].
    #[error("no subscription with master {master} for {waited:?}: {last_error}")]
    MasterUnreachable {
        /// The master last tried.
        master: String,
        /// How long the driver kept trying.
        waited: Duration,
        /// The last attempt's error.
        last_error: HttpError,
    },
    /// The master refused `SUBSCRIBE` (a `4xx`, e.g. an invalid
    /// `FrameworkInfo`).
    #[error("the master rejected SUBSCRIBE: {0}")]
    SubscribeRejected(HttpError),
    /// The master sent an `ERROR` event (e.g. the framework was removed).
    #[error("the master reported an error: {0}")]
    MasterError(String),
    /// [`SchedulerDriver::abort`] was called.
    #[error("the scheduler driver was aborted")]
    Aborted,
    /// The driver's task ended abnormally (a callback panicked).
    #[error("the scheduler driver task failed: {0}")]
    Crashed(String),
}

/// Why a queued call did not reach the master.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallFailureReason {
    /// No subscription was open when the call's turn came.
    #[error("not connected to the master")]
    NotConnected,
    /// The request failed or the master answered with an error status.
    #[error(transparent)]
    Http(#[from] HttpError),
}

/// A call that could not be delivered, handed to
/// [`Scheduler::call_failed`].
#[derive(Debug, Clone, thiserror::Error)]
#[error("{} call failed: {reason}", call_type_name(call))]
pub struct CallFailure {
    /// The call, as it was queued.
    pub call: Call,
    /// Why it failed.
    pub reason: CallFailureReason,
}

/// The name of a call's type, e.g. `ACCEPT`.
pub(crate) fn call_type_name(call: &Call) -> &'static str {
    call::Type::try_from(call.r#type.unwrap_or_default())
        .unwrap_or(call::Type::Unknown)
        .as_str_name()
}

/// Where a driver is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriverStatus {
    /// Created, `start` not called yet.
    NotStarted,
    /// Started; connected or trying to connect.
    Running,
    /// Ended after `stop`.
    Stopped,
    /// Ended on an error or `abort`.
    Aborted,
}

#[derive(Debug, Clone)]
enum Lifecycle {
    NotStarted,
    Running,
    Done(Result<(), DriverError>),
}

/// Call and subscription state shared by the handle, the session and the
/// sender.
#[derive(Debug, Default)]
struct State {
    framework_id: Option<FrameworkId>,
    stream_id: Option<String>,
    /// `stop` or `abort` was called: no more public calls or callbacks.
    stopping: bool,
    aborted: bool,
    /// A callback is running on the session task.
    in_callback: bool,
    /// `stop(failover)` called during a callback, sent when it returns so
    /// that the update's implicit acknowledgement goes out first.
    deferred_stop: Option<bool>,
}

/// The parts `start` moves into the session task.
struct StartParts {
    scheduler: Box<dyn Scheduler>,
    outgoing: mpsc::UnboundedReceiver<Outgoing>,
}

impl std::fmt::Debug for StartParts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StartParts").finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct Shared {
    config: DriverConfig,
    state: Mutex<State>,
    outgoing: mpsc::UnboundedSender<Outgoing>,
    stop: watch::Sender<bool>,
    lifecycle: watch::Sender<Lifecycle>,
    start_parts: Mutex<Option<StartParts>>,
}

/// The driver of one framework. Cheap to clone; every clone controls the
/// same driver, so callbacks, other tasks and threads can all call it.
///
/// Calls (`launch_tasks`, `decline_offer`, …) only check their arguments and
/// queue the request; one sender task posts them to the master in the order
/// they were made. A call the master rejects, or one whose turn comes while
/// the driver is disconnected (it is dropped, as in Mesos's scheduler
/// library), is logged and reported to [`Scheduler::call_failed`].
#[derive(Debug, Clone)]
pub struct SchedulerDriver {
    shared: Arc<Shared>,
}

impl SchedulerDriver {
    /// A driver for `scheduler`; nothing happens until [`Self::start`].
    pub fn new<S: Scheduler>(scheduler: S, config: DriverConfig) -> Self {
        let (outgoing_tx, outgoing_rx) = mpsc::unbounded_channel();
        let framework_id = config.framework.id.clone();
        Self {
            shared: Arc::new(Shared {
                config,
                state: Mutex::new(State {
                    framework_id,
                    ..State::default()
                }),
                outgoing: outgoing_tx,
                stop: watch::Sender::new(false),
                lifecycle: watch::Sender::new(Lifecycle::NotStarted),
                start_parts: Mutex::new(Some(StartParts {
                    scheduler: Box::new(scheduler),
                    outgoing: outgoing_rx,
                })),
            }),
        }
    }

    /// Starts subscribing, on the current tokio runtime. Returns at once.
    pub fn start(&self) -> Result<(), DriverError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| DriverError::NoRuntime)?;
        let parts = self
            .shared
            .start_parts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .ok_or(DriverError::AlreadyStarted)?;
        self.shared.lifecycle.send_replace(Lifecycle::Running);
        let driver = self.clone();
        runtime.spawn(async move {
            let session = tokio::spawn(session::run(
                driver.clone(),
                parts.scheduler,
                parts.outgoing,
            ));
            let result = session
                .await
                .unwrap_or_else(|e| Err(DriverError::Crashed(e.to_string())));
            driver.finish(result);
        });
        Ok(())
    }

    /// Stops the driver. Without `failover` the framework is torn down
    /// (`TEARDOWN`: its tasks are killed); with it the master keeps the
    /// framework for its `failover_timeout` so another driver can take over
    /// with the same framework id. Calls queued before `stop` are sent first.
    /// Returns at once; [`Self::join`] waits for the end.
    pub fn stop(&self, failover: bool) -> Result<(), DriverError> {
        self.ensure_running()?;
        let mut state = self.lock();
        if state.stopping {
            return Ok(());
        }
        state.stopping = true;
        if state.in_callback {
            state.deferred_stop = Some(failover);
        } else {
            drop(state);
            self.queue(Outgoing::Stop { failover });
        }
        Ok(())
    }

    /// Ends the driver at once, without `TEARDOWN` and without sending queued
    /// calls; [`Self::join`] then returns [`DriverError::Aborted`].
    pub fn abort(&self) -> Result<(), DriverError> {
        self.ensure_running()?;
        {
            let mut state = self.lock();
            state.stopping = true;
            state.aborted = true;
        }
        self.signal_stop();
        Ok(())
    }

    /// Waits until the driver has ended: `Ok` after [`Self::stop`], the cause
    /// otherwise.
    pub async fn join(&self) -> Result<(), DriverError> {
        let mut lifecycle = self.shared.lifecycle.subscribe();
        loop {
            match &*lifecycle.borrow_and_update() {
                Lifecycle::Done(result) => return result.clone(),
                Lifecycle::NotStarted => return Err(DriverError::NotRunning),
                Lifecycle::Running => {}
            }
            if lifecycle.changed().await.is_err() {
                return Err(DriverError::NotRunning);
            }
        }
    }

    /// [`Self::start`] then [`Self::join`].
    pub async fn run(&self) -> Result<(), DriverError> {
        self.start()?;
        self.join().await
    }

    /// Where the driver is in its life.
    pub fn status(&self) -> DriverStatus {
        match &*self.shared.lifecycle.borrow() {
            Lifecycle::NotStarted => DriverStatus::NotStarted,
            Lifecycle::Running => DriverStatus::Running,
            Lifecycle::Done(Ok(())) => DriverStatus::Stopped,
            Lifecycle::Done(Err(_)) => DriverStatus::Aborted,
        }
    }

    /// The framework id, once subscribed (or given in the config).
    pub fn framework_id(&self) -> Option<FrameworkId> {
        self.lock().framework_id.clone()
    }

    /// The driver's settings.
    pub fn config(&self) -> &DriverConfig {
        &self.shared.config
    }

    /// Launches `tasks` on the resources of `offer_ids` (all from one agent):
    /// an `ACCEPT` with one `LAUNCH` operation. Unused resources are
    /// declined with `filters`. An empty `tasks` declines the offers.
    pub fn launch_tasks(
        &self,
        offer_ids: Vec<OfferId>,
        tasks: Vec<TaskInfo>,
        filters: Option<Filters>,
    ) -> Result<(), DriverError> {
        let operations = if tasks.is_empty() {
            Vec::new()
        } else {
            vec![offer::Operation {
                r#type: Some(offer::operation::Type::Launch as i32),
                launch: Some(offer::operation::Launch { task_infos: tasks }),
                ..Default::default()
            }]
        };
        self.accept_offers(offer_ids, operations, filters)
    }

    /// Applies `operations` (launch, reserve, create volumes, …) to the
    /// resources of `offer_ids`: an `ACCEPT` call.
    pub fn accept_offers(
        &self,
        offer_ids: Vec<OfferId>,
        operations: Vec<offer::Operation>,
        filters: Option<Filters>,
    ) -> Result<(), DriverError> {
        if offer_ids.is_empty() {
            return Err(DriverError::InvalidCall {
                call: "ACCEPT",
                reason: "no offer ids".into(),
            });
        }
        let task_ids = launched_task_ids(&operations);
        let _step4 = (!task_ids.is_empty()).then(|| {
            tracing::info_span!(
                target: TIMELINE_TARGET,
                "launch_tasks called",
                seed_step = 4u64,
                task_id = %task_ids.join(","),
                offer_id = %join_ids(offer_ids.iter().map(|id| id.value.as_str())),
            )
            .entered()
        });
        self.send(Call {
            r#type: Some(call::Type::Accept as i32),
            accept: Some(call::Accept {
                offer_ids,
                operations,
                filters,
            }),
            ..Default::default()
        })
    }

    /// Gives an offer back; `filters` says how long not to re-offer its
    /// resources (Mesos's default is 5 s).
    pub fn decline_offer(
        &self,
        offer_id: OfferId,
        filters: Option<Filters>,
    ) -> Result<(), DriverError> {
        self.send(Call {
            r#type: Some(call::Type::Decline as i32),
            decline: Some(call::Decline {
                offer_ids: vec![offer_id],
                filters,
            }),
            ..Default::default()
        })
    }

    /// Clears offer filters and resumes offers for `roles` (all of the
    /// framework's roles when empty).
    pub fn revive_offers(&self, roles: Vec<String>) -> Result<(), DriverError> {
        self.send(Call {
            r#type: Some(call::Type::Revive as i32),
            revive: Some(call::Revive { roles }),
            ..Default::default()
        })
    }

    /// Stops offers for `roles` (all when empty) until [`Self::revive_offers`].
    pub fn suppress_offers(&self, roles: Vec<String>) -> Result<(), DriverError> {
        self.send(Call {
            r#type: Some(call::Type::Suppress as i32),
            suppress: Some(call::Suppress { roles }),
            ..Default::default()
        })
    }

    /// Asks the task's executor to kill it; the result arrives as a status
    /// update (`TASK_KILLED`). `agent_id` is needed for tasks the master does
    /// not know (e.g. after its failover).
    pub fn kill_task(&self, task_id: TaskId, agent_id: Option<AgentId>) -> Result<(), DriverError> {
        self.send(Call {
            r#type: Some(call::Type::Kill as i32),
            kill: Some(call::Kill {
                task_id,
                agent_id,
                kill_policy: None,
            }),
            ..Default::default()
        })
    }

    /// Acknowledges an update, letting the agent send the task's next one.
    /// Only with implicit acknowledgements turned off.
    pub fn acknowledge_status_update(&self, status: &TaskStatus) -> Result<(), DriverError> {
        if self.shared.config.implicit_acknowledgements {
            return Err(DriverError::ImplicitAcknowledgements);
        }
        let call = acknowledge_call(status).ok_or_else(|| DriverError::NothingToAcknowledge {
            task_id: status.task_id.value.clone(),
        })?;
        self.send(call)
    }

    /// Asks for the latest state of the tasks named in `statuses` (their
    /// `task_id` and `agent_id`), or of all tasks when empty; answers arrive as
    /// status updates with `REASON_RECONCILIATION`.
    pub fn reconcile_tasks(&self, statuses: &[TaskStatus]) -> Result<(), DriverError> {
        let tasks = statuses
            .iter()
            .map(|status| call::reconcile::Task {
                task_id: status.task_id.clone(),
                agent_id: status.agent_id.clone(),
            })
            .collect();
        self.send(Call {
            r#type: Some(call::Type::Reconcile as i32),
            reconcile: Some(call::Reconcile { tasks }),
            ..Default::default()
        })
    }

    /// Sends `data` to an executor (its `framework_message` callback).
    pub fn send_framework_message(
        &self,
        executor_id: ExecutorId,
        agent_id: AgentId,
        data: Vec<u8>,
    ) -> Result<(), DriverError> {
        self.send(Call {
            r#type: Some(call::Type::Message as i32),
            message: Some(call::Message {
                agent_id,
                executor_id,
                data,
            }),
            ..Default::default()
        })
    }

    // ---- internals used by the session, dispatch and sender ----

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every critical section leaves the state consistent, so a panic in
        // another holder does not make it unusable.
        self.shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn ensure_running(&self) -> Result<(), DriverError> {
        match &*self.shared.lifecycle.borrow() {
            Lifecycle::Running => Ok(()),
            _ => Err(DriverError::NotRunning),
        }
    }

    /// Queues a public call: refused once stopping.
    fn send(&self, call: Call) -> Result<(), DriverError> {
        self.ensure_running()?;
        if self.lock().stopping {
            return Err(DriverError::NotRunning);
        }
        self.send_internal(call)
    }

    /// Queues a call even while stopping (the acknowledgement of the update
    /// whose callback called `stop`).
    pub(crate) fn send_internal(&self, mut call: Call) -> Result<(), DriverError> {
        let framework_id = self.framework_id().ok_or(DriverError::NotSubscribed)?;
        call.framework_id = Some(framework_id);
        self.queue(Outgoing::Call(Box::new(call)));
        Ok(())
    }

    fn queue(&self, outgoing: Outgoing) {
        if self.shared.outgoing.send(outgoing).is_err() {
            tracing::debug!("scheduler driver sender has ended; call dropped");
        }
    }

    pub(crate) fn set_framework_id(&self, id: FrameworkId) {
        self.lock().framework_id = Some(id);
    }

    pub(crate) fn set_stream_id(&self, stream_id: Option<String>) {
        self.lock().stream_id = stream_id;
    }

    pub(crate) fn stream_id(&self) -> Option<String> {
        self.lock().stream_id.clone()
    }

    pub(crate) fn is_stopping(&self) -> bool {
        self.lock().stopping
    }

    pub(crate) fn is_aborted(&self) -> bool {
        self.lock().aborted
    }

    /// Marks the start of a callback (see `deferred_stop`).
    pub(crate) fn enter_callback(&self) {
        self.lock().in_callback = true;
    }

    /// Marks the end of a callback and sends a `stop` it deferred.
    pub(crate) fn leave_callback(&self) {
        let deferred = {
            let mut state = self.lock();
            state.in_callback = false;
            state.deferred_stop.take()
        };
        if let Some(failover) = deferred {
            self.queue(Outgoing::Stop { failover });
        }
    }

    /// Tells the session to end.
    pub(crate) fn signal_stop(&self) {
        self.shared.stop.send_replace(true);
    }

    /// A receiver that turns `true` when the session must end.
    pub(crate) fn stop_receiver(&self) -> watch::Receiver<bool> {
        self.shared.stop.subscribe()
    }

    /// Records how the driver ended and wakes `join`ers.
    fn finish(&self, result: Result<(), DriverError>) {
        {
            let mut state = self.lock();
            state.stopping = true;
            state.stream_id = None;
        }
        self.shared.lifecycle.send_replace(Lifecycle::Done(result));
    }

    /// The subscription call: failover when a framework id is known.
    pub(crate) fn subscribe_call(&self) -> Call {
        let framework_id = self.framework_id();
        let mut framework_info = self.shared.config.framework.clone();
        framework_info.id = framework_id.clone();
        Call {
            framework_id,
            r#type: Some(call::Type::Subscribe as i32),
            subscribe: Some(call::Subscribe {
                framework_info,
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}

/// The `ACKNOWLEDGE` for an update, if it carries a uuid and an agent id.
pub(crate) fn acknowledge_call(status: &TaskStatus) -> Option<Call> {
    let uuid = status.uuid.clone().filter(|uuid| !uuid.is_empty())?;
    let agent_id = status.agent_id.clone()?;
    Some(Call {
        r#type: Some(call::Type::Acknowledge as i32),
        acknowledge: Some(call::Acknowledge {
            agent_id,
            task_id: status.task_id.clone(),
            uuid,
        }),
        ..Default::default()
    })
}

/// Ids of the tasks launched by `operations` (`LAUNCH` and `LAUNCH_GROUP`).
pub(crate) fn launched_task_ids(operations: &[offer::Operation]) -> Vec<String> {
    let launch = operations
        .iter()
        .filter_map(|op| op.launch.as_ref())
        .flat_map(|launch| &launch.task_infos);
    let group = operations
        .iter()
        .filter_map(|op| op.launch_group.as_ref())
        .flat_map(|group| &group.task_group.tasks);
    launch
        .chain(group)
        .map(|task| task.task_id.value.clone())
        .collect()
}

/// `a,b,c`: the form of the `task_id` and `offer_id` timeline fields.
pub(crate) fn join_ids<'a>(ids: impl Iterator<Item = &'a str>) -> String {
    ids.collect::<Vec<_>>().join(",")
}
