//! Helpers for the real-kernel tests: root checks, a uniquely named `--cgroups_root`
//! that is destroyed even when a test fails, gated child processes, and `clone3`.

// Each test target uses a different subset of these helpers.
#![allow(dead_code)]

use std::io::{self, Write};
use std::mem::size_of;
use std::ops::Deref;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mesos_isolator::{CgroupsConfig, ContainerCgroup, ContainerLimits, Isolation, Isolator};

pub const MB: u64 = 1024 * 1024;

/// True if we are root; otherwise prints why the test is skipped.
pub fn root_or_skip(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    eprintln!("SKIPPED {test}: real-kernel cgroup tests need root");
    false
}

/// `mesos-test-<pid>-<n>`, unique per test in this run.
pub fn unique_root() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "mesos-test-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// An isolator on a fresh `--cgroups_root`; dropping it destroys every container under
/// that root and removes it, also when the test panicked.
pub struct TestIsolator {
    isolator: Isolator,
}

impl TestIsolator {
    pub fn new(isolation: &str, configure: impl FnOnce(&mut CgroupsConfig)) -> Self {
        let mut config = CgroupsConfig {
            root: unique_root(),
            destroy_timeout: Duration::from_secs(20),
            ..CgroupsConfig::default()
        };
        configure(&mut config);
        let isolation: Isolation = isolation.parse().expect("valid --isolation");
        TestIsolator {
            isolator: Isolator::new(config, isolation).expect("isolator"),
        }
    }
}

impl Deref for TestIsolator {
    type Target = Isolator;

    fn deref(&self) -> &Isolator {
        &self.isolator
    }
}

impl Drop for TestIsolator {
    fn drop(&mut self) {
        // Drop can run inside the test's runtime, which cannot block; clean up from a
        // thread with a runtime of its own.
        let isolator = &self.isolator;
        let result = std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("clean-up runtime")
                        .block_on(isolator.destroy_all())
                })
                .join()
        });
        match result {
            Ok(Ok(())) => {}
            Ok(Err(error)) => eprintln!("clean-up of {:?} failed: {error}", isolator.roots()),
            Err(_) => eprintln!("clean-up of {:?} panicked", isolator.roots()),
        }
    }
}

/// A `/bin/sh -c <script>` child that blocks on `read` until released, so it can be
/// attached to a cgroup before it does anything.
pub struct Gated {
    pub pid: i32,
    child: Option<Child>,
}

impl Gated {
    pub fn spawn(script: &str) -> Self {
        let child = Command::new("/bin/sh")
            .arg("-c")
            .arg(format!("read go; {script}"))
            .stdin(Stdio::piped())
            .spawn()
            .expect("spawn /bin/sh");
        let pid = i32::try_from(child.id()).expect("pid fits i32");
        Gated {
            pid,
            child: Some(child),
        }
    }

    /// Lets the script run.
    pub fn release(&mut self) {
        let child = self.child.as_mut().expect("not yet reaped");
        let mut stdin = child.stdin.take().expect("stdin still open");
        stdin.write_all(b"go\n").expect("release the child");
    }

    /// Reaps the child in a thread; the handle yields its status and the moment
    /// `waitpid` returned.
    pub fn reap_in_background(&mut self) -> JoinHandle<(ExitStatus, Instant)> {
        let mut child = self.child.take().expect("not yet reaped");
        std::thread::spawn(move || {
            let status = child.wait().expect("wait for child");
            (status, Instant::now())
        })
    }
}

impl Drop for Gated {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// True if `status` is death by SIGKILL.
pub fn killed_by_sigkill(status: ExitStatus) -> bool {
    status.signal() == Some(libc::SIGKILL)
}

/// The kernel's `struct clone_args` (linux/sched.h); libc has none for gnu/x86_64.
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// `CLONE_INTO_CGROUP`; libc's constant overflows to 0.
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// Forks a child straight into the cgroup `dir` with `clone3(CLONE_INTO_CGROUP)`. The
/// child only calls `pause()` (async-signal-safe) until it is killed.
pub fn clone3_into_cgroup(dir: BorrowedFd<'_>) -> io::Result<i32> {
    let mut args = CloneArgs {
        flags: CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: u64::try_from(dir.as_raw_fd()).expect("fds are non-negative"),
        ..CloneArgs::default()
    };
    // SAFETY: `args` is a valid clone_args of the size passed; without CLONE_VM the
    // child gets a copy of our address space, and it only runs `pause()` below.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            size_of::<CloneArgs>(),
        )
    };
    match ret {
        -1 => Err(io::Error::last_os_error()),
        0 => loop {
            // SAFETY: pause has no preconditions and is async-signal-safe, as required
            // in the child of a multi-threaded process.
            unsafe { libc::pause() };
        },
        pid => Ok(i32::try_from(pid).expect("pid fits i32")),
    }
}

/// Reaps a child we cloned, in a thread.
pub fn waitpid_in_background(pid: i32) -> JoinHandle<nix::Result<nix::sys::wait::WaitStatus>> {
    std::thread::spawn(move || nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None))
}

/// The path of `pid`'s cgroup in the hierarchy whose `/proc/<pid>/cgroup` controller
/// field is `controllers` (`""` for cgroup2).
pub fn cgroup_of(pid: i32, controllers: &str) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    text.lines().find_map(|line| {
        let mut fields = line.splitn(3, ':');
        let _id = fields.next()?;
        let list = fields.next()?;
        let path = fields.next()?;
        (list.split(',').any(|c| c == controllers) || (controllers.is_empty() && list.is_empty()))
            .then(|| path.to_owned())
    })
}

/// True unless `pid` is gone or a zombie (`State: Z`/`X`).
pub fn is_running(pid: i32) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return false;
    };
    let state = status
        .lines()
        .find_map(|l| l.strip_prefix("State:"))
        .map(str::trim)
        .unwrap_or("");
    !(state.starts_with('Z') || state.starts_with('X'))
}

/// Waits (up to `limit`) for `condition`.
pub fn eventually(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    condition()
}

/// The directory among `dirs` that holds `file` (e.g. the cpu hierarchy's root).
pub fn dir_with(dirs: &[PathBuf], file: &str) -> Option<PathBuf> {
    dirs.iter().find(|d| d.join(file).exists()).cloned()
}

/// Reads a trimmed cgroup file.
pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
        .trim()
        .to_owned()
}

/// The `max` counter of `pids.events` (same on v1 and v2): forks refused by
/// `pids.max`.
pub fn refused_forks(events: &str) -> u64 {
    events
        .lines()
        .find_map(|l| l.strip_prefix("max "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

/// Ten `sleep`s forked in a container under `pids.max` 5 (the isolator must
/// be built with `pids_max = Some(5)`): the kernel refuses forks and 4–5
/// processes remain. `limit_dir` is the cgroup holding `pids.max`; refusals
/// are counted there or in its `leaf` child (v2 kernels before 6.2 count them
/// in the forking cgroup).
pub async fn assert_pids_max_caps_forks(
    isolator: &TestIsolator,
    limit_dir: impl Fn(&ContainerCgroup) -> PathBuf,
    refusal_within: Duration,
) {
    let container = isolator
        .prepare("pids", &ContainerLimits::new(0.5, 64 * MB))
        .expect("prepare");
    // dash gives up at the first failed fork, so count what the kernel refused too.
    let mut child = Gated::spawn("for i in 1 2 3 4 5 6 7 8 9 10; do sleep 1000 & done; wait");
    container.attach(child.pid).expect("attach");
    child.release();
    let dir = limit_dir(&container);
    assert_eq!(read(&dir.join("pids.max")), "5");
    let refused = || -> u64 {
        [dir.clone(), dir.join("leaf")]
            .iter()
            .filter_map(|d| std::fs::read_to_string(d.join("pids.events")).ok())
            .map(|events| refused_forks(&events))
            .sum()
    };
    assert!(
        eventually(refusal_within, || refused() > 0),
        "no fork was refused; pids {:?}",
        container.pids()
    );
    let count = container.pids().expect("pids").len();
    assert!(
        (4..=5).contains(&count),
        "{count} processes under pids.max 5"
    );
    let reaper = child.reap_in_background();
    container.destroy().await.expect("destroy");
    let _ = reaper.join().expect("reaper");
}
