//! The POSIX launcher (Mesos `--launcher=posix`): executors run as plain
//! child processes in their own session, with no cgroups or namespaces, so
//! nothing is enforced and a process that leaves the session escapes
//! `destroy`. It is what Mesos offers when the Linux launcher is unavailable
//! (e.g. not root); the default on this project's hosts is the containerizer.
//!
//! Recovery after an agent restart re-adopts the executors whose checkpointed
//! pid still leads its own session (as every executor started here does);
//! their exit status is then unknown (they are no longer our children).
//! Without cgroups, processes of an earlier run that the checkpoint does not
//! name cannot be found, so orphans are not destroyed (as in Mesos).

use std::collections::{BTreeMap, HashMap};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use mesos_proto::v1::{Resource, ResourceStatistics};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::sync::watch;

use crate::containers::{
    describe_wait_status, BoxFuture, ContainerError, ContainerLaunch, ContainerTermination,
    Containers, KnownContainer, LaunchedContainer, RecoveredContainer,
};
use crate::executor_api::now_secs;

type Exit = watch::Receiver<Option<ContainerTermination>>;

#[derive(Debug)]
struct Running {
    pid: u32,
    exit: Exit,
}

/// Executors as plain processes, one session each.
#[derive(Debug, Default, Clone)]
pub struct PosixContainers {
    running: Arc<Mutex<HashMap<String, Running>>>,
}

fn error(container_id: &str, message: impl Into<String>) -> ContainerError {
    ContainerError {
        container_id: container_id.to_string(),
        message: message.into(),
    }
}

/// Creates the sandbox, its `runs/latest` link and the log files.
fn prepare_sandbox(sandbox: &Path) -> std::io::Result<(std::fs::File, std::fs::File)> {
    std::fs::create_dir_all(sandbox)?;
    if let (Some(runs), Some(name)) = (sandbox.parent(), sandbox.file_name()) {
        let latest = runs.join(crate::paths::LATEST);
        let _ = std::fs::remove_file(&latest);
        std::os::unix::fs::symlink(name, &latest)?;
    }
    let stdout = std::fs::File::create(sandbox.join("stdout"))?;
    let stderr = std::fs::File::create(sandbox.join("stderr"))?;
    Ok((stdout, stderr))
}

fn command(launch: &ContainerLaunch) -> Result<std::process::Command, String> {
    let info = launch
        .executor_info
        .command
        .as_ref()
        .ok_or("executor has no command")?;
    let value = info.value.clone().unwrap_or_default();
    let mut command = if info.shell.unwrap_or(true) {
        let mut c = std::process::Command::new("/bin/sh");
        c.arg("-c").arg(value);
        c
    } else {
        let mut c = std::process::Command::new(&value);
        if let Some((argv0, rest)) = info.arguments.split_first() {
            c.arg0(argv0).args(rest);
        }
        c
    };
    command
        .env_clear()
        .envs(launch.environment.iter().cloned())
        .current_dir(&launch.sandbox)
        .stdin(Stdio::null());
    if let Some(user) = launch
        .user
        .as_deref()
        .filter(|_| nix::unistd::geteuid().is_root())
    {
        let user = nix::unistd::User::from_name(user)
            .map_err(|e| format!("failed to look up user '{user}': {e}"))?
            .ok_or_else(|| format!("user '{user}' does not exist"))?;
        command.uid(user.uid.as_raw()).gid(user.gid.as_raw());
    }
    // SAFETY: setsid(2) is async-signal-safe and touches no memory of the
    // (possibly multi-threaded) parent; the closure captures nothing.
    unsafe {
        command.pre_exec(|| {
            nix::unistd::setsid()
                .map(drop)
                .map_err(std::io::Error::from)
        });
    }
    Ok(command)
}

impl PosixContainers {
    /// An empty launcher.
    pub fn new() -> Self {
        Self::default()
    }

    fn exit_of(&self, container_id: &str) -> Option<(u32, Exit)> {
        let running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        running.get(container_id).map(|r| (r.pid, r.exit.clone()))
    }
}

async fn until_exit(mut exit: Exit) -> Option<ContainerTermination> {
    loop {
        if let Some(done) = exit.borrow().clone() {
            return Some(done);
        }
        exit.changed().await.ok()?;
    }
}

/// A pidfd for `pid` (Linux ≥ 5.3), to learn when a process that is not our
/// child exits.
fn pidfd_open(pid: u32) -> std::io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    let pid = libc::pid_t::try_from(pid)
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1;
    // no memory is passed.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let fd =
        i32::try_from(fd).map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidData))?;
    // SAFETY: the kernel just returned this fd to us; nothing else owns it.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

/// Whether `pid` is alive and leads its own session: an executor started by
/// this launcher, not an unrelated process that reused the pid.
fn leads_own_session(pid: u32) -> bool {
    let Ok(raw) = i32::try_from(pid) else {
        return false;
    };
    nix::unistd::getsid(Some(Pid::from_raw(raw))).is_ok_and(|sid| sid.as_raw() == raw)
}

/// Publishes the termination of an adopted executor once it exits.
async fn watch_adopted(
    pidfd: std::os::fd::OwnedFd,
    tx: watch::Sender<Option<ContainerTermination>>,
) {
    let message = match mesos_containerizer::reaper::wait(pidfd).await {
        Ok(_) => "Executor exited; its exit status is unknown (adopted after an agent restart)"
            .to_string(),
        Err(e) => format!("cannot watch the adopted executor: {e}"),
    };
    let _ = tx.send(Some(ContainerTermination {
        message,
        ..ContainerTermination::default()
    }));
}

/// Processes whose session is `sid`, with utime, stime (ticks) and rss (pages).
fn session_processes(sid: u32) -> Vec<(u64, u64, u64)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| std::fs::read_to_string(entry.path().join("stat")).ok())
        .filter_map(|stat| {
            // Fields after the parenthesized command name; see proc(5).
            let rest = &stat[stat.rfind(')')? + 2..];
            let fields: Vec<&str> = rest.split(' ').collect();
            let session: u32 = fields.get(3)?.parse().ok()?;
            (session == sid).then(|| {
                let field = |i: usize| fields.get(i).and_then(|f| f.parse().ok()).unwrap_or(0);
                (field(11), field(12), field(21))
            })
        })
        .collect()
}

impl Containers for PosixContainers {
    fn launch(
        &self,
        launch: ContainerLaunch,
    ) -> BoxFuture<Result<LaunchedContainer, ContainerError>> {
        let running = self.running.clone();
        Box::pin(async move {
            let id = launch.container_id.clone();
            let (stdout, stderr) = prepare_sandbox(&launch.sandbox)
                .map_err(|e| error(&id, format!("sandbox {}: {e}", launch.sandbox.display())))?;
            let mut command = command(&launch).map_err(|e| error(&id, e))?;
            command.stdout(stdout).stderr(stderr);
            let mut child = tokio::process::Command::from(command)
                .spawn()
                .map_err(|e| error(&id, format!("failed to start executor: {e}")))?;
            let pid = child
                .id()
                .ok_or_else(|| error(&id, "executor exited at once"))?;
            let (tx, rx) = watch::channel(None);
            running
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(id.clone(), Running { pid, exit: rx });
            tokio::spawn(async move {
                use std::os::unix::process::ExitStatusExt;
                let termination = match child.wait().await {
                    Ok(status) => {
                        let raw = status.into_raw();
                        ContainerTermination {
                            status: Some(raw),
                            limitation: None,
                            message: format!("Executor {}", describe_wait_status(raw)),
                        }
                    }
                    Err(e) => ContainerTermination {
                        message: format!("failed to reap executor: {e}"),
                        ..ContainerTermination::default()
                    },
                };
                let _ = tx.send(Some(termination));
            });
            Ok(LaunchedContainer {
                pid,
                steps: Vec::new(),
            })
        })
    }

    fn wait(&self, container_id: &str) -> BoxFuture<Result<ContainerTermination, ContainerError>> {
        let id = container_id.to_string();
        let exit = self.exit_of(container_id);
        Box::pin(async move {
            let (_, exit) = exit.ok_or_else(|| error(&id, "unknown container"))?;
            until_exit(exit)
                .await
                .ok_or_else(|| error(&id, "reaper vanished"))
        })
    }

    fn destroy(&self, container_id: &str) -> BoxFuture<Result<(), ContainerError>> {
        let id = container_id.to_string();
        let exit = self.exit_of(container_id);
        let running = self.running.clone();
        Box::pin(async move {
            let Some((pid, exit)) = exit else {
                return Ok(());
            };
            let pgid = Pid::from_raw(i32::try_from(pid).map_err(|_| error(&id, "bad pid"))?);
            // The executor leads its own session and process group.
            match killpg(pgid, Signal::SIGKILL) {
                Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
                Err(e) => return Err(error(&id, format!("killpg: {e}"))),
            }
            until_exit(exit).await;
            running
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&id);
            Ok(())
        })
    }

    fn usage(&self, container_id: &str) -> BoxFuture<Result<ResourceStatistics, ContainerError>> {
        let id = container_id.to_string();
        let exit = self.exit_of(container_id);
        Box::pin(async move {
            let (pid, _) = exit.ok_or_else(|| error(&id, "unknown container"))?;
            let processes = session_processes(pid);
            let ticks = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
                .ok()
                .flatten()
                .unwrap_or(100) as f64;
            let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
                .ok()
                .flatten()
                .unwrap_or(4096) as u64;
            Ok(ResourceStatistics {
                timestamp: now_secs(),
                processes: Some(u32::try_from(processes.len()).unwrap_or(u32::MAX)),
                cpus_user_time_secs: Some(
                    processes.iter().map(|p| p.0).sum::<u64>() as f64 / ticks,
                ),
                cpus_system_time_secs: Some(
                    processes.iter().map(|p| p.1).sum::<u64>() as f64 / ticks,
                ),
                mem_rss_bytes: Some(processes.iter().map(|p| p.2).sum::<u64>() * page),
                ..ResourceStatistics::default()
            })
        })
    }

    fn update(
        &self,
        _container_id: &str,
        _resources: Vec<Resource>,
        _limits: BTreeMap<String, f64>,
    ) -> BoxFuture<Result<(), ContainerError>> {
        // Nothing is enforced by the POSIX launcher.
        Box::pin(async { Ok(()) })
    }

    fn recover(
        &self,
        known: Vec<KnownContainer>,
    ) -> BoxFuture<Result<Vec<RecoveredContainer>, ContainerError>> {
        let running = self.running.clone();
        Box::pin(async move {
            let mut recovered = Vec::new();
            for container in known {
                let Some(pid) = container.pid.filter(|pid| leads_own_session(*pid)) else {
                    continue;
                };
                let Ok(pidfd) = pidfd_open(pid) else {
                    continue;
                };
                let (tx, rx) = watch::channel(None);
                tokio::spawn(watch_adopted(pidfd, tx));
                running
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(container.container_id.clone(), Running { pid, exit: rx });
                recovered.push(RecoveredContainer {
                    container_id: container.container_id,
                    pid: Some(pid),
                    running: true,
                });
            }
            Ok(recovered)
        })
    }
}

#[cfg(test)]
mod tests {
    use mesos_proto::v1::{CommandInfo, ExecutorId, ExecutorInfo, FrameworkInfo};

    use super::*;

    fn launch(dir: &Path, script: &str) -> ContainerLaunch {
        ContainerLaunch {
            container_id: uuid::Uuid::new_v4().to_string(),
            agent_id: "a".into(),
            framework_info: FrameworkInfo::default(),
            executor_info: ExecutorInfo {
                executor_id: ExecutorId { value: "e".into() },
                command: Some(CommandInfo {
                    value: Some(script.into()),
                    ..CommandInfo::default()
                }),
                ..ExecutorInfo::default()
            },
            task_info: None,
            resources: Vec::new(),
            limits: BTreeMap::new(),
            sandbox: dir.join("runs").join("c1"),
            user: None,
            environment: vec![("GREETING".into(), "hello".into())],
        }
    }

    #[tokio::test]
    async fn runs_in_its_own_session_with_the_given_environment() {
        let dir = tempfile::tempdir().unwrap();
        let containers = PosixContainers::new();
        let spec = launch(dir.path(), "echo $GREETING; ps -o sid= -p $$; exit 3");
        let launched = containers.launch(spec.clone()).await.unwrap();
        let termination = containers.wait(&spec.container_id).await.unwrap();
        assert_eq!(termination.status.map(|s| libc::WEXITSTATUS(s)), Some(3));
        let stdout = std::fs::read_to_string(spec.sandbox.join("stdout")).unwrap();
        let mut lines = stdout.lines();
        assert_eq!(lines.next(), Some("hello"));
        assert_eq!(
            lines.next().map(str::trim),
            Some(launched.pid.to_string().as_str())
        );
        assert!(dir.path().join("runs/latest").exists());
    }

    #[tokio::test]
    async fn a_restarted_launcher_adopts_running_executors_by_pid() {
        let dir = tempfile::tempdir().unwrap();
        let first = PosixContainers::new();
        let spec = launch(dir.path(), "sleep 600");
        let launched = first.launch(spec.clone()).await.unwrap();
        // A new launcher (the restarted agent) knows it only by its pid.
        let second = PosixContainers::new();
        let known = vec![
            KnownContainer {
                container_id: spec.container_id.clone(),
                pid: Some(launched.pid),
            },
            KnownContainer {
                container_id: "gone".into(),
                // Above the kernel's pid_max (4194304): no such process.
                pid: Some(99_999_999),
            },
            KnownContainer {
                container_id: "never-started".into(),
                pid: None,
            },
        ];
        let recovered = second.recover(known).await.unwrap();
        assert_eq!(recovered.len(), 1, "only the live executor is adopted");
        assert!(recovered[0].running);
        second.destroy(&spec.container_id).await.unwrap();
        let termination = second.wait(&spec.container_id).await;
        assert!(termination.is_err(), "destroyed containers are forgotten");
        // (Both launchers live in this test process, so either may reap it.)
        let seen = first.wait(&spec.container_id).await;
        assert!(seen.is_ok(), "{seen:?}");
        // The shell's child may linger a moment as a zombie.
        for _ in 0..100 {
            if session_processes(launched.pid).is_empty() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert!(
            session_processes(launched.pid).is_empty(),
            "the executor is gone"
        );
    }

    #[tokio::test]
    async fn destroy_kills_the_whole_session() {
        let dir = tempfile::tempdir().unwrap();
        let containers = PosixContainers::new();
        let spec = launch(dir.path(), "sleep 600 & sleep 600");
        let launched = containers.launch(spec.clone()).await.unwrap();
        // Wait until both sleeps exist.
        for _ in 0..100 {
            if session_processes(launched.pid).len() >= 3 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert!(session_processes(launched.pid).len() >= 2);
        containers.destroy(&spec.container_id).await.unwrap();
        for _ in 0..100 {
            if session_processes(launched.pid).is_empty() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert!(
            session_processes(launched.pid).is_empty(),
            "no process of the session survives"
        );
    }
}
