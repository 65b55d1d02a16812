//! Long-running processes of lab hosts (a master, an agent): output to a log
//! file, killed when dropped, the log's tail printed if a test panics.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// Lines of a daemon's log shown when a test panics.
const TAIL_ON_PANIC: usize = 120;
/// Set (to anything) to see every daemon's whole log when it is dropped,
/// also when nothing failed.
pub const SHOW_LOGS_ENV: &str = "MESOS_LAB_SHOW_LOGS";

/// Errors of starting a daemon.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The log file could not be created.
    #[error("cannot create log {path}: {source}")]
    Log {
        /// The log file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The process could not be started.
    #[error("cannot start {name}: {source}")]
    Spawn {
        /// The daemon's name.
        name: String,
        /// Why.
        source: io::Error,
    },
}

/// A child process whose stdout and stderr go to a log file.
#[derive(Debug)]
pub struct Daemon {
    name: String,
    child: Child,
    log: PathBuf,
    reaped: Option<ExitStatus>,
}

impl Daemon {
    /// Starts `command` (e.g. from [`crate::Lab::command`]) with its output
    /// in `log`; `name` labels it in messages.
    pub fn spawn(name: &str, mut command: Command, log: &Path) -> Result<Daemon, DaemonError> {
        let log_error = |source| DaemonError::Log {
            path: log.to_path_buf(),
            source,
        };
        let stdout = File::create(log).map_err(log_error)?;
        let stderr = stdout.try_clone().map_err(log_error)?;
        let child = command
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .map_err(|source| DaemonError::Spawn {
                name: name.to_string(),
                source,
            })?;
        Ok(Daemon {
            name: name.to_string(),
            child,
            log: log.to_path_buf(),
            reaped: None,
        })
    }

    /// The daemon's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// How it ended, if it has.
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        if self.reaped.is_none() {
            self.reaped = self.child.try_wait().ok().flatten();
        }
        self.reaped
    }

    /// The whole log so far.
    pub fn log(&self) -> String {
        std::fs::read(&self.log)
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    }

    /// The last `lines` lines of the log.
    pub fn tail(&self, lines: usize) -> String {
        let log = self.log();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Kills the process (SIGKILL, like a crash) and reaps it. Idempotent.
    pub fn kill(&mut self) {
        if self.exit_status().is_some() {
            return;
        }
        // The pid is ours and unreaped, so it cannot have been reused.
        let pid = Pid::from_raw(i32::try_from(self.child.id()).expect("pids fit in i32"));
        let _ = kill(pid, Signal::SIGKILL);
        self.reaped = self.child.wait().ok();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if std::env::var_os(SHOW_LOGS_ENV).is_some() {
            eprintln!("---- {} log ----\n{}", self.name, self.log());
        } else if std::thread::panicking() {
            eprintln!(
                "---- {} log (last {TAIL_ON_PANIC} lines) ----\n{}",
                self.name,
                self.tail(TAIL_ON_PANIC)
            );
        }
        self.kill();
    }
}
