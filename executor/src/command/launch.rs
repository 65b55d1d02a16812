//! Turning a task's `CommandInfo` into a running process, the way Mesos's
//! command executor and `mesos-containerizer launch` do.

use std::path::Path;
use std::process::Stdio;

use mesos_proto::v1::environment::variable;
use mesos_proto::v1::{CommandInfo, Environment, TaskInfo};
use tokio::process::{Child, Command};

/// Why a task could not be started.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LaunchError {
    /// Neither the TaskInfo nor `--task_command` has a command.
    #[error("Expecting task '{0}' to have a command")]
    NoCommand(String),
    /// `shell: true` without `value`.
    #[error("Shell command of task '{0}' is not specified")]
    NoShellCommand(String),
    /// `shell: false` without `value`.
    #[error("Executable of task '{0}' is not specified")]
    NoExecutable(String),
    /// fork/exec failed (e.g. no such executable).
    #[error("Failed to launch task '{task_id}' ('{program}'): {source}")]
    Spawn {
        /// The task.
        task_id: String,
        /// The program that could not be run.
        program: String,
        /// The OS error.
        source: std::io::Error,
    },
}

/// The program to exec and its complete argv (argv\[0\] included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CommandLine {
    pub(crate) program: String,
    pub(crate) argv: Vec<String>,
}

impl CommandLine {
    /// `shell` (the default) runs `/bin/sh -c value` with argv\[0\] `sh`.
    /// Otherwise `value` is the executable and `arguments` is its whole argv,
    /// as in `execvp(value, arguments)`: mesos.proto documents
    /// `execlp(value, arguments(0), arguments(1), ...)`, so arguments\[0\]
    /// is argv\[0\]. With no arguments argv is just `[value]`.
    pub(crate) fn of(task_id: &str, command: &CommandInfo) -> Result<Self, LaunchError> {
        let value = command.value.clone();
        if command.shell() {
            let value = value.ok_or_else(|| LaunchError::NoShellCommand(task_id.to_owned()))?;
            return Ok(Self {
                program: "/bin/sh".into(),
                argv: vec!["sh".into(), "-c".into(), value],
            });
        }
        let program = value.ok_or_else(|| LaunchError::NoExecutable(task_id.to_owned()))?;
        let argv = if command.arguments.is_empty() {
            vec![program.clone()]
        } else {
            command.arguments.clone()
        };
        Ok(Self { program, argv })
    }
}

/// The variables to add to (or replace in) the executor's own environment
/// for the task, in increasing priority as Mesos merges them: the agent's
/// `--task_environment`, then the command's. Unresolved secrets are skipped
/// (Mesos resolves them before they get here), and `MESOS_ALLOCATION_ROLE`
/// is set from the task's resources.
pub(crate) fn environment(
    task: &TaskInfo,
    command: &CommandInfo,
    task_environment: Option<&Environment>,
) -> Vec<(String, String)> {
    let mut vars: Vec<(String, String)> = Vec::new();
    let mut set = |name: &str, value: &str| {
        vars.retain(|(n, _)| n != name);
        vars.push((name.to_owned(), value.to_owned()));
    };
    let sources = task_environment
        .into_iter()
        .chain(command.environment.as_ref());
    for variable in sources.flat_map(|e| &e.variables) {
        if variable.r#type() == variable::Type::Secret {
            continue;
        }
        set(
            &variable.name,
            variable.value.as_deref().unwrap_or_default(),
        );
    }
    let role = task
        .resources
        .first()
        .and_then(|r| r.allocation_info.as_ref())
        .and_then(|a| a.role.as_deref());
    if let Some(role) = role {
        set("MESOS_ALLOCATION_ROLE", role);
    }
    vars
}

/// Starts the task in a process group of its own (so kills reach
/// everything it forks), with the executor's stdio (the sandbox's `stdout`
/// and `stderr` files) and `cwd` as working directory.
pub(crate) fn spawn(
    task_id: &str,
    line: &CommandLine,
    environment: &[(String, String)],
    cwd: Option<&Path>,
) -> Result<Child, LaunchError> {
    let mut command = Command::new(&line.program);
    if let Some((argv0, args)) = line.argv.split_first() {
        command.arg0(argv0).args(args);
    }
    command
        .envs(environment.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::inherit())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .process_group(0);
    if let Some(cwd) = cwd {
        command.current_dir(cwd);
    }
    command.spawn().map_err(|source| LaunchError::Spawn {
        task_id: task_id.to_owned(),
        program: line.program.clone(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use mesos_proto::v1::environment::Variable;
    use mesos_proto::v1::resource::AllocationInfo;
    use mesos_proto::v1::{value, Resource};

    use super::*;

    fn command(shell: Option<bool>, value: Option<&str>, arguments: &[&str]) -> CommandInfo {
        CommandInfo {
            shell,
            value: value.map(str::to_owned),
            arguments: arguments.iter().map(|a| (*a).to_owned()).collect(),
            ..Default::default()
        }
    }

    fn var(name: &str, value: &str, kind: variable::Type) -> Variable {
        Variable {
            name: name.into(),
            value: Some(value.into()),
            r#type: Some(kind as i32),
            ..Default::default()
        }
    }

    #[test]
    fn shell_is_the_default_and_ignores_arguments() {
        let line = CommandLine::of("t", &command(None, Some("echo hi"), &["x"])).unwrap();
        assert_eq!(line.program, "/bin/sh");
        assert_eq!(line.argv, ["sh", "-c", "echo hi"]);
    }

    #[test]
    fn non_shell_uses_arguments_as_argv() {
        let line = CommandLine::of(
            "t",
            &command(Some(false), Some("/bin/echo"), &["echo", "a b", "c"]),
        )
        .unwrap();
        assert_eq!(line.program, "/bin/echo");
        assert_eq!(line.argv, ["echo", "a b", "c"]);

        let bare = CommandLine::of("t", &command(Some(false), Some("/bin/true"), &[])).unwrap();
        assert_eq!(bare.argv, ["/bin/true"]);
    }

    #[test]
    fn missing_values_name_the_task() {
        let err = CommandLine::of("t1", &command(None, None, &[])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Shell command of task 't1' is not specified"
        );
        let err = CommandLine::of("t2", &command(Some(false), None, &[])).unwrap_err();
        assert_eq!(err.to_string(), "Executable of task 't2' is not specified");
    }

    #[test]
    fn command_environment_overrides_task_environment_and_skips_secrets() {
        let task = TaskInfo {
            resources: vec![Resource {
                name: "cpus".into(),
                r#type: value::Type::Scalar as i32,
                allocation_info: Some(AllocationInfo {
                    role: Some("web".into()),
                }),
                ..Default::default()
            }],
            ..Default::default()
        };
        let agent = Environment {
            variables: vec![
                var("A", "agent", variable::Type::Value),
                var("B", "agent", variable::Type::Value),
            ],
        };
        let mut cmd = command(None, Some("true"), &[]);
        cmd.environment = Some(Environment {
            variables: vec![
                var("B", "command", variable::Type::Value),
                var("S", "unresolved", variable::Type::Secret),
            ],
        });
        let mut env = environment(&task, &cmd, Some(&agent));
        env.sort();
        assert_eq!(
            env,
            [
                ("A".to_owned(), "agent".to_owned()),
                ("B".to_owned(), "command".to_owned()),
                ("MESOS_ALLOCATION_ROLE".to_owned(), "web".to_owned()),
            ]
        );
    }
}
