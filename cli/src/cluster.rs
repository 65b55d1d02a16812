//! A local cluster: one `mesos-master` and N `mesos-agent`s as child processes
//! on 127.0.0.1, their work directories in a temporary directory and their
//! containers in a cgroup sub-tree of their own, all removed on stop. Used by
//! `mesos-local` and `mesos-bench`.

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

/// How long the master and agents get to open their ports.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long they get to exit after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Errors starting or stopping a cluster.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// A binary is missing.
    #[error("{binary} not found in {dir} (build the workspace: cargo build --release --bins)")]
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
        /// `mesos-master` or `mesos-agent-N`.
        what: String,
        /// Exited with what, or timed out.
        reason: String,
        /// The end of its log.
        log_tail: String,
    },
    /// The containers' cgroups could not be removed after the agents stopped.
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
    /// How many agents.
    pub agents: usize,
    /// Each agent's `--resources`.
    pub resources: String,
    /// Each agent's `--isolation`.
    pub isolation: String,
    /// Extra agent flags, e.g. `--cgroups_enable_cfs`.
    pub agent_flags: Vec<String>,
    /// Extra master flags.
    pub master_flags: Vec<String>,
    /// Prefix of the temporary directory and the cgroups root.
    pub name: String,
    /// `RUST_LOG` for the children.
    pub log_filter: String,
}

impl ClusterConfig {
    /// One agent of 2 cpus and 4 GiB with cpu and memory cgroups and a pid
    /// namespace per container (which, as in Mesos, needs `filesystem/linux`).
    pub fn new(bin_dir: &Path) -> Self {
        ClusterConfig {
            bin_dir: bin_dir.to_owned(),
            agents: 1,
            resources: "cpus:2;mem:4096".to_owned(),
            isolation: "filesystem/linux,cgroups/cpu,cgroups/mem,namespaces/pid".to_owned(),
            agent_flags: Vec::new(),
            master_flags: Vec::new(),
            name: "mesos-cluster".to_owned(),
            log_filter: "info".to_owned(),
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

/// One running child process.
#[derive(Debug)]
struct Process {
    name: String,
    child: Child,
    addr: SocketAddr,
}

/// A running master and its agents.
#[derive(Debug)]
pub struct LocalCluster {
    master: Process,
    agents: Vec<Process>,
    /// Prefix of the agents' `--cgroups_root`s, unique per run.
    cgroups_prefix: String,
    isolation: String,
    dir: tempfile::TempDir,
}

impl LocalCluster {
    /// Starts the master, then the agents pointed at it, and waits until all
    /// listen. Agent registration is not awaited: the first offer a framework
    /// receives proves it.
    pub async fn start(config: &ClusterConfig) -> Result<Self, ClusterError> {
        if let Some(binary) = config.missing_binaries().first() {
            return Err(ClusterError::MissingBinary {
                binary,
                dir: config.bin_dir.clone(),
            });
        }
        let dir = tempfile::Builder::new()
            .prefix(&format!("{}-", config.name))
            .tempdir()
            .map_err(|source| spawn_error("temporary directory", source))?;
        let cgroups_prefix = format!("{}-{}", config.name, std::process::id());

        let master_addr = free_port()?;
        let mut master_args = vec![
            flag("ip", "127.0.0.1"),
            flag("port", &master_addr.port().to_string()),
            flag(
                "work_dir",
                &make_dir(dir.path(), "master")?.display().to_string(),
            ),
        ];
        master_args.extend(config.master_flags.iter().cloned());
        let master = spawn(
            config,
            "mesos-master",
            "master",
            &master_args,
            dir.path(),
            master_addr,
        )?;
        let mut cluster = LocalCluster {
            master,
            agents: Vec::new(),
            cgroups_prefix,
            isolation: config.isolation.clone(),
            dir,
        };
        if let Err(e) = cluster.master.wait_listening(cluster.dir.path()).await {
            let _ = cluster.stop().await;
            return Err(e);
        }
        for index in 1..=config.agents.max(1) {
            if let Err(e) = cluster.start_agent(config, index, master_addr).await {
                let _ = cluster.stop().await;
                return Err(e);
            }
        }
        Ok(cluster)
    }

    async fn start_agent(
        &mut self,
        config: &ClusterConfig,
        index: usize,
        master: SocketAddr,
    ) -> Result<(), ClusterError> {
        let name = format!("agent-{index}");
        let addr = free_port()?;
        let dir = self.dir.path();
        let mut args = vec![
            flag("ip", "127.0.0.1"),
            flag("port", &addr.port().to_string()),
            flag("hostname", &format!("{name}.local")),
            flag("master", &master.to_string()),
            flag("work_dir", &make_dir(dir, &name)?.display().to_string()),
            flag(
                "runtime_dir",
                &make_dir(dir, &format!("{name}-run"))?.display().to_string(),
            ),
            flag("launcher_dir", &config.bin_dir.display().to_string()),
            flag("resources", &config.resources),
            flag("isolation", &config.isolation),
            // Each agent gets its own root, so recovery never mistakes one
            // agent's containers for another's orphans.
            flag("cgroups_root", &self.agent_cgroups_root(index)),
        ];
        args.extend(config.agent_flags.iter().cloned());
        let agent = spawn(config, "mesos-agent", &name, &args, dir, addr)?;
        self.agents.push(agent);
        let agent = self.agents.last_mut().expect("just pushed");
        agent.wait_listening(dir).await
    }

    /// `127.0.0.1:<port>` of the master, for `DriverConfig::new`.
    pub fn master_addr(&self) -> String {
        self.master.addr.to_string()
    }

    /// The agents' addresses, in start order.
    pub fn agent_addrs(&self) -> Vec<SocketAddr> {
        self.agents.iter().map(|a| a.addr).collect()
    }

    /// The first agent's address.
    pub fn agent_addr(&self) -> SocketAddr {
        self.agents.first().map_or(self.master.addr, |a| a.addr)
    }

    /// The first agent's pid.
    pub fn agent_pid(&self) -> Option<i32> {
        self.agents.first().and_then(|a| a.pid())
    }

    /// The master's pid.
    pub fn master_pid(&self) -> Option<i32> {
        self.master.pid()
    }

    /// The first agent's `--cgroups_root`.
    pub fn cgroups_root(&self) -> String {
        self.agent_cgroups_root(1)
    }

    /// Agent `index`'s `--cgroups_root` (agents count from 1).
    pub fn agent_cgroups_root(&self, index: usize) -> String {
        format!("{}-agent-{index}", self.cgroups_prefix)
    }

    /// The temporary directory holding work dirs and logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The last lines of every process log, for error notes.
    pub fn log_tails(&self) -> String {
        std::iter::once(&self.master)
            .chain(&self.agents)
            .map(|p| format!("{} log:\n{}", p.name, log_tail(self.dir.path(), &p.name)))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Whether every process is still running.
    pub fn check_alive(&mut self) -> Result<(), String> {
        for process in std::iter::once(&mut self.master).chain(&mut self.agents) {
            if let Ok(Some(status)) = process.child.try_wait() {
                return Err(format!("{} exited ({status})", process.name));
            }
        }
        Ok(())
    }

    /// Stops the agents, then the master (SIGTERM, SIGKILL after a grace
    /// period), then destroys whatever containers the agents left (an agent
    /// keeps its containers across restarts, as in Mesos) and their cgroups.
    pub async fn stop(mut self) -> Result<(), ClusterError> {
        for agent in &mut self.agents {
            terminate(&mut agent.child).await;
        }
        terminate(&mut self.master.child).await;
        for index in 1..=self.agents.len() {
            remove_cgroups(&self.agent_cgroups_root(index), &self.isolation).await?;
        }
        Ok(())
    }
}

impl Process {
    fn pid(&self) -> Option<i32> {
        self.child.id().and_then(|p| i32::try_from(p).ok())
    }

    async fn wait_listening(&mut self, dir: &Path) -> Result<(), ClusterError> {
        let deadline = Instant::now() + START_TIMEOUT;
        let not_up = |name: &str, reason: String| ClusterError::NotUp {
            what: name.to_owned(),
            reason,
            log_tail: log_tail(dir, name),
        };
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(not_up(&self.name, format!("exited ({status})")));
            }
            if TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                let reason = format!("not listening on {} after {START_TIMEOUT:?}", self.addr);
                return Err(not_up(&self.name, reason));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Destroys every container under `root` and removes `root` (the agents run
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

fn flag(name: &str, value: &str) -> String {
    format!("--{name}={value}")
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
/// moments later, a race that is harmless on a test host).
fn free_port() -> Result<SocketAddr, ClusterError> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|source| spawn_error("a free port", source))
}

fn log_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.log"))
}

fn spawn(
    config: &ClusterConfig,
    binary: &str,
    name: &str,
    args: &[String],
    dir: &Path,
    addr: SocketAddr,
) -> Result<Process, ClusterError> {
    let log = std::fs::File::create(log_path(dir, name)).map_err(|s| spawn_error(name, s))?;
    let log2 = log.try_clone().map_err(|s| spawn_error(name, s))?;
    let path = config.bin_dir.join(binary);
    let child = Command::new(&path)
        .args(args)
        .env("RUST_LOG", &config.log_filter)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2)
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| spawn_error(&path.display().to_string(), source))?;
    Ok(Process {
        name: name.to_owned(),
        child,
        addr,
    })
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
