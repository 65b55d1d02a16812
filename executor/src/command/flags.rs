//! Command-line flags of `mesos-executor`, stout style (`--name=value`).
//! The agent starts it as `<launcher_dir>/mesos-executor
//! --launcher_dir=<launcher_dir>`; like Mesos's, it refuses unknown flags.

use std::path::PathBuf;

use mesos_proto::codec;
use mesos_proto::v1::{CommandInfo, Environment};

/// Usage text for `--help` and flag errors.
pub const USAGE: &str = "\
Usage: mesos-executor [options]

The Mesos command executor: runs one task's CommandInfo for the agent that
started it. Everything else comes from the MESOS_* environment.

  --launcher_dir=DIR        directory of the Mesos helper binaries
  --working_directory=DIR   working directory of the task (default: MESOS_SANDBOX)
  --sandbox_directory=DIR   the sandbox path inside the container
  --task_command=JSON       a CommandInfo (JSON) that replaces the task's command
  --task_environment=JSON   an Environment (JSON) added to the task's environment
  --help                    print this help";

/// Flags the agent may pass that need container support this executor does
/// not do itself (the containerizer sets those up before starting it).
const UNSUPPORTED: [&str; 7] = [
    "rootfs",
    "user",
    "tty_slave_path",
    "effective_capabilities",
    "bounding_capabilities",
    "task_launch_info",
    "task_supplementary_groups",
];

/// A command-line error; `Display` names the flag.
#[derive(Debug, thiserror::Error)]
pub enum FlagsError {
    /// Not `--name=value` (or `--help`).
    #[error("expected a flag of the form --name=value, got '{0}'")]
    Malformed(String),
    /// A flag this executor does not know.
    #[error("unknown flag '--{0}'")]
    Unknown(String),
    /// A Mesos flag this executor cannot honour.
    #[error("flag '--{0}' is not supported by this command executor")]
    Unsupported(String),
    /// The same flag twice.
    #[error("flag '--{0}' was given more than once")]
    Duplicate(String),
    /// A value that does not parse.
    #[error("invalid value for flag '--{flag}': {reason}")]
    Invalid {
        /// The flag.
        flag: &'static str,
        /// What is wrong with its value.
        reason: String,
    },
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Args {
    /// Run with these flags.
    Run(Box<Flags>),
    /// Print [`USAGE`].
    Help,
}

/// Parsed flags.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Flags {
    /// `--launcher_dir`: where the agent's helper binaries live (informational).
    pub launcher_dir: Option<PathBuf>,
    /// `--working_directory`: the task's working directory; default is the
    /// sandbox (`MESOS_SANDBOX`).
    pub working_directory: Option<PathBuf>,
    /// `--sandbox_directory`: the sandbox path inside the container.
    pub sandbox_directory: Option<PathBuf>,
    /// `--task_command`: replaces the TaskInfo's command.
    pub task_command: Option<CommandInfo>,
    /// `--task_environment`: environment added before the command's own.
    pub task_environment: Option<Environment>,
}

impl Flags {
    /// Parses the arguments after the program name.
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Args, FlagsError> {
        let mut flags = Flags::default();
        for arg in args {
            if arg == "--help" {
                return Ok(Args::Help);
            }
            let (name, value) = arg
                .strip_prefix("--")
                .and_then(|rest| rest.split_once('='))
                .ok_or_else(|| FlagsError::Malformed(arg.clone()))?;
            flags.set(name, value)?;
        }
        Ok(Args::Run(Box::new(flags)))
    }

    fn set(&mut self, name: &str, value: &str) -> Result<(), FlagsError> {
        fn once<T>(slot: &mut Option<T>, name: &str, value: T) -> Result<(), FlagsError> {
            if slot.replace(value).is_some() {
                return Err(FlagsError::Duplicate(name.to_owned()));
            }
            Ok(())
        }
        match name {
            "launcher_dir" => once(&mut self.launcher_dir, name, value.into()),
            "working_directory" => once(&mut self.working_directory, name, value.into()),
            "sandbox_directory" => once(&mut self.sandbox_directory, name, value.into()),
            "task_command" => once(&mut self.task_command, name, json("task_command", value)?),
            "task_environment" => once(
                &mut self.task_environment,
                name,
                json("task_environment", value)?,
            ),
            _ if UNSUPPORTED.contains(&name) => Err(FlagsError::Unsupported(name.to_owned())),
            _ => Err(FlagsError::Unknown(name.to_owned())),
        }
    }
}

fn json<M: prost_reflect::ReflectMessage + Default>(
    flag: &'static str,
    value: &str,
) -> Result<M, FlagsError> {
    codec::from_json(value.as_bytes()).map_err(|e| FlagsError::Invalid {
        flag,
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, FlagsError> {
        Flags::parse(args.iter().map(|a| (*a).to_owned()))
    }

    #[test]
    fn accepts_what_the_agent_passes() {
        let Args::Run(flags) = parse(&["--launcher_dir=/usr/libexec/mesos"]).unwrap() else {
            panic!("expected flags");
        };
        assert_eq!(
            flags.launcher_dir.as_deref(),
            Some("/usr/libexec/mesos".as_ref())
        );
    }

    #[test]
    fn parses_json_flags() {
        let Args::Run(flags) = parse(&[
            r#"--task_command={"value":"echo hi","shell":true}"#,
            r#"--task_environment={"variables":[{"name":"A","value":"1"}]}"#,
        ])
        .unwrap() else {
            panic!("expected flags");
        };
        assert_eq!(
            flags.task_command.and_then(|c| c.value).as_deref(),
            Some("echo hi")
        );
        assert_eq!(flags.task_environment.unwrap().variables[0].name, "A");
    }

    #[test]
    fn errors_name_the_flag() {
        let cases: [(&[&str], &str); 5] = [
            (&["--bogus=1"], "unknown flag '--bogus'"),
            (&["--rootfs=/x"], "'--rootfs' is not supported"),
            (&["launcher_dir=/x"], "got 'launcher_dir=/x'"),
            (
                &["--launcher_dir=/a", "--launcher_dir=/b"],
                "'--launcher_dir' was given more than once",
            ),
            (
                &["--task_command={"],
                "invalid value for flag '--task_command'",
            ),
        ];
        for (args, expected) in cases {
            let message = parse(args).unwrap_err().to_string();
            assert!(message.contains(expected), "{args:?}: {message}");
        }
    }

    #[test]
    fn help() {
        assert_eq!(parse(&["--launcher_dir=/x", "--help"]).unwrap(), Args::Help);
    }
}
