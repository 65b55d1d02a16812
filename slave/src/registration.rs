//! Registering with the master (Mesos `Slave::doReliableRegistration`):
//! the first attempt waits a random time in `[0, --registration_backoff_factor]`,
//! each retry doubles the bound up to one minute, so a restarted master is
//! not hit by every agent at once.

use std::time::{Duration, Instant};

use mesos_proto::internal::{RegisterSlaveMessage, ReregisterSlaveMessage};
use mesos_proto::v1::{agent_info, AgentInfo, ExecutorInfo, FrameworkInfo, Task};
use rand::Rng;

/// Upper bound of the retry delay (Mesos `REGISTER_RETRY_INTERVAL_MAX`).
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// The Mesos version the agent announces (the master checks compatibility).
pub const MESOS_VERSION: &str = "1.11.0";

/// Jittered exponential backoff of registration attempts.
#[derive(Debug, Clone)]
pub struct Backoff {
    factor: Duration,
    bound: Duration,
    next_attempt: Option<Instant>,
}

impl Backoff {
    /// A backoff whose first delay is random in `[0, factor]`.
    pub fn new(factor: Duration) -> Self {
        Self {
            factor,
            bound: factor,
            next_attempt: None,
        }
    }

    /// Starts over (after registering, or when the master is lost), with the
    /// first attempt random in `[0, factor]` from `now`.
    pub fn restart(&mut self, now: Instant) {
        self.bound = self.factor;
        self.next_attempt = Some(now + jitter(self.factor));
    }

    /// Stops attempting (registered).
    pub fn stop(&mut self) {
        self.next_attempt = None;
    }

    /// Whether an attempt is due; if so, schedules the next one with twice
    /// the bound (capped at a minute).
    pub fn due(&mut self, now: Instant) -> bool {
        match self.next_attempt {
            Some(at) if at <= now => {
                self.bound = (self.bound * 2)
                    .min(MAX_BACKOFF)
                    .max(Duration::from_millis(1));
                self.next_attempt = Some(now + jitter(self.bound));
                true
            }
            _ => false,
        }
    }

    /// When the next attempt is scheduled.
    pub fn next_attempt(&self) -> Option<Instant> {
        self.next_attempt
    }

    /// The current upper bound of the delay.
    pub fn bound(&self) -> Duration {
        self.bound
    }
}

/// A uniformly random duration in `[0, bound]`.
fn jitter(bound: Duration) -> Duration {
    let nanos = u64::try_from(bound.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(rand::rng().random_range(0..=nanos))
}

/// Capabilities the agent announces (Mesos 1.11 agents announce these; the
/// master uses them to choose resource formats).
pub fn capabilities() -> Vec<agent_info::Capability> {
    [
        agent_info::capability::Type::MultiRole,
        agent_info::capability::Type::HierarchicalRole,
        agent_info::capability::Type::ReservationRefinement,
        agent_info::capability::Type::TaskResourceLimits,
    ]
    .into_iter()
    .map(|kind| agent_info::Capability {
        r#type: Some(kind as i32),
    })
    .collect()
}

/// First registration.
pub fn register_message(info: &AgentInfo) -> RegisterSlaveMessage {
    RegisterSlaveMessage {
        slave: info.clone(),
        version: Some(MESOS_VERSION.to_string()),
        agent_capabilities: capabilities(),
        ..RegisterSlaveMessage::default()
    }
}

/// Re-registration, with everything the agent runs so the master can
/// rebuild its view: executors (except generated command executors, which
/// the master does not track), tasks (queued ones as TASK_STAGING) and their
/// frameworks.
pub fn reregister_message(
    info: &AgentInfo,
    executors: Vec<ExecutorInfo>,
    tasks: Vec<Task>,
    frameworks: Vec<FrameworkInfo>,
) -> ReregisterSlaveMessage {
    ReregisterSlaveMessage {
        slave: info.clone(),
        executor_infos: executors,
        tasks,
        frameworks,
        version: Some(MESOS_VERSION.to_string()),
        agent_capabilities: capabilities(),
        ..ReregisterSlaveMessage::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_are_jittered_and_double_up_to_a_minute() {
        let start = Instant::now();
        let mut backoff = Backoff::new(Duration::from_secs(1));
        assert!(!backoff.due(start), "nothing scheduled before restart");
        backoff.restart(start);
        let first = backoff.next_attempt().unwrap();
        assert!(first <= start + Duration::from_secs(1));

        let mut now = start + Duration::from_secs(1);
        let mut bounds = Vec::new();
        for _ in 0..8 {
            assert!(backoff.due(now));
            let next = backoff.next_attempt().unwrap();
            assert!(next >= now && next <= now + backoff.bound());
            bounds.push(backoff.bound().as_secs());
            now += backoff.bound();
        }
        assert_eq!(bounds, [2, 4, 8, 16, 32, 60, 60, 60]);
        backoff.stop();
        assert!(!backoff.due(now + MAX_BACKOFF));
    }

    #[test]
    fn jitter_spreads_attempts() {
        let samples: Vec<Duration> = (0..64).map(|_| jitter(Duration::from_secs(60))).collect();
        assert!(samples.iter().all(|d| *d <= Duration::from_secs(60)));
        let distinct: std::collections::BTreeSet<_> = samples.iter().collect();
        assert!(distinct.len() > 32, "delays should differ between agents");
    }
}
