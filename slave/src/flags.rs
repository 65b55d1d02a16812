//! `mesos-agent` flags, named and defaulted as in Mesos's `src/slave/flags.cpp`.
//!
//! Like stout's flags, each flag may be given as `--name=value`, with dashes in
//! place of underscores (`--work-dir`), as `--no-name` for booleans, or through
//! the environment as `MESOS_<NAME>`. Durations use stout units (`5secs`).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::net::IpAddr;
use std::path::PathBuf;

use clap::builder::BoolishValueParser;
use clap::{ArgAction, CommandFactory, Parser};
use serde::Serialize;

use crate::duration::StoutDuration;

/// Upper bound of `--executor_reregistration_timeout` (Mesos
/// `MAX_EXECUTOR_REREGISTRATION_TIMEOUT`).
pub const MAX_EXECUTOR_REREGISTRATION_TIMEOUT: std::time::Duration =
    std::time::Duration::from_secs(15);

/// Why the agent refused its flags: always names the flag.
#[derive(Debug, thiserror::Error)]
pub enum FlagsError {
    /// clap's own message names the flag and the problem.
    #[error("{0}")]
    Parse(String),
    /// A value clap accepted but that is invalid in context.
    #[error("invalid value for flag '--{flag}': {message}")]
    Invalid {
        /// The flag's Mesos name.
        flag: &'static str,
        /// What is wrong with it.
        message: String,
    },
}

/// The agent's flags.
#[derive(Debug, Clone, Parser, Serialize)]
#[command(
    name = "mesos-agent",
    version,
    about = "The Mesos agent: runs tasks offered by a Mesos master in isolated containers"
)]
pub struct Flags {
    /// The master to register with: `host:port`.
    #[arg(long = "master", env = "MESOS_MASTER", value_name = "HOST:PORT")]
    pub master: String,

    /// Where sandboxes and checkpointed state live (required).
    #[arg(long = "work_dir", env = "MESOS_WORK_DIR")]
    pub work_dir: PathBuf,

    /// Runtime state cleared on reboot; default `/var/run/mesos` if `/var/run`
    /// is writable, else `$TMPDIR/mesos/runtime`.
    #[arg(long = "runtime_dir", env = "MESOS_RUNTIME_DIR")]
    pub runtime_dir: Option<PathBuf>,

    /// Port to listen on.
    #[arg(long = "port", env = "MESOS_PORT", default_value_t = 5051)]
    pub port: u16,

    /// IP address to listen on (default: the address the hostname resolves to,
    /// else 127.0.0.1).
    #[arg(long = "ip", env = "MESOS_IP")]
    pub ip: Option<IpAddr>,

    /// IP address advertised to the master and executors, if different from `--ip`.
    #[arg(long = "advertise_ip", env = "MESOS_ADVERTISE_IP")]
    pub advertise_ip: Option<IpAddr>,

    /// Hostname reported to the master (default: the system hostname).
    #[arg(long = "hostname", env = "MESOS_HOSTNAME")]
    pub hostname: Option<String>,

    /// Resources offered, e.g. `cpus:4;mem:8192;disk:40960;ports:[31000-32000]`
    /// or a JSON array of Resource. Missing cpus/mem/disk/ports are detected.
    #[arg(long = "resources", env = "MESOS_RESOURCES")]
    pub resources: Option<String>,

    /// Attributes of the agent, e.g. `rack:2;os:debian`.
    #[arg(long = "attributes", env = "MESOS_ATTRIBUTES")]
    pub attributes: Option<String>,

    /// Role of resources given without one.
    #[arg(long = "default_role", env = "MESOS_DEFAULT_ROLE", default_value = "*")]
    pub default_role: String,

    /// Isolation mechanisms, comma separated (`cgroups/cpu,cgroups/mem,namespaces/pid`, ...).
    #[arg(
        long = "isolation",
        env = "MESOS_ISOLATION",
        default_value = "posix/cpu,posix/mem"
    )]
    pub isolation: String,

    /// Name of the agent's cgroup subtree in each hierarchy.
    #[arg(
        long = "cgroups_root",
        env = "MESOS_CGROUPS_ROOT",
        default_value = "mesos"
    )]
    pub cgroups_root: String,

    /// Where cgroup hierarchies are mounted.
    #[arg(
        long = "cgroups_hierarchy",
        env = "MESOS_CGROUPS_HIERARCHY",
        default_value = "/sys/fs/cgroup"
    )]
    pub cgroups_hierarchy: PathBuf,

    /// Hard-cap CPU with CFS quota (otherwise only weights/shares).
    #[arg(long = "cgroups_enable_cfs", env = "MESOS_CGROUPS_ENABLE_CFS", default_value_t = false,
          action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true",
          value_parser = BoolishValueParser::new())]
    pub cgroups_enable_cfs: bool,

    /// Bound swap by the memory limit too (see `mesos-isolator`: default true,
    /// unlike Mesos, so a limit cannot be escaped into swap).
    #[arg(long = "cgroups_limit_swap", env = "MESOS_CGROUPS_LIMIT_SWAP", default_value_t = true,
          action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true",
          value_parser = BoolishValueParser::new())]
    pub cgroups_limit_swap: bool,

    /// `pids.max` for containers without a `pids` resource (needs cgroups/pids).
    #[arg(long = "cgroups_pids_max", env = "MESOS_CGROUPS_PIDS_MAX")]
    pub cgroups_pids_max: Option<u64>,

    /// How long destroying a container may wait for its processes to die.
    #[arg(
        long = "cgroups_destroy_timeout",
        env = "MESOS_CGROUPS_DESTROY_TIMEOUT",
        default_value = "1mins"
    )]
    pub cgroups_destroy_timeout: StoutDuration,

    /// Container image providers, comma separated (`oci`).
    #[arg(long = "image_providers", env = "MESOS_IMAGE_PROVIDERS")]
    pub image_providers: Option<String>,

    /// Local OCI image-layout store (default `<work_dir>/store/oci`).
    #[arg(long = "oci_store_dir", env = "MESOS_OCI_STORE_DIR")]
    pub oci_store_dir: Option<PathBuf>,

    /// Time an executor has to subscribe after launch before it is destroyed.
    #[arg(
        long = "executor_registration_timeout",
        env = "MESOS_EXECUTOR_REGISTRATION_TIMEOUT",
        default_value = "1mins"
    )]
    pub executor_registration_timeout: StoutDuration,

    /// After an agent restart, how long recovered executors have to
    /// re-subscribe before they are destroyed (at most 15 s, as Mesos).
    #[arg(
        long = "executor_reregistration_timeout",
        env = "MESOS_EXECUTOR_REREGISTRATION_TIMEOUT",
        default_value = "2secs"
    )]
    pub executor_reregistration_timeout: StoutDuration,

    /// How long executors of checkpointing frameworks wait for a restarting
    /// agent before they shut down (`MESOS_RECOVERY_TIMEOUT`).
    #[arg(
        long = "recovery_timeout",
        env = "MESOS_RECOVERY_TIMEOUT",
        default_value = "15mins"
    )]
    pub recovery_timeout: StoutDuration,

    /// What to do with the executors of an earlier run: `reconnect` to them,
    /// or `cleanup`: kill them, forget the checkpoint and exit.
    #[arg(long = "recover", env = "MESOS_RECOVER", default_value = "reconnect",
          value_parser = ["reconnect", "cleanup"])]
    pub recover: String,

    /// Whether any unreadable checkpoint file stops recovery (else it is
    /// skipped and counted in `slave/recovery_errors`).
    #[arg(long = "strict", env = "MESOS_STRICT", default_value_t = true,
          action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true",
          value_parser = BoolishValueParser::new())]
    pub strict: bool,

    /// Test-only: first retry interval of unacknowledged status updates
    /// (Mesos's constant 10 s); it doubles up to 10 min.
    #[arg(
        long = "status_update_retry_interval_min",
        env = "MESOS_STATUS_UPDATE_RETRY_INTERVAL_MIN",
        default_value = "10secs",
        hide = true
    )]
    pub status_update_retry_interval_min: StoutDuration,

    /// Time an executor has to shut down (and a task to honour KILL) before its
    /// container is destroyed.
    #[arg(
        long = "executor_shutdown_grace_period",
        env = "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD",
        default_value = "5secs"
    )]
    pub executor_shutdown_grace_period: StoutDuration,

    /// How long sandboxes of finished executors are kept.
    #[arg(long = "gc_delay", env = "MESOS_GC_DELAY", default_value = "1weeks")]
    pub gc_delay: StoutDuration,

    /// Run tasks as the user of the task/framework rather than the agent's.
    #[arg(long = "switch_user", env = "MESOS_SWITCH_USER", default_value_t = true,
          action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true",
          value_parser = BoolishValueParser::new())]
    pub switch_user: bool,

    /// Directory holding `mesos-executor` and `mesos-containerizer`
    /// (default: the directory of this binary).
    #[arg(long = "launcher_dir", env = "MESOS_LAUNCHER_DIR")]
    pub launcher_dir: Option<PathBuf>,

    /// Where the sandbox appears inside containers that have an image.
    #[arg(
        long = "sandbox_directory",
        env = "MESOS_SANDBOX_DIRECTORY",
        default_value = "/mnt/mesos/sandbox"
    )]
    pub sandbox_directory: PathBuf,

    /// Initial upper bound of the random delay before (re-)registering; it
    /// doubles on every retry up to one minute.
    #[arg(
        long = "registration_backoff_factor",
        env = "MESOS_REGISTRATION_BACKOFF_FACTOR",
        default_value = "1secs"
    )]
    pub registration_backoff_factor: StoutDuration,

    /// How executors are started: `linux` (the containerizer: cgroups and
    /// namespaces; needs root) or `posix` (plain processes, nothing
    /// enforced). Default: `linux` when running as root, else `posix`.
    #[arg(long = "launcher", env = "MESOS_LAUNCHER", value_parser = ["linux", "posix"])]
    pub launcher: Option<String>,

    /// Launch command tasks with the HTTP (v1) command executor.
    #[arg(long = "http_command_executor", env = "MESOS_HTTP_COMMAND_EXECUTOR", default_value_t = false,
          action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true",
          value_parser = BoolishValueParser::new())]
    pub http_command_executor: bool,
}

/// Boolean flags, for stout's `--no-<name>` spelling.
fn boolean_flags() -> Vec<String> {
    Flags::command()
        .get_arguments()
        .filter(|arg| {
            arg.get_default_values()
                .first()
                .is_some_and(|v| v == "true" || v == "false")
        })
        .filter_map(|arg| arg.get_long().map(str::to_string))
        .collect()
}

/// Rewrites stout spellings clap does not know: `--work-dir` → `--work_dir`,
/// `--no-switch_user` → `--switch_user=false`.
fn normalize_args(args: Vec<OsString>) -> Vec<OsString> {
    let booleans = boolean_flags();
    args.into_iter()
        .enumerate()
        .map(|(index, arg)| {
            let Some(text) = arg.to_str().filter(|t| index > 0 && t.starts_with("--")) else {
                return arg;
            };
            let (name, value) = match text[2..].split_once('=') {
                Some((name, value)) => (name.replace('-', "_"), Some(value)),
                None => (text[2..].replace('-', "_"), None),
            };
            if let Some(negated) = name.strip_prefix("no_") {
                if value.is_none() && booleans.iter().any(|b| b == negated) {
                    return OsString::from(format!("--{negated}=false"));
                }
            }
            match value {
                Some(value) => OsString::from(format!("--{name}={value}")),
                None => OsString::from(format!("--{name}")),
            }
        })
        .collect()
}

impl Flags {
    /// Parses argv (and `MESOS_*` variables) the way stout does.
    ///
    /// `--help`/`--version` come back as `Err(clap::Error)` of the matching
    /// kind so `main` can print them and exit 0.
    pub fn parse_from_args<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString>,
    {
        let args = normalize_args(args.into_iter().map(Into::into).collect());
        let flags = Self::try_parse_from(args)?;
        Ok(flags)
    }

    /// Checks what clap cannot: relations between flags and their contents.
    pub fn validate(&self) -> Result<(), FlagsError> {
        if self.master.trim().is_empty() {
            return Err(FlagsError::Invalid {
                flag: "master",
                message: "must be host:port".into(),
            });
        }
        if self.master.starts_with("zk://") {
            return Err(FlagsError::Invalid {
                flag: "master",
                message: "ZooKeeper master detection is not supported yet; use host:port".into(),
            });
        }
        if crate::master_link::parse_master_address(&self.master).is_none() {
            return Err(FlagsError::Invalid {
                flag: "master",
                message: format!("'{}' is not host:port", self.master),
            });
        }
        if let Err(error) = self.isolation.parse::<mesos_isolator::Isolation>() {
            return Err(FlagsError::Invalid {
                flag: "isolation",
                message: error.to_string(),
            });
        }
        if self.work_dir.as_os_str().is_empty() {
            return Err(FlagsError::Invalid {
                flag: "work_dir",
                message: "must not be empty".into(),
            });
        }
        if self.executor_registration_timeout.get().is_zero() {
            return Err(FlagsError::Invalid {
                flag: "executor_registration_timeout",
                message: "must be positive".into(),
            });
        }
        let reregistration = self.executor_reregistration_timeout.get();
        if reregistration > MAX_EXECUTOR_REREGISTRATION_TIMEOUT {
            return Err(FlagsError::Invalid {
                flag: "executor_reregistration_timeout",
                message: format!(
                    "must be at most {}",
                    StoutDuration(MAX_EXECUTOR_REREGISTRATION_TIMEOUT)
                ),
            });
        }
        if self.status_update_retry_interval_min.get().is_zero() {
            return Err(FlagsError::Invalid {
                flag: "status_update_retry_interval_min",
                message: "must be positive".into(),
            });
        }
        Ok(())
    }

    /// Whether `--recover=cleanup` was given.
    pub fn cleanup(&self) -> bool {
        self.recover == "cleanup"
    }

    /// The runtime directory, defaulted as in Mesos.
    pub fn runtime_dir(&self) -> PathBuf {
        if let Some(dir) = &self.runtime_dir {
            return dir.clone();
        }
        if nix::unistd::access("/var/run", nix::unistd::AccessFlags::W_OK).is_ok() {
            PathBuf::from("/var/run/mesos")
        } else {
            std::env::temp_dir().join("mesos").join("runtime")
        }
    }

    /// The launcher directory: `--launcher_dir`, else the directory of the
    /// running binary (where cargo puts `mesos-executor` too).
    pub fn launcher_dir(&self) -> PathBuf {
        if let Some(dir) = &self.launcher_dir {
            return dir.clone();
        }
        std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("."))
    }

    /// The launcher, defaulted as in Mesos.
    pub fn launcher(&self) -> &str {
        match self.launcher.as_deref() {
            Some(launcher) => launcher,
            None if nix::unistd::geteuid().is_root() => "linux",
            None => "posix",
        }
    }

    /// Every flag as Mesos's `/flags` shows it: name → string value.
    pub fn to_map(&self) -> BTreeMap<String, String> {
        let value = serde_json::to_value(self).unwrap_or_default();
        let mut map = BTreeMap::new();
        if let serde_json::Value::Object(fields) = value {
            for (name, value) in fields {
                let text = match value {
                    serde_json::Value::Null => continue,
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                };
                map.insert(name, text);
            }
        }
        map.insert(
            "runtime_dir".into(),
            self.runtime_dir().display().to_string(),
        );
        map.insert("launcher".into(), self.launcher().to_string());
        map.insert(
            "launcher_dir".into(),
            self.launcher_dir().display().to_string(),
        );
        map
    }
}

impl Serialize for StoutDuration {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn parse(args: &[&str]) -> Result<Flags, clap::Error> {
        let mut argv = vec!["mesos-agent"];
        argv.extend_from_slice(args);
        Flags::parse_from_args(argv)
    }

    const REQUIRED: [&str; 2] = ["--master=127.0.0.1:5050", "--work_dir=/tmp/w"];

    #[test]
    fn defaults_match_mesos() {
        let flags = parse(&REQUIRED).unwrap();
        assert_eq!(flags.port, 5051);
        assert_eq!(
            flags.executor_registration_timeout.get(),
            Duration::from_secs(60)
        );
        assert_eq!(
            flags.executor_shutdown_grace_period.get(),
            Duration::from_secs(5)
        );
        assert_eq!(flags.gc_delay.get(), Duration::from_secs(7 * 86_400));
        assert!(flags.switch_user);
        assert!(!flags.cgroups_enable_cfs);
        assert_eq!(flags.cgroups_root, "mesos");
        assert_eq!(flags.isolation, "posix/cpu,posix/mem");
        assert_eq!(
            flags.executor_reregistration_timeout.get(),
            Duration::from_secs(2)
        );
        assert_eq!(flags.recovery_timeout.get(), Duration::from_secs(900));
        assert_eq!(flags.recover, "reconnect");
        assert!(flags.strict);
        flags.validate().unwrap();
    }

    #[test]
    fn stout_spellings_are_accepted() {
        let flags = parse(&[
            "--master=127.0.0.1:5050",
            "--work-dir=/tmp/w",
            "--no-switch_user",
            "--cgroups_enable_cfs",
            "--executor_registration_timeout=250ms",
        ])
        .unwrap();
        assert_eq!(flags.work_dir, PathBuf::from("/tmp/w"));
        assert!(!flags.switch_user);
        assert!(flags.cgroups_enable_cfs);
        assert_eq!(
            flags.executor_registration_timeout.get(),
            Duration::from_millis(250)
        );
        let flags = parse(&[REQUIRED[0], REQUIRED[1], "--switch_user=false"]).unwrap();
        assert!(!flags.switch_user);
    }

    #[test]
    fn bad_values_name_the_flag() {
        let err = parse(&[REQUIRED[0], REQUIRED[1], "--port=seventy"]).unwrap_err();
        assert!(err.to_string().contains("--port"), "{err}");
        let err = parse(&[REQUIRED[0], REQUIRED[1], "--gc_delay=3s"]).unwrap_err();
        assert!(err.to_string().contains("--gc_delay"), "{err}");
        assert!(err.to_string().contains("unknown unit 's'"), "{err}");
        let err = parse(&[REQUIRED[0], REQUIRED[1], "--bogus=1"]).unwrap_err();
        assert!(err.to_string().contains("--bogus"), "{err}");
        let err = parse(&[REQUIRED[0]]).unwrap_err();
        assert!(err.to_string().contains("--work_dir"), "{err}");
        let err = parse(&[REQUIRED[0], REQUIRED[1], "--recover=later"]).unwrap_err();
        assert!(err.to_string().contains("--recover"), "{err}");
        let flags = parse(&[
            REQUIRED[0],
            REQUIRED[1],
            "--executor_reregistration_timeout=16secs",
        ])
        .unwrap();
        let err = flags.validate().unwrap_err();
        assert!(
            err.to_string()
                .contains("--executor_reregistration_timeout"),
            "{err}"
        );
        let flags = parse(&["--master=nonsense", REQUIRED[1]]).unwrap();
        let err = flags.validate().unwrap_err();
        assert!(err.to_string().contains("--master"), "{err}");
    }

    #[test]
    fn flags_map_has_strings_for_every_set_flag() {
        let flags = parse(&REQUIRED).unwrap();
        let map = flags.to_map();
        assert_eq!(map["port"], "5051");
        assert_eq!(map["executor_shutdown_grace_period"], "5secs");
        assert_eq!(map["switch_user"], "true");
        assert_eq!(map["work_dir"], "/tmp/w");
        assert!(!map.contains_key("resources"));
    }
}
