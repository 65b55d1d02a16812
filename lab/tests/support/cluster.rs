//! The cluster under test: the workspace's `mesos-master` on lab host
//! `master`, `mesos-agent` on `agent-1` and `agent-2`, each on port 5050 /
//! 5051 of its own address.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use mesos_lab::{Daemon, Lab};
use serde_json::Value;

use super::http::{get_json, wait_listening};

pub const MASTER: &str = "master";
pub const AGENTS: [&str; 2] = ["agent-1", "agent-2"];
pub const FRAMEWORK: &str = "framework";
/// Every host of the lab, in address order (.10, .11, .12, .13).
pub const HOSTS: [&str; 4] = [MASTER, AGENTS[0], AGENTS[1], FRAMEWORK];

const MASTER_PORT: u16 = 5050;
const AGENT_PORT: u16 = 5051;
/// Short health checks, so agent loss is detected in about 2 s.
const MASTER_FLAGS: [&str; 2] = ["--agent_ping_timeout=1secs", "--max_agent_ping_timeouts=2"];
const ISOLATION: &str = "cgroups/cpu,cgroups/mem";
/// The packages whose binaries the cluster runs.
const PACKAGES: [&str; 4] = [
    "mesos-master",
    "mesos-slave",
    "mesos-executor",
    "mesos-containerizer",
];

/// `target/<profile>`, with `mesos-master`, `mesos-agent`, `mesos-executor`
/// and `mesos-containerizer` freshly built (once per test process). A build
/// failure fails the test.
pub fn binaries() -> &'static Path {
    static BIN_DIR: OnceLock<PathBuf> = OnceLock::new();
    BIN_DIR.get_or_init(|| {
        // This test runs from target/<profile>/deps/.
        let exe = std::env::current_exe().expect("the test binary's path");
        let dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("test binaries live in target/<profile>/deps")
            .to_path_buf();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut command = Command::new(cargo);
        command.args(["build", "--quiet", "--bins"]);
        for package in PACKAGES {
            command.args(["-p", package]);
        }
        if dir.ends_with("release") {
            command.arg("--release");
        }
        let output = command
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("run cargo");
        assert!(
            output.status.success(),
            "building the cluster's binaries failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        dir
    })
}

/// A running `mesos-agent` and the cgroups it owns.
pub struct Agent {
    pub host: &'static str,
    pub addr: SocketAddr,
    pub cgroups_root: String,
    daemon: Daemon,
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.daemon.kill();
        // Executors and tasks outlive a killed agent: kill them through
        // their cgroups and remove those.
        if let Err(error) = remove_cgroups(&self.cgroups_root) {
            eprintln!(
                "{}: removing cgroups {}: {error}",
                self.host, self.cgroups_root
            );
        }
    }
}

/// A master and two agents on their lab hosts. Dropping it kills them all
/// and removes the agents' cgroups; the lab's network outlives it.
pub struct Cluster<'lab> {
    pub lab: &'lab Lab,
    pub master: Daemon,
    pub agents: Vec<Agent>,
    /// Logs and work directories; removed after the processes are gone.
    dir: tempfile::TempDir,
}

impl<'lab> Cluster<'lab> {
    /// Starts the master and both agents and waits until both agents are
    /// registered. Call from a lab host that can reach the master.
    pub async fn start(lab: &'lab Lab) -> Cluster<'lab> {
        let bin = binaries();
        let dir = tempfile::Builder::new()
            .prefix("mesos-lab-")
            .tempdir()
            .expect("a temporary directory");
        let master_ip = lab.address(MASTER).expect("master host");
        let mut command = lab
            .command(MASTER, bin.join("mesos-master"))
            .expect("master host");
        command
            .arg(format!("--ip={master_ip}"))
            .arg(format!("--port={MASTER_PORT}"))
            .arg(format!("--hostname={MASTER}"))
            .arg(format!(
                "--work_dir={}",
                dir.path().join("master").display()
            ))
            .args(MASTER_FLAGS)
            .env("NO_COLOR", "1");
        let master = Daemon::spawn("mesos-master", command, &dir.path().join("master.log"))
            .expect("start mesos-master");
        let mut cluster = Cluster {
            lab,
            master,
            agents: Vec::new(),
            dir,
        };
        let master_addr = cluster.master_addr();
        if !wait_listening(master_addr, Duration::from_secs(10)).await {
            panic!("mesos-master does not listen on {master_addr}");
        }
        for host in AGENTS {
            let agent = cluster.start_agent(host, bin);
            cluster.agents.push(agent);
        }
        cluster.wait_registered(Duration::from_secs(20)).await;
        cluster
    }

    fn start_agent(&self, host: &'static str, bin: &Path) -> Agent {
        let ip = self.lab.address(host).expect("agent host");
        let work = self.dir.path().join(host);
        let cgroups_root = format!("mesos-lab-{}-{host}", self.tag());
        let mut command = self
            .lab
            .command(host, bin.join("mesos-agent"))
            .expect("agent host");
        command
            .arg(format!("--master={}", self.master_addr()))
            .arg(format!("--ip={ip}"))
            .arg(format!("--port={AGENT_PORT}"))
            .arg(format!("--hostname={host}"))
            .arg(format!("--work_dir={}", work.join("work").display()))
            .arg(format!("--runtime_dir={}", work.join("run").display()))
            .arg(format!("--launcher_dir={}", bin.display()))
            .arg(format!("--isolation={ISOLATION}"))
            .arg(format!("--cgroups_root={cgroups_root}"))
            .arg("--resources=cpus:2;mem:1024;disk:1024;ports:[31000-31100]")
            .arg("--registration_backoff_factor=100ms")
            .arg("--executor_shutdown_grace_period=1secs")
            .env("NO_COLOR", "1");
        let daemon = Daemon::spawn(host, command, &self.dir.path().join(format!("{host}.log")))
            .expect("start mesos-agent");
        Agent {
            host,
            addr: SocketAddr::from((ip, AGENT_PORT)),
            cgroups_root,
            daemon,
        }
    }

    /// Unique per cluster: the temporary directory's random suffix.
    fn tag(&self) -> String {
        let name = self.dir.path().file_name().unwrap_or_default();
        name.to_string_lossy()
            .trim_start_matches("mesos-lab-")
            .to_string()
    }

    /// The master's `ip:port`.
    pub fn master_addr(&self) -> SocketAddr {
        let ip = self.lab.address(MASTER).expect("master host");
        SocketAddr::from((ip, MASTER_PORT))
    }

    /// The master's `/state`.
    pub async fn master_state(&self) -> Value {
        match get_json(self.master_addr(), "/state").await {
            Ok(state) => state,
            Err(error) => panic!("master /state: {error}"),
        }
    }

    /// The master's `/state` once `ready` holds for it (polled); panics
    /// with the last one after `timeout`.
    pub async fn wait_state(
        &self,
        what: &str,
        timeout: Duration,
        ready: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let state = self.master_state().await;
            if ready(&state) {
                return state;
            }
            if tokio::time::Instant::now() >= deadline {
                panic!("{what}: not within {timeout:?}; master /state: {state}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Host name → agent id, for the registered agents, from the master's
    /// `/state` (an agent's pid carries its lab address).
    pub async fn agent_ids(&self) -> BTreeMap<&'static str, String> {
        let state = self.master_state().await;
        let mut ids = BTreeMap::new();
        for agent in &self.agents {
            let pid_suffix = format!("@{}", agent.addr);
            let id = state["slaves"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|s| s["pid"].as_str().is_some_and(|p| p.ends_with(&pid_suffix)))
                .and_then(|s| s["id"].as_str());
            if let Some(id) = id {
                ids.insert(agent.host, id.to_string());
            }
        }
        ids
    }

    async fn wait_registered(&mut self, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        while tokio::time::Instant::now() < deadline {
            if self.agent_ids().await.len() == AGENTS.len() {
                return;
            }
            if let Some(status) = self.master.exit_status() {
                panic!("mesos-master exited: {status}");
            }
            for agent in &mut self.agents {
                if let Some(status) = agent.daemon.exit_status() {
                    panic!("{} exited: {status}", agent.host);
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "agents not registered within {timeout:?}; master /state slaves: {}",
            self.master_state().await["slaves"]
        );
    }

    /// Stops everything and returns the cgroup directories left behind (none
    /// expected).
    pub fn shutdown(self) -> Vec<PathBuf> {
        let roots: Vec<String> = self.agents.iter().map(|a| a.cgroups_root.clone()).collect();
        drop(self);
        roots.iter().flat_map(|root| cgroup_dirs(root)).collect()
    }
}

/// Kills every process in the agent's container cgroups and removes them,
/// as the agent would on `--recover=cleanup` (the isolator's `destroy_all`).
fn remove_cgroups(root: &str) -> Result<(), String> {
    // The isolator is async and this may run inside a runtime (a test's
    // drop): use a thread with a runtime of its own.
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| e.to_string())?;
                runtime.block_on(async {
                    let isolation: mesos_isolator::Isolation =
                        ISOLATION.parse().map_err(|e| format!("{e}"))?;
                    let config = mesos_isolator::CgroupsConfig {
                        root: root.to_string(),
                        destroy_timeout: Duration::from_secs(10),
                        ..Default::default()
                    };
                    mesos_isolator::Isolator::new(config, isolation)
                        .map_err(|e| e.to_string())?
                        .destroy_all()
                        .await
                        .map_err(|e| e.to_string())
                })
            })
            .join()
            .unwrap_or_else(|_| Err("the clean-up thread panicked".into()))
    })
}

/// Directories named `name` anywhere under /sys/fs/cgroup (a few levels
/// deep: the test's own cgroup may be nested).
pub fn cgroup_dirs(name: &str) -> Vec<PathBuf> {
    fn walk(dir: &Path, name: &str, depth: usize, found: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            if entry.file_name() == name {
                found.push(entry.path());
            } else if depth > 0 {
                walk(&entry.path(), name, depth - 1, found);
            }
        }
    }
    let mut found = Vec::new();
    walk(Path::new("/sys/fs/cgroup"), name, 6, &mut found);
    found
}
