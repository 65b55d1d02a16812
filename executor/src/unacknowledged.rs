//! What the agent has not acknowledged yet: status updates, and tasks for
//! which no update has been acknowledged. Both go into every SUBSCRIBE, so an
//! agent that restarted (and may have lost them) learns them again, as
//! Mesos's executor driver does (`exec.cpp`, `Call.Subscribe`).

use mesos_proto::v1::executor::call;
use mesos_proto::v1::{TaskId, TaskInfo};

/// Unacknowledged updates and tasks, each in the order it was recorded.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Unacknowledged {
    updates: Vec<call::Update>,
    tasks: Vec<TaskInfo>,
}

impl Unacknowledged {
    /// Keeps `update` until the agent acknowledges its uuid.
    pub(crate) fn add_update(&mut self, update: call::Update) {
        self.updates.push(update);
    }

    /// Keeps `task` until an update for it is acknowledged. A task launched
    /// again with the same id replaces the old entry.
    pub(crate) fn add_task(&mut self, task: TaskInfo) {
        self.tasks.retain(|t| t.task_id != task.task_id);
        self.tasks.push(task);
    }

    /// Handles ACKNOWLEDGED: forgets the update with `uuid` and the task
    /// `task_id` (the agent knows a task once it has any of its updates).
    /// Returns whether the update was known.
    pub(crate) fn acknowledge(&mut self, task_id: &TaskId, uuid: &[u8]) -> bool {
        let before = self.updates.len();
        self.updates
            .retain(|u| u.status.uuid.as_deref() != Some(uuid));
        self.tasks.retain(|t| &t.task_id != task_id);
        self.updates.len() != before
    }

    /// The payload of a (re-)SUBSCRIBE.
    pub(crate) fn subscribe(&self) -> call::Subscribe {
        call::Subscribe {
            unacknowledged_tasks: self.tasks.clone(),
            unacknowledged_updates: self.updates.clone(),
        }
    }

    /// Number of unacknowledged updates.
    pub(crate) fn update_count(&self) -> usize {
        self.updates.len()
    }
}

#[cfg(test)]
mod tests {
    use mesos_proto::v1::{AgentId, TaskState, TaskStatus};

    use super::*;

    fn task(id: &str) -> TaskInfo {
        TaskInfo {
            name: id.into(),
            task_id: TaskId { value: id.into() },
            agent_id: AgentId { value: "a".into() },
            ..Default::default()
        }
    }

    fn update(task: &str, state: TaskState, uuid: u8) -> call::Update {
        call::Update {
            status: TaskStatus {
                task_id: TaskId { value: task.into() },
                state: state as i32,
                uuid: Some(vec![uuid; 16]),
                ..Default::default()
            },
        }
    }

    fn id(value: &str) -> TaskId {
        TaskId {
            value: value.into(),
        }
    }

    #[test]
    fn subscribe_carries_everything_unacknowledged_in_order() {
        let mut book = Unacknowledged::default();
        book.add_task(task("t1"));
        book.add_task(task("t2"));
        book.add_update(update("t1", TaskState::TaskStarting, 1));
        book.add_update(update("t1", TaskState::TaskRunning, 2));
        let subscribe = book.subscribe();
        let tasks: Vec<_> = subscribe
            .unacknowledged_tasks
            .iter()
            .map(|t| t.task_id.value.as_str())
            .collect();
        assert_eq!(tasks, ["t1", "t2"]);
        let uuids: Vec<_> = subscribe
            .unacknowledged_updates
            .iter()
            .map(|u| u.status.uuid.clone().unwrap()[0])
            .collect();
        assert_eq!(uuids, [1, 2]);
    }

    #[test]
    fn acknowledgement_drops_the_update_and_its_task() {
        let mut book = Unacknowledged::default();
        book.add_task(task("t1"));
        book.add_task(task("t2"));
        book.add_update(update("t1", TaskState::TaskStarting, 1));
        book.add_update(update("t1", TaskState::TaskRunning, 2));

        assert!(book.acknowledge(&id("t1"), &[1; 16]));
        let subscribe = book.subscribe();
        assert_eq!(subscribe.unacknowledged_updates.len(), 1);
        assert_eq!(
            subscribe.unacknowledged_updates[0].status.uuid,
            Some(vec![2; 16])
        );
        let tasks: Vec<_> = subscribe
            .unacknowledged_tasks
            .iter()
            .map(|t| t.task_id.value.as_str())
            .collect();
        assert_eq!(tasks, ["t2"]);
    }

    #[test]
    fn unknown_acknowledgement_is_reported_and_harmless() {
        let mut book = Unacknowledged::default();
        book.add_update(update("t1", TaskState::TaskRunning, 1));
        assert!(!book.acknowledge(&id("t1"), &[9; 16]));
        assert_eq!(book.update_count(), 1);
    }

    #[test]
    fn relaunched_task_replaces_the_old_entry() {
        let mut book = Unacknowledged::default();
        book.add_task(task("t1"));
        let mut again = task("t1");
        again.name = "second".into();
        book.add_task(again);
        let subscribe = book.subscribe();
        assert_eq!(subscribe.unacknowledged_tasks.len(), 1);
        assert_eq!(subscribe.unacknowledged_tasks[0].name, "second");
    }
}
