//! Facts about task states shared by the master, the agent and the SDKs.

use crate::v1::TaskState;

impl TaskState {
    /// Whether no further update follows this state (Mesos's
    /// `protobuf::isTerminalState`). `TASK_LOST` counts: a task reported lost
    /// is gone from the framework's view even if it may later reappear.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            TaskState::TaskFinished
                | TaskState::TaskFailed
                | TaskState::TaskKilled
                | TaskState::TaskError
                | TaskState::TaskLost
                | TaskState::TaskDropped
                | TaskState::TaskGone
                | TaskState::TaskGoneByOperator
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_states_match_mesos() {
        let terminal: Vec<_> = (0..=13)
            .filter_map(|n| TaskState::try_from(n).ok())
            .filter(|s| s.is_terminal())
            .map(|s| s.as_str_name())
            .collect();
        assert_eq!(
            terminal,
            [
                "TASK_FINISHED",
                "TASK_FAILED",
                "TASK_KILLED",
                "TASK_LOST",
                "TASK_ERROR",
                "TASK_DROPPED",
                "TASK_GONE",
                "TASK_GONE_BY_OPERATOR"
            ]
        );
    }
}
