//! Process ids: `name@ip:port`, as libprocess writes them.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

/// A libprocess process id, e.g. `master@10.0.0.1:5050` or
/// `slave(1)@10.0.0.2:5051`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Upid {
    /// The process name, the first path segment of its HTTP endpoints.
    pub id: String,
    /// Where the process's HTTP server listens.
    pub address: SocketAddr,
}

/// Why a string is not a UPID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpidError {
    /// No `@` between name and address.
    #[error("invalid UPID '{0}': expected name@ip:port")]
    MissingAt(String),
    /// The name part is empty or contains `/` (it must be one path segment).
    #[error("invalid UPID '{0}': bad process name")]
    BadName(String),
    /// The part after `@` is not `ip:port`.
    #[error("invalid UPID '{0}': bad address")]
    BadAddress(String),
}

impl Upid {
    /// A UPID from its parts.
    pub fn new(id: impl Into<String>, address: SocketAddr) -> Self {
        Upid {
            id: id.into(),
            address,
        }
    }

    /// The base URL of the process's endpoints, `http://ip:port/name`.
    pub fn url(&self) -> String {
        format!("http://{}/{}", self.address, self.id)
    }
}

impl fmt::Display for Upid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.id, self.address)
    }
}

impl FromStr for Upid {
    type Err = UpidError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // Split at the last '@': addresses never contain one.
        let (id, address) = s
            .rsplit_once('@')
            .ok_or_else(|| UpidError::MissingAt(s.to_string()))?;
        if id.is_empty() || id.contains('/') || id.chars().any(char::is_whitespace) {
            return Err(UpidError::BadName(s.to_string()));
        }
        let address = address
            .parse()
            .map_err(|_| UpidError::BadAddress(s.to_string()))?;
        Ok(Upid::new(id, address))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_agent_upid() {
        let upid: Upid = "slave(1)@10.0.0.2:5051".parse().unwrap();
        assert_eq!(upid.id, "slave(1)");
        assert_eq!(upid.address, "10.0.0.2:5051".parse().unwrap());
        assert_eq!(upid.to_string(), "slave(1)@10.0.0.2:5051");
        assert_eq!(upid.url(), "http://10.0.0.2:5051/slave(1)");
    }

    #[test]
    fn rejects_malformed_upids() {
        assert!(matches!(
            "master".parse::<Upid>(),
            Err(UpidError::MissingAt(_))
        ));
        assert!(matches!(
            "@1.2.3.4:5".parse::<Upid>(),
            Err(UpidError::BadName(_))
        ));
        assert!(matches!(
            "a/b@1.2.3.4:5".parse::<Upid>(),
            Err(UpidError::BadName(_))
        ));
        assert!(matches!(
            "m@host".parse::<Upid>(),
            Err(UpidError::BadAddress(_))
        ));
        assert!(matches!(
            "m@1.2.3.4:99999".parse::<Upid>(),
            Err(UpidError::BadAddress(_))
        ));
    }
}
