//! The driver's event loop: subscribe, dispatch events, send calls, and
//! handle losing the agent, following Mesos's executor library
//! (`src/executor/executor.cpp`).

use std::time::Duration;

use mesos_proto::v1::executor::{call, event, Call, Event};
use tokio::sync::mpsc;
use tokio::time::{sleep_until, Instant};

use crate::config::Config;
use crate::driver::{Command, ExecutorDriver, Exit};
use crate::executor::Executor;
use crate::http::{self, CallSender, EventStream, StreamItem, TransportError};

/// Mesos's `DEFAULT_HEARTBEAT_CALL_INTERVAL`.
const HEARTBEAT_CALL_INTERVAL: Duration = Duration::from_secs(30 * 60);
/// Mesos's executors retry SUBSCRIBE every second while the agent refuses it
/// (e.g. 503 while it recovers).
const RESUBSCRIBE_INTERVAL: Duration = Duration::from_secs(1);
/// Bound on connecting and getting the SUBSCRIBE response head.
const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on delivering calls queued before `stop()`.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// Result of one SUBSCRIBE attempt.
enum Attempt {
    Subscribed(EventStream),
    /// The agent is up but answered with an error status.
    Refused(TransportError),
    /// No connection, or it broke.
    Failed(String),
    Exit(Exit),
}

/// How a subscribed period ended.
enum Flow {
    Disconnected(String),
    Exit(Exit),
}

pub(crate) struct Session {
    driver: ExecutorDriver,
    executor: Box<dyn Executor>,
    commands: mpsc::UnboundedReceiver<Command>,
    /// Calls queued while a SUBSCRIBE was in flight, sent once it succeeds.
    held: Vec<Call>,
    /// An agent accepted our SUBSCRIBE at least once.
    connected_before: bool,
    /// SUBSCRIBED was received at least once (next is a re-registration).
    registered: bool,
    /// Reported a refused SUBSCRIBE to the executor already.
    reported_refusal: bool,
    /// Set once shutting down: when the grace period ends.
    shutdown_deadline: Option<Instant>,
}

impl Session {
    pub(crate) fn new(
        driver: ExecutorDriver,
        executor: Box<dyn Executor>,
        commands: mpsc::UnboundedReceiver<Command>,
    ) -> Self {
        Self {
            driver,
            executor,
            commands,
            held: Vec::new(),
            connected_before: false,
            registered: false,
            reported_refusal: false,
            shutdown_deadline: None,
        }
    }

    pub(crate) async fn run(mut self) -> Exit {
        let config = self.driver.config().clone();
        let mut recovery_deadline: Option<Instant> = None;
        loop {
            if let Some(exit) = self.drop_queued_calls() {
                return exit;
            }
            let reason = match self.subscribe(&config).await {
                Attempt::Exit(exit) => return exit,
                Attempt::Subscribed(stream) => {
                    recovery_deadline = None;
                    self.connected_before = true;
                    self.reported_refusal = false;
                    match self.pump(stream, &config).await {
                        Flow::Exit(exit) => return exit,
                        Flow::Disconnected(reason) => {
                            self.executor.disconnected(&self.driver);
                            reason
                        }
                    }
                }
                Attempt::Refused(error) => {
                    // Reaching the agent counts as connected (Mesos cancels
                    // its recovery timer on connect); retry until it is ready.
                    recovery_deadline = None;
                    self.report_refusal(&error);
                    let retry = Instant::now() + RESUBSCRIBE_INTERVAL;
                    if let Some(exit) = self.idle_until(Some(retry)).await {
                        return exit;
                    }
                    continue;
                }
                Attempt::Failed(reason) => reason,
            };
            tracing::warn!("disconnected from the agent: {reason}");

            // Only checkpointing frameworks' executors survive the agent, and
            // only if they had reached it at all.
            if !config.checkpoint || !self.connected_before {
                return self.shut_down_without_agent().await;
            }
            let deadline =
                *recovery_deadline.get_or_insert_with(|| Instant::now() + config.recovery_timeout);
            if Instant::now() >= deadline {
                tracing::warn!(
                    "recovery timeout of {:?} exceeded; shutting down",
                    config.recovery_timeout
                );
                return self.shut_down_without_agent().await;
            }
            let retry = Instant::now() + backoff(config.subscription_backoff_max);
            if let Some(exit) = self.idle_until(Some(retry.min(deadline))).await {
                return exit;
            }
        }
    }

    /// Sends SUBSCRIBE with everything unacknowledged, staying responsive to
    /// `stop()` and the shutdown grace period meanwhile.
    async fn subscribe(&mut self, config: &Config) -> Attempt {
        let mut call = self.driver.call(call::Type::Subscribe);
        call.subscribe = Some(self.driver.unacknowledged().subscribe());
        let attempt = tokio::time::timeout(
            SUBSCRIBE_TIMEOUT,
            http::subscribe(&config.agent_endpoint, config.content_type, &call),
        );
        tokio::pin!(attempt);
        loop {
            tokio::select! {
                result = &mut attempt => return match result {
                    Err(_) => Attempt::Failed(format!(
                        "no SUBSCRIBE response from {} within {SUBSCRIBE_TIMEOUT:?}",
                        config.agent_endpoint
                    )),
                    Ok(Ok(stream)) => Attempt::Subscribed(stream),
                    Ok(Err(error @ TransportError::Status { .. })) => Attempt::Refused(error),
                    Ok(Err(error)) => Attempt::Failed(error.to_string()),
                },
                command = self.commands.recv() => match command {
                    Some(Command::Call(call)) => self.held.push(*call),
                    Some(Command::Stop) | None => return Attempt::Exit(Exit::Stopped),
                },
                () = sleep_opt(self.shutdown_deadline) => {
                    return Attempt::Exit(self.grace_period_expired());
                }
            }
        }
    }

    /// The subscribed state: events in, calls out.
    async fn pump(&mut self, mut stream: EventStream, config: &Config) -> Flow {
        let (calls, queue) = mpsc::unbounded_channel();
        let (errors_tx, mut errors) = mpsc::unbounded_channel();
        let sender = CallSender::new(config.agent_endpoint.clone(), config.content_type);
        let mut sender = tokio::spawn(send_calls(sender, queue, errors_tx));
        for call in self.held.drain(..) {
            let _ = calls.send(call);
        }
        let mut heartbeat = tokio::time::interval_at(
            Instant::now() + HEARTBEAT_CALL_INTERVAL,
            HEARTBEAT_CALL_INTERVAL,
        );

        let flow = loop {
            tokio::select! {
                item = stream.next() => match item {
                    Ok(Some(StreamItem::Event(event))) => self.dispatch(*event),
                    Ok(Some(StreamItem::Undecodable(message))) => {
                        self.executor.error(&self.driver, &message);
                    }
                    Ok(None) => break Flow::Disconnected(
                        "End-Of-File received from agent: the agent closed the event stream".into(),
                    ),
                    Err(error) => break Flow::Disconnected(error.to_string()),
                },
                command = self.commands.recv() => match command {
                    Some(Command::Call(call)) => { let _ = calls.send(*call); }
                    Some(Command::Stop) | None => break Flow::Exit(Exit::Stopped),
                },
                Some(message) = errors.recv() => self.executor.error(&self.driver, &message),
                _ = heartbeat.tick() => {
                    let _ = calls.send(self.driver.call(call::Type::Heartbeat));
                }
                () = sleep_opt(self.shutdown_deadline) => {
                    break Flow::Exit(self.grace_period_expired());
                }
            }
        };

        if let Flow::Exit(Exit::Stopped) = flow {
            // Deliver what the executor sent before stopping, typically its
            // last terminal update.
            drop(calls);
            let _ = tokio::time::timeout(FLUSH_TIMEOUT, &mut sender).await;
        }
        sender.abort();
        flow
    }

    fn dispatch(&mut self, event: Event) {
        let Some(kind) = event.r#type.and_then(|t| event::Type::try_from(t).ok()) else {
            tracing::warn!("ignoring an event of unknown type {:?}", event.r#type);
            return;
        };
        tracing::debug!("received {} event", kind.as_str_name());
        let driver = &self.driver;
        match kind {
            event::Type::Subscribed => {
                let Some(subscribed) = event.subscribed else {
                    return missing_payload(kind);
                };
                if std::mem::replace(&mut self.registered, true) {
                    self.executor.reregistered(driver, &subscribed);
                } else {
                    self.executor.registered(driver, &subscribed);
                }
            }
            event::Type::Launch => {
                let Some(launch) = event.launch else {
                    return missing_payload(kind);
                };
                driver.unacknowledged().add_task(launch.task.clone());
                self.executor.launch_task(driver, launch.task);
            }
            event::Type::LaunchGroup => {
                let Some(launch) = event.launch_group else {
                    return missing_payload(kind);
                };
                for task in &launch.task_group.tasks {
                    driver.unacknowledged().add_task(task.clone());
                }
                self.executor.launch_group(driver, launch.task_group);
            }
            event::Type::Kill => {
                let Some(kill) = event.kill else {
                    return missing_payload(kind);
                };
                self.executor
                    .kill_task(driver, kill.task_id, kill.kill_policy);
            }
            event::Type::Acknowledged => {
                let Some(ack) = event.acknowledged else {
                    return missing_payload(kind);
                };
                if !driver.unacknowledged().acknowledge(&ack.task_id, &ack.uuid) {
                    tracing::warn!(
                        "acknowledgement for an unknown status update of task '{}'",
                        ack.task_id.value
                    );
                }
                self.executor.acknowledged(driver, &ack.task_id, &ack.uuid);
            }
            event::Type::Message => {
                let Some(message) = event.message else {
                    return missing_payload(kind);
                };
                self.executor.framework_message(driver, message.data);
            }
            event::Type::Error => {
                let message = event.error.map(|e| e.message).unwrap_or_default();
                self.executor.error(driver, &message);
            }
            event::Type::Shutdown => self.begin_shutdown(),
            event::Type::Heartbeat => {}
            event::Type::Unknown => tracing::warn!("ignoring an UNKNOWN event"),
        }
    }

    /// Calls `shutdown` once and arms the grace period.
    fn begin_shutdown(&mut self) {
        if self.shutdown_deadline.is_none() {
            self.shutdown_deadline =
                Some(Instant::now() + self.driver.config().shutdown_grace_period);
            self.executor.shutdown(&self.driver);
        }
    }

    /// Without an agent: shut down and wait for `stop()` or the grace period.
    async fn shut_down_without_agent(&mut self) -> Exit {
        self.begin_shutdown();
        loop {
            if let Some(exit) = self.idle_until(None).await {
                return exit;
            }
        }
    }

    /// Waits while disconnected until `until` (`None` = forever), for
    /// `stop()` or the grace period. Calls are dropped, as Mesos does when
    /// not subscribed; updates among them stay unacknowledged and go out
    /// with the next SUBSCRIBE.
    async fn idle_until(&mut self, until: Option<Instant>) -> Option<Exit> {
        loop {
            tokio::select! {
                command = self.commands.recv() => match command {
                    Some(Command::Call(_)) => {}
                    Some(Command::Stop) | None => return Some(Exit::Stopped),
                },
                () = sleep_opt(until) => return None,
                () = sleep_opt(self.shutdown_deadline) => {
                    return Some(self.grace_period_expired());
                }
            }
        }
    }

    /// Drops calls queued while disconnected (or held during a SUBSCRIBE
    /// that failed), so that updates do not go out twice: once inside the
    /// coming SUBSCRIBE, once on their own.
    fn drop_queued_calls(&mut self) -> Option<Exit> {
        self.held.clear();
        while let Ok(command) = self.commands.try_recv() {
            if let Command::Stop = command {
                return Some(Exit::Stopped);
            }
        }
        None
    }

    fn report_refusal(&mut self, error: &TransportError) {
        tracing::warn!("SUBSCRIBE refused: {error}");
        let transient = matches!(
            error,
            TransportError::Status { status, .. }
                if *status == ::http::StatusCode::SERVICE_UNAVAILABLE
                    || *status == ::http::StatusCode::NOT_FOUND
        );
        // 503 (recovering) and 404 (routes not installed yet) are expected
        // while the agent starts; anything else is worth telling once.
        if !transient && !std::mem::replace(&mut self.reported_refusal, true) {
            self.executor.error(&self.driver, &error.to_string());
        }
    }

    /// Like Mesos's `ShutdownProcess`: when the grace period is over, kill
    /// the process group, which takes this executor and anything it left
    /// behind. Only done when this process leads its group, as every
    /// executor the agent starts does; otherwise (an executor embedded in
    /// some other process, or a test) the run just ends.
    fn grace_period_expired(&self) -> Exit {
        use nix::sys::signal::{killpg, Signal};
        use nix::unistd::{getpgrp, getpid};

        tracing::warn!(
            "executor did not stop within the shutdown grace period of {:?}",
            self.driver.config().shutdown_grace_period
        );
        let group = getpgrp();
        if group == getpid() {
            tracing::warn!("killing process group {group}");
            if let Err(e) = killpg(group, Signal::SIGKILL) {
                tracing::error!("cannot kill process group {group}: {e}");
            }
        }
        Exit::ShutdownGracePeriodExpired
    }
}

/// The call sender task: posts calls in order on one connection; reports
/// refusals that are not part of an agent's normal start-up.
async fn send_calls(
    mut sender: CallSender,
    mut queue: mpsc::UnboundedReceiver<Call>,
    errors: mpsc::UnboundedSender<String>,
) {
    while let Some(call) = queue.recv().await {
        let kind = call
            .r#type
            .and_then(|t| call::Type::try_from(t).ok())
            .unwrap_or(call::Type::Unknown);
        match sender.send(&call).await {
            Ok(()) => {}
            // A broken connection shows up on the event stream too; updates
            // are re-sent with the next SUBSCRIBE.
            Err(error @ (TransportError::Connect { .. } | TransportError::Http { .. })) => {
                tracing::warn!("{} call failed: {error}", kind.as_str_name());
            }
            Err(error) => {
                let _ = errors.send(format!("{} call failed: {error}", kind.as_str_name()));
            }
        }
    }
}

fn missing_payload(kind: event::Type) {
    tracing::warn!(
        "ignoring a {} event without its payload",
        kind.as_str_name()
    );
}

async fn sleep_opt(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// A uniformly random duration in `[0, max]`, as Mesos's executor library
/// picks between reconnection attempts.
fn backoff(max: Duration) -> Duration {
    max.mul_f64(random_fraction())
}

/// A random number in `[0, 1)` from the 53 low bits of a v4 UUID (the
/// version and variant bits are above them).
fn random_fraction() -> f64 {
    const BITS: u32 = 53;
    let random = uuid::Uuid::new_v4().as_u128() & ((1u128 << BITS) - 1);
    random as f64 / (1u128 << BITS) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_stays_within_the_maximum_and_varies() {
        let max = Duration::from_secs(2);
        let samples: Vec<Duration> = (0..64).map(|_| backoff(max)).collect();
        assert!(samples.iter().all(|d| *d <= max));
        assert!(samples.iter().any(|d| *d != samples[0]));
    }
}
