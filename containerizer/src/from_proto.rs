//! A [`LaunchRequest`] from Mesos's `ExecutorInfo` (with its `CommandInfo`
//! and `ContainerInfo`), as the agent's `launchExecutor` has them.

use mesos_proto::v1::{
    container_info, environment, image, r_limit_info, CommandInfo, ContainerInfo, ExecutorInfo,
};
use oci_spec::runtime::{PosixRlimit, PosixRlimitBuilder, PosixRlimitType};

use crate::{CommandSpec, ContainerLimits, LaunchRequest};

/// What the agent knows besides the `ExecutorInfo`.
#[derive(Debug, Clone)]
pub struct ExecutorLaunch<'a> {
    /// The new container's id.
    pub container_id: &'a str,
    /// The agent's id.
    pub agent_id: &'a str,
    /// The framework's id.
    pub framework_id: &'a str,
    /// `FrameworkInfo.user`, used when `CommandInfo.user` is unset.
    pub framework_user: Option<&'a str>,
    /// `FrameworkInfo.checkpoint`.
    pub checkpoint: bool,
    /// The executor.
    pub executor: &'a ExecutorInfo,
    /// The agent's `executorEnvironment()` (`MESOS_FRAMEWORK_ID`,
    /// `MESOS_AGENT_ENDPOINT`, ...); `CommandInfo.environment` overrides it.
    pub environment: Vec<(String, String)>,
    /// The cgroup limits for the executor's (and its tasks') resources.
    pub limits: ContainerLimits,
}

/// An `ExecutorInfo` the containerizer cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtoError {
    /// No `ExecutorInfo.command`.
    #[error("executor '{0}' has no command")]
    MissingCommand(String),
    /// `ContainerInfo.type` other than MESOS.
    #[error("executor '{executor}': container type {kind} is not supported (only MESOS)")]
    UnsupportedContainer {
        /// The executor.
        executor: String,
        /// The type asked for.
        kind: String,
    },
    /// An image type other than DOCKER (resolved against the OCI store).
    #[error("executor '{executor}': image type {kind} is not supported (only DOCKER, from the OCI store)")]
    UnsupportedImage {
        /// The executor.
        executor: String,
        /// The type asked for.
        kind: String,
    },
    /// A secret environment variable (no secret resolver).
    #[error(
        "executor '{executor}': environment variable '{name}' is a secret, which is not supported"
    )]
    SecretEnvironment {
        /// The executor.
        executor: String,
        /// The variable.
        name: String,
    },
    /// An rlimit with only one of soft and hard, soft above hard, or an
    /// unknown type.
    #[error("executor '{executor}': invalid rlimit {kind}: {reason}")]
    InvalidRlimit {
        /// The executor.
        executor: String,
        /// The rlimit type.
        kind: String,
        /// What is wrong.
        reason: &'static str,
    },
}

/// Builds the launch request for an executor.
pub fn launch_request(input: ExecutorLaunch<'_>) -> Result<LaunchRequest, ProtoError> {
    let executor_id = input.executor.executor_id.value.clone();
    let command = input
        .executor
        .command
        .as_ref()
        .ok_or_else(|| ProtoError::MissingCommand(executor_id.clone()))?;
    let container = input.executor.container.as_ref();
    Ok(LaunchRequest {
        container_id: input.container_id.to_owned(),
        agent_id: input.agent_id.to_owned(),
        framework_id: input.framework_id.to_owned(),
        command: command_spec(
            &executor_id,
            command,
            input.framework_user,
            input.environment,
        )?,
        limits: input.limits,
        hostname: container.and_then(|c| c.hostname.clone()),
        image: container
            .map(|c| image(&executor_id, c))
            .transpose()?
            .flatten(),
        rlimits: container
            .map(|c| rlimits(&executor_id, c))
            .transpose()?
            .unwrap_or_default(),
        checkpoint: input.checkpoint,
        executor_id,
    })
}

fn command_spec(
    executor: &str,
    command: &CommandInfo,
    framework_user: Option<&str>,
    mut env: Vec<(String, String)>,
) -> Result<CommandSpec, ProtoError> {
    for variable in command.environment.iter().flat_map(|e| &e.variables) {
        if variable.r#type() == environment::variable::Type::Secret {
            return Err(ProtoError::SecretEnvironment {
                executor: executor.to_owned(),
                name: variable.name.clone(),
            });
        }
        env.push((variable.name.clone(), variable.value().to_owned()));
    }
    Ok(CommandSpec {
        shell: command.shell(),
        value: command.value().to_owned(),
        arguments: command.arguments.clone(),
        env,
        user: command
            .user
            .clone()
            .or_else(|| framework_user.map(str::to_owned)),
    })
}

/// The Docker image name of a MESOS container, if it has an image.
fn image(executor: &str, container: &ContainerInfo) -> Result<Option<String>, ProtoError> {
    if container.r#type() != container_info::Type::Mesos {
        return Err(ProtoError::UnsupportedContainer {
            executor: executor.to_owned(),
            kind: container.r#type().as_str_name().to_owned(),
        });
    }
    let Some(image) = container.mesos.as_ref().and_then(|m| m.image.as_ref()) else {
        return Ok(None);
    };
    match (image.r#type(), &image.docker) {
        (image::Type::Docker, Some(docker)) => Ok(Some(docker.name.clone())),
        (kind, _) => Err(ProtoError::UnsupportedImage {
            executor: executor.to_owned(),
            kind: kind.as_str_name().to_owned(),
        }),
    }
}

/// `ContainerInfo.rlimit_info`: both limits unset means unlimited; one set
/// without the other is rejected, as Mesos's validation does.
fn rlimits(executor: &str, container: &ContainerInfo) -> Result<Vec<PosixRlimit>, ProtoError> {
    let Some(info) = &container.rlimit_info else {
        return Ok(Vec::new());
    };
    info.rlimits
        .iter()
        .map(|rlimit| {
            let kind = rlimit.r#type();
            let invalid = |reason| ProtoError::InvalidRlimit {
                executor: executor.to_owned(),
                kind: kind.as_str_name().to_owned(),
                reason,
            };
            let typ = rlimit_type(kind).ok_or_else(|| invalid("unknown type"))?;
            let (soft, hard) = match (rlimit.soft, rlimit.hard) {
                (None, None) => (libc::RLIM_INFINITY, libc::RLIM_INFINITY),
                (Some(soft), Some(hard)) if soft <= hard => (soft, hard),
                (Some(_), Some(_)) => return Err(invalid("soft limit above hard limit")),
                _ => return Err(invalid("soft and hard must both be set or both be unset")),
            };
            PosixRlimitBuilder::default()
                .typ(typ)
                .soft(soft)
                .hard(hard)
                .build()
                .map_err(|_| invalid("not representable"))
        })
        .collect()
}

fn rlimit_type(kind: r_limit_info::r_limit::Type) -> Option<PosixRlimitType> {
    use r_limit_info::r_limit::Type;
    Some(match kind {
        Type::Unknown => return None,
        Type::RlmtAs => PosixRlimitType::RlimitAs,
        Type::RlmtCore => PosixRlimitType::RlimitCore,
        Type::RlmtCpu => PosixRlimitType::RlimitCpu,
        Type::RlmtData => PosixRlimitType::RlimitData,
        Type::RlmtFsize => PosixRlimitType::RlimitFsize,
        Type::RlmtLocks => PosixRlimitType::RlimitLocks,
        Type::RlmtMemlock => PosixRlimitType::RlimitMemlock,
        Type::RlmtMsgqueue => PosixRlimitType::RlimitMsgqueue,
        Type::RlmtNice => PosixRlimitType::RlimitNice,
        Type::RlmtNofile => PosixRlimitType::RlimitNofile,
        Type::RlmtNproc => PosixRlimitType::RlimitNproc,
        Type::RlmtRss => PosixRlimitType::RlimitRss,
        Type::RlmtRtprio => PosixRlimitType::RlimitRtprio,
        Type::RlmtRttime => PosixRlimitType::RlimitRttime,
        Type::RlmtSigpending => PosixRlimitType::RlimitSigpending,
        Type::RlmtStack => PosixRlimitType::RlimitStack,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesos_proto::v1::{container_info::MesosInfo, Environment, ExecutorId, Image, RLimitInfo};

    fn executor(command: CommandInfo, container: Option<ContainerInfo>) -> ExecutorInfo {
        ExecutorInfo {
            executor_id: ExecutorId {
                value: "task-1".into(),
            },
            command: Some(command),
            container,
            ..ExecutorInfo::default()
        }
    }

    fn input(executor: &ExecutorInfo) -> ExecutorLaunch<'_> {
        ExecutorLaunch {
            container_id: "c1",
            agent_id: "S0",
            framework_id: "F0",
            framework_user: Some("alice"),
            checkpoint: true,
            executor,
            environment: vec![
                ("MESOS_FRAMEWORK_ID".into(), "F0".into()),
                ("X".into(), "agent".into()),
            ],
            limits: ContainerLimits::new(0.1, 32 << 20),
        }
    }

    fn variable(name: &str, value: &str) -> environment::Variable {
        environment::Variable {
            name: name.into(),
            value: Some(value.into()),
            ..environment::Variable::default()
        }
    }

    #[test]
    fn command_defaults_to_shell_and_the_framework_user() {
        let command = CommandInfo {
            value: Some("echo hi".into()),
            environment: Some(Environment {
                variables: vec![variable("X", "task")],
            }),
            ..CommandInfo::default()
        };
        let executor = executor(command, None);
        let request = launch_request(input(&executor)).expect("request");
        assert!(request.command.shell, "CommandInfo.shell defaults to true");
        assert_eq!(request.command.user.as_deref(), Some("alice"));
        assert_eq!(request.executor_id, "task-1");
        assert_eq!(
            request.command.env.last(),
            Some(&("X".to_string(), "task".to_string()))
        );
        assert!(request.checkpoint && request.image.is_none());
    }

    #[test]
    fn docker_image_of_a_mesos_container_and_rlimits_are_taken() {
        let container = ContainerInfo {
            r#type: container_info::Type::Mesos as i32,
            hostname: Some("web".into()),
            mesos: Some(MesosInfo {
                image: Some(Image {
                    r#type: image::Type::Docker as i32,
                    docker: Some(image::Docker {
                        name: "busybox:1.36".into(),
                        ..image::Docker::default()
                    }),
                    ..Image::default()
                }),
            }),
            rlimit_info: Some(RLimitInfo {
                rlimits: vec![
                    r_limit_info::RLimit {
                        r#type: Some(r_limit_info::r_limit::Type::RlmtNofile as i32),
                        soft: Some(100),
                        hard: Some(200),
                    },
                    r_limit_info::RLimit {
                        r#type: Some(r_limit_info::r_limit::Type::RlmtCore as i32),
                        soft: None,
                        hard: None,
                    },
                ],
            }),
            ..ContainerInfo::default()
        };
        let executor = executor(CommandInfo::default(), Some(container));
        let request = launch_request(input(&executor)).expect("request");
        assert_eq!(request.image.as_deref(), Some("busybox:1.36"));
        assert_eq!(request.hostname.as_deref(), Some("web"));
        assert_eq!(
            (request.rlimits[0].soft(), request.rlimits[0].hard()),
            (100, 200)
        );
        assert_eq!(request.rlimits[1].hard(), libc::RLIM_INFINITY);
    }

    #[test]
    fn unsupported_inputs_are_rejected_by_name() {
        let docker = ContainerInfo {
            r#type: container_info::Type::Docker as i32,
            ..ContainerInfo::default()
        };
        let executor_docker = executor(CommandInfo::default(), Some(docker));
        assert!(matches!(
            launch_request(input(&executor_docker)),
            Err(ProtoError::UnsupportedContainer { .. })
        ));

        let half = ContainerInfo {
            r#type: container_info::Type::Mesos as i32,
            rlimit_info: Some(RLimitInfo {
                rlimits: vec![r_limit_info::RLimit {
                    r#type: Some(r_limit_info::r_limit::Type::RlmtNofile as i32),
                    soft: Some(1),
                    hard: None,
                }],
            }),
            ..ContainerInfo::default()
        };
        let executor_half = executor(CommandInfo::default(), Some(half));
        let error = launch_request(input(&executor_half)).expect_err("half an rlimit");
        assert!(error.to_string().contains("RLMT_NOFILE"), "{error}");

        let secret = CommandInfo {
            environment: Some(Environment {
                variables: vec![environment::Variable {
                    name: "TOKEN".into(),
                    r#type: Some(environment::variable::Type::Secret as i32),
                    ..environment::Variable::default()
                }],
            }),
            ..CommandInfo::default()
        };
        let executor_secret = executor(secret, None);
        assert!(matches!(
            launch_request(input(&executor_secret)),
            Err(ProtoError::SecretEnvironment { ref name, .. }) if name == "TOKEN"
        ));
        let missing = ExecutorInfo::default();
        assert!(matches!(
            launch_request(input(&missing)),
            Err(ProtoError::MissingCommand(_))
        ));
    }
}
