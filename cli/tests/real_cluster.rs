//! `mesos-execute` and the SDK's `launch_n` example against the real
//! `mesos-master` and `mesos-agent` on loopback (real executors, containers
//! and, as root, cgroups).
//!
//! The binaries come from the shared target directory; `cargo test
//! --workspace` builds them. When one is missing (e.g. `cargo test -p
//! mesos-cli` on a fresh checkout) the tests say so and skip.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::process::{Child, Command};

const TIMEOUT: Duration = Duration::from_secs(90);

/// `target/debug` (the test binary lives in `target/debug/deps`).
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/debug/deps/<test>")
        .to_path_buf()
}

/// The binaries needed, or `None` after saying which is missing.
fn binaries(extra: &[&str]) -> Option<Vec<PathBuf>> {
    let dir = target_dir();
    let mut paths = Vec::new();
    for name in ["mesos-master", "mesos-agent", "mesos-executor"]
        .iter()
        .chain(extra)
    {
        let path = dir.join(name);
        if !path.exists() {
            eprintln!(
                "SKIPPED: {} is not built; run `cargo build -p mesos-master -p mesos-slave -p mesos-executor` \
                 (and `cargo build -p mesos-scheduler --examples`) or `cargo test --workspace`",
                path.display()
            );
            return None;
        }
        paths.push(path);
    }
    Some(paths)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A master and one agent, stopped and cleaned up on drop.
struct Cluster {
    master: Child,
    agent: Child,
    master_addr: String,
    dir: PathBuf,
    cgroups_root: String,
}

impl Cluster {
    async fn start(bin: &Path) -> Cluster {
        let master_port = free_port();
        // Unique per cluster: the tests of this file run in parallel.
        let unique = format!("{}-{master_port}", std::process::id());
        let dir = std::env::temp_dir().join(format!("mesos-cli-it-{unique}"));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let agent_port = free_port();
        let master_addr = format!("127.0.0.1:{master_port}");
        let cgroups_root = format!("mesos-test-cli-{unique}");
        let log = |name: &str| std::fs::File::create(dir.join(name)).expect("log file");
        let master = Command::new(bin.join("mesos-master"))
            .args(["--ip=127.0.0.1", &format!("--port={master_port}")])
            .arg(format!("--work_dir={}", dir.join("master").display()))
            .stdout(log("master.log"))
            .stderr(log("master.err"))
            .kill_on_drop(true)
            .spawn()
            .expect("mesos-master starts");
        let agent = Command::new(bin.join("mesos-agent"))
            .args([
                &format!("--master={master_addr}"),
                "--ip=127.0.0.1",
                &format!("--port={agent_port}"),
                "--resources=cpus:2;mem:1024;disk:1024",
                &format!("--cgroups_root={cgroups_root}"),
            ])
            .arg(format!("--work_dir={}", dir.join("agent").display()))
            .arg(format!("--runtime_dir={}", dir.join("run").display()))
            .stdout(log("agent.log"))
            .stderr(log("agent.err"))
            .kill_on_drop(true)
            .spawn()
            .expect("mesos-agent starts");
        let cluster = Cluster {
            master,
            agent,
            master_addr,
            dir,
            cgroups_root,
        };
        cluster.wait_for_agent().await;
        cluster
    }

    /// Polls the master's `/state` until it lists an active agent.
    async fn wait_for_agent(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(state) = http_get(&self.master_addr, "/state").await {
                if state["activated_slaves"].as_u64().unwrap_or(0) >= 1 {
                    return;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no agent registered with the master; logs in {}",
                self.dir.display()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // SIGTERM first so the agent can destroy its containers.
        for child in [&self.agent, &self.master] {
            if let Some(pid) = child.id().and_then(|pid| i32::try_from(pid).ok()) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::SIGTERM,
                );
            }
        }
        std::thread::sleep(Duration::from_millis(500));
        let _ = self.agent.start_kill();
        let _ = self.master.start_kill();
        remove_cgroups(&self.cgroups_root);
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("cluster logs kept in {}", self.dir.display());
        }
    }
}

/// Removes the agent's cgroup subtrees if it left any, killing stragglers.
fn remove_cgroups(root: &str) {
    let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") else {
        return;
    };
    for hierarchy in hierarchies.flatten() {
        let top = hierarchy.path().join(root);
        if top.is_dir() {
            remove_tree(&top);
        }
    }
}

fn remove_tree(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.path().is_dir() {
                remove_tree(&entry.path());
            }
        }
    }
    if let Ok(procs) = std::fs::read_to_string(dir.join("cgroup.procs")) {
        for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
            let _ =
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL);
        }
    }
    let _ = std::fs::remove_dir(dir);
}

/// `GET path` on `addr`, parsed as JSON.
async fn http_get(addr: &str, path: &str) -> Option<serde_json::Value> {
    let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut response))
        .await
        .ok()?
        .ok()?;
    let text = String::from_utf8_lossy(&response);
    let (_, body) = text.split_once("\r\n\r\n")?;
    serde_json::from_str(body).ok()
}

async fn run(program: &Path, args: &[String]) -> Output {
    let child = Command::new(program)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(TIMEOUT, child)
        .await
        .unwrap_or_else(|_| panic!("{} did not exit within {TIMEOUT:?}", program.display()))
        .expect("program starts")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mesos_execute_against_a_real_master_and_agent() {
    let Some(_) = binaries(&[]) else { return };
    let cluster = Cluster::start(&target_dir()).await;
    let execute = PathBuf::from(env!("CARGO_BIN_EXE_mesos-execute"));
    let master = format!("--master={}", cluster.master_addr);

    let ok = run(
        &execute,
        &[
            master.clone(),
            "--name=it-hello".into(),
            "--command=echo hello from mesos-rs".into(),
            "--resources=cpus:0.2;mem:64".into(),
        ],
    )
    .await;
    let stdout = text(&ok.stdout);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{}",
        text(&ok.stderr)
    );
    assert!(
        stdout.contains("Received status update TASK_RUNNING for task 'it-hello'"),
        "{stdout}"
    );
    assert!(stdout.contains("Sandbox: "), "{stdout}");
    assert!(stdout.contains("hello from mesos-rs\n"), "{stdout}");

    let failed = run(
        &execute,
        &[
            master.clone(),
            "--name=it-seven".into(),
            "--command=exit 7".into(),
            "--resources=cpus:0.2;mem:64".into(),
        ],
    )
    .await;
    let stdout = text(&failed.stdout);
    assert_eq!(failed.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("Received status update TASK_FAILED for task 'it-seven'"),
        "{stdout}"
    );
    assert!(
        stdout.contains("message: 'Command exited with status 7'"),
        "{stdout}"
    );

    let killed = run(
        &execute,
        &[
            master,
            "--name=it-sleep".into(),
            "--command=sleep 600".into(),
            "--resources=cpus:0.2;mem:64".into(),
            "--kill_after=500ms".into(),
        ],
    )
    .await;
    let stdout = text(&killed.stdout);
    assert_eq!(killed.status.code(), Some(3), "{stdout}");
    assert!(stdout.contains("TASK_KILLED"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn launch_n_example_against_a_real_master_and_agent() {
    let Some(paths) = binaries(&["examples/launch_n"]) else {
        return;
    };
    let cluster = Cluster::start(&target_dir()).await;
    let output = run(
        &paths[3],
        &[
            "--master".into(),
            cluster.master_addr.clone(),
            "--tasks".into(),
            "3".into(),
            "--command".into(),
            "echo hi".into(),
            "--cpus".into(),
            "0.2".into(),
            "--mem".into(),
            "32".into(),
        ],
    )
    .await;
    let stdout = text(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{}",
        text(&output.stderr)
    );
    assert!(stdout.contains("all 3 task(s) finished"), "{stdout}");
}
