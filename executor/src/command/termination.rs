//! How a task's end is reported: the terminal state, and the status message
//! Mesos builds with `"Command " + WSTRINGIFY(status)`.

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

use mesos_proto::v1::{task_status::Reason, TaskState};

/// Why the task was being stopped when it ended, if it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KillCause {
    /// Not killed: it ended on its own.
    None,
    /// KILL or SHUTDOWN.
    Requested,
    /// It ran longer than `max_completion_time`.
    MaxCompletionTime,
}

/// The terminal state, in Mesos's order of precedence: a max-completion kill
/// is a failure, any other kill is TASK_KILLED even if the command then
/// exited 0, otherwise success decides.
pub(crate) fn terminal_state(succeeded: bool, cause: KillCause) -> (TaskState, Option<Reason>) {
    match cause {
        KillCause::MaxCompletionTime => (
            TaskState::TaskFailed,
            Some(Reason::MaxCompletionTimeReached),
        ),
        KillCause::Requested => (TaskState::TaskKilled, None),
        KillCause::None if succeeded => (TaskState::TaskFinished, None),
        KillCause::None => (TaskState::TaskFailed, None),
    }
}

/// The status message: "Command exited with status N" or "Command
/// terminated with signal <strsignal text>".
pub(crate) fn message(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        format!("Command exited with status {code}")
    } else if let Some(signal) = status.signal() {
        format!(
            "Command terminated with signal {}",
            signal_description(signal)
        )
    } else {
        format!("Command ended with wait status {}", status.into_raw())
    }
}

/// glibc's `strsignal()` text, which is what Mesos prints. Kept as a table
/// because `strsignal` may use a shared buffer (not thread-safe).
pub(crate) fn signal_description(signal: i32) -> String {
    const DESCRIPTIONS: [&str; 32] = [
        "Unknown signal 0",
        "Hangup",
        "Interrupt",
        "Quit",
        "Illegal instruction",
        "Trace/breakpoint trap",
        "Aborted",
        "Bus error",
        "Floating point exception",
        "Killed",
        "User defined signal 1",
        "Segmentation fault",
        "User defined signal 2",
        "Broken pipe",
        "Alarm clock",
        "Terminated",
        "Stack fault",
        "Child exited",
        "Continued",
        "Stopped (signal)",
        "Stopped",
        "Stopped (tty input)",
        "Stopped (tty output)",
        "Urgent I/O condition",
        "CPU time limit exceeded",
        "File size limit exceeded",
        "Virtual timer expired",
        "Profiling timer expired",
        "Window changed",
        "I/O possible",
        "Power failure",
        "Bad system call",
    ];
    let rt_min = libc::SIGRTMIN();
    let rt_max = libc::SIGRTMAX();
    match usize::try_from(signal) {
        Ok(index) if index > 0 && index < DESCRIPTIONS.len() => DESCRIPTIONS[index].to_owned(),
        _ if (rt_min..=rt_max).contains(&signal) => {
            format!("Real-time signal {}", signal - rt_min)
        }
        _ => format!("Unknown signal {signal}"),
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::CStr;

    use super::*;

    fn exited(code: i32) -> ExitStatus {
        ExitStatus::from_raw(code << 8)
    }

    fn signaled(signal: i32) -> ExitStatus {
        ExitStatus::from_raw(signal)
    }

    #[test]
    fn messages_match_mesos() {
        assert_eq!(message(exited(0)), "Command exited with status 0");
        assert_eq!(message(exited(3)), "Command exited with status 3");
        assert_eq!(
            message(signaled(libc::SIGKILL)),
            "Command terminated with signal Killed"
        );
        assert_eq!(
            message(signaled(libc::SIGTERM)),
            "Command terminated with signal Terminated"
        );
        assert_eq!(
            message(signaled(libc::SIGSEGV)),
            "Command terminated with signal Segmentation fault"
        );
    }

    #[test]
    fn signal_table_agrees_with_glibc_strsignal() {
        for signal in 1..=64 {
            // SAFETY: strsignal returns a pointer to a NUL-terminated string
            // that stays valid until the next strsignal call on this thread;
            // it is copied at once.
            let expected = unsafe { CStr::from_ptr(libc::strsignal(signal)) }
                .to_string_lossy()
                .into_owned();
            assert_eq!(signal_description(signal), expected, "signal {signal}");
        }
    }

    #[test]
    fn terminal_state_follows_mesos_precedence() {
        use KillCause::*;
        assert_eq!(
            terminal_state(true, None),
            (TaskState::TaskFinished, Option::None)
        );
        assert_eq!(
            terminal_state(false, None),
            (TaskState::TaskFailed, Option::None)
        );
        // A killed task that exits 0 in its SIGTERM handler is still KILLED.
        assert_eq!(
            terminal_state(true, Requested),
            (TaskState::TaskKilled, Option::None)
        );
        assert_eq!(
            terminal_state(false, Requested),
            (TaskState::TaskKilled, Option::None)
        );
        assert_eq!(
            terminal_state(true, MaxCompletionTime),
            (
                TaskState::TaskFailed,
                Some(Reason::MaxCompletionTimeReached)
            )
        );
    }
}
