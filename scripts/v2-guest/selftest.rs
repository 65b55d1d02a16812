//! Self-test of the cgroup-v2 guest: proves that the guest the runner boots really
//! enforces cgroup v2 limits, independently of our isolator's code.
//!
//! Built by `scripts/run-v2-guest-tests.sh --selftest` with plain `rustc --test` (std
//! only, no Cargo package), so it is a libtest binary exactly like the workspace's
//! test binaries and goes through the same packing (shared libraries from `ldd`) and
//! `--test-threads=1` invocation. Outside the guest (no cgroup2 at /sys/fs/cgroup with
//! cpu and memory) every test fails, on purpose: this binary only makes sense there.
//!
//! The hogs are busybox shell one-liners that first move themselves into the test's
//! cgroup (`echo $$ > cgroup.procs`), then exec the workload.

use std::fs;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::thread::sleep;
use std::time::{Duration, Instant};

const HIERARCHY: &str = "/sys/fs/cgroup";

/// The controllers the tests below use; the guest enables them in the root.
const CONTROLLERS: [&str; 3] = ["cpu", "memory", "pids"];

/// A cgroup made for one test; killed and removed on drop, even when the test fails.
struct TestCgroup {
    path: PathBuf,
}

impl TestCgroup {
    fn create(name: &str) -> TestCgroup {
        let path = delegated_root().join(format!("selftest-{name}"));
        if path.exists() {
            remove_cgroup(&path);
        }
        fs::create_dir(&path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
        TestCgroup { path }
    }

    fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    fn write(&self, name: &str, value: &str) {
        let file = self.file(name);
        fs::write(&file, value)
            .unwrap_or_else(|e| panic!("write {value:?} to {}: {e}", file.display()));
    }

    fn read(&self, name: &str) -> String {
        let file = self.file(name);
        fs::read_to_string(&file).unwrap_or_else(|e| panic!("read {}: {e}", file.display()))
    }

    /// A `key value` entry of a flat-keyed file such as `memory.events` or `cpu.stat`.
    fn stat(&self, name: &str, key: &str) -> u64 {
        let text = self.read(name);
        text.lines()
            .find_map(|line| {
                line.strip_prefix(key)?
                    .strip_prefix(' ')?
                    .trim()
                    .parse()
                    .ok()
            })
            .unwrap_or_else(|| panic!("no {key:?} in {name}: {text:?}"))
    }

    /// Runs `script` under busybox sh after it moved itself into this cgroup.
    fn spawn_shell(&self, script: &str) -> Child {
        let procs = self.file("cgroup.procs");
        Command::new("/bin/sh")
            .arg("-c")
            .arg(format!("echo $$ > {} || exit 1\n{script}", procs.display()))
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn /bin/sh")
    }

    /// Waits until the shell spawned by `spawn_shell` is a member (it moves itself).
    fn wait_populated(&self) {
        wait_for(
            || self.read("cgroup.events").contains("populated 1"),
            "cgroup populated",
        );
    }

    fn kill_and_wait_empty(&self) {
        self.write("cgroup.kill", "1");
        wait_for(
            || self.read("cgroup.events").contains("populated 0"),
            "cgroup empty after cgroup.kill",
        );
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        remove_cgroup(&self.path);
    }
}

/// Kills whatever is left in `path` and removes it.
fn remove_cgroup(path: &Path) {
    let _ = fs::write(path.join("cgroup.kill"), "1");
    for _ in 0..500 {
        match fs::remove_dir(path) {
            // EBUSY until the killed processes are gone.
            Err(e) if e.kind() == io::ErrorKind::ResourceBusy => sleep(Duration::from_millis(10)),
            _ => return,
        }
    }
}

fn wait_for(mut condition: impl FnMut() -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        sleep(Duration::from_millis(20));
    }
}

fn wait_with_timeout(child: &mut Child, timeout: Duration) -> ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("waitpid") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("child {} still running after {timeout:?}", child.id());
        }
        sleep(Duration::from_millis(20));
    }
}

/// Our own cgroup, from `/proc/self/cgroup` (`0::/system.slice/x.service` in the guest).
fn own_cgroup() -> PathBuf {
    let text = fs::read_to_string("/proc/self/cgroup").expect("read /proc/self/cgroup");
    let path = text
        .lines()
        .find_map(|line| line.strip_prefix("0::"))
        .unwrap_or_else(|| panic!("no cgroup2 entry in /proc/self/cgroup: {text:?}"));
    Path::new(HIERARCHY).join(path.trim_start_matches('/'))
}

/// The cgroup under which tests create theirs, with our controllers enabled.
///
/// Like an agent in a systemd service with `Delegate=yes`, this process owns its
/// cgroup but sits in it; the no-internal-processes rule forbids enabling controllers
/// for children of a cgroup holding processes, so the process first moves itself into
/// `<own>/leaf`. The root cgroup is exempt from the rule, so there nothing moves.
fn delegated_root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        // Never touch a host's /sys/fs/cgroup (a tmpfs on hybrid hosts).
        assert!(
            std::env::var_os("MESOS_RS_V2_GUEST").is_some(),
            "this self-test runs only inside the v2 guest (scripts/run-v2-guest-tests.sh --selftest)"
        );
        assert_eq!(mount_type(HIERARCHY).as_deref(), Some("cgroup2"), "{HIERARCHY} is not cgroup2");
        let own = own_cgroup();
        if own != Path::new(HIERARCHY) {
            let leaf = own.join("leaf");
            fs::create_dir_all(&leaf).expect("mkdir <own>/leaf");
            fs::write(leaf.join("cgroup.procs"), std::process::id().to_string())
                .expect("move self into <own>/leaf");
        }
        let enable: Vec<String> = CONTROLLERS.iter().map(|c| format!("+{c}")).collect();
        fs::write(own.join("cgroup.subtree_control"), enable.join(" "))
            .unwrap_or_else(|e| panic!("enable {CONTROLLERS:?} in {}: {e}", own.display()));
        own
    })
}

fn mount_type(mount_point: &str) -> Option<String> {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").ok()?;
    // Fields: id parent major:minor root mount-point options... - fstype source super-options
    mountinfo.lines().rev().find_map(|line| {
        let fields: Vec<&str> = line.split(' ').collect();
        let separator = fields.iter().position(|f| *f == "-")?;
        (fields.get(4) == Some(&mount_point))
            .then(|| fields.get(separator + 1).map(|s| s.to_string()))?
    })
}

#[test]
fn hierarchy_is_pure_cgroup2_with_controllers() {
    assert_eq!(
        mount_type(HIERARCHY).as_deref(),
        Some("cgroup2"),
        "{HIERARCHY} is not cgroup2"
    );
    let controllers = fs::read_to_string(Path::new(HIERARCHY).join("cgroup.controllers")).unwrap();
    for wanted in ["cpu", "memory", "pids", "io"] {
        assert!(
            controllers.split_whitespace().any(|c| c == wanted),
            "{wanted} missing: {controllers:?}"
        );
    }
    let self_cgroup = fs::read_to_string("/proc/self/cgroup").unwrap();
    assert!(
        self_cgroup.lines().all(|l| l.starts_with("0::")),
        "v1 hierarchies present: {self_cgroup:?}"
    );
    let available = fs::read_to_string(delegated_root().join("cgroup.subtree_control")).unwrap();
    for wanted in CONTROLLERS {
        assert!(
            available.split_whitespace().any(|c| c == wanted),
            "{wanted} not delegated: {available:?}"
        );
    }
}

#[test]
fn memory_max_oom_kills_the_hog() {
    let cg = TestCgroup::create("memory");
    cg.write("memory.max", "32M");
    if cg.file("memory.swap.max").exists() {
        cg.write("memory.swap.max", "0");
    }
    // dd's 64 MiB buffer is filled from /dev/zero, touching every page: twice the limit.
    let mut hog = cg.spawn_shell("exec dd if=/dev/zero of=/dev/null bs=64M count=1");
    let status = wait_with_timeout(&mut hog, Duration::from_secs(120));
    assert_eq!(
        status.signal(),
        Some(9),
        "hog was not SIGKILLed: {status:?}"
    );
    assert_eq!(
        cg.stat("memory.events", "oom_kill"),
        1,
        "{}",
        cg.read("memory.events")
    );
    assert!(
        cg.stat("memory.events", "max") > 0,
        "{}",
        cg.read("memory.events")
    );
}

#[test]
fn memory_within_limit_is_not_killed() {
    let cg = TestCgroup::create("memory-ok");
    cg.write("memory.max", "64M");
    let mut fits = cg.spawn_shell("exec dd if=/dev/zero of=/dev/null bs=8M count=4");
    let status = wait_with_timeout(&mut fits, Duration::from_secs(120));
    assert!(
        status.success(),
        "8 MiB dd under a 64 MiB limit failed: {status:?}"
    );
    assert_eq!(cg.stat("memory.events", "oom_kill"), 0);
}

#[test]
fn cpu_max_throttles_a_busy_loop() {
    let cg = TestCgroup::create("cpu");
    // 10 ms per 100 ms period: a tenth of one CPU.
    cg.write("cpu.max", "10000 100000");
    let started = Instant::now();
    let mut spinner = cg.spawn_shell("while :; do :; done");
    cg.wait_populated();
    sleep(Duration::from_secs(2));
    let wall_usec = started.elapsed().as_micros() as f64;
    let usage_usec = cg.stat("cpu.stat", "usage_usec") as f64;
    let nr_throttled = cg.stat("cpu.stat", "nr_throttled");
    let throttled_usec = cg.stat("cpu.stat", "throttled_usec");
    cg.kill_and_wait_empty();
    let status = wait_with_timeout(&mut spinner, Duration::from_secs(30));
    println!(
        "cpu.stat: usage_usec={usage_usec} nr_throttled={nr_throttled} throttled_usec={throttled_usec} \
         over {wall_usec} us wall: ratio {:.3}",
        usage_usec / wall_usec
    );
    assert_eq!(
        status.signal(),
        Some(9),
        "cgroup.kill did not SIGKILL the spinner: {status:?}"
    );
    assert!(nr_throttled > 0, "never throttled");
    assert!(throttled_usec > 0, "no throttled time");
    assert!(usage_usec > 0.0, "the spinner never ran");
    // The quota is 0.1 CPU; allow slack for bandwidth slices and emulation, but an
    // unthrottled spinner would use ~1.0.
    assert!(
        usage_usec / wall_usec < 0.5,
        "used {usage_usec} us of CPU in {wall_usec} us"
    );
}

#[test]
fn pids_max_stops_forks() {
    let cg = TestCgroup::create("pids");
    cg.write("pids.max", "3");
    let mut forker = cg.spawn_shell("for i in 1 2 3 4 5 6; do sleep 30 & done; wait");
    let status = wait_with_timeout(&mut forker, Duration::from_secs(60));
    println!(
        "forker exited: {status:?}; pids.events: {}",
        cg.read("pids.events").trim()
    );
    assert!(cg.stat("pids.events", "max") > 0, "no fork was refused");
    let current: u64 = cg.read("pids.current").trim().parse().unwrap();
    assert!(current <= 3, "pids.current {current} above pids.max 3");
    cg.kill_and_wait_empty();
}

#[test]
fn cgroup_kill_empties_the_cgroup() {
    let cg = TestCgroup::create("kill");
    let mut sleeper = cg.spawn_shell("sleep 300 & sleep 300 & wait");
    cg.wait_populated();
    wait_for(
        || cg.read("cgroup.procs").lines().count() == 3,
        "shell and two sleeps in cgroup",
    );
    cg.kill_and_wait_empty();
    let status = wait_with_timeout(&mut sleeper, Duration::from_secs(30));
    assert_eq!(status.signal(), Some(9), "{status:?}");
    assert_eq!(cg.read("cgroup.procs"), "");
}

#[test]
fn loopback_carries_tcp() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    let address = listener.local_addr().unwrap();
    let mut client = TcpStream::connect(address).expect("connect over lo");
    let (mut server, _) = listener.accept().unwrap();
    client.write_all(b"ping").unwrap();
    let mut got = [0; 4];
    server.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"ping");
}
