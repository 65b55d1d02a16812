//! One event → one callback, plus the implicit acknowledgement of updates.
//!
//! Seed step 3 (the SDK calls `resource_offers`) is marked here.

use mesos_proto::v1::scheduler::{event, Event};

use crate::driver::{acknowledge_call, join_ids, CallFailure, DriverError, SchedulerDriver};
use crate::scheduler::Scheduler;
use crate::TIMELINE_TARGET;

/// What the session does after an event.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Keep reading.
    Continue,
    /// The master gave up on the framework (`ERROR`); end the driver.
    Fatal(DriverError),
}

/// Delivers events to the scheduler, one callback at a time.
pub(crate) struct Dispatcher {
    driver: SchedulerDriver,
    scheduler: Box<dyn Scheduler>,
    registered: bool,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("registered", &self.registered)
            .finish_non_exhaustive()
    }
}

impl Dispatcher {
    /// A dispatcher for a driver that has not subscribed yet.
    pub(crate) fn new(driver: SchedulerDriver, scheduler: Box<dyn Scheduler>) -> Self {
        Self {
            driver,
            scheduler,
            registered: false,
        }
    }

    /// Runs `callback` unless the driver is stopping, bracketed so that a
    /// `stop` inside it is sent after anything the bracket queues.
    fn callback(&mut self, callback: impl FnOnce(&mut dyn Scheduler, &SchedulerDriver)) {
        if self.driver.is_stopping() {
            return;
        }
        self.driver.enter_callback();
        callback(self.scheduler.as_mut(), &self.driver);
        self.driver.leave_callback();
    }

    /// Hands one event to its callback.
    pub(crate) fn event(&mut self, event: Event) -> Outcome {
        let kind =
            event::Type::try_from(event.r#type.unwrap_or_default()).unwrap_or(event::Type::Unknown);
        match kind {
            event::Type::Subscribed => self.subscribed(event.subscribed),
            event::Type::Offers => self.offers(event.offers),
            event::Type::Rescind => {
                if let Some(rescind) = event.rescind {
                    self.callback(|s, d| s.offer_rescinded(d, &rescind.offer_id));
                }
            }
            event::Type::Update => self.update(event.update),
            event::Type::Message => {
                if let Some(m) = event.message {
                    self.callback(|s, d| {
                        s.framework_message(d, &m.executor_id, &m.agent_id, &m.data)
                    });
                }
            }
            event::Type::Failure => self.failure(event.failure),
            event::Type::Error => {
                let message = event.error.map(|e| e.message).unwrap_or_default();
                self.report_error(&message);
                return Outcome::Fatal(DriverError::MasterError(message));
            }
            event::Type::Heartbeat => {}
            event::Type::InverseOffers
            | event::Type::RescindInverseOffer
            | event::Type::UpdateOperationStatus
            | event::Type::Unknown => {
                tracing::debug!(
                    event = kind.as_str_name(),
                    "event ignored by the scheduler SDK"
                );
            }
        }
        Outcome::Continue
    }

    fn subscribed(&mut self, subscribed: Option<event::Subscribed>) {
        let Some(subscribed) = subscribed else {
            tracing::warn!("SUBSCRIBED event without its payload");
            return;
        };
        self.driver
            .set_framework_id(subscribed.framework_id.clone());
        tracing::info!(framework_id = %subscribed.framework_id.value, "subscribed");
        let master_info = subscribed.master_info.as_ref();
        if self.registered {
            self.callback(|s, d| s.reregistered(d, master_info));
        } else {
            self.registered = true;
            self.callback(|s, d| s.registered(d, &subscribed.framework_id, master_info));
        }
    }

    fn offers(&mut self, offers: Option<event::Offers>) {
        let offers = offers.map(|o| o.offers).unwrap_or_default();
        if offers.is_empty() {
            return;
        }
        let _step3 = tracing::info_span!(
            target: TIMELINE_TARGET,
            "resource_offers called",
            seed_step = 3u64,
            offer_id = %join_ids(offers.iter().map(|o| o.id.value.as_str())),
        )
        .entered();
        self.callback(|s, d| s.resource_offers(d, offers));
    }

    fn update(&mut self, update: Option<event::Update>) {
        let Some(update) = update else {
            tracing::warn!("UPDATE event without its payload");
            return;
        };
        let status = update.status;
        let ack = if self.driver.config().implicit_acknowledgements {
            acknowledge_call(&status)
        } else {
            None
        };
        if self.driver.is_stopping() {
            return;
        }
        self.driver.enter_callback();
        let _step8 = tracing::info_span!(
            target: TIMELINE_TARGET,
            "status_update called",
            seed_step = 8u64,
            task_id = %status.task_id.value,
            state = status.state().as_str_name(),
        )
        .entered();
        self.scheduler.status_update(&self.driver, status);
        // Mesos acknowledges after the callback returns, so an update the
        // scheduler never saw is re-sent by the agent.
        if let Some(ack) = ack {
            if let Err(e) = self.driver.send_internal(ack) {
                tracing::warn!(error = %e, "cannot acknowledge status update");
            }
        }
        self.driver.leave_callback();
    }

    fn failure(&mut self, failure: Option<event::Failure>) {
        let Some(failure) = failure else { return };
        let Some(agent_id) = failure.agent_id else {
            tracing::warn!("FAILURE event without an agent id");
            return;
        };
        match failure.executor_id {
            Some(executor_id) => {
                self.callback(|s, d| s.executor_lost(d, &executor_id, &agent_id, failure.status))
            }
            None => self.callback(|s, d| s.agent_lost(d, &agent_id)),
        }
    }

    /// Calls `error`, even while stopping: it explains why the driver ends.
    pub(crate) fn report_error(&mut self, message: &str) {
        self.driver.enter_callback();
        self.scheduler.error(&self.driver, message);
        self.driver.leave_callback();
    }

    /// Calls `disconnected`.
    pub(crate) fn disconnected(&mut self) {
        self.callback(|s, d| s.disconnected(d));
    }

    /// Calls `call_failed`.
    pub(crate) fn call_failed(&mut self, failure: &CallFailure) {
        self.callback(|s, d| s.call_failed(d, failure));
    }
}
