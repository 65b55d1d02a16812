//! The one task `mesos-execute` launches, and whether an offer can hold it.

use mesos_proto::resources::Resources;
use mesos_proto::v1::{
    container_info, environment, image, CommandInfo, ContainerInfo, Environment, Image, Offer,
    Resource, TaskId, TaskInfo,
};

use super::flags::Flags;

/// The task's resources taken from `offer`, if it holds them: unreserved
/// resources first, then resources reserved to `--role` (as Mesos's
/// `mesos-execute` takes from the role, then from `*`).
pub fn fit(flags: &Flags, offer: &Offer) -> Option<Vec<Resource>> {
    let mut offered = Resources::from(offer.resources.clone());
    offered.unallocate();
    let wanted = &flags.resources.unreserved;
    if offered.contains(wanted) {
        return Some(wanted.to_pre_refinement());
    }
    if flags.role == "*" {
        return None;
    }
    let reserved = Resources::parse(&flags.resources.text, &flags.role).ok()?;
    offered
        .contains(&reserved)
        .then(|| reserved.to_pre_refinement())
}

/// The `TaskInfo` for `flags` on `offer`'s agent with `resources`.
pub fn task_info(flags: &Flags, offer: &Offer, resources: Vec<Resource>) -> TaskInfo {
    TaskInfo {
        name: flags.name.clone(),
        task_id: TaskId {
            value: flags.name.clone(),
        },
        agent_id: offer.agent_id.clone(),
        resources,
        command: Some(command_info(flags)),
        container: flags.image.as_deref().map(container_info),
        ..Default::default()
    }
}

fn command_info(flags: &Flags) -> CommandInfo {
    let environment = flags.env.as_ref().map(|env| Environment {
        variables: env
            .0
            .iter()
            .map(|(name, value)| environment::Variable {
                name: name.clone(),
                value: Some(value.clone()),
                ..Default::default()
            })
            .collect(),
    });
    if flags.shell {
        return CommandInfo {
            shell: Some(true),
            value: Some(flags.command.clone()),
            environment,
            ..Default::default()
        };
    }
    // Mesos's convention for shell=false: `value` is the executable and
    // `arguments` the whole argv, argv[0] included.
    let argv = flags.argv().unwrap_or_default();
    CommandInfo {
        shell: Some(false),
        value: argv.first().cloned(),
        arguments: argv,
        environment,
        ..Default::default()
    }
}

/// A Mesos-containerizer container running a Docker image.
fn container_info(name: &str) -> ContainerInfo {
    ContainerInfo {
        r#type: container_info::Type::Mesos as i32,
        mesos: Some(container_info::MesosInfo {
            image: Some(Image {
                r#type: image::Type::Docker as i32,
                docker: Some(image::Docker {
                    name: name.to_owned(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;
    use mesos_proto::codec::to_json;
    use mesos_proto::resources::scalar;

    use super::*;

    fn flags(extra: &[&str]) -> Flags {
        let mut args = vec![
            "mesos-execute",
            "--master=m:5050",
            "--name=job",
            "--command=echo hi",
            "--resources=cpus:0.5;mem:128",
        ];
        args.extend_from_slice(extra);
        Flags::try_parse_from(args).unwrap()
    }

    fn offer(cpus: f64, mem: f64) -> Offer {
        Offer {
            agent_id: mesos_proto::v1::AgentId { value: "S1".into() },
            resources: Resources::from(vec![scalar("cpus", cpus), scalar("mem", mem)])
                .to_pre_refinement(),
            ..Default::default()
        }
    }

    #[test]
    fn fits_only_offers_holding_the_resources() {
        let flags = flags(&[]);
        assert!(fit(&flags, &offer(0.5, 128.0)).is_some());
        assert!(fit(&flags, &offer(0.4, 1024.0)).is_none());
        assert!(fit(&flags, &offer(4.0, 64.0)).is_none());
    }

    #[test]
    fn shell_task_json_is_what_mesos_execute_sends() {
        let flags = flags(&[r#"--env={"A":"1"}"#]);
        let resources = fit(&flags, &offer(1.0, 256.0)).unwrap();
        let task = task_info(&flags, &offer(1.0, 256.0), resources);
        let json: serde_json::Value = serde_json::from_str(&to_json(&task)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "name": "job",
                "task_id": {"value": "job"},
                "agent_id": {"value": "S1"},
                "resources": [
                    {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.5}, "role": "*"},
                    {"name": "mem", "type": "SCALAR", "scalar": {"value": 128.0}, "role": "*"}
                ],
                "command": {
                    "environment": {"variables": [{"name": "A", "type": "VALUE", "value": "1"}]},
                    "shell": true,
                    "value": "echo hi"
                }
            })
        );
    }

    #[test]
    fn non_shell_commands_become_value_and_arguments() {
        let flags = flags(&["--shell=false", "--image=busybox:latest"]);
        let task = task_info(&flags, &offer(1.0, 256.0), Vec::new());
        let command = task.command.unwrap();
        assert_eq!(command.shell, Some(false));
        assert_eq!(command.value.as_deref(), Some("echo"));
        assert_eq!(command.arguments, ["echo", "hi"]);
        let image = task.container.unwrap().mesos.unwrap().image.unwrap();
        assert_eq!(image.docker.unwrap().name, "busybox:latest");
    }
}
