//! The callbacks a framework implements.

use mesos_proto::v1::{AgentId, ExecutorId, FrameworkId, MasterInfo, Offer, OfferId, TaskStatus};

use crate::driver::{CallFailure, SchedulerDriver};

/// A framework's scheduler: the driver calls these as events arrive.
///
/// Callbacks run one at a time, in the order the master sent the events, on
/// the driver's tokio task: keep them short and never block in them (hand
/// long work to another task). Use the `driver` argument to answer, e.g. call
/// [`SchedulerDriver::launch_tasks`] from [`Scheduler::resource_offers`]; such
/// calls only queue the request and return at once.
///
/// Only [`Scheduler::resource_offers`] and [`Scheduler::status_update`] must
/// be written; the other callbacks default to doing nothing (`error` logs).
pub trait Scheduler: Send + 'static {
    /// The first `SUBSCRIBED` of this driver: the master knows the framework
    /// as `framework_id`.
    fn registered(
        &mut self,
        driver: &SchedulerDriver,
        framework_id: &FrameworkId,
        master_info: Option<&MasterInfo>,
    ) {
        let _ = (driver, framework_id, master_info);
    }

    /// A later `SUBSCRIBED`, after the driver lost its connection and
    /// subscribed again with the same framework id.
    fn reregistered(&mut self, driver: &SchedulerDriver, master_info: Option<&MasterInfo>) {
        let _ = (driver, master_info);
    }

    /// The event stream ended or went silent; the driver is reconnecting.
    /// Offers received so far are no longer valid.
    fn disconnected(&mut self, driver: &SchedulerDriver) {
        let _ = driver;
    }

    /// Offers of resources (seed step 3). Launch tasks on them with
    /// [`SchedulerDriver::launch_tasks`] or give them back with
    /// [`SchedulerDriver::decline_offer`]; an offer that is neither stays
    /// allocated to this framework until the master rescinds it.
    fn resource_offers(&mut self, driver: &SchedulerDriver, offers: Vec<Offer>);

    /// The master took back an offer (it expired, or its agent went away).
    fn offer_rescinded(&mut self, driver: &SchedulerDriver, offer_id: &OfferId) {
        let _ = (driver, offer_id);
    }

    /// A task changed state. With implicit acknowledgements (the default) the
    /// driver acknowledges the update after this returns.
    fn status_update(&mut self, driver: &SchedulerDriver, status: TaskStatus);

    /// A message an executor sent with `send_framework_message`.
    fn framework_message(
        &mut self,
        driver: &SchedulerDriver,
        executor_id: &ExecutorId,
        agent_id: &AgentId,
        data: &[u8],
    ) {
        let _ = (driver, executor_id, agent_id, data);
    }

    /// An agent was removed (a `FAILURE` event without an executor id).
    fn agent_lost(&mut self, driver: &SchedulerDriver, agent_id: &AgentId) {
        let _ = (driver, agent_id);
    }

    /// An executor exited (a `FAILURE` event with an executor id); `status`
    /// is its wait status when the agent knew it.
    fn executor_lost(
        &mut self,
        driver: &SchedulerDriver,
        executor_id: &ExecutorId,
        agent_id: &AgentId,
        status: Option<i32>,
    ) {
        let _ = (driver, executor_id, agent_id, status);
    }

    /// An unrecoverable error: an `ERROR` event from the master, a rejected
    /// `SUBSCRIBE`, or a master that stayed unreachable for longer than
    /// [`crate::DriverConfig::give_up_after`]. The driver aborts after this.
    fn error(&mut self, driver: &SchedulerDriver, message: &str) {
        let _ = driver;
        tracing::error!(%message, "scheduler driver error");
    }

    /// A queued call could not be delivered or the master rejected it (e.g. a
    /// `400` for a malformed `ACCEPT`). Not part of the Mesos C++ API, where
    /// such failures are only logged; the driver logs them too.
    fn call_failed(&mut self, driver: &SchedulerDriver, failure: &CallFailure) {
        let _ = (driver, failure);
    }
}
