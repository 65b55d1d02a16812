//! Seed steps 5–6: ACCEPT with LAUNCH / LAUNCH_GROUP (`Master::accept` and
//! `Master::_accept`, src/master/master.cpp).
//!
//! The offers are validated as a whole first: if they are not all valid,
//! every task gets TASK_LOST (TASK_DROPPED for PARTITION_AWARE frameworks)
//! with REASON_INVALID_OFFERS. Otherwise each operation is validated in
//! order against what is left of the offered resources; an invalid task
//! gets TASK_ERROR / REASON_TASK_INVALID (no uuid: nothing to acknowledge);
//! a valid one becomes TASK_STAGING and goes to the agent in a
//! `RunTaskMessage` (`RunTaskGroupMessage` for a group) over the libprocess
//! transport. The unused rest of the offers is returned with
//! `accept.filters` (default: refused for 5 s).

use std::time::Instant;

use mesos_proto::internal::{RunTaskGroupMessage, RunTaskMessage};
use mesos_proto::resources::Resources;
use mesos_proto::v1::framework_info::capability::Type as Capability;
use mesos_proto::v1::offer::operation::Type as Operation;
use mesos_proto::v1::resource::AllocationInfo;
use mesos_proto::v1::scheduler::call;
use mesos_proto::v1::task_status::Reason;
use mesos_proto::v1::{
    self, ExecutorId, ExecutorInfo, FrameworkId, Resource, Task, TaskGroupInfo, TaskInfo, TaskState,
};

use crate::allocator::filters::refuse_duration;
use crate::master::Master;
use crate::validation;

/// A resource list as normalized `Resources` (already validated input).
pub(crate) fn resources_of(list: &[Resource]) -> Resources {
    Resources::from(list.to_vec())
}

impl Master {
    /// ACCEPT.
    pub(crate) fn accept(&mut self, framework_id: &str, accept: call::Accept) {
        if let Err(error) = validation::offers(&accept.offer_ids, self, framework_id) {
            tracing::warn!(framework = %framework_id, %error, "ACCEPT with invalid offers");
            self.reject_invalid_offers(framework_id, &accept, &error);
            return;
        }
        let task_ids: Vec<String> = tasks_of(&accept.operations)
            .into_iter()
            .map(|t| t.task_id.value)
            .collect();
        let offer_ids: Vec<&str> = accept.offer_ids.iter().map(|o| o.value.as_str()).collect();
        tracing::info!(
            seed_step = 5u64,
            task_id = %task_ids.join(","),
            offer_id = %offer_ids.join(","),
            "master received ACCEPT"
        );
        let mut offered = Resources::new();
        let mut agent_id = String::new();
        let mut role = String::new();
        for offer_id in &accept.offer_ids {
            if let Some(entry) = self.remove_offer(&offer_id.value) {
                offered.add(&entry.resources);
                agent_id = entry.agent_id;
                role = entry.role;
            }
        }
        for operation in accept.operations {
            match operation.r#type.and_then(|t| Operation::try_from(t).ok()) {
                Some(Operation::Launch) => {
                    for task in operation.launch.unwrap_or_default().task_infos {
                        self.launch(framework_id, &agent_id, &role, task, &mut offered);
                    }
                }
                Some(Operation::LaunchGroup) => {
                    let group = operation.launch_group.unwrap_or_default();
                    self.launch_group(
                        framework_id,
                        &agent_id,
                        &role,
                        group.executor,
                        group.task_group,
                        &mut offered,
                    );
                }
                other => {
                    // Reservations and volumes are not supported yet; their
                    // resources simply go back with the rest.
                    tracing::warn!(framework = %framework_id, operation = ?other, "ignoring unsupported offer operation");
                }
            }
        }
        let refuse_seconds = accept.filters.unwrap_or_default().refuse_seconds();
        let refuse = refuse_duration(Some(refuse_seconds), self.flags.allocation_interval);
        self.allocator
            .recover(framework_id, &agent_id, &offered, refuse, Instant::now());
    }

    /// Offers not all valid: take back the valid ones of this framework and
    /// answer every task with TASK_LOST / TASK_DROPPED.
    fn reject_invalid_offers(&mut self, framework_id: &str, accept: &call::Accept, error: &str) {
        for offer_id in &accept.offer_ids {
            let ours = self
                .offers
                .get(&offer_id.value)
                .is_some_and(|o| o.framework_id == framework_id);
            if ours {
                self.rescind_offer(&offer_id.value, false);
            }
        }
        let partition_aware = self
            .frameworks
            .get(framework_id)
            .is_some_and(|f| f.partition_aware());
        let state = if partition_aware {
            TaskState::TaskDropped
        } else {
            TaskState::TaskLost
        };
        let message = format!("Task launched with invalid offers: {error}");
        for task in tasks_of(&accept.operations) {
            self.master_update(
                framework_id,
                &task.task_id.value,
                Some(&task.agent_id.value),
                state,
                Reason::InvalidOffers,
                &message,
            );
        }
    }

    fn launch(
        &mut self,
        framework_id: &str,
        agent_id: &str,
        role: &str,
        mut task: TaskInfo,
        offered: &mut Resources,
    ) {
        self.normalize_task(framework_id, role, &mut task);
        let (Some(framework), Some(agent)) =
            (self.frameworks.get(framework_id), self.agents.get(agent_id))
        else {
            return;
        };
        if let Err(error) = validation::task(&task, framework, agent, offered) {
            self.task_invalid(framework_id, &task, &error);
            return;
        }
        let new_executor = task
            .executor
            .as_ref()
            .is_none_or(|e| !agent.has_executor(framework_id, &e.executor_id.value));
        let mut used = resources_of(&task.resources);
        if let Some(executor) = task.executor.as_ref().filter(|_| new_executor) {
            used.add(&resources_of(&executor.resources));
        }
        offered.subtract(&used);
        let framework_info = framework.info.clone();
        self.add_task(framework_id, agent_id, &task, new_executor);
        // Mesos still fills the deprecated field for old agents.
        #[allow(deprecated)]
        let message = RunTaskMessage {
            framework_id: Some(FrameworkId {
                value: framework_id.to_string(),
            }),
            framework: framework_info,
            task,
            pid: Some(String::new()),
            launch_executor: Some(new_executor),
            ..Default::default()
        };
        if let Some(agent) = self.agents.get(agent_id) {
            tracing::info!(
                seed_step = 6u64,
                task_id = %message.task.task_id.value,
                "task valid: TASK_STAGING, RunTaskMessage sent to agent {}", agent.pid
            );
            self.sender.send(&agent.pid, &message);
        }
        self.metrics.tasks_launched += 1;
    }

    fn launch_group(
        &mut self,
        framework_id: &str,
        agent_id: &str,
        role: &str,
        mut executor: ExecutorInfo,
        mut group: TaskGroupInfo,
        offered: &mut Resources,
    ) {
        let multi_role = self.multi_role(framework_id);
        if !multi_role {
            inject_allocation_role(&mut executor.resources, role);
        }
        executor.framework_id.get_or_insert_with(|| FrameworkId {
            value: framework_id.to_string(),
        });
        for task in &mut group.tasks {
            self.normalize_task(framework_id, role, task);
        }
        let (Some(framework), Some(agent)) =
            (self.frameworks.get(framework_id), self.agents.get(agent_id))
        else {
            return;
        };
        if let Err(error) = validation::task_group(&group, &executor, framework, agent, offered) {
            for task in group.tasks.clone() {
                self.task_invalid(framework_id, &task, &error);
            }
            return;
        }
        let new_executor = !agent.has_executor(framework_id, &executor.executor_id.value);
        let mut used = Resources::new();
        for task in &group.tasks {
            used.add(&resources_of(&task.resources));
        }
        if new_executor {
            used.add(&resources_of(&executor.resources));
            if let Some(agent) = self.agents.get_mut(agent_id) {
                agent.add_executor(framework_id, executor.clone());
            }
        }
        offered.subtract(&used);
        let framework_info = framework.info.clone();
        for task in &mut group.tasks {
            // The agent needs to know which executor runs each task.
            if task.executor.is_none() {
                task.executor = Some(executor.clone());
            }
        }
        for task in &group.tasks {
            self.add_task(framework_id, agent_id, task, false);
        }
        let message = RunTaskGroupMessage {
            framework: framework_info,
            executor,
            task_group: group,
            launch_executor: Some(new_executor),
            ..Default::default()
        };
        if let Some(agent) = self.agents.get(agent_id) {
            self.sender.send(&agent.pid, &message);
        }
        self.metrics.tasks_launched += 1;
    }

    /// What the master fills in before validating (Mesos does the same):
    /// allocation roles for non-MULTI_ROLE frameworks, the executor's
    /// framework id.
    fn normalize_task(&self, framework_id: &str, role: &str, task: &mut TaskInfo) {
        if !self.multi_role(framework_id) {
            inject_allocation_role(&mut task.resources, role);
            if let Some(executor) = &mut task.executor {
                inject_allocation_role(&mut executor.resources, role);
            }
        }
        if let Some(executor) = &mut task.executor {
            executor.framework_id.get_or_insert_with(|| FrameworkId {
                value: framework_id.to_string(),
            });
        }
    }

    fn multi_role(&self, framework_id: &str) -> bool {
        self.frameworks
            .get(framework_id)
            .is_some_and(|f| f.has_capability(Capability::MultiRole))
    }

    fn task_invalid(&mut self, framework_id: &str, task: &TaskInfo, error: &str) {
        tracing::info!(framework = %framework_id, task = %task.task_id.value, %error, "invalid task");
        self.master_update(
            framework_id,
            &task.task_id.value,
            Some(&task.agent_id.value),
            TaskState::TaskError,
            Reason::TaskInvalid,
            error,
        );
    }

    /// Records a launched task as TASK_STAGING.
    fn add_task(
        &mut self,
        framework_id: &str,
        agent_id: &str,
        info: &TaskInfo,
        new_executor: bool,
    ) {
        let user = info
            .command
            .as_ref()
            .and_then(|c| c.user.clone())
            .or_else(|| {
                self.frameworks
                    .get(framework_id)
                    .map(|f| f.info.user.clone())
            });
        let task = Task {
            name: info.name.clone(),
            task_id: info.task_id.clone(),
            framework_id: FrameworkId {
                value: framework_id.to_string(),
            },
            executor_id: info.executor.as_ref().map(|e| ExecutorId {
                value: e.executor_id.value.clone(),
            }),
            agent_id: info.agent_id.clone(),
            state: TaskState::TaskStaging as i32,
            resources: info.resources.clone(),
            labels: info.labels.clone(),
            discovery: info.discovery.clone(),
            container: info.container.clone(),
            health_check: info.health_check.clone(),
            kill_policy: info.kill_policy,
            user,
            limits: info.limits.clone(),
            ..Default::default()
        };
        let task_id = info.task_id.value.clone();
        if let Some(agent) = self.agents.get_mut(agent_id) {
            agent
                .tasks
                .insert((framework_id.to_string(), task_id.clone()));
            if new_executor {
                if let Some(executor) = &info.executor {
                    agent.add_executor(framework_id, executor.clone());
                }
            }
        }
        if let Some(framework) = self.frameworks.get_mut(framework_id) {
            framework.tasks.insert(task_id, task);
        }
    }
}

/// Sets `allocation_info.role` on resources that have none.
fn inject_allocation_role(resources: &mut [v1::Resource], role: &str) {
    for resource in resources {
        if resource.allocation_info.is_none() {
            resource.allocation_info = Some(AllocationInfo {
                role: Some(role.to_string()),
            });
        }
    }
}

/// Every task named by LAUNCH and LAUNCH_GROUP operations.
fn tasks_of(operations: &[v1::offer::Operation]) -> Vec<TaskInfo> {
    let mut tasks = Vec::new();
    for operation in operations {
        match operation.r#type.and_then(|t| Operation::try_from(t).ok()) {
            Some(Operation::Launch) => tasks.extend(
                operation
                    .launch
                    .iter()
                    .flat_map(|l| l.task_infos.iter().cloned()),
            ),
            Some(Operation::LaunchGroup) => tasks.extend(
                operation
                    .launch_group
                    .iter()
                    .flat_map(|g| g.task_group.tasks.iter().cloned()),
            ),
            _ => {}
        }
    }
    tasks
}
