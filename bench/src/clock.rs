//! `CLOCK_MONOTONIC` timestamps that mean the same in every process, so a
//! child can stamp an event (a memory limit breached) and the benchmark can
//! subtract it from its own stamp of the reaction.

/// Nanoseconds of `CLOCK_MONOTONIC` (the clock `std::time::Instant` uses on Linux).
pub fn monotonic_ns() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec; CLOCK_MONOTONIC always exists
    // on Linux, so the call cannot fail.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    let secs = u64::try_from(now.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(now.tv_nsec).unwrap_or(0);
    secs.saturating_mul(1_000_000_000).saturating_add(nanos)
}

/// `later − earlier` in milliseconds (negative if `later` came first).
pub fn ms_between(earlier: u64, later: u64) -> f64 {
    (later as f64 - earlier as f64) / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn monotonic_advances_like_instant() {
        let (a, start) = (monotonic_ns(), std::time::Instant::now());
        std::thread::sleep(Duration::from_millis(5));
        let (b, elapsed) = (monotonic_ns(), start.elapsed());
        let measured = ms_between(a, b);
        assert!(measured >= 5.0, "{measured}");
        assert!((measured - elapsed.as_secs_f64() * 1e3).abs() < 2.0);
        assert!(ms_between(b, a) < 0.0);
    }
}
