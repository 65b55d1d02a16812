//! The executor's view of its environment, as the agent sets it up
//! (`mesos-protocol.md` §3.3, Mesos's `executorEnvironment()`).

use std::path::PathBuf;
use std::time::Duration;

use mesos_proto::codec::ContentType;
use mesos_proto::v1::{ExecutorId, FrameworkId};

use mesos_proto::duration::{parse as parse_duration, DurationError};

/// Mesos's `DEFAULT_EXECUTOR_SHUTDOWN_GRACE_PERIOD`.
pub const DEFAULT_SHUTDOWN_GRACE_PERIOD: Duration = Duration::from_secs(5);
/// The agent's default `--recovery_timeout`.
pub const DEFAULT_RECOVERY_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// Mesos's `EXECUTOR_REREGISTER_TIMEOUT`, which the agent exports as
/// `MESOS_SUBSCRIPTION_BACKOFF_MAX`.
pub const DEFAULT_SUBSCRIPTION_BACKOFF_MAX: Duration = Duration::from_secs(2);

/// Why the environment does not describe a usable executor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A variable the agent always sets is absent.
    #[error("expecting '{var}' to be set in the environment (is this process started by a Mesos agent?)")]
    Missing {
        /// The variable's name.
        var: &'static str,
    },
    /// A variable is set to something unusable.
    #[error("invalid value '{value}' of '{var}': {reason}")]
    Invalid {
        /// The variable's name.
        var: &'static str,
        /// Its value.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// Everything the driver needs to find and talk to its agent.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `MESOS_AGENT_ENDPOINT`: the agent's `ip:port`, no scheme.
    pub agent_endpoint: String,
    /// `MESOS_FRAMEWORK_ID`.
    pub framework_id: FrameworkId,
    /// `MESOS_EXECUTOR_ID`.
    pub executor_id: ExecutorId,
    /// `MESOS_DIRECTORY`: the sandbox path on the host.
    pub directory: Option<PathBuf>,
    /// `MESOS_SANDBOX`: the sandbox path as this process sees it (differs
    /// from [`Config::directory`] only inside a container image); falls back
    /// to `MESOS_DIRECTORY`.
    pub sandbox: Option<PathBuf>,
    /// `MESOS_CHECKPOINT == "1"`: the framework checkpoints, so the executor
    /// outlives agent restarts and reconnects instead of shutting down.
    pub checkpoint: bool,
    /// `MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD`: how long the executor may take
    /// to shut down before it is killed. Default 5 s.
    pub shutdown_grace_period: Duration,
    /// `MESOS_RECOVERY_TIMEOUT`: how long to keep reconnecting to a lost agent
    /// (checkpointing frameworks only). Default 15 min.
    pub recovery_timeout: Duration,
    /// `MESOS_SUBSCRIPTION_BACKOFF_MAX`: reconnection attempts wait a random
    /// time up to this. Default 2 s.
    pub subscription_backoff_max: Duration,
    /// Body encoding of calls and events. Not from the environment: Mesos's
    /// executor library always uses protobuf, which is also the default here.
    pub content_type: ContentType,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads variables through `lookup` (`None` = unset), for tests and for
    /// executors that receive their environment some other way.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let required = |var: &'static str| lookup(var).ok_or(ConfigError::Missing { var });
        let duration = |var: &'static str, default: Duration| match lookup(var) {
            None => Ok(default),
            Some(value) => parse_duration(&value).map_err(|e| invalid(var, &value, &e)),
        };

        let agent_endpoint = required("MESOS_AGENT_ENDPOINT")?;
        check_endpoint(&agent_endpoint)?;
        let framework_id = FrameworkId {
            value: non_empty("MESOS_FRAMEWORK_ID", required("MESOS_FRAMEWORK_ID")?)?,
        };
        let executor_id = ExecutorId {
            value: non_empty("MESOS_EXECUTOR_ID", required("MESOS_EXECUTOR_ID")?)?,
        };
        let directory = lookup("MESOS_DIRECTORY").map(PathBuf::from);
        let sandbox = lookup("MESOS_SANDBOX")
            .map(PathBuf::from)
            .or_else(|| directory.clone());

        Ok(Self {
            agent_endpoint,
            framework_id,
            executor_id,
            directory,
            sandbox,
            // Mesos compares with "1" exactly (pymesos's truthiness test, which
            // treats "0" as true, is a known quirk we do not copy).
            checkpoint: lookup("MESOS_CHECKPOINT").as_deref() == Some("1"),
            shutdown_grace_period: duration(
                "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD",
                DEFAULT_SHUTDOWN_GRACE_PERIOD,
            )?,
            recovery_timeout: duration("MESOS_RECOVERY_TIMEOUT", DEFAULT_RECOVERY_TIMEOUT)?,
            subscription_backoff_max: duration(
                "MESOS_SUBSCRIPTION_BACKOFF_MAX",
                DEFAULT_SUBSCRIPTION_BACKOFF_MAX,
            )?,
            content_type: ContentType::Protobuf,
        })
    }
}

fn invalid(var: &'static str, value: &str, reason: &DurationError) -> ConfigError {
    ConfigError::Invalid {
        var,
        value: value.to_owned(),
        reason: reason.to_string(),
    }
}

fn non_empty(var: &'static str, value: String) -> Result<String, ConfigError> {
    if value.is_empty() {
        return Err(ConfigError::Invalid {
            var,
            value,
            reason: "must not be empty".into(),
        });
    }
    Ok(value)
}

/// `host:port` with a numeric port; the host may be an IPv4 address, a name or
/// a bracketed IPv6 address.
fn check_endpoint(endpoint: &str) -> Result<(), ConfigError> {
    let bad = |reason: &str| ConfigError::Invalid {
        var: "MESOS_AGENT_ENDPOINT",
        value: endpoint.to_owned(),
        reason: reason.to_owned(),
    };
    if endpoint.contains("://") || endpoint.contains('/') {
        return Err(bad("expected ip:port without a scheme or path"));
    }
    let (host, port) = endpoint
        .rsplit_once(':')
        .ok_or_else(|| bad("expected ip:port"))?;
    if host.is_empty() {
        return Err(bad("the host is empty"));
    }
    port.parse::<u16>()
        .map_err(|_| bad("the port is not a number from 0 to 65535"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn lookup<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        let map: HashMap<&str, &str> = vars.iter().copied().collect();
        move |name| map.get(name).map(|v| (*v).to_owned())
    }

    const MINIMAL: [(&str, &str); 3] = [
        ("MESOS_AGENT_ENDPOINT", "127.0.0.1:5051"),
        ("MESOS_FRAMEWORK_ID", "fw-1"),
        ("MESOS_EXECUTOR_ID", "ex-1"),
    ];

    fn with(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
        let mut vars = MINIMAL.to_vec();
        vars.extend_from_slice(extra);
        vars
    }

    #[test]
    fn minimal_environment_gets_mesos_defaults() {
        let config = Config::from_lookup(lookup(&MINIMAL)).unwrap();
        assert_eq!(config.agent_endpoint, "127.0.0.1:5051");
        assert_eq!(config.framework_id.value, "fw-1");
        assert_eq!(config.executor_id.value, "ex-1");
        assert!(!config.checkpoint);
        assert_eq!(config.shutdown_grace_period, Duration::from_secs(5));
        assert_eq!(config.recovery_timeout, Duration::from_secs(900));
        assert_eq!(config.subscription_backoff_max, Duration::from_secs(2));
        assert_eq!(config.sandbox, None);
        assert_eq!(config.content_type, ContentType::Protobuf);
    }

    #[test]
    fn each_missing_required_variable_is_named() {
        for missing in [
            "MESOS_AGENT_ENDPOINT",
            "MESOS_FRAMEWORK_ID",
            "MESOS_EXECUTOR_ID",
        ] {
            let vars: Vec<_> = MINIMAL
                .iter()
                .copied()
                .filter(|(k, _)| *k != missing)
                .collect();
            let err = Config::from_lookup(lookup(&vars)).unwrap_err();
            assert_eq!(err, ConfigError::Missing { var: missing });
            assert!(err.to_string().contains(missing), "{err}");
        }
    }

    #[test]
    fn reads_the_full_agent_environment() {
        let vars = with(&[
            ("MESOS_DIRECTORY", "/var/lib/mesos/slaves/s/runs/c"),
            ("MESOS_SANDBOX", "/mnt/mesos/sandbox"),
            ("MESOS_CHECKPOINT", "1"),
            ("MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD", "10secs"),
            ("MESOS_RECOVERY_TIMEOUT", "1mins"),
            ("MESOS_SUBSCRIPTION_BACKOFF_MAX", "250ms"),
        ]);
        let config = Config::from_lookup(lookup(&vars)).unwrap();
        assert_eq!(
            config.directory.as_deref(),
            Some("/var/lib/mesos/slaves/s/runs/c".as_ref())
        );
        assert_eq!(
            config.sandbox.as_deref(),
            Some("/mnt/mesos/sandbox".as_ref())
        );
        assert!(config.checkpoint);
        assert_eq!(config.shutdown_grace_period, Duration::from_secs(10));
        assert_eq!(config.recovery_timeout, Duration::from_secs(60));
        assert_eq!(config.subscription_backoff_max, Duration::from_millis(250));
    }

    #[test]
    fn sandbox_falls_back_to_directory() {
        let vars = with(&[("MESOS_DIRECTORY", "/sandbox")]);
        let config = Config::from_lookup(lookup(&vars)).unwrap();
        assert_eq!(config.sandbox.as_deref(), Some("/sandbox".as_ref()));
    }

    #[test]
    fn checkpoint_is_exactly_one() {
        for (value, expected) in [("1", true), ("0", false), ("true", false)] {
            let vars = with(&[("MESOS_CHECKPOINT", value)]);
            assert_eq!(
                Config::from_lookup(lookup(&vars)).unwrap().checkpoint,
                expected,
                "{value}"
            );
        }
    }

    #[test]
    fn bad_duration_names_variable_and_value() {
        let vars = with(&[("MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD", "5s")]);
        let err = Config::from_lookup(lookup(&vars)).unwrap_err();
        let message = err.to_string();
        assert!(
            matches!(err, ConfigError::Invalid { var: "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD", ref value, .. } if value == "5s"),
            "{message}"
        );
        assert!(message.contains("unknown unit 's'"), "{message}");
    }

    #[test]
    fn rejects_endpoints_that_are_not_ip_port() {
        for endpoint in [
            "http://127.0.0.1:5051",
            "127.0.0.1",
            ":5051",
            "127.0.0.1:port",
            "127.0.0.1:70000",
            "slave(1)@1.2.3.4:5051/x",
        ] {
            let vars = [
                ("MESOS_AGENT_ENDPOINT", endpoint),
                ("MESOS_FRAMEWORK_ID", "f"),
                ("MESOS_EXECUTOR_ID", "e"),
            ];
            let err = Config::from_lookup(lookup(&vars)).unwrap_err();
            assert!(
                matches!(
                    err,
                    ConfigError::Invalid {
                        var: "MESOS_AGENT_ENDPOINT",
                        ..
                    }
                ),
                "{endpoint}: {err}"
            );
        }
        let vars = [
            ("MESOS_AGENT_ENDPOINT", "[::1]:5051"),
            ("MESOS_FRAMEWORK_ID", "f"),
            ("MESOS_EXECUTOR_ID", "e"),
        ];
        assert!(Config::from_lookup(lookup(&vars)).is_ok());
    }

    #[test]
    fn rejects_empty_ids() {
        let vars = [
            ("MESOS_AGENT_ENDPOINT", "127.0.0.1:1"),
            ("MESOS_FRAMEWORK_ID", ""),
            ("MESOS_EXECUTOR_ID", "e"),
        ];
        let err = Config::from_lookup(lookup(&vars)).unwrap_err();
        assert!(matches!(
            err,
            ConfigError::Invalid {
                var: "MESOS_FRAMEWORK_ID",
                ..
            }
        ));
    }
}
