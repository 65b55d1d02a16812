//! Real processes for end-to-end tests: the workspace binaries, a running
//! `mesos-agent`, and checks that nothing (cgroup, process) is left behind.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::http;

/// Why an end-to-end test cannot run here.
pub fn skip_reason() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("needs root for cgroups and namespaces".into());
    }
    None
}

/// The workspace's binary directory (`target/debug`), where cargo put
/// `mesos-agent` and where the other binaries are built.
pub fn bin_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_mesos-agent"))
        .parent()
        .expect("binary has a directory")
        .to_path_buf()
}

/// Builds other packages' binaries this test needs (a no-op when fresh),
/// or says why it could not.
pub fn build_binaries(packages: &[&str]) -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut args = vec!["build", "--quiet", "--bins"];
    for package in packages {
        args.extend(["-p", package]);
    }
    let output = Command::new(&cargo)
        .args(&args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "cargo {} failed:\n{}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// A free loopback port.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Builds an example of this package (a no-op when fresh), or says why not.
pub fn build_example(name: &str) -> Result<PathBuf, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(&cargo)
        .args(["build", "--quiet", "-p", "mesos-slave", "--example", name])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "cargo build --example {name} failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(bin_dir().join("examples").join(name))
}

/// A `mesos-agent` child process.
pub struct AgentProcess {
    pub child: Child,
    pub address: SocketAddr,
    pub work_dir: tempfile::TempDir,
    pub cgroups_root: String,
    pub log: PathBuf,
    args: Vec<String>,
}

impl AgentProcess {
    /// Starts the agent registered with `master` (`host:port`), real cgroups
    /// under a unique `--cgroups_root`, binaries from `target/debug`.
    pub fn spawn(master: SocketAddr, extra: &[&str]) -> Self {
        let work_dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let cgroups_root = format!("mesos-agent-test-{}", uuid::Uuid::new_v4().simple());
        let log = work_dir.path().join("agent.log");
        let mut args = vec![
            format!("--master={master}"),
            format!("--work_dir={}", work_dir.path().join("work").display()),
            format!("--runtime_dir={}", work_dir.path().join("run").display()),
            "--ip=127.0.0.1".into(),
            format!("--port={port}"),
            format!("--launcher_dir={}", bin_dir().display()),
            format!("--cgroups_root={cgroups_root}"),
            "--registration_backoff_factor=10ms".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let child = Self::start(&args, &log);
        AgentProcess {
            child,
            address: SocketAddr::from(([127, 0, 0, 1], port)),
            work_dir,
            cgroups_root,
            log,
            args,
        }
    }

    /// Starts the binary with `args`, appending its stderr to `log`.
    fn start(args: &[String], log: &Path) -> Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        Command::new(env!("CARGO_BIN_EXE_mesos-agent"))
            .args(args)
            .env("RUST_LOG", "info,mesos_slave=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start mesos-agent")
    }

    /// `--work_dir`.
    pub fn work(&self) -> PathBuf {
        self.work_dir.path().join("work")
    }

    /// `kill -9`: the agent dies without cleaning anything up.
    pub fn kill9(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = self.child.wait();
    }

    /// Starts the agent again with the same flags (work dir, runtime dir,
    /// port, cgroups root) plus `extra`.
    pub fn restart(&mut self, extra: &[&str]) {
        self.kill9();
        let mut args = self.args.clone();
        args.extend(extra.iter().map(|s| s.to_string()));
        std::fs::OpenOptions::new()
            .append(true)
            .open(&self.log)
            .and_then(|mut f| std::io::Write::write_all(&mut f, b"\n---- restarted ----\n"))
            .unwrap();
        self.child = Self::start(&args, &self.log);
    }

    /// Runs the agent (same flags plus `extra`) while this one is down and
    /// waits for it to exit: its exit code (`None` if it had to be killed
    /// after `timeout`) and its stderr.
    pub fn run_to_exit(&self, extra: &[&str], timeout: Duration) -> (Option<i32>, String) {
        let mut args = self.args.clone();
        args.extend(extra.iter().map(|s| s.to_string()));
        let stderr = self.work_dir.path().join("run-to-exit.log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_mesos-agent"))
            .args(&args)
            .env("RUST_LOG", "info,mesos_slave=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .expect("start mesos-agent");
        let deadline = Instant::now() + timeout;
        let code = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status.code();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        (code, std::fs::read_to_string(&stderr).unwrap_or_default())
    }

    /// The agent's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `GET /state`.
    pub async fn state(&self) -> Value {
        http::get(self.address, "/state").await.json()
    }

    /// Waits until `/state` lists no live executor.
    pub async fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while tokio::time::Instant::now() < deadline {
            let state = self.state().await;
            let live = state["frameworks"]
                .as_array()
                .map(|f| {
                    f.iter()
                        .any(|f| f["executors"].as_array().is_some_and(|e| !e.is_empty()))
                })
                .unwrap_or(false);
            if !live {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        false
    }

    /// Directories under any cgroup hierarchy named after our root.
    pub fn cgroup_roots(&self) -> Vec<PathBuf> {
        let mut found = Vec::new();
        find_dirs(
            Path::new("/sys/fs/cgroup"),
            &self.cgroups_root,
            6,
            &mut found,
        );
        found
    }
}

/// The last `lines` lines of a log, for failure reports.
fn tail(log: &str, lines: usize) -> String {
    let all: Vec<&str> = log.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "---- mesos-agent log (tail) ----\n{}",
                tail(&self.log(), 300)
            );
        }
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = self.child.wait();
        // Leave nothing behind even when the test failed: kill what is left
        // in our cgroups, then remove them bottom-up.
        for root in self.cgroup_roots() {
            remove_cgroup_tree(&root);
        }
    }
}

fn find_dirs(dir: &Path, name: &str, depth: usize, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        if entry.file_name() == name {
            found.push(path);
        } else if depth > 0 {
            find_dirs(&path, name, depth - 1, found);
        }
    }
}

/// Kills every process in a cgroup subtree and removes it.
pub fn remove_cgroup_tree(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_cgroup_tree(&entry.path());
            }
        }
    }
    for _ in 0..50 {
        let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
        for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        if std::fs::remove_dir(dir).is_ok() || !dir.exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Subdirectories (container cgroups) of a cgroup directory.
pub fn child_cgroups(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default()
}

/// The top process of every executor of `framework` (its environment has
/// `MESOS_FRAMEWORK_ID=<framework>`, its parent's does not), by executor id.
pub fn executor_pids(framework: &str) -> BTreeMap<String, i32> {
    let pids = processes_of_framework(framework);
    let parent = |pid: i32| -> Option<i32> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        stat[stat.rfind(')')? + 2..].split(' ').nth(1)?.parse().ok()
    };
    let executor_id = |pid: i32| -> Option<String> {
        let env = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
        env.split(|b| *b == 0)
            .find_map(|var| var.strip_prefix(b"MESOS_EXECUTOR_ID="))
            .map(|id| String::from_utf8_lossy(id).into_owned())
    };
    pids.iter()
        .filter(|pid| parent(**pid).is_some_and(|p| !pids.contains(&p)))
        .filter_map(|pid| Some((executor_id(*pid)?, *pid)))
        .collect()
}

/// Whether a process is alive (and not a zombie).
pub fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            stat[stat.rfind(')')? + 2..]
                .split(' ')
                .next()
                .map(|state| state != "Z" && state != "X")
        })
        .unwrap_or(false)
}

/// Pids of processes whose environment has `MESOS_FRAMEWORK_ID=<framework>`.
pub fn processes_of_framework(framework: &str) -> Vec<i32> {
    let needle = format!("MESOS_FRAMEWORK_ID={framework}");
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()))
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .map(|env| env.split(|b| *b == 0).any(|var| var == needle.as_bytes()))
                .unwrap_or(false)
        })
        .collect()
}

/// A `mesos-master` child process on loopback.
pub struct MasterProcess {
    pub child: Child,
    pub address: SocketAddr,
    pub work_dir: tempfile::TempDir,
    pub log: PathBuf,
    args: Vec<String>,
}

impl MasterProcess {
    /// Starts `target/debug/mesos-master` with `extra` flags and waits until
    /// it listens.
    pub async fn spawn(extra: &[&str]) -> Result<Self, String> {
        let work_dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let log = work_dir.path().join("master.log");
        let mut args = vec![
            "--ip=127.0.0.1".to_string(),
            format!("--port={port}"),
            format!("--work_dir={}", work_dir.path().display()),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let child = Self::start(&args, &log)?;
        let master = MasterProcess {
            child,
            address: SocketAddr::from(([127, 0, 0, 1], port)),
            work_dir,
            log,
            args,
        };
        if wait_listening(master.address, Duration::from_secs(10)).await {
            return Ok(master);
        }
        Err(format!(
            "mesos-master did not listen; log:\n{}",
            master.log()
        ))
    }

    fn start(args: &[String], log: &Path) -> Result<Child, String> {
        let binary = bin_dir().join("mesos-master");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| format!("master log: {e}"))?;
        Command::new(&binary)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))
    }

    /// Kills the master (SIGKILL, like a crash) and starts it again on the
    /// same address.
    pub async fn restart(&mut self) -> Result<(), String> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = Self::start(&self.args, &self.log)?;
        if wait_listening(self.address, Duration::from_secs(10)).await {
            Ok(())
        } else {
            Err(format!(
                "restarted mesos-master did not listen; log:\n{}",
                self.log()
            ))
        }
    }

    /// The master's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for MasterProcess {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "---- mesos-master log (tail) ----\n{}",
                tail(&self.log(), 300)
            );
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until something accepts connections on `address`.
pub async fn wait_listening(address: SocketAddr, timeout: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    while tokio::time::Instant::now() < deadline {
        if tokio::net::TcpStream::connect(address).await.is_ok() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}
