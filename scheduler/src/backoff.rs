//! Jittered exponential backoff between reconnection attempts.

use std::time::Duration;

use rand::Rng as _;

/// Delays of `min × 2ⁿ` capped at `max`, each drawn uniformly from the upper
/// half of that bound, so that many schedulers losing the same master do not
/// reconnect in lockstep.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    min: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    /// A backoff starting at `min` and never exceeding `max`.
    pub(crate) fn new(min: Duration, max: Duration) -> Self {
        Self {
            min,
            max: max.max(min),
            attempt: 0,
        }
    }

    /// The bound of the next delay, before jitter.
    fn bound(&self) -> Duration {
        let factor = 1u32.checked_shl(self.attempt.min(31)).unwrap_or(u32::MAX);
        self.min.saturating_mul(factor).min(self.max)
    }

    /// The next delay; each call doubles the bound until it reaches `max`.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let bound = self.bound();
        self.attempt = self.attempt.saturating_add(1);
        let half = bound / 2;
        let spread = (bound - half).as_nanos().min(u128::from(u64::MAX)) as u64;
        half + Duration::from_nanos(rand::rng().random_range(0..=spread))
    }

    /// Starts over from `min` (after a successful subscription).
    pub(crate) fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_within_bounds_and_resets() {
        let min = Duration::from_millis(100);
        let max = Duration::from_millis(700);
        let mut backoff = Backoff::new(min, max);
        let bounds = [100, 200, 400, 700, 700];
        for bound in bounds {
            let delay = backoff.next_delay();
            let bound = Duration::from_millis(bound);
            assert!(
                delay >= bound / 2 && delay <= bound,
                "{delay:?} not in [{:?}, {bound:?}]",
                bound / 2
            );
        }
        backoff.reset();
        assert!(backoff.next_delay() <= min);
    }

    #[test]
    fn survives_many_attempts() {
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(15));
        for _ in 0..100 {
            assert!(backoff.next_delay() <= Duration::from_secs(15));
        }
    }
}
