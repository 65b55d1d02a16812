//! The master's address: parsed from the user's `--master` text and from the
//! `Location` of a `307` redirect.

use std::fmt;

use http::uri::{Authority, Uri};

/// Port of a master given without one (Mesos's default).
pub const DEFAULT_MASTER_PORT: u16 = 5050;

/// The path of the v1 scheduler API.
pub const SCHEDULER_API_PATH: &str = "/api/v1/scheduler";

/// Why a master address cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    /// Empty text.
    #[error("master address is empty (expected HOST:PORT)")]
    Empty,
    /// ZooKeeper discovery is not implemented by this SDK.
    #[error("master address '{0}': ZooKeeper URLs are not supported; give the leading master's HOST:PORT")]
    ZooKeeper(String),
    /// A scheme other than `http`.
    #[error("master address '{address}': unsupported scheme '{scheme}' (only http)")]
    Scheme {
        /// The text given.
        address: String,
        /// Its scheme.
        scheme: String,
    },
    /// Not a `host[:port]`.
    #[error("master address '{address}' is not HOST:PORT: {reason}")]
    Invalid {
        /// The text given.
        address: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// A master's `host:port`, the only part of an address the driver uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MasterEndpoint {
    authority: Authority,
}

impl MasterEndpoint {
    /// Parses `host`, `host:port`, `http://host:port[/path]` or Mesos's
    /// redirect form `//host:port/path`. A missing port means 5050.
    pub fn parse(text: &str) -> Result<Self, EndpointError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(EndpointError::Empty);
        }
        if text.starts_with("zk://") || text.starts_with("zoo://") {
            return Err(EndpointError::ZooKeeper(text.to_owned()));
        }
        let rest = if let Some(rest) = text.strip_prefix("//") {
            rest
        } else if let Some((scheme, rest)) = text.split_once("://") {
            if !scheme.eq_ignore_ascii_case("http") {
                return Err(EndpointError::Scheme {
                    address: text.to_owned(),
                    scheme: scheme.to_owned(),
                });
            }
            rest
        } else {
            text
        };
        let host_port = rest.split(['/', '?', '#']).next().unwrap_or_default();
        Self::from_host_port(text, host_port)
    }

    fn from_host_port(original: &str, host_port: &str) -> Result<Self, EndpointError> {
        let invalid = |reason: &str| EndpointError::Invalid {
            address: original.to_owned(),
            reason: reason.to_owned(),
        };
        if host_port.is_empty() {
            return Err(invalid("no host"));
        }
        let authority: Authority = host_port
            .parse()
            .map_err(|e: http::uri::InvalidUri| invalid(&e.to_string()))?;
        if authority.host().is_empty() {
            return Err(invalid("no host"));
        }
        if host_port.contains('@') {
            return Err(invalid("credentials in the address are not supported"));
        }
        if authority.port().is_some() {
            return Ok(Self { authority });
        }
        if host_port.ends_with(':') {
            return Err(invalid("empty port"));
        }
        let with_port = format!("{host_port}:{DEFAULT_MASTER_PORT}");
        let authority = with_port
            .parse()
            .map_err(|e: http::uri::InvalidUri| invalid(&e.to_string()))?;
        Ok(Self { authority })
    }

    /// `host:port`.
    pub fn authority(&self) -> &str {
        self.authority.as_str()
    }

    /// `http://host:port/api/v1/scheduler`.
    pub fn scheduler_uri(&self) -> Uri {
        self.uri(SCHEDULER_API_PATH)
    }

    /// `http://host:port<path>`; `path` must start with `/`.
    pub fn uri(&self, path: &str) -> Uri {
        Uri::builder()
            .scheme("http")
            .authority(self.authority.clone())
            .path_and_query(path)
            .build()
            .unwrap_or_else(|_| {
                // Only a malformed `path` can fail here; fall back to the root.
                Uri::builder()
                    .scheme("http")
                    .authority(self.authority.clone())
                    .path_and_query("/")
                    .build()
                    .expect("scheme, validated authority and '/' form a URI")
            })
    }
}

impl fmt::Display for MasterEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.authority.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_forms_users_and_masters_write() {
        for (text, expected) in [
            ("10.0.0.1:5050", "10.0.0.1:5050"),
            ("master.example", "master.example:5050"),
            ("http://10.0.0.1:5051", "10.0.0.1:5051"),
            (
                "http://10.0.0.1:5051/master/api/v1/scheduler",
                "10.0.0.1:5051",
            ),
            ("//10.0.0.2:5050/master/api/v1/scheduler", "10.0.0.2:5050"),
            ("[::1]:6000", "[::1]:6000"),
            ("[::1]", "[::1]:5050"),
        ] {
            assert_eq!(
                MasterEndpoint::parse(text).unwrap().authority(),
                expected,
                "{text}"
            );
        }
    }

    #[test]
    fn rejects_what_it_cannot_reach() {
        assert_eq!(MasterEndpoint::parse(" "), Err(EndpointError::Empty));
        assert!(matches!(
            MasterEndpoint::parse("zk://zk1:2181/mesos"),
            Err(EndpointError::ZooKeeper(_))
        ));
        assert!(matches!(
            MasterEndpoint::parse("https://m:5050"),
            Err(EndpointError::Scheme { .. })
        ));
        for bad in ["host:", "host:port", "a b:5050", "//", "user@host:5050"] {
            assert!(
                matches!(
                    MasterEndpoint::parse(bad),
                    Err(EndpointError::Invalid { .. })
                ),
                "{bad} accepted"
            );
        }
    }

    #[test]
    fn builds_the_scheduler_uri() {
        let endpoint = MasterEndpoint::parse("127.0.0.1:5050").unwrap();
        assert_eq!(
            endpoint.scheduler_uri().to_string(),
            "http://127.0.0.1:5050/api/v1/scheduler"
        );
    }
}
