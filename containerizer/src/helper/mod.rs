//! The launch helper: `mesos-containerizer launch --config <config.json>
//! --status-fd <n> --go-fd <m>`.
//!
//! Exec'd by the cloned child (already in the container's cgroup and
//! namespaces), single-threaded, it reads the OCI spec, waits for the parent's
//! go byte (sent once every cgroup hierarchy holds its pid), sets the container
//! up and execs the executor, which thus is pid 1 of a new pid namespace. Each
//! step is announced on the status pipe; a failure reports the step, errno and
//! message there and on the sandbox's stderr, then exits 1.

mod exec;
mod identity;
mod mounts;

use std::ffi::OsString;
use std::fmt;
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use oci_spec::runtime::Spec;

use crate::namespaces::Namespaces;
use crate::spec;
use crate::status_pipe;
use crate::step::Step;

/// Command-line arguments of the helper.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelperArgs {
    /// `<runtime_dir>/containers/<id>/config.json`.
    pub config: PathBuf,
    /// Write end of the status pipe.
    pub status_fd: RawFd,
    /// Read end of the go pipe.
    pub go_fd: RawFd,
}

impl HelperArgs {
    /// The argv the parent passes (argv\[0\] excluded).
    pub fn to_argv(&self) -> Vec<String> {
        vec![
            "launch".into(),
            "--config".into(),
            self.config.display().to_string(),
            "--status-fd".into(),
            self.status_fd.to_string(),
            "--go-fd".into(),
            self.go_fd.to_string(),
        ]
    }

    /// Parses the argv (argv\[0\] excluded).
    pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Self, String> {
        let mut args = args.into_iter();
        match args.next() {
            Some(command) if command == "launch" => {}
            Some(command) => {
                return Err(format!("unknown command '{}'", command.to_string_lossy()))
            }
            None => return Err("missing command 'launch'".into()),
        }
        let (mut config, mut status_fd, mut go_fd) = (None, None, None);
        while let Some(flag) = args.next() {
            let flag = flag.to_string_lossy().into_owned();
            let value = args
                .next()
                .ok_or_else(|| format!("flag '{flag}' needs a value"))?;
            let fd = || {
                value
                    .to_str()
                    .and_then(|v| v.parse::<RawFd>().ok())
                    .filter(|fd| *fd >= 3)
                    .ok_or_else(|| format!("flag '{flag}' needs a fd number >= 3"))
            };
            match flag.as_str() {
                "--config" => config = Some(PathBuf::from(&value)),
                "--status-fd" => status_fd = Some(fd()?),
                "--go-fd" => go_fd = Some(fd()?),
                _ => return Err(format!("unknown flag '{flag}'")),
            }
        }
        Ok(HelperArgs {
            config: config.ok_or("missing flag '--config'")?,
            status_fd: status_fd.ok_or("missing flag '--status-fd'")?,
            go_fd: go_fd.ok_or("missing flag '--go-fd'")?,
        })
    }
}

/// Why a step failed.
#[derive(Debug)]
pub(crate) struct Failure {
    errno: Option<i32>,
    message: String,
}

impl Failure {
    /// A failed syscall, with what it was doing.
    pub(crate) fn sys(errno: Errno, context: impl fmt::Display) -> Self {
        Failure {
            errno: Some(errno as i32),
            message: format!("{context}: {}", errno.desc()),
        }
    }

    /// A failure without an errno.
    pub(crate) fn msg(message: impl Into<String>) -> Self {
        Failure {
            errno: None,
            message: message.into(),
        }
    }
}

impl From<std::io::Error> for Failure {
    fn from(error: std::io::Error) -> Self {
        Failure {
            errno: error.raw_os_error(),
            message: error.to_string(),
        }
    }
}

/// Announces steps and reports the failing one.
struct Reporter {
    status_fd: RawFd,
}

impl Reporter {
    fn run<T>(&self, step: Step, f: impl FnOnce() -> Result<T, Failure>) -> T {
        status_pipe::write_record(self.status_fd, false, step, 0, b"");
        match f() {
            Ok(value) => value,
            Err(failure) => self.fail(step, &failure),
        }
    }

    fn fail(&self, step: Step, failure: &Failure) -> ! {
        let errno = failure.errno.unwrap_or(0);
        status_pipe::write_record(
            self.status_fd,
            true,
            step,
            errno,
            failure.message.as_bytes(),
        );
        // The sandbox's stderr: where a framework developer looks first.
        eprintln!(
            "mesos-containerizer: launch failed at step '{step}': {}",
            failure.message
        );
        std::process::exit(1)
    }
}

/// The helper's `main`.
pub fn main() -> ! {
    let args = match HelperArgs::parse(std::env::args_os().skip(1)) {
        Ok(args) => args,
        Err(error) => {
            eprintln!("mesos-containerizer: {error}");
            eprintln!("usage: mesos-containerizer launch --config <config.json> --status-fd <n> --go-fd <m>");
            std::process::exit(2)
        }
    };
    launch(&args)
}

/// Runs the launch sequence; never returns (exec or exit).
fn launch(args: &HelperArgs) -> ! {
    let report = Reporter {
        status_fd: args.status_fd,
    };
    report.run(Step::CloseFds, || {
        close_inherited_fds(&[args.status_fd, args.go_fd])
    });
    let spec = report.run(Step::LoadConfig, || {
        spec::load(&args.config).map_err(|error| Failure {
            errno: error.errno(),
            message: error.to_string(),
        })
    });
    report.run(Step::WaitParent, || wait_for_parent(args.go_fd));
    report.run(Step::Setsid, || {
        nix::unistd::setsid()
            .map(drop)
            .map_err(|e| Failure::sys(e, "setsid"))
    });
    set_up_container(&report, &spec);
    exec::exec(&report, &spec)
}

/// Everything between the go byte and the exec, in order.
fn set_up_container(report: &Reporter, spec: &Spec) {
    let namespaces = Namespaces::from_spec(spec);
    let root = spec
        .root()
        .as_ref()
        .map_or_else(|| Path::new("/"), |root| root.path().as_path());
    let mounts = spec.mounts().as_deref().unwrap_or_default();
    let has_rootfs = root != Path::new("/");
    if namespaces.mount {
        report.run(Step::MountPropagation, mounts::make_rslave);
        // Bind sources are host paths: open them before the host disappears.
        let binds = report.run(Step::BindSources, || mounts::open_bind_sources(mounts));
        if has_rootfs {
            report.run(Step::MountRootfs, || mounts::mount_rootfs(spec, root));
            report.run(Step::PivotRoot, || mounts::pivot_root(root));
        }
        report.run(Step::Mounts, || mounts::apply(mounts, binds));
        if has_rootfs {
            let devices = spec
                .linux()
                .as_ref()
                .and_then(|linux| linux.devices().as_deref())
                .unwrap_or_default();
            report.run(Step::Devices, || mounts::create_devices(devices));
        }
    } else if has_rootfs || !mounts.is_empty() {
        report.fail(
            Step::Mounts,
            &Failure::msg("a rootfs or mounts need a mount namespace (filesystem/linux)"),
        );
    }
    if let (true, Some(hostname)) = (namespaces.uts, spec.hostname()) {
        report.run(Step::Hostname, || {
            nix::unistd::sethostname(hostname)
                .map_err(|e| Failure::sys(e, format!("sethostname '{hostname}'")))
        });
    }
    if namespaces.net {
        report.run(Step::Loopback, identity::loopback_up);
    }
    let Some(process) = spec.process() else {
        report.fail(
            Step::LoadConfig,
            &Failure::msg("config.json has no 'process'"),
        );
    };
    report.run(Step::Rlimits, || identity::set_rlimits(process));
    report.run(Step::Chdir, || {
        nix::unistd::chdir(process.cwd())
            .map_err(|e| Failure::sys(e, format!("chdir '{}'", process.cwd().display())))
    });
    report.run(Step::CapabilityBounding, || {
        identity::limit_bounding_set(process)
    });
    report.run(Step::SwitchUser, || identity::switch_user(process.user()));
    report.run(Step::Capabilities, || identity::set_capabilities(process));
    if process.no_new_privileges().unwrap_or(true) {
        report.run(Step::NoNewPrivs, || {
            nix::sys::prctl::set_no_new_privs()
                .map_err(|e| Failure::sys(e, "prctl(PR_SET_NO_NEW_PRIVS)"))
        });
    }
    report.run(Step::Signals, reset_signals);
}

/// Closes every fd but 0, 1, 2 and `keep`; `keep`s become close-on-exec so
/// the executor gets only 0, 1, 2.
fn close_inherited_fds(keep: &[RawFd]) -> Result<(), Failure> {
    let mut keep = keep.to_vec();
    keep.sort_unstable();
    let mut first = 3u32;
    for fd in keep {
        // Checked >= 3 when parsing the arguments.
        let fd = fd as u32;
        if fd > first {
            close_range(first, fd - 1)?;
        }
        first = first.max(fd + 1);
        nix::fcntl::fcntl(
            // SAFETY: `fd` is one of ours, passed by the parent, and stays open.
            unsafe { std::os::fd::BorrowedFd::borrow_raw(fd as RawFd) },
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        )
        .map_err(|e| Failure::sys(e, format!("set close-on-exec on fd {fd}")))?;
    }
    close_range(first, u32::MAX)
}

fn close_range(first: u32, last: u32) -> Result<(), Failure> {
    // SAFETY: close_range only takes integers; closing fds we do not use is
    // the point.
    let ret = unsafe { libc::syscall(libc::SYS_close_range, first, last, 0) };
    Errno::result(ret)
        .map(drop)
        .map_err(|e| Failure::sys(e, format!("close_range({first}, {last})")))
}

/// Blocks until the parent sends the go byte. End-of-file means the parent
/// gave up (or died): do not run anything.
fn wait_for_parent(go_fd: RawFd) -> Result<(), Failure> {
    let mut byte = [0u8; 1];
    loop {
        // SAFETY: `byte` is a valid one-byte buffer.
        let n = unsafe { libc::read(go_fd, byte.as_mut_ptr().cast(), 1) };
        match n {
            1 => break,
            0 => {
                return Err(Failure::msg(
                    "the agent closed the launch pipe without starting the container",
                ))
            }
            _ if Errno::last() == Errno::EINTR => continue,
            _ => return Err(Failure::sys(Errno::last(), "read the go byte")),
        }
    }
    // SAFETY: the go fd is ours and not used again.
    unsafe { libc::close(go_fd) };
    Ok(())
}

/// Default dispositions and an empty mask: the agent's ignored signals (Rust
/// ignores SIGPIPE) and the clone's blocked mask must not leak into the task.
/// Uses the raw syscalls: glibc's wrappers refuse its internal signals 32 and
/// 33, which an agent may also have ignored. The helper is single-threaded
/// and only execs afterwards, so glibc no longer needs them.
fn reset_signals() -> Result<(), Failure> {
    /// The kernel's `struct sigaction` (x86-64 and aarch64 layout).
    #[repr(C)]
    struct KernelSigaction {
        handler: usize,
        flags: u64,
        restorer: usize,
        mask: u64,
    }
    let default = KernelSigaction {
        handler: libc::SIG_DFL,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    for signal in 1..=64 {
        if signal == libc::SIGKILL || signal == libc::SIGSTOP {
            continue;
        }
        // SAFETY: rt_sigaction reads a valid kernel sigaction of the size
        // the kernel expects (sigsetsize 8) and writes nothing (old = NULL).
        let ret = unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                signal,
                &default as *const KernelSigaction,
                std::ptr::null_mut::<KernelSigaction>(),
                8usize,
            )
        };
        Errno::result(ret)
            .map_err(|e| Failure::sys(e, format!("reset the disposition of signal {signal}")))?;
    }
    let empty: u64 = 0;
    // SAFETY: rt_sigprocmask reads one 8-byte mask and writes nothing.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &empty as *const u64,
            std::ptr::null_mut::<u64>(),
            8usize,
        )
    };
    Errno::result(ret)
        .map(drop)
        .map_err(|e| Failure::sys(e, "clear the signal mask"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv_round_trips() {
        let args = HelperArgs {
            config: "/run/mesos/containers/c/config.json".into(),
            status_fd: 5,
            go_fd: 7,
        };
        let parsed =
            HelperArgs::parse(args.to_argv().into_iter().map(OsString::from)).expect("parse");
        assert_eq!(parsed, args);
    }

    #[test]
    fn bad_arguments_name_the_flag() {
        let parse = |argv: &[&str]| {
            HelperArgs::parse(argv.iter().map(OsString::from)).expect_err("invalid")
        };
        assert!(parse(&["run"]).contains("unknown command 'run'"));
        assert!(parse(&[
            "launch",
            "--config",
            "c",
            "--status-fd",
            "1",
            "--go-fd",
            "4"
        ])
        .contains("--status-fd"));
        assert!(parse(&["launch", "--config", "c", "--status-fd", "3"]).contains("--go-fd"));
        assert!(parse(&["launch", "--bogus", "x"]).contains("--bogus"));
    }
}
