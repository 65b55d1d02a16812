//! The session task: subscribe, read events until the stream ends or goes
//! silent, reconnect with backoff, and end on `stop`, `abort` or a fatal
//! error.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::{sleep_until, Instant};

use crate::backoff::Backoff;
use crate::config::DEFAULT_HEARTBEAT_INTERVAL;
use crate::dispatch::{Dispatcher, Outcome};
use crate::driver::{CallFailure, DriverError, SchedulerDriver};
use crate::event_stream::EventStream;
use crate::master_client::{HttpError, MasterClient, Subscription};
use crate::scheduler::Scheduler;
use crate::sender::{self, Outgoing};
use mesos_proto::v1::scheduler::event;

/// How reading one subscription ended.
enum StreamEnd {
    /// `stop` or `abort`.
    Stopped,
    /// The connection is gone; `subscribed` says whether `SUBSCRIBED` had
    /// arrived on it.
    Lost { reason: String, subscribed: bool },
    /// An `ERROR` event.
    Fatal(DriverError),
}

/// Runs the driver until it ends; the result is what `join` returns.
pub(crate) async fn run(
    driver: SchedulerDriver,
    scheduler: Box<dyn Scheduler>,
    outgoing: mpsc::UnboundedReceiver<Outgoing>,
) -> Result<(), DriverError> {
    let config = driver.config();
    let client = Arc::new(MasterClient::new(config));
    let (failures_tx, failures) = mpsc::unbounded_channel();
    let sender = tokio::spawn(sender::run(
        driver.clone(),
        client.clone(),
        outgoing,
        failures_tx,
    ));
    let mut session = Session {
        stop: driver.stop_receiver(),
        backoff: Backoff::new(config.backoff_min, config.backoff_max),
        dispatcher: Dispatcher::new(driver.clone(), scheduler),
        driver,
        client,
        failures,
    };
    let result = session.run().await;
    // After `stop` the sender has already finished (it ends the session);
    // after an abort or a fatal error its queued calls are dropped.
    sender.abort();
    result
}

struct Session {
    driver: SchedulerDriver,
    dispatcher: Dispatcher,
    client: Arc<MasterClient>,
    failures: mpsc::UnboundedReceiver<CallFailure>,
    stop: watch::Receiver<bool>,
    backoff: Backoff,
}

impl Session {
    async fn run(&mut self) -> Result<(), DriverError> {
        let mut unreachable_since = Instant::now();
        loop {
            if *self.stop.borrow() {
                return self.stopped_result();
            }
            let call = self.driver.subscribe_call();
            let client = self.client.clone();
            let attempt = tokio::select! {
                biased;
                _ = stop_requested(&mut self.stop) => return self.stopped_result(),
                attempt = client.subscribe(&call) => attempt,
            };
            match attempt {
                Ok(subscription) => match self.read(subscription).await {
                    StreamEnd::Stopped => return self.stopped_result(),
                    StreamEnd::Fatal(error) => return Err(error),
                    StreamEnd::Lost { reason, subscribed } => {
                        tracing::warn!(%reason, "lost the master's event stream; reconnecting");
                        if subscribed {
                            unreachable_since = Instant::now();
                            self.backoff.reset();
                            self.dispatcher.disconnected();
                        }
                    }
                },
                Err(error) if !error.is_transient() => {
                    let error = DriverError::SubscribeRejected(error);
                    self.dispatcher.report_error(&error.to_string());
                    return Err(error);
                }
                Err(error) => {
                    tracing::warn!(%error, "SUBSCRIBE failed; retrying");
                    if let Some(fatal) = self.give_up(unreachable_since, error) {
                        self.dispatcher.report_error(&fatal.to_string());
                        return Err(fatal);
                    }
                }
            }
            let delay = self.next_delay(unreachable_since);
            if self.pause(delay).await {
                return self.stopped_result();
            }
        }
    }

    /// `MasterUnreachable` once `give_up_after` has passed.
    fn give_up(&self, since: Instant, last_error: HttpError) -> Option<DriverError> {
        let limit = self.driver.config().give_up_after?;
        let waited = since.elapsed();
        (waited >= limit).then(|| DriverError::MasterUnreachable {
            master: self.client.leader().to_string(),
            waited,
            last_error,
        })
    }

    /// The backoff delay, cut short so that the last attempt happens when
    /// `give_up_after` expires rather than a whole backoff later.
    fn next_delay(&mut self, unreachable_since: Instant) -> Duration {
        let delay = self.backoff.next_delay();
        match self.driver.config().give_up_after {
            Some(limit) => delay.min(limit.saturating_sub(unreachable_since.elapsed())),
            None => delay,
        }
    }

    /// Sleeps, still delivering call failures; `true` if stopped meanwhile.
    async fn pause(&mut self, delay: Duration) -> bool {
        let deadline = Instant::now() + delay;
        loop {
            tokio::select! {
                biased;
                _ = stop_requested(&mut self.stop) => return true,
                Some(failure) = self.failures.recv() => self.dispatcher.call_failed(&failure),
                _ = sleep_until(deadline) => return false,
            }
        }
    }

    /// Reads one subscription's events until it ends.
    async fn read(&mut self, subscription: Subscription) -> StreamEnd {
        tracing::debug!(master = %subscription.master, stream_id = %subscription.stream_id, "event stream open");
        self.driver.set_stream_id(Some(subscription.stream_id));
        let end = self
            .read_events(EventStream::new(
                subscription.body,
                subscription.content_type,
            ))
            .await;
        self.driver.set_stream_id(None);
        end
    }

    async fn read_events(&mut self, mut stream: EventStream) -> StreamEnd {
        let misses = self.driver.config().heartbeat_misses;
        let mut silence_limit = DEFAULT_HEARTBEAT_INTERVAL * misses;
        let mut deadline = Instant::now() + silence_limit;
        let mut subscribed = false;
        loop {
            let next = tokio::select! {
                biased;
                _ = stop_requested(&mut self.stop) => return StreamEnd::Stopped,
                Some(failure) = self.failures.recv() => {
                    self.dispatcher.call_failed(&failure);
                    continue;
                }
                _ = sleep_until(deadline) => {
                    return StreamEnd::Lost {
                        reason: format!("no event (not even a heartbeat) for {silence_limit:?}"),
                        subscribed,
                    };
                }
                next = stream.next() => next,
            };
            let event = match next {
                Ok(Some(event)) => event,
                Ok(None) => {
                    return StreamEnd::Lost {
                        reason: "the master closed the event stream".into(),
                        subscribed,
                    }
                }
                Err(error) => {
                    return StreamEnd::Lost {
                        reason: error.to_string(),
                        subscribed,
                    }
                }
            };
            if let Some(interval) = heartbeat_interval(&event) {
                subscribed = true;
                silence_limit = interval * misses;
            }
            deadline = Instant::now() + silence_limit;
            if let Outcome::Fatal(error) = self.dispatcher.event(event) {
                return StreamEnd::Fatal(error);
            }
        }
    }

    fn stopped_result(&self) -> Result<(), DriverError> {
        if self.driver.is_aborted() {
            Err(DriverError::Aborted)
        } else {
            Ok(())
        }
    }
}

/// Resolves once the driver must stop (at once if it already must).
async fn stop_requested(stop: &mut watch::Receiver<bool>) {
    // An error means the driver is gone, which also means stop.
    let _ = stop.wait_for(|stop| *stop).await;
}

/// For a `SUBSCRIBED` event, the heartbeat interval it announces (Mesos's
/// default when absent or nonsensical).
fn heartbeat_interval(event: &mesos_proto::v1::scheduler::Event) -> Option<Duration> {
    if event.r#type != Some(event::Type::Subscribed as i32) {
        return None;
    }
    let seconds = event
        .subscribed
        .as_ref()
        .and_then(|s| s.heartbeat_interval_seconds)
        .filter(|s| s.is_finite() && *s > 0.0);
    Some(seconds.map_or(DEFAULT_HEARTBEAT_INTERVAL, Duration::from_secs_f64))
}
