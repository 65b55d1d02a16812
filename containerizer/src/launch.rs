//! The parent side of the launch sequence, one small function per step:
//! validate → resolve user → sandbox → provision image → isolator prepare →
//! write config.json → open stdio and pipes → clone3 into cgroup and
//! namespaces → attach to the remaining hierarchies → checkpoint the pid →
//! release the child. The helper (`helper/`) continues from there and the
//! containerizer (`containerizer.rs`) waits for its status report.
//!
//! Everything acquired is recorded in [`Partial`] as it is acquired, so a
//! failure at any step is cleaned up ([`Partial::cleanup`]) except the
//! sandbox, which Mesos keeps for the framework to inspect.

use std::ffi::CString;
use std::fs::{self, File};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use mesos_isolator::{ContainerCgroup, ContainerLimits, Isolator};
use nix::errno::Errno;
use oci_spec::runtime::{
    LinuxCpuBuilder, LinuxMemoryBuilder, LinuxPidsBuilder, LinuxResources, LinuxResourcesBuilder,
    PosixRlimit,
};

use crate::clone::{self, CStringArray, Child, ChildSetup};
use crate::helper::HelperArgs;
use crate::image::{Image, OciStore};
use crate::namespaces::Namespaces;
use crate::paths::{self, ContainerIds};
use crate::reaper;
use crate::spec::{self, OverlayRootfs, Program, SpecInput};
use crate::status_pipe::monotonic_ns;
use crate::step::{LaunchError, Step};
use crate::user::{self, ResolvedUser};
use crate::{checkpoint, sandbox};

/// What the executor runs (Mesos `CommandInfo`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CommandSpec {
    /// `shell=true`: `value` runs under `/bin/sh -c`.
    pub shell: bool,
    /// The shell command, or the executable for `shell=false` (empty with an
    /// image: the image's entrypoint and cmd).
    pub value: String,
    /// For `shell=false`: the whole argv, argv\[0\] included.
    pub arguments: Vec<String>,
    /// The executor environment (`executorEnvironment()` and
    /// `CommandInfo.environment`); `MESOS_SANDBOX` and `MESOS_DIRECTORY` are
    /// set by the containerizer.
    pub env: Vec<(String, String)>,
    /// `CommandInfo.user`, else `FrameworkInfo.user`; `None` runs as the
    /// agent's user. Ignored with `--switch_user=false`.
    pub user: Option<String>,
}

/// One container launch.
#[derive(Debug, Clone, PartialEq)]
pub struct LaunchRequest {
    /// The container id (a UUID in Mesos).
    pub container_id: String,
    /// The agent id.
    pub agent_id: String,
    /// The framework id.
    pub framework_id: String,
    /// The executor id (the task id for command tasks).
    pub executor_id: String,
    /// What to run.
    pub command: CommandSpec,
    /// cpus/mem requests and limits for the cgroups.
    pub limits: ContainerLimits,
    /// `ContainerInfo.hostname`; the container id when unset.
    pub hostname: Option<String>,
    /// `ContainerInfo.mesos.image.docker.name`.
    pub image: Option<String>,
    /// `ContainerInfo.rlimit_info`.
    pub rlimits: Vec<PosixRlimit>,
    /// `FrameworkInfo.checkpoint`: also write `meta/.../pids/forked.pid`.
    pub checkpoint: bool,
}

impl LaunchRequest {
    /// The IDs placing the container in the work_dir layout.
    pub fn ids(&self) -> ContainerIds {
        ContainerIds {
            agent_id: self.agent_id.clone(),
            framework_id: self.framework_id.clone(),
            executor_id: self.executor_id.clone(),
            container_id: self.container_id.clone(),
        }
    }
}

/// What the launch needs from the containerizer's configuration.
#[derive(Debug)]
pub(crate) struct LaunchContext {
    pub work_dir: PathBuf,
    pub runtime_dir: PathBuf,
    pub helper: PathBuf,
    pub switch_user: bool,
    pub sandbox_directory: PathBuf,
    pub namespaces: Namespaces,
    pub store: Option<OciStore>,
}

/// Resources acquired so far, released by [`Partial::cleanup`] on failure.
#[derive(Debug, Default)]
pub(crate) struct Partial {
    pub cgroup: Option<ContainerCgroup>,
    pub child: Option<Child>,
    pub runtime_dir: Option<PathBuf>,
    pub provisioner_dir: Option<PathBuf>,
}

impl Partial {
    /// Kills and reaps the child, destroys the cgroup, removes the runtime
    /// and provisioner directories. Errors are logged: the launch already
    /// failed with a better one.
    pub async fn cleanup(mut self, container_id: &str) {
        if let Some(child) = self.child.take() {
            let _ = clone::pidfd_signal(child.pidfd.as_fd(), libc::SIGKILL);
            if let Err(error) = reaper::wait(child.pidfd).await {
                tracing::warn!(container = container_id, %error, "reaping the failed launch");
            }
        }
        if let Some(cgroup) = self.cgroup.take() {
            if let Err(error) = cgroup.destroy().await {
                tracing::warn!(container = container_id, %error, "destroying the cgroup of a failed launch");
            }
        }
        remove_dirs(
            container_id,
            [self.runtime_dir.take(), self.provisioner_dir.take()],
        );
    }
}

/// Removes directories, logging failures.
pub(crate) fn remove_dirs(container_id: &str, dirs: impl IntoIterator<Item = Option<PathBuf>>) {
    for dir in dirs.into_iter().flatten() {
        match fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => {
                tracing::warn!(container = container_id, path = %dir.display(), %error, "removing directory")
            }
        }
    }
}

/// A child released into the helper; the containerizer awaits its report.
#[derive(Debug)]
pub(crate) struct Started {
    pub pid: i32,
    pub sandbox: PathBuf,
    pub status: OwnedFd,
    pub steps: Vec<(Step, u64)>,
}

/// Runs the parent-side steps (blocking). Acquired resources go to `partial`.
pub(crate) fn start(
    ctx: &LaunchContext,
    isolator: &Isolator,
    req: &LaunchRequest,
    partial: &mut Partial,
) -> Result<Started, LaunchError> {
    let mut steps = Vec::new();
    let mut step = |step: Step| steps.push((step, monotonic_ns()));

    step(Step::Validate);
    let ids = req.ids();
    ids.validate()
        .map_err(|e| LaunchError::new(Step::Validate, e.to_string()))?;
    step(Step::ResolveUser);
    let user = resolve_user(ctx, req)?;
    step(Step::Sandbox);
    let sandbox = sandbox::create(&ctx.work_dir, &ids, &user).map_err(|e| {
        LaunchError::io(
            Step::Sandbox,
            &e.source,
            format!("{} '{}'", e.action, e.path.display()),
        )
    })?;
    step(Step::ProvisionImage);
    let image = provision(ctx, req, partial)?;
    let program = program(&req.command, image.as_ref().map(|(image, _)| image))?;
    step(Step::IsolatorPrepare);
    let cgroup = isolator
        .prepare(&req.container_id, &req.limits)
        .map_err(|e| LaunchError {
            step: Step::IsolatorPrepare,
            errno: crate::step::errno_in(&e),
            message: e.to_string(),
        })?;
    let cgroup = partial.cgroup.insert(cgroup);

    step(Step::WriteConfig);
    let namespaces = ctx.namespaces.normalized(image.is_some());
    let env = environment(ctx, req, &sandbox, image.as_ref().map(|(image, _)| image));
    let input = SpecInput {
        container_id: &req.container_id,
        program: &program,
        env,
        user: &user,
        rlimits: &req.rlimits,
        namespaces,
        hostname: req.hostname.as_deref(),
        sandbox: &sandbox,
        sandbox_directory: &ctx.sandbox_directory,
        rootfs: image.as_ref().map(|(_, rootfs)| rootfs),
        cgroups_path: cgroup.paths().into_iter().next(),
        resources: Some(resources(isolator, &req.limits)),
    };
    let config = write_config(ctx, &req.container_id, &input, &mut partial.runtime_dir)?;

    step(Step::OpenStdio);
    let stdio = Stdio::open(&sandbox)?;
    let args = HelperArgs {
        config,
        status_fd: stdio.status_child.as_raw_fd(),
        go_fd: stdio.go_child.as_raw_fd(),
    };
    step(Step::Clone);
    let child = clone_child(ctx, &args, &stdio, namespaces, cgroup)?;
    let pid = child.pid;
    let child = partial.child.insert(child);
    let Stdio {
        status_parent,
        go_parent,
        stdin,
        stdout,
        stderr,
        status_child,
        go_child,
    } = stdio;
    // Our copies of the child's ends: the status pipe reaches end-of-file
    // only once every write end is closed.
    drop((stdin, stdout, stderr, status_child, go_child));

    step(Step::CgroupAttach);
    cgroup.attach(pid).map_err(|e| LaunchError {
        step: Step::CgroupAttach,
        errno: crate::step::errno_in(&e),
        message: format!("pid {pid}: {e}"),
    })?;
    step(Step::Checkpoint);
    checkpoint_pid(ctx, req, pid)?;
    step(Step::Release);
    release(&go_parent, child)?;
    Ok(Started {
        pid,
        sandbox,
        status: status_parent,
        steps,
    })
}

fn resolve_user(ctx: &LaunchContext, req: &LaunchRequest) -> Result<ResolvedUser, LaunchError> {
    match (&req.command.user, ctx.switch_user) {
        (Some(name), true) => user::resolve(name).map_err(|e| LaunchError {
            step: Step::ResolveUser,
            errno: e.errno(),
            message: e.to_string(),
        }),
        _ => Ok(user::current()),
    }
}

/// Provisions the image and the container's overlay directories.
fn provision(
    ctx: &LaunchContext,
    req: &LaunchRequest,
    partial: &mut Partial,
) -> Result<Option<(Image, OverlayRootfs)>, LaunchError> {
    let Some(name) = &req.image else {
        return Ok(None);
    };
    let failed = |e: crate::image::ImageError| LaunchError {
        step: Step::ProvisionImage,
        errno: e.errno(),
        message: e.to_string(),
    };
    let store = ctx.store.as_ref().ok_or_else(|| {
        failed(crate::image::ImageError::NoProvider {
            image: name.clone(),
        })
    })?;
    let image = store.provision(name).map_err(failed)?;
    let dir = paths::provisioner_container_dir(&ctx.work_dir, &req.container_id);
    let dir = partial.provisioner_dir.insert(dir);
    let rootfs = OverlayRootfs {
        mountpoint: dir.join("rootfs"),
        lower: image.layers.clone(),
        upper: dir.join("upper"),
        work: dir.join("work"),
    };
    for path in [&rootfs.mountpoint, &rootfs.upper, &rootfs.work] {
        fs::create_dir_all(path).map_err(|e| {
            LaunchError::io(
                Step::ProvisionImage,
                &e,
                format!("create '{}'", path.display()),
            )
        })?;
    }
    Ok(Some((image, rootfs)))
}

/// The program to exec: the command, or the image's entrypoint + cmd for a
/// `shell=false` command without a value.
fn program(command: &CommandSpec, image: Option<&Image>) -> Result<Program, LaunchError> {
    if command.shell {
        if command.value.is_empty() {
            return Err(LaunchError::new(
                Step::Validate,
                "shell command has an empty 'value'",
            ));
        }
        return Ok(Program::Shell(command.value.clone()));
    }
    if !command.value.is_empty() {
        return Ok(Program::Exec {
            executable: command.value.clone(),
            argv: command.arguments.clone(),
        });
    }
    match image.map(|image| image.command.as_slice()) {
        Some([executable, ..]) => Ok(Program::Exec {
            executable: executable.clone(),
            argv: image.map(|i| i.command.clone()).unwrap_or_default(),
        }),
        _ => Err(LaunchError::new(
            Step::Validate,
            "command has no 'value' and no image entrypoint or cmd to run",
        )),
    }
}

/// Image env, then the request's, then the sandbox variables the
/// containerizer owns (Mesos's containerizer sets `MESOS_SANDBOX` likewise).
fn environment(
    ctx: &LaunchContext,
    req: &LaunchRequest,
    sandbox: &Path,
    image: Option<&Image>,
) -> Vec<String> {
    let in_container = match image {
        Some(_) => ctx.sandbox_directory.display().to_string(),
        None => sandbox.display().to_string(),
    };
    let ours = [
        ("MESOS_DIRECTORY".to_owned(), sandbox.display().to_string()),
        ("MESOS_SANDBOX".to_owned(), in_container),
    ];
    let image_env = image.map(|image| image.env.as_slice()).unwrap_or_default();
    spec::merge_env([image_env, req.command.env.as_slice(), &ours[..]])
}

/// `linux.resources` as the isolator applies them (for the record in
/// config.json; the isolator already wrote the cgroup files).
fn resources(isolator: &Isolator, limits: &ContainerLimits) -> LinuxResources {
    let mut cpu = LinuxCpuBuilder::default().shares(mesos_isolator::cpu_shares(limits.cpus));
    if let mesos_isolator::CpuBandwidth::Quota {
        quota_us,
        period_us,
    } = mesos_isolator::cpu_bandwidth(limits, isolator.config().enable_cfs)
    {
        // Quotas are far below i64::MAX.
        cpu = cpu.quota(quota_us as i64).period(period_us);
    }
    let mut memory = LinuxMemoryBuilder::default()
        .reservation(mesos_isolator::memory_soft_limit(limits).min(i64::MAX as u64) as i64);
    if let Some(limit) = mesos_isolator::memory_hard_limit(limits) {
        memory = memory.limit(limit.min(i64::MAX as u64) as i64);
    }
    let mut resources = LinuxResourcesBuilder::default();
    if let Ok(cpu) = cpu.build() {
        resources = resources.cpu(cpu);
    }
    if let Ok(memory) = memory.build() {
        resources = resources.memory(memory);
    }
    if let Some(pids) = limits.pids.or(isolator.config().pids_max) {
        if let Ok(pids) = LinuxPidsBuilder::default()
            .limit(pids.min(i64::MAX as u64) as i64)
            .build()
        {
            resources = resources.pids(pids);
        }
    }
    resources.build().unwrap_or_default()
}

fn write_config(
    ctx: &LaunchContext,
    container_id: &str,
    input: &SpecInput<'_>,
    runtime_dir: &mut Option<PathBuf>,
) -> Result<PathBuf, LaunchError> {
    let failed = |e: spec::SpecError| LaunchError {
        step: Step::WriteConfig,
        errno: e.errno(),
        message: e.to_string(),
    };
    let spec = spec::build(input).map_err(failed)?;
    let dir = paths::runtime_container_dir(&ctx.runtime_dir, container_id);
    fs::create_dir_all(dir.parent().unwrap_or(&dir)).map_err(|e| {
        LaunchError::io(Step::WriteConfig, &e, format!("create '{}'", dir.display()))
    })?;
    fs::create_dir(&dir).map_err(|e| {
        LaunchError::io(Step::WriteConfig, &e, format!("create '{}'", dir.display()))
    })?;
    let dir = runtime_dir.insert(dir);
    let config = dir.join(paths::CONFIG_FILE);
    spec::save(&spec, &config).map_err(failed)?;
    Ok(config)
}

/// The child's stdio and both ends of the status pipe and go channel, every
/// fd close-on-exec and numbered >= 3 so the child's `dup2`s onto 0-2 cannot
/// clobber one another.
struct Stdio {
    stdin: OwnedFd,
    stdout: OwnedFd,
    stderr: OwnedFd,
    status_parent: OwnedFd,
    status_child: OwnedFd,
    go_parent: OwnedFd,
    go_child: OwnedFd,
}

impl Stdio {
    fn open(sandbox: &Path) -> Result<Self, LaunchError> {
        let failed = |e: Errno, what: &str| {
            LaunchError::errno(Step::OpenStdio, e as i32, format!("{what}: {}", e.desc()))
        };
        let (stdout, stderr) = sandbox::open_logs(sandbox).map_err(|e| {
            LaunchError::io(
                Step::OpenStdio,
                &e.source,
                format!("{} '{}'", e.action, e.path.display()),
            )
        })?;
        let stdin = File::open("/dev/null")
            .map_err(|e| LaunchError::io(Step::OpenStdio, &e, "open '/dev/null'"))?;
        let (status_parent, status_child) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| failed(e, "status pipe"))?;
        let (go_parent, go_child) = socketpair().map_err(|e| failed(e, "go socketpair"))?;
        let high = |fd: OwnedFd| above_stdio(fd).map_err(|e| failed(e, "F_DUPFD_CLOEXEC"));
        Ok(Stdio {
            stdin: high(stdin.into())?,
            stdout: high(stdout.into())?,
            stderr: high(stderr.into())?,
            status_parent,
            status_child: high(status_child)?,
            go_parent,
            go_child: high(go_child)?,
        })
    }
}

/// The go channel is a socket so that releasing a child that already died
/// fails with EPIPE instead of raising SIGPIPE in the agent.
fn socketpair() -> Result<(OwnedFd, OwnedFd), Errno> {
    let mut fds = [-1; 2];
    // SAFETY: `fds` is a valid array of two ints for the kernel to fill.
    let ret = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    Errno::result(ret)?;
    // SAFETY: socketpair succeeded, so both fds are new and owned by us.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Moves `fd` to a number >= 3 (close-on-exec), if it is not already.
fn above_stdio(fd: OwnedFd) -> Result<OwnedFd, Errno> {
    if fd.as_raw_fd() >= 3 {
        return Ok(fd);
    }
    let high = nix::fcntl::fcntl(fd.as_fd(), nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(3))?;
    // SAFETY: F_DUPFD_CLOEXEC returned a new fd that we own.
    Ok(unsafe { OwnedFd::from_raw_fd(high) })
}

fn clone_child(
    ctx: &LaunchContext,
    args: &HelperArgs,
    stdio: &Stdio,
    namespaces: Namespaces,
    cgroup: &ContainerCgroup,
) -> Result<Child, LaunchError> {
    let invalid = |what: &str| LaunchError::new(Step::Clone, format!("{what} contains a NUL byte"));
    let helper = CString::new(ctx.helper.as_os_str().as_encoded_bytes())
        .map_err(|_| invalid("the helper path"))?;
    let argv = CStringArray::new(
        std::iter::once(crate::config::HELPER_BINARY.to_owned()).chain(args.to_argv()),
    )
    .map_err(|_| invalid("the helper arguments"))?;
    let envp = CStringArray::new(Vec::<String>::new()).map_err(|_| invalid("the environment"))?;
    let setup = ChildSetup {
        helper: &helper,
        argv: argv.as_ptrs(),
        envp: envp.as_ptrs(),
        stdio: [
            stdio.stdin.as_fd(),
            stdio.stdout.as_fd(),
            stdio.stderr.as_fd(),
        ],
        inherit: [stdio.status_child.as_fd(), stdio.go_child.as_fd()],
        status: stdio.status_child.as_fd(),
    };
    clone::spawn(&setup, namespaces.clone_flags(), cgroup.clone_into_fd()).map_err(|e| {
        LaunchError::errno(
            Step::Clone,
            e as i32,
            format!(
                "clone3 into the container's cgroup and namespaces: {}",
                e.desc()
            ),
        )
    })
}

fn checkpoint_pid(ctx: &LaunchContext, req: &LaunchRequest, pid: i32) -> Result<(), LaunchError> {
    let runtime =
        paths::runtime_container_dir(&ctx.runtime_dir, &req.container_id).join(paths::PID_FILE);
    let mut files = vec![runtime];
    if req.checkpoint {
        files.push(req.ids().forked_pid_file(&ctx.work_dir));
    }
    for file in files {
        checkpoint::write_pid(&file, pid).map_err(|e| {
            LaunchError::io(
                Step::Checkpoint,
                &e.source,
                format!("{} '{}'", e.action, e.path.display()),
            )
        })?;
    }
    Ok(())
}

/// Sends the go byte. If the child already died, its status report (or the
/// lack of one) tells why, so EPIPE is not an error here.
fn release(go: &OwnedFd, child: &Child) -> Result<(), LaunchError> {
    // SAFETY: sending one byte from a valid buffer on our socket.
    let ret = unsafe { libc::send(go.as_raw_fd(), b"g".as_ptr().cast(), 1, libc::MSG_NOSIGNAL) };
    match Errno::result(ret) {
        Ok(_) | Err(Errno::EPIPE) | Err(Errno::ECONNRESET) => Ok(()),
        Err(e) => Err(LaunchError::errno(
            Step::Release,
            e as i32,
            format!("release pid {}: {}", child.pid, e.desc()),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(command: &[&str]) -> Image {
        Image {
            layers: vec![],
            env: vec![
                ("PATH".into(), "/img/bin".into()),
                ("IMG".into(), "1".into()),
            ],
            command: command.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn shell_false_without_value_runs_the_image_command() {
        let command = CommandSpec::default();
        let program = program(&command, Some(&image(&["/bin/entry", "arg"]))).expect("program");
        assert_eq!(
            program,
            Program::Exec {
                executable: "/bin/entry".into(),
                argv: vec!["/bin/entry".into(), "arg".into()]
            }
        );
        let error = program_error(&command, None);
        assert_eq!(error.step, Step::Validate);
    }

    fn program_error(command: &CommandSpec, image: Option<&Image>) -> LaunchError {
        program(command, image).expect_err("no program")
    }

    #[test]
    fn sandbox_variables_override_and_image_env_comes_first() {
        let ctx = LaunchContext {
            work_dir: "/w".into(),
            runtime_dir: "/r".into(),
            helper: "/h".into(),
            switch_user: true,
            sandbox_directory: "/mnt/mesos/sandbox".into(),
            namespaces: Namespaces::default(),
            store: None,
        };
        let req = LaunchRequest {
            container_id: "c".into(),
            agent_id: "a".into(),
            framework_id: "f".into(),
            executor_id: "e".into(),
            command: CommandSpec {
                env: vec![
                    ("IMG".into(), "2".into()),
                    ("MESOS_SANDBOX".into(), "/bogus".into()),
                ],
                ..CommandSpec::default()
            },
            limits: ContainerLimits::new(0.1, 32 << 20),
            hostname: None,
            image: None,
            rlimits: vec![],
            checkpoint: false,
        };
        let env = environment(&ctx, &req, Path::new("/w/sandbox"), Some(&image(&[])));
        assert_eq!(
            env,
            [
                "PATH=/img/bin",
                "IMG=2",
                "MESOS_SANDBOX=/mnt/mesos/sandbox",
                "MESOS_DIRECTORY=/w/sandbox"
            ]
        );
        let env = environment(&ctx, &req, Path::new("/w/sandbox"), None);
        assert!(
            env.contains(&"MESOS_SANDBOX=/w/sandbox".to_string()),
            "{env:?}"
        );
    }
}
