//! Seed step 6, first half: validation of SUBSCRIBE and ACCEPT like Mesos's
//! src/master/validation.cpp and src/common/validation.cpp, with their
//! error messages (frameworks see them in TASK_ERROR / TASK_LOST updates
//! and ERROR events).
//!
//! Order per task (`task::validate`): task id, uniqueness, agent id, kill
//! policy and max completion time, resources, command; then exactly one of
//! command/executor, the executor rules, and resources ⊆ offers.

use std::collections::BTreeSet;

use mesos_proto::resources::{Resources, ResourcesError};
use mesos_proto::v1::executor_info::Type as ExecutorType;
use mesos_proto::v1::framework_info::capability::Type as Capability;
use mesos_proto::v1::{
    environment, CommandInfo, ExecutorInfo, FrameworkId, FrameworkInfo, OfferId, Resource,
    TaskGroupInfo, TaskInfo,
};

use crate::agents::Agent;
use crate::frameworks::{has_capability, Framework};
use crate::master::Master;

/// Linux NAME_MAX: ids become directory names on agents.
const NAME_MAX: usize = 255;

/// Mesos's `MIN_CPUS` / `MIN_MEM` for executors of task groups.
const MIN_EXECUTOR_CPUS: f64 = 0.01;
const MIN_EXECUTOR_MEM: f64 = 32.0;

/// `common::validation::validateID`.
pub(crate) fn id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("ID must not be empty".to_string());
    }
    if id.len() > NAME_MAX {
        return Err(format!("ID must not be greater than {NAME_MAX} characters"));
    }
    if id == "." || id == ".." {
        return Err(format!("'{id}' is disallowed"));
    }
    if id.chars().any(|c| c.is_control() || c == '/' || c == '\\') {
        return Err(format!("'{id}' contains invalid characters"));
    }
    Ok(())
}

/// `roles::validate`.
pub(crate) fn role(role: &str) -> Result<(), String> {
    if role == "*" {
        return Ok(());
    }
    if role.is_empty() {
        return Err("Empty role name is invalid".to_string());
    }
    if role.starts_with('/') {
        return Err(format!("Role '{role}' cannot start with a slash"));
    }
    if role.ends_with('/') {
        return Err(format!("Role '{role}' cannot end with a slash"));
    }
    for component in role.split('/') {
        match component {
            "" => return Err(format!("Role '{role}' cannot contain two adjacent slashes")),
            "." => return Err(format!("Role '{role}' cannot include '.' as a component")),
            ".." => return Err(format!("Role '{role}' cannot include '..' as a component")),
            "*" => return Err(format!("Role '{role}' cannot include '*' as a component")),
            _ => {}
        }
        if component.starts_with('-') {
            return Err(format!(
                "Role component '{component}' is invalid because it starts with a dash"
            ));
        }
        if component
            .chars()
            .any(|c| matches!(c, '\t' | '\n' | '\x0b' | '\x0c' | '\r' | ' ' | '\x7f'))
        {
            return Err(format!(
                "Role component '{component}' is invalid because it contains backspace or \
                 whitespace"
            ));
        }
    }
    Ok(())
}

/// `framework::validate` (roles) plus the suppressed roles check of
/// SUBSCRIBE.
#[allow(deprecated)]
pub(crate) fn framework_info(
    info: &FrameworkInfo,
    suppressed: &BTreeSet<String>,
) -> Result<(), String> {
    let multi_role = has_capability(info, Capability::MultiRole);
    if multi_role {
        if info.role.is_some() {
            return Err(
                "'FrameworkInfo.role' must not be set when the framework is MULTI_ROLE capable"
                    .to_string(),
            );
        }
        let unique: BTreeSet<&String> = info.roles.iter().collect();
        if unique.len() != info.roles.len() {
            return Err("'FrameworkInfo.roles' contains duplicate items".to_string());
        }
        for r in &info.roles {
            role(r).map_err(|e| format!("'FrameworkInfo.roles' contains invalid role: {e}"))?;
        }
    } else {
        if !info.roles.is_empty() {
            return Err(
                "'FrameworkInfo.roles' must not be set when the framework is not MULTI_ROLE \
                 capable"
                    .to_string(),
            );
        }
        let r = info.role.as_deref().unwrap_or("*");
        role(r).map_err(|e| format!("'FrameworkInfo.role' is not a valid role: {e}"))?;
    }
    let roles = crate::frameworks::roles_of(info);
    for r in suppressed {
        if !roles.contains(r) {
            return Err(format!(
                "Suppressed role '{r}' is not contained in the list of roles"
            ));
        }
    }
    if let Some(id) = &info.id {
        self::id(&id.value).map_err(|e| format!("Invalid framework id: {e}"))?;
    }
    Ok(())
}

/// `offer::validate`: unique, outstanding, this framework's, one allocation
/// role, one agent.
pub(crate) fn offers(
    offer_ids: &[OfferId],
    master: &Master,
    framework_id: &str,
) -> Result<(), String> {
    let mut seen = BTreeSet::new();
    for offer_id in offer_ids {
        if !seen.insert(&offer_id.value) {
            return Err(format!("Duplicate offer {} in offer list", offer_id.value));
        }
    }
    let mut entries = Vec::new();
    for offer_id in offer_ids {
        let entry = master
            .offers
            .get(&offer_id.value)
            .ok_or_else(|| format!("Offer {} is no longer valid", offer_id.value))?;
        entries.push((offer_id, entry));
    }
    for (offer_id, entry) in &entries {
        if entry.framework_id != framework_id {
            return Err(format!(
                "Offer {} has invalid framework {} while framework {} is expected",
                offer_id.value, entry.framework_id, framework_id
            ));
        }
    }
    if let Some((_, first)) = entries.first() {
        for (offer_id, entry) in &entries {
            if entry.role != first.role {
                return Err(format!(
                    "Aggregated offers must be allocated to the same role. Offer {} uses role \
                     '{} but another is using role '{}",
                    offer_id.value, entry.role, first.role
                ));
            }
        }
        for (offer_id, entry) in &entries {
            if entry.agent_id != first.agent_id {
                return Err(format!(
                    "Aggregated offers must belong to one single agent. Offer {} uses agent {} \
                     and agent {}",
                    offer_id.value, entry.agent_id, first.agent_id
                ));
            }
        }
    }
    Ok(())
}

/// `task::validate` for a LAUNCH task. `offered` is what is left of the
/// offers after the operations before this one.
pub(crate) fn task(
    task: &TaskInfo,
    framework: &Framework,
    agent: &Agent,
    offered: &Resources,
) -> Result<(), String> {
    task_fields(task, framework, agent)?;
    if task.executor.is_some() == task.command.is_some() {
        return Err(
            "Task should have at least one (but not both) of CommandInfo or ExecutorInfo present"
                .to_string(),
        );
    }
    let mut total = task_resources(task)?;
    if let Some(executor) = &task.executor {
        self::executor(executor, framework, agent)?;
        if executor.r#type.is_some() && executor.r#type != Some(ExecutorType::Custom as i32) {
            return Err("'ExecutorInfo.type' must be 'CUSTOM'".to_string());
        }
        if executor.command.is_none() {
            return Err("'ExecutorInfo.command' must be set".to_string());
        }
        if !agent.has_executor(&framework.id, &executor.executor_id.value) {
            total.add(&executor_resources(executor)?);
        }
    }
    mixes_revocable(&total).map_err(|e| {
        format!("Task and its executor mix revocable and non-revocable resources: {e}")
    })?;
    if !offered.contains(&total) {
        return Err(format!(
            "Total resources {total} required by task and its executor is more than available \
             {offered}"
        ));
    }
    Ok(())
}

/// `task::group::validate` for LAUNCH_GROUP.
pub(crate) fn task_group(
    group: &TaskGroupInfo,
    executor: &ExecutorInfo,
    framework: &Framework,
    agent: &Agent,
    offered: &Resources,
) -> Result<(), String> {
    for task in &group.tasks {
        task_fields(task, framework, agent)
            .and_then(|()| match task.executor {
                None => Err("'TaskInfo.executor' must be set".to_string()),
                Some(_) => Ok(()),
            })
            .map_err(|e| format!("Task '{}' is invalid: {e}", task.task_id.value))?;
    }
    self::executor(executor, framework, agent)?;
    let kind = executor.r#type.ok_or("'ExecutorInfo.type' must be set")?;
    if kind == ExecutorType::Unknown as i32 {
        return Err("Unknown executor type".to_string());
    }
    for task in &group.tasks {
        if task.executor.as_ref().is_some_and(|e| e != executor) {
            return Err(format!(
                "The `ExecutorInfo` of task '{}' is different from executor '{}'",
                task.task_id.value, executor.executor_id.value
            ));
        }
    }
    let executor_resources = executor_resources(executor)?;
    let eid = &executor.executor_id.value;
    match executor_resources.cpus() {
        Some(cpus) if cpus >= MIN_EXECUTOR_CPUS => {}
        cpus => {
            return Err(format!(
            "Executor '{eid}' uses less CPUs ({}) than the minimum required ({MIN_EXECUTOR_CPUS})",
            cpus.map_or("None".to_string(), |c| c.to_string())
        ))
        }
    }
    match executor_resources.mem() {
        Some(mem) if mem >= MIN_EXECUTOR_MEM => {}
        mem => {
            return Err(format!(
                "Executor '{eid}' uses less memory ({}) than the minimum required ({MIN_EXECUTOR_MEM}MB)",
                mem.map_or("None".to_string(), |m| m.to_string())
            ))
        }
    }
    if executor_resources.disk().is_none() {
        return Err(format!("Executor '{eid}' uses no disk"));
    }
    let mut total = Resources::new();
    for task in &group.tasks {
        total.add(&task_resources(task)?);
    }
    if !agent.has_executor(&framework.id, eid) {
        total.add(&executor_resources);
    }
    mixes_revocable(&total).map_err(|e| {
        format!("Task group and executor mix revocable and non-revocable resources: {e}")
    })?;
    if !offered.contains(&total) {
        return Err(format!(
            "Total resources {total} required by task group and its executor are more than \
             available {offered}"
        ));
    }
    Ok(())
}

/// `task::internal::validateTask`: everything about the task itself.
fn task_fields(task: &TaskInfo, framework: &Framework, agent: &Agent) -> Result<(), String> {
    let task_id = &task.task_id.value;
    id(task_id)?;
    if framework.tasks.contains_key(task_id) {
        return Err(format!("Task has duplicate ID: {task_id}"));
    }
    if framework.unreachable_tasks.contains_key(task_id) {
        return Err(format!(
            "Task reuses the ID of an unreachable task: {task_id}"
        ));
    }
    if task.agent_id.value != agent.id {
        return Err(format!(
            "Task uses invalid agent {} while agent {} is expected",
            task.agent_id.value, agent.id
        ));
    }
    let grace = task
        .kill_policy
        .as_ref()
        .and_then(|k| k.grace_period.as_ref())
        .map(|d| d.nanoseconds);
    if grace.is_some_and(|ns| ns < 0) {
        return Err("Task's 'kill_policy.grace_period' must be non-negative".to_string());
    }
    if task
        .max_completion_time
        .as_ref()
        .is_some_and(|d| d.nanoseconds < 0)
    {
        return Err("Task's `max_completion_time` must be non-negative".to_string());
    }
    if task.resources.is_empty() {
        return Err("Task uses no resources".to_string());
    }
    let resources = task_resources(task)?;
    single_allocation_role(&task.resources).map_err(|e| format!("Invalid task resources: {e}"))?;
    mixes_revocable(&resources)
        .map_err(|e| format!("Task mixes revocable and non-revocable resources: {e}"))?;
    if let Some(command) = &task.command {
        command_info(command).map_err(|e| format!("Task's `CommandInfo` is invalid: {e}"))?;
    }
    Ok(())
}

/// `executor::internal::validate`.
fn executor(executor: &ExecutorInfo, framework: &Framework, agent: &Agent) -> Result<(), String> {
    match executor.r#type.and_then(|t| ExecutorType::try_from(t).ok()) {
        Some(ExecutorType::Default) if executor.command.is_some() => {
            return Err("'ExecutorInfo.command' must not be set for 'DEFAULT' executor".to_string())
        }
        Some(ExecutorType::Custom) if executor.command.is_none() => {
            return Err("'ExecutorInfo.command' must be set for 'CUSTOM' executor".to_string())
        }
        _ => {}
    }
    id(&executor.executor_id.value)?;
    if executor
        .shutdown_grace_period
        .as_ref()
        .is_some_and(|d| d.nanoseconds < 0)
    {
        return Err("ExecutorInfo's 'shutdown_grace_period' must be non-negative".to_string());
    }
    if let Some(command) = &executor.command {
        command_info(command).map_err(|e| format!("Executor's `CommandInfo` is invalid: {e}"))?;
    }
    let expected = FrameworkId {
        value: framework.id.clone(),
    };
    match &executor.framework_id {
        None => return Err("'ExecutorInfo.framework_id' must be set".to_string()),
        Some(actual) if *actual != expected => {
            return Err(format!(
                "ExecutorInfo has an invalid FrameworkID (Actual: {} vs Expected: {})",
                actual.value, expected.value
            ))
        }
        Some(_) => {}
    }
    let resources = executor_resources(executor)?;
    single_allocation_role(&executor.resources)
        .map_err(|e| format!("Invalid executor resources: {e}"))?;
    mixes_revocable(&resources)
        .map_err(|e| format!("Executor mixes revocable and non-revocable resources: {e}"))?;
    if let Some(existing) = agent.executor(&framework.id, &executor.executor_id.value) {
        if existing != executor {
            return Err(
                "ExecutorInfo is not compatible with existing ExecutorInfo with same ExecutorID)"
                    .to_string(),
            );
        }
    }
    Ok(())
}

/// `common::validation::validateCommandInfo`.
fn command_info(command: &CommandInfo) -> Result<(), String> {
    if command.value.is_none() {
        return Err(if command.shell() {
            "Shell command is not specified".to_string()
        } else {
            "Executable path is not specified".to_string()
        });
    }
    for variable in command.environment.iter().flat_map(|e| e.variables.iter()) {
        let kind = variable
            .r#type
            .unwrap_or(environment::variable::Type::Value as i32);
        if kind == environment::variable::Type::Value as i32 && variable.value.is_none() {
            return Err(format!(
                "Environment variable '{}' of type 'VALUE' must have a value set",
                variable.name
            ));
        }
        if kind == environment::variable::Type::Secret as i32 && variable.secret.is_none() {
            return Err(format!(
                "Environment variable '{}' of type 'SECRET' must have a secret set",
                variable.name
            ));
        }
    }
    Ok(())
}

fn task_resources(task: &TaskInfo) -> Result<Resources, String> {
    resources(&task.resources).map_err(|e| format!("Task uses invalid resources: {e}"))
}

fn executor_resources(executor: &ExecutorInfo) -> Result<Resources, String> {
    resources(&executor.resources).map_err(|e| format!("Executor uses invalid resources: {e}"))
}

/// `resource::validate`.
fn resources(list: &[Resource]) -> Result<Resources, String> {
    let resources = Resources::from_list(list)
        .map_err(|e: ResourcesError| format!("Invalid resources: {e}"))?;
    if let Some(gpus) = resources.gpus() {
        if gpus.fract() != 0.0 {
            return Err(
                "Invalid 'gpus' resource: The 'gpus' resource must be an unsigned integer"
                    .to_string(),
            );
        }
    }
    Ok(resources)
}

/// `resource::validateAllocatedToSingleRole` (the master injected
/// allocation roles for non-MULTI_ROLE frameworks before validating).
fn single_allocation_role(list: &[Resource]) -> Result<(), String> {
    let mut role: Option<&str> = None;
    for resource in list {
        let Some(this) = resource
            .allocation_info
            .as_ref()
            .and_then(|a| a.role.as_deref())
        else {
            return Err("The resources are not allocated to a role".to_string());
        };
        match role {
            None => role = Some(this),
            Some(first) if first != this => {
                return Err(format!(
                    "The resources have multiple allocation roles ('{this}' and '{first}') but \
                     only one allocation role is allowed"
                ))
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// `resource::validateRevocableAndNonRevocableResources`.
fn mixes_revocable(resources: &Resources) -> Result<(), String> {
    let names: BTreeSet<String> = resources
        .scalar_quantities()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    for name in names {
        let all = resources.filter(|r| r.name == name);
        let revocable = all.revocable();
        if !revocable.is_empty() && revocable != all {
            return Err(format!(
                "Cannot use both revocable and non-revocable '{name}' at the same time"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_mesos_rules() {
        assert!(id("task-1").is_ok());
        assert_eq!(id("").unwrap_err(), "ID must not be empty");
        assert_eq!(id("..").unwrap_err(), "'..' is disallowed");
        assert_eq!(id("a/b").unwrap_err(), "'a/b' contains invalid characters");
        assert_eq!(
            id("a\nb").unwrap_err(),
            "'a\nb' contains invalid characters"
        );
        assert!(id(&"x".repeat(256)).unwrap_err().contains("255"));
    }

    #[test]
    fn roles_follow_mesos_rules() {
        assert!(role("*").is_ok());
        assert!(role("eng/web").is_ok());
        assert_eq!(
            role("/a").unwrap_err(),
            "Role '/a' cannot start with a slash"
        );
        assert_eq!(
            role("a//b").unwrap_err(),
            "Role 'a//b' cannot contain two adjacent slashes"
        );
        assert_eq!(
            role("a/*").unwrap_err(),
            "Role 'a/*' cannot include '*' as a component"
        );
        assert!(role("-a").unwrap_err().contains("starts with a dash"));
        assert!(role("a b").unwrap_err().contains("whitespace"));
    }

    #[test]
    #[allow(deprecated)]
    fn framework_roles_depend_on_multi_role() {
        let mut info = FrameworkInfo {
            user: "u".into(),
            name: "n".into(),
            roles: vec!["a".into()],
            ..Default::default()
        };
        assert!(framework_info(&info, &BTreeSet::new())
            .unwrap_err()
            .contains("must not be set when the framework is not MULTI_ROLE"));
        info.capabilities
            .push(mesos_proto::v1::framework_info::Capability {
                r#type: Some(Capability::MultiRole as i32),
            });
        assert!(framework_info(&info, &BTreeSet::new()).is_ok());
        let suppressed = BTreeSet::from(["b".to_string()]);
        assert_eq!(
            framework_info(&info, &suppressed).unwrap_err(),
            "Suppressed role 'b' is not contained in the list of roles"
        );
        info.role = Some("x".into());
        assert!(framework_info(&info, &BTreeSet::new()).is_err());
    }

    #[test]
    fn command_rules() {
        let mut command = CommandInfo::default();
        assert_eq!(
            command_info(&command).unwrap_err(),
            "Shell command is not specified"
        );
        command.shell = Some(false);
        assert_eq!(
            command_info(&command).unwrap_err(),
            "Executable path is not specified"
        );
        command.value = Some("/bin/true".into());
        assert!(command_info(&command).is_ok());
    }
}
