//! `mesos-execute`'s flags, named as in Mesos (`--kill_after`, not
//! `--kill-after`; the hyphenated forms are accepted too). Each value is
//! checked while parsing, so a bad one is reported with its flag's name and
//! exit code 2 before anything is sent.

use std::collections::BTreeMap;

use clap::{ArgAction, Parser};
use mesos_proto::resources::Resources;
use mesos_scheduler::MasterEndpoint;

use super::exit::EXIT_CODES_HELP;
use mesos_proto::duration::MesosDuration;

/// Run one command as a Mesos task and report how it went.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "mesos-execute",
    version,
    about = "Runs one command as a task on a Mesos cluster, printing its status updates, \
             its sandbox path and, at the end, the tail of its stdout and stderr.",
    after_help = EXIT_CODES_HELP
)]
pub struct Flags {
    /// The leading master, HOST:PORT (a bare HOST means port 5050).
    #[arg(long, value_name = "HOST:PORT", value_parser = parse_master)]
    pub master: MasterEndpoint,

    /// Name of the task; also its task id.
    #[arg(long, value_parser = parse_task_name)]
    pub name: String,

    /// The command to run. With --shell (the default) it is run by
    /// `/bin/sh -c`; with --shell=false it is split on whitespace into an
    /// executable and its arguments (no quoting).
    #[arg(long)]
    pub command: String,

    /// Resources of the task, e.g. 'cpus:0.5;mem:128' (Mesos's text form or
    /// a JSON array of Resource objects).
    #[arg(long, default_value = "cpus:1;mem:128", value_parser = parse_resources)]
    pub resources: ResourcesFlag,

    /// Docker image to run the command in (Mesos containerizer).
    #[arg(long, visible_alias = "docker_image")]
    pub image: Option<String>,

    /// Environment variables of the command: a JSON object
    /// ('{"NAME":"value"}') or file:///path/to/such.json.
    #[arg(long = "env", value_name = "JSON", value_parser = parse_env)]
    pub env: Option<Environment>,

    /// Whether --command is a shell command.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", default_value_t = true, action = ArgAction::Set)]
    pub shell: bool,

    /// Kill the task this long after it started running, e.g. 10secs.
    #[arg(long = "kill_after", alias = "kill-after", value_name = "DURATION")]
    pub kill_after: Option<MesosDuration>,

    /// Name of the framework.
    #[arg(
        long = "framework_name",
        alias = "framework-name",
        default_value = "mesos-execute instance"
    )]
    pub framework_name: String,

    /// Role to register with.
    #[arg(long, default_value = "*")]
    pub role: String,

    /// Enable checkpointing for the framework (its tasks survive agent
    /// restarts).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", default_value_t = false, action = ArgAction::Set)]
    pub checkpoint: bool,

    /// Give up (exit code 5) when no master answers within this long, e.g.
    /// 30secs.
    #[arg(
        long = "connect_timeout",
        alias = "connect-timeout",
        value_name = "DURATION",
        default_value = "30secs"
    )]
    pub connect_timeout: MesosDuration,

    /// How many bytes of the end of stdout and stderr to print at the end
    /// (0: none).
    #[arg(long = "tail_bytes", alias = "tail-bytes", default_value_t = 4096)]
    pub tail_bytes: u64,

    /// Encoding of the scheduler API bodies: json or protobuf.
    #[arg(long = "content_type", alias = "content-type", default_value = "json", value_parser = ["json", "protobuf"])]
    pub content_type: String,
}

/// `--resources`: the text and its parse with no role.
#[derive(Debug, Clone)]
pub struct ResourcesFlag {
    /// As given.
    pub text: String,
    /// Unreserved (role `*`).
    pub unreserved: Resources,
}

/// `--env`: variable name → value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Environment(pub BTreeMap<String, String>);

fn parse_master(text: &str) -> Result<MasterEndpoint, String> {
    MasterEndpoint::parse(text).map_err(|e| e.to_string())
}

/// Mesos's task id rules (src/common/validation.cpp `validateID`).
fn parse_task_name(text: &str) -> Result<String, String> {
    if text.is_empty() {
        return Err("must not be empty".into());
    }
    if text.len() > 255 {
        return Err("must be at most 255 bytes (it becomes the task id)".into());
    }
    if text == "." || text == ".." {
        return Err("'.' and '..' are not valid task ids".into());
    }
    if text.contains(['/', '\\']) {
        return Err("must not contain '/' or '\\' (it becomes the task id)".into());
    }
    if text.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(text.to_owned())
}

fn parse_resources(text: &str) -> Result<ResourcesFlag, String> {
    let unreserved = Resources::parse(text, "*").map_err(|e| e.to_string())?;
    if unreserved.is_empty() {
        return Err("no resources given (e.g. 'cpus:0.5;mem:128')".into());
    }
    Ok(ResourcesFlag {
        text: text.to_owned(),
        unreserved,
    })
}

fn parse_env(text: &str) -> Result<Environment, String> {
    let json = match text.strip_prefix("file://") {
        Some(path) => {
            std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?
        }
        None => text.to_owned(),
    };
    let value: serde_json::Value =
        serde_json::from_str(&json).map_err(|e| format!("not JSON: {e}"))?;
    let object = value
        .as_object()
        .ok_or("expected a JSON object of names to string values, e.g. {\"NAME\":\"value\"}")?;
    object
        .iter()
        .map(|(name, value)| match value.as_str() {
            Some(value) => Ok((name.clone(), value.to_owned())),
            None => Err(format!("the value of '{name}' is not a string")),
        })
        .collect::<Result<_, _>>()
        .map(Environment)
}

impl Flags {
    /// The executable and its arguments for `--shell=false`; `None` when the
    /// command is empty.
    pub fn argv(&self) -> Option<Vec<String>> {
        let argv: Vec<String> = self.command.split_whitespace().map(str::to_owned).collect();
        (!argv.is_empty()).then_some(argv)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Flags, clap::Error> {
        let mut all = vec![
            "mesos-execute",
            "--master=127.0.0.1:5050",
            "--name=t",
            "--command=true",
        ];
        all.extend_from_slice(args);
        Flags::try_parse_from(all)
    }

    #[test]
    fn defaults_follow_mesos() {
        let flags = parse(&[]).unwrap();
        assert!(flags.shell);
        assert!(!flags.checkpoint);
        assert_eq!(flags.role, "*");
        assert_eq!(flags.framework_name, "mesos-execute instance");
        assert_eq!(flags.resources.unreserved.cpus(), Some(1.0));
        assert_eq!(flags.resources.unreserved.mem(), Some(128.0));
    }

    #[test]
    fn mesos_style_values() {
        let flags = parse(&[
            "--shell=false",
            "--checkpoint",
            "--kill_after=2secs",
            "--resources=cpus:0.5;mem:64",
            r#"--env={"A":"1","B":"two"}"#,
        ])
        .unwrap();
        assert!(!flags.shell);
        assert!(flags.checkpoint);
        assert_eq!(flags.kill_after.unwrap().get().as_secs(), 2);
        assert_eq!(flags.resources.unreserved.cpus(), Some(0.5));
        assert_eq!(flags.env.unwrap().0["B"], "two");
    }

    #[test]
    fn bad_values_name_their_flag() {
        for (arg, flag) in [
            ("--resources=cpus:abc", "--resources"),
            ("--resources=", "--resources"),
            ("--env=[1]", "--env"),
            (r#"--env={"A":1}"#, "--env"),
            ("--kill_after=10", "--kill_after"),
            ("--name=a/b", "--name"),
            ("--master=zk://z:2181/mesos", "--master"),
        ] {
            let mut all = vec![
                "mesos-execute",
                "--master=127.0.0.1:5050",
                "--name=t",
                "--command=true",
            ];
            all.push(arg);
            let error = Flags::try_parse_from(all).unwrap_err().to_string();
            assert!(error.contains(flag), "{arg}: {error}");
        }
    }

    #[test]
    fn argv_splits_on_whitespace() {
        let mut flags = parse(&["--shell=false"]).unwrap();
        flags.command = "  /bin/echo  a b ".into();
        assert_eq!(flags.argv().unwrap(), ["/bin/echo", "a", "b"]);
        flags.command = " ".into();
        assert_eq!(flags.argv(), None);
    }
}
