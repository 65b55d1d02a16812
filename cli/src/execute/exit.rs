//! `mesos-execute`'s exit codes.

use mesos_proto::v1::TaskState;

/// The exit code table, shown by `--help`.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  the task finished (TASK_FINISHED)
  1  the task failed (TASK_FAILED, e.g. its command exited non-zero)
  2  bad flags (the message names the flag)
  3  the task was killed (TASK_KILLED, e.g. after --kill_after)
  4  the task ended otherwise (TASK_ERROR, TASK_LOST, TASK_DROPPED, TASK_GONE, ...)
  5  no master answered within --connect_timeout
  6  the master refused the framework or one of its calls, or removed it";

/// How `mesos-execute` ends; the discriminant is the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    /// `TASK_FINISHED`.
    Finished = 0,
    /// `TASK_FAILED`.
    Failed = 1,
    /// A flag has a bad value (clap exits with 2 as well).
    BadFlags = 2,
    /// `TASK_KILLED`.
    Killed = 3,
    /// Any other terminal state.
    OtherTerminal = 4,
    /// No subscription within `--connect_timeout`.
    MasterUnreachable = 5,
    /// `SUBSCRIBE` or a call was rejected, or an `ERROR` event arrived.
    FrameworkError = 6,
}

impl Exit {
    /// The exit for a task's terminal state.
    pub fn for_state(state: TaskState) -> Self {
        match state {
            TaskState::TaskFinished => Self::Finished,
            TaskState::TaskFailed => Self::Failed,
            TaskState::TaskKilled => Self::Killed,
            _ => Self::OtherTerminal,
        }
    }

    /// The process exit code.
    pub fn code(self) -> u8 {
        self as u8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_the_help_text() {
        for exit in [
            Exit::Finished,
            Exit::Failed,
            Exit::BadFlags,
            Exit::Killed,
            Exit::OtherTerminal,
            Exit::MasterUnreachable,
            Exit::FrameworkError,
        ] {
            let line = format!("  {}  ", exit.code());
            assert!(
                EXIT_CODES_HELP.contains(&line),
                "{exit:?} missing from the help"
            );
        }
        assert_eq!(Exit::for_state(TaskState::TaskError), Exit::OtherTerminal);
        assert!(!TaskState::TaskRunning.is_terminal());
    }
}
