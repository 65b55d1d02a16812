//! The agent's link to the master: where it is, and whether it is alive.
//!
//! The master pings every registered agent (`PingSlaveMessage`) and tells it,
//! at registration, how long it waits before giving up on an agent
//! (`MasterSlaveConnection.total_ping_timeout_seconds`, Mesos default
//! 15 s × 5). An agent that hears no ping for that long treats the master as
//! lost and re-registers, exactly as Mesos's `Slave::pingTimeout`.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

/// Ping timeout used until the master says otherwise (Mesos
/// `DEFAULT_MASTER_PING_TIMEOUT`: 15 s × 5).
pub const DEFAULT_PING_TIMEOUT: Duration = Duration::from_secs(75);

/// Resolves `--master` (`host:port`, the port defaulting to 5050 like
/// Mesos's detector) to an IPv4 address.
pub fn parse_master_address(master: &str) -> Option<SocketAddr> {
    let master = master.trim();
    let master = master.strip_prefix("master@").unwrap_or(master);
    let has_port = master
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok());
    let with_port = if has_port {
        master.to_string()
    } else {
        format!("{master}:5050")
    };
    with_port.to_socket_addrs().ok()?.find(SocketAddr::is_ipv4)
}

/// Liveness of the master as seen from the agent.
#[derive(Debug, Clone)]
pub struct PingWatch {
    timeout: Duration,
    last_heard: Instant,
}

impl PingWatch {
    /// Starts watching at `now` with `timeout`.
    pub fn new(timeout: Duration, now: Instant) -> Self {
        Self {
            timeout,
            last_heard: now,
        }
    }

    /// A ping (or registration) arrived.
    pub fn heard(&mut self, now: Instant) {
        self.last_heard = now;
    }

    /// Adopts the timeout the master announced.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// Whether the master has been silent for longer than the timeout.
    pub fn expired(&self, now: Instant) -> bool {
        now.duration_since(self.last_heard) > self.timeout
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn master_addresses_default_the_port() {
        assert_eq!(
            parse_master_address("127.0.0.1:5050"),
            Some("127.0.0.1:5050".parse().unwrap())
        );
        assert_eq!(
            parse_master_address("127.0.0.1"),
            Some("127.0.0.1:5050".parse().unwrap())
        );
        assert_eq!(
            parse_master_address("master@127.0.0.1:6000"),
            Some("127.0.0.1:6000".parse().unwrap())
        );
        assert_eq!(parse_master_address("no such host.invalid:1"), None);
    }

    #[test]
    fn silence_longer_than_the_timeout_means_lost() {
        let start = Instant::now();
        let mut watch = PingWatch::new(Duration::from_secs(10), start);
        assert!(!watch.expired(start + Duration::from_secs(10)));
        assert!(watch.expired(start + Duration::from_secs(11)));
        watch.heard(start + Duration::from_secs(11));
        assert!(!watch.expired(start + Duration::from_secs(20)));
    }
}
