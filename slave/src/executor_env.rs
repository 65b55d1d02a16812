//! The environment an executor starts with (Mesos `executorEnvironment()`,
//! src/slave/slave.cpp, and docs/executor-http-api.md): what the v1 executor
//! libraries (ours, pymesos) read to find and subscribe to the agent.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use mesos_proto::v1::{Environment, ExecutorInfo};

use crate::duration::StoutDuration;

/// What differs between executors.
#[derive(Debug, Clone)]
pub struct ExecutorEnvInput<'a> {
    /// FrameworkID value.
    pub framework_id: &'a str,
    /// The executor.
    pub executor: &'a ExecutorInfo,
    /// AgentID value.
    pub agent_id: &'a str,
    /// `slave(1)@ip:port`.
    pub agent_pid: &'a str,
    /// `ip:port` of the agent's HTTP server.
    pub agent_endpoint: &'a str,
    /// Host path of the sandbox.
    pub sandbox: &'a Path,
    /// Path of the sandbox inside the container (differs with an image).
    pub container_sandbox: &'a Path,
    /// `FrameworkInfo.checkpoint`.
    pub checkpoint: bool,
    /// `--http_command_executor`.
    pub http_command_executor: bool,
    /// Grace period the executor gets to shut down.
    pub shutdown_grace_period: Duration,
    /// `--recovery_timeout`: how long a checkpointing executor keeps trying
    /// to reach a restarting agent.
    pub recovery_timeout: Duration,
    /// Cap of a checkpointing executor's re-subscription backoff: Mesos
    /// passes `--executor_reregistration_timeout`, so an executor retries
    /// at least once within the window the restarted agent waits for it.
    pub subscription_backoff_max: Duration,
}

fn is_agent_variable(name: &str) -> bool {
    // The agent's own MESOS_* flags and libprocess settings would confuse
    // executor libraries (e.g. MESOS_PORT), so they are not passed on.
    name.starts_with("MESOS_") || name.starts_with("LIBPROCESS_")
}

/// The executor's environment: the agent's own environment (without its
/// MESOS_/LIBPROCESS_ settings), then the Mesos executor variables, then
/// `ExecutorInfo.command.environment`, later entries winning.
pub fn executor_environment(
    input: &ExecutorEnvInput<'_>,
    inherited: impl IntoIterator<Item = (String, String)>,
) -> Vec<(String, String)> {
    let mut env: BTreeMap<String, String> = inherited
        .into_iter()
        .filter(|(name, _)| !is_agent_variable(name))
        .collect();
    let flag = |b: bool| if b { "1" } else { "0" }.to_string();
    let mut set = |name: &str, value: String| {
        env.insert(name.to_string(), value);
    };
    set("MESOS_FRAMEWORK_ID", input.framework_id.to_string());
    set(
        "MESOS_EXECUTOR_ID",
        input.executor.executor_id.value.clone(),
    );
    set("MESOS_SLAVE_ID", input.agent_id.to_string());
    set("MESOS_AGENT_ID", input.agent_id.to_string());
    set("MESOS_SLAVE_PID", input.agent_pid.to_string());
    set("MESOS_AGENT_ENDPOINT", input.agent_endpoint.to_string());
    set("MESOS_DIRECTORY", input.sandbox.display().to_string());
    set(
        "MESOS_SANDBOX",
        input.container_sandbox.display().to_string(),
    );
    set("MESOS_CHECKPOINT", flag(input.checkpoint));
    set(
        "MESOS_HTTP_COMMAND_EXECUTOR",
        flag(input.http_command_executor),
    );
    set(
        "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD",
        StoutDuration(input.shutdown_grace_period).to_string(),
    );
    if input.checkpoint {
        set(
            "MESOS_RECOVERY_TIMEOUT",
            StoutDuration(input.recovery_timeout).to_string(),
        );
        set(
            "MESOS_SUBSCRIPTION_BACKOFF_MAX",
            StoutDuration(input.subscription_backoff_max).to_string(),
        );
    }
    // v0 executor libraries pick an ephemeral port.
    set("LIBPROCESS_PORT", "0".to_string());
    let variables = input
        .executor
        .command
        .as_ref()
        .and_then(|c| c.environment.as_ref())
        .map(|e: &Environment| e.variables.as_slice())
        .unwrap_or_default();
    for variable in variables {
        env.insert(
            variable.name.clone(),
            variable.value.clone().unwrap_or_default(),
        );
    }
    env.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use mesos_proto::v1::{environment, CommandInfo, ExecutorId};

    use super::*;

    #[test]
    fn carries_what_pymesos_and_our_sdk_read() {
        let executor = ExecutorInfo {
            executor_id: ExecutorId { value: "e1".into() },
            command: Some(CommandInfo {
                environment: Some(Environment {
                    variables: vec![environment::Variable {
                        name: "GREETING".into(),
                        value: Some("hi".into()),
                        ..Default::default()
                    }],
                }),
                ..CommandInfo::default()
            }),
            ..ExecutorInfo::default()
        };
        let sandbox = PathBuf::from("/w/slaves/a/frameworks/f/executors/e1/runs/c");
        let input = ExecutorEnvInput {
            framework_id: "f",
            executor: &executor,
            agent_id: "a",
            agent_pid: "slave(1)@127.0.0.1:5051",
            agent_endpoint: "127.0.0.1:5051",
            sandbox: &sandbox,
            container_sandbox: &sandbox,
            checkpoint: false,
            http_command_executor: false,
            shutdown_grace_period: Duration::from_secs(5),
            recovery_timeout: Duration::from_secs(900),
            subscription_backoff_max: Duration::from_secs(2),
        };
        let inherited = [
            ("PATH".to_string(), "/usr/bin".to_string()),
            ("MESOS_WORK_DIR".to_string(), "/w".to_string()),
        ];
        let env: BTreeMap<_, _> = executor_environment(&input, inherited)
            .into_iter()
            .collect();
        assert_eq!(env["MESOS_AGENT_ENDPOINT"], "127.0.0.1:5051");
        assert_eq!(env["MESOS_FRAMEWORK_ID"], "f");
        assert_eq!(env["MESOS_EXECUTOR_ID"], "e1");
        assert_eq!(env["MESOS_SLAVE_PID"], "slave(1)@127.0.0.1:5051");
        assert_eq!(env["MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD"], "5secs");
        assert_eq!(env["MESOS_CHECKPOINT"], "0");
        assert_eq!(env["MESOS_DIRECTORY"], sandbox.display().to_string());
        assert_eq!(env["GREETING"], "hi");
        assert_eq!(env["PATH"], "/usr/bin");
        assert!(!env.contains_key("MESOS_WORK_DIR"));
        assert!(!env.contains_key("MESOS_RECOVERY_TIMEOUT"));

        let checkpointing = ExecutorEnvInput {
            checkpoint: true,
            ..input
        };
        let env: BTreeMap<_, _> = executor_environment(&checkpointing, [])
            .into_iter()
            .collect();
        assert_eq!(env["MESOS_CHECKPOINT"], "1");
        assert_eq!(env["MESOS_RECOVERY_TIMEOUT"], "15mins");
        assert_eq!(env["MESOS_SUBSCRIPTION_BACKOFF_MAX"], "2secs");
    }
}
