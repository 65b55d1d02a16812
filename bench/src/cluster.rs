//! A local cluster for the suites that go through the scheduler API: one
//! `mesos-master` and one `mesos-agent` as child processes on 127.0.0.1, with
//! their work directories in a temporary directory and their containers in a
//! cgroup sub-tree of their own (`mesos-bench-<pid>`), all removed on stop.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

/// The binaries a cluster needs, all in one directory.
pub const BINARIES: &[&str] = &[
    "mesos-master",
    "mesos-agent",
    "mesos-executor",
    "mesos-containerizer",
];

/// How long the master and agent get to open their ports.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long they get to exit after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Errors starting or stopping a cluster.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// A binary is missing.
    #[error("{binary} not found in {dir} (build it: cargo build -p mesos-master -p mesos-slave -p mesos-executor -p mesos-containerizer)")]
    MissingBinary {
        /// Which.
        binary: &'static str,
        /// Where it was looked for.
        dir: PathBuf,
    },
    /// Spawning a process or preparing its directories failed.
    #[error("cannot start {what}: {source}")]
    Spawn {
        /// The process or directory.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A process exited or never opened its port.
    #[error("{what} did not come up: {reason}; last log lines:\n{log_tail}")]
    NotUp {
        /// `mesos-master` or `mesos-agent`.
        what: &'static str,
        /// Exited with what, or timed out.
        reason: String,
        /// The end of its log.
        log_tail: String,
    },
    /// The containers' cgroups could not be removed after the agent stopped.
    #[error("cannot remove the cluster's cgroups {root}: {message}")]
    Cgroups {
        /// `--cgroups_root`.
        root: String,
        /// The isolator's error.
        message: String,
    },
}

/// What the cluster looks like.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// Directory holding [`BINARIES`].
    pub bin_dir: PathBuf,
    /// The agent's `--resources`.
    pub resources: String,
    /// The agent's `--isolation`.
    pub isolation: String,
    /// Extra agent flags, e.g. `--cgroups_enable_cfs`.
    pub agent_flags: Vec<String>,
    /// Extra master flags.
    pub master_flags: Vec<String>,
}

impl ClusterConfig {
    /// The agent of the issue: 2 cpus, 4 GiB, cpu and memory cgroups and a pid
    /// namespace per container (which, as in Mesos, needs `filesystem/linux`).
    pub fn new(bin_dir: &Path) -> Self {
        ClusterConfig {
            bin_dir: bin_dir.to_owned(),
            resources: "cpus:2;mem:4096".to_owned(),
            isolation: "filesystem/linux,cgroups/cpu,cgroups/mem,namespaces/pid".to_owned(),
            agent_flags: Vec::new(),
            master_flags: Vec::new(),
        }
    }

    /// The binaries that are not in `bin_dir`.
    pub fn missing_binaries(&self) -> Vec<&'static str> {
        BINARIES
            .iter()
            .copied()
            .filter(|b| !self.bin_dir.join(b).is_file())
            .collect()
    }
}

/// A running master and agent.
#[derive(Debug)]
pub struct LocalCluster {
    master: Child,
    agent: Child,
    master_addr: SocketAddr,
    agent_addr: SocketAddr,
    cgroups_root: String,
    isolation: String,
    dir: tempfile::TempDir,
}

impl LocalCluster {
    /// Starts the master, then the agent pointed at it, and waits until both
    /// listen. The agent's registration is not awaited: the first offer a
    /// framework receives proves it.
    pub async fn start(config: &ClusterConfig) -> Result<Self, ClusterError> {
        if let Some(binary) = config.missing_binaries().first() {
            return Err(ClusterError::MissingBinary {
                binary,
                dir: config.bin_dir.clone(),
            });
        }
        let dir = tempfile::Builder::new()
            .prefix("mesos-bench-cluster-")
            .tempdir()
            .map_err(|source| spawn_error("temporary directory", source))?;
        let cgroups_root = format!("mesos-bench-{}", std::process::id());
        let master_addr = free_port()?;
        let agent_addr = free_port()?;
        let master_dir = make_dir(dir.path(), "master")?;
        let mut master_args = vec![
            "--ip".to_owned(),
            "127.0.0.1".to_owned(),
            "--port".to_owned(),
            master_addr.port().to_string(),
            "--work_dir".to_owned(),
            master_dir.display().to_string(),
        ];
        master_args.extend(config.master_flags.iter().cloned());
        let mut master = spawn(
            &config.bin_dir.join("mesos-master"),
            &master_args,
            dir.path(),
            "master",
        )?;
        if let Err(e) = wait_listening(
            &mut master,
            master_addr,
            "mesos-master",
            dir.path(),
            "master",
        )
        .await
        {
            let _ = master.kill().await;
            return Err(e);
        }
        let mut agent_args = vec![
            "--ip".to_owned(),
            "127.0.0.1".to_owned(),
            "--port".to_owned(),
            agent_addr.port().to_string(),
            "--master".to_owned(),
            master_addr.to_string(),
            "--work_dir".to_owned(),
            make_dir(dir.path(), "agent")?.display().to_string(),
            "--runtime_dir".to_owned(),
            make_dir(dir.path(), "agent-run")?.display().to_string(),
            "--launcher_dir".to_owned(),
            config.bin_dir.display().to_string(),
            "--resources".to_owned(),
            config.resources.clone(),
            "--isolation".to_owned(),
            config.isolation.clone(),
            "--cgroups_root".to_owned(),
            cgroups_root.clone(),
        ];
        agent_args.extend(config.agent_flags.iter().cloned());
        let agent = spawn(
            &config.bin_dir.join("mesos-agent"),
            &agent_args,
            dir.path(),
            "agent",
        );
        let mut cluster = LocalCluster {
            agent: match agent {
                Ok(agent) => agent,
                Err(e) => {
                    let _ = master.kill().await;
                    return Err(e);
                }
            },
            master,
            master_addr,
            agent_addr,
            cgroups_root,
            isolation: config.isolation.clone(),
            dir,
        };
        let up = wait_listening(
            &mut cluster.agent,
            agent_addr,
            "mesos-agent",
            cluster.dir.path(),
            "agent",
        )
        .await;
        if let Err(e) = up {
            let _ = cluster.stop().await;
            return Err(e);
        }
        Ok(cluster)
    }

    /// `127.0.0.1:<port>` of the master, for `DriverConfig::new`.
    pub fn master_addr(&self) -> String {
        self.master_addr.to_string()
    }

    /// The agent's address.
    pub fn agent_addr(&self) -> SocketAddr {
        self.agent_addr
    }

    /// The agent's pid.
    pub fn agent_pid(&self) -> Option<i32> {
        self.agent.id().and_then(|p| i32::try_from(p).ok())
    }

    /// The master's pid.
    pub fn master_pid(&self) -> Option<i32> {
        self.master.id().and_then(|p| i32::try_from(p).ok())
    }

    /// The agent's `--cgroups_root`.
    pub fn cgroups_root(&self) -> &str {
        &self.cgroups_root
    }

    /// The temporary directory holding work dirs and logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The last lines of the master's and agent's logs, for error notes.
    pub fn log_tails(&self) -> String {
        format!(
            "master log:\n{}\nagent log:\n{}",
            log_tail(self.dir.path(), "master"),
            log_tail(self.dir.path(), "agent")
        )
    }

    /// Whether the master and agent are still running.
    pub fn check_alive(&mut self) -> Result<(), String> {
        for (name, child) in [
            ("mesos-master", &mut self.master),
            ("mesos-agent", &mut self.agent),
        ] {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("{name} exited ({status})"));
            }
        }
        Ok(())
    }

    /// Stops the agent, then the master (SIGTERM, SIGKILL after a grace
    /// period), then destroys whatever containers the agent left (an agent
    /// keeps its containers across restarts, as in Mesos) and their cgroups.
    pub async fn stop(mut self) -> Result<(), ClusterError> {
        terminate(&mut self.agent).await;
        terminate(&mut self.master).await;
        if std::env::var_os("MESOS_BENCH_KEEP_CLUSTER").is_some() {
            // For debugging a suite: keep work dirs and logs.
            eprintln!(
                "mesos-bench: kept the cluster directory {}",
                self.dir.keep().display()
            );
        }
        remove_cgroups(&self.cgroups_root, &self.isolation).await
    }
}

/// Destroys every container under `root` and removes `root` (the agent runs
/// in our cgroup, so the same relative root names the same directories).
pub async fn remove_cgroups(root: &str, isolation: &str) -> Result<(), ClusterError> {
    let error = |message: String| ClusterError::Cgroups {
        root: root.to_owned(),
        message,
    };
    let isolation: mesos_isolator::Isolation =
        isolation.parse().map_err(|e| error(format!("{e}")))?;
    let config = mesos_isolator::CgroupsConfig {
        root: root.to_owned(),
        destroy_timeout: Duration::from_secs(10),
        ..Default::default()
    };
    let isolator =
        mesos_isolator::Isolator::new(config, isolation).map_err(|e| error(e.to_string()))?;
    isolator
        .destroy_all()
        .await
        .map_err(|e| error(e.to_string()))
}

fn spawn_error(what: &str, source: std::io::Error) -> ClusterError {
    ClusterError::Spawn {
        what: what.to_owned(),
        source,
    }
}

fn make_dir(parent: &Path, name: &str) -> Result<PathBuf, ClusterError> {
    let dir = parent.join(name);
    std::fs::create_dir_all(&dir)
        .map_err(|source| spawn_error(&dir.display().to_string(), source))?;
    Ok(dir)
}

/// A port nobody listens on now (the OS picks it; the process binds it
/// moments later, a race that is harmless on a benchmark host).
fn free_port() -> Result<SocketAddr, ClusterError> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|source| spawn_error("a free port", source))
}

fn log_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.log"))
}

fn spawn(binary: &Path, args: &[String], dir: &Path, name: &str) -> Result<Child, ClusterError> {
    let log =
        std::fs::File::create(log_path(dir, name)).map_err(|source| spawn_error(name, source))?;
    let log2 = log
        .try_clone()
        .map_err(|source| spawn_error(name, source))?;
    Command::new(binary)
        .args(args)
        .env(
            "RUST_LOG",
            std::env::var("MESOS_BENCH_CLUSTER_LOG").unwrap_or_else(|_| "info".to_owned()),
        )
        // Plain logs: they are read back into error notes.
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2)
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| spawn_error(&binary.display().to_string(), source))
}

async fn wait_listening(
    child: &mut Child,
    addr: SocketAddr,
    what: &'static str,
    dir: &Path,
    log: &str,
) -> Result<(), ClusterError> {
    let deadline = Instant::now() + START_TIMEOUT;
    let not_up = |reason: String| ClusterError::NotUp {
        what,
        reason,
        log_tail: log_tail(dir, log),
    };
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(not_up(format!("exited ({status})")));
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(not_up(format!(
                "not listening on {addr} after {START_TIMEOUT:?}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn terminate(child: &mut Child) {
    if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        if tokio::time::timeout(STOP_TIMEOUT, child.wait())
            .await
            .is_ok()
        {
            return;
        }
    }
    let _ = child.kill().await;
}

/// The last 15 lines of a process log.
fn log_tail(dir: &Path, name: &str) -> String {
    let text = std::fs::read_to_string(log_path(dir, name)).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}
