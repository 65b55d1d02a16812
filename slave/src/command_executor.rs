//! The built-in command executor, synthesized for tasks that carry a
//! `CommandInfo` instead of an `ExecutorInfo` (Mesos `Slave::getExecutorInfo`,
//! src/slave/slave.cpp).

use std::path::Path;

use mesos_proto::v1::{
    value, CommandInfo, ExecutorId, ExecutorInfo, FrameworkId, Resource, TaskInfo,
};

/// CPU overhead of a command executor (Mesos `DEFAULT_EXECUTOR_CPUS`).
pub const EXECUTOR_CPUS: f64 = 0.1;
/// Memory overhead of a command executor in MB (`DEFAULT_EXECUTOR_MEM`).
pub const EXECUTOR_MEM: f64 = 32.0;
/// File name of the command executor in `--launcher_dir`.
pub const BINARY: &str = "mesos-executor";

/// The command summary Mesos puts in the executor's name: `sh -c '<first
/// 15 characters>'` for shell commands, `[argv...]` otherwise.
fn command_summary(command: Option<&CommandInfo>) -> String {
    let Some(command) = command else {
        return String::new();
    };
    if command.shell.unwrap_or(true) {
        let value = command.value.as_deref().unwrap_or_default();
        let short: String = if value.chars().count() > 15 {
            value.chars().take(12).chain("...".chars()).collect()
        } else {
            value.to_string()
        };
        format!("sh -c '{short}'")
    } else {
        format!("[{}]", command.arguments.join(", "))
    }
}

fn scalar(name: &str, amount: f64, like: Option<&Resource>) -> Resource {
    let mut resource = like.cloned().unwrap_or_default();
    resource.name = name.to_string();
    resource.r#type = value::Type::Scalar as i32;
    resource.scalar = Some(value::Scalar { value: amount });
    resource.ranges = None;
    resource.set = None;
    resource.disk = None;
    resource
}

/// The ExecutorInfo of the command executor for `task`: `executor_id =
/// task_id`, the task's container, `<launcher_dir>/mesos-executor` run
/// without a shell, and resources `cpus:0.1;mem:32` in the task's role.
pub fn executor_info(
    task: &TaskInfo,
    framework_id: &FrameworkId,
    launcher_dir: &Path,
) -> ExecutorInfo {
    let task_id = &task.task_id.value;
    let binary = launcher_dir.join(BINARY);
    let command = CommandInfo {
        value: Some(binary.display().to_string()),
        arguments: vec![
            BINARY.to_string(),
            format!("--launcher_dir={}", launcher_dir.display()),
        ],
        shell: Some(false),
        user: task.command.as_ref().and_then(|c| c.user.clone()),
        ..CommandInfo::default()
    };
    // Allocation and reservation follow the task's first resource, so the
    // overhead is accounted to the same role.
    let template = task.resources.first().map(|r| Resource {
        scalar: None,
        ranges: None,
        set: None,
        disk: None,
        shared: None,
        ..r.clone()
    });
    // `source` is deprecated in the proto, but Mesos still sets it to the
    // task id for command executors and `/monitor/statistics` shows it.
    #[allow(deprecated)]
    ExecutorInfo {
        executor_id: ExecutorId {
            value: task_id.clone(),
        },
        framework_id: Some(framework_id.clone()),
        name: Some(format!(
            "Command Executor (Task: {task_id}) (Command: {})",
            command_summary(task.command.as_ref())
        )),
        source: Some(task_id.clone()),
        command: Some(command),
        container: task.container.clone(),
        resources: vec![
            scalar("cpus", EXECUTOR_CPUS, template.as_ref()),
            scalar("mem", EXECUTOR_MEM, template.as_ref()),
        ],
        labels: task.labels.clone(),
        ..ExecutorInfo::default()
    }
}

#[cfg(test)]
mod tests {
    use mesos_proto::v1::TaskId;

    use super::*;

    fn task(command: &str) -> TaskInfo {
        TaskInfo {
            name: "t".into(),
            task_id: TaskId {
                value: "task-1".into(),
            },
            command: Some(CommandInfo {
                value: Some(command.into()),
                ..CommandInfo::default()
            }),
            ..TaskInfo::default()
        }
    }

    #[test]
    fn command_executor_mirrors_mesos() {
        let info = executor_info(
            &task("echo hello"),
            &FrameworkId { value: "fw".into() },
            Path::new("/usr/libexec/mesos"),
        );
        assert_eq!(info.executor_id.value, "task-1");
        assert_eq!(
            info.name.as_deref(),
            Some("Command Executor (Task: task-1) (Command: sh -c 'echo hello')")
        );
        let command = info.command.unwrap();
        assert_eq!(
            command.value.as_deref(),
            Some("/usr/libexec/mesos/mesos-executor")
        );
        assert_eq!(command.shell, Some(false));
        assert_eq!(command.arguments[1], "--launcher_dir=/usr/libexec/mesos");
        let amounts: Vec<(String, f64)> = info
            .resources
            .iter()
            .map(|r| (r.name.clone(), r.scalar.as_ref().unwrap().value))
            .collect();
        assert_eq!(
            amounts,
            [("cpus".to_string(), 0.1), ("mem".to_string(), 32.0)]
        );
    }

    #[test]
    fn long_commands_are_shortened_in_the_name() {
        let info = executor_info(
            &task("while true; do sleep 1; done"),
            &FrameworkId { value: "fw".into() },
            Path::new("/x"),
        );
        assert!(info
            .name
            .unwrap()
            .ends_with("(Command: sh -c 'while true; ...')"));
    }
}
