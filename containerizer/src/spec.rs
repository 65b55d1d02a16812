//! The OCI runtime spec of a launch: built by the agent side, written to
//! `<runtime_dir>/containers/<id>/config.json` (0600), read by the launch
//! helper. It is the single source of truth for the launch.
//!
//! Mesos specifics the OCI schema has no field for travel as annotations
//! ([`annotations`]): the overlay layers of an image rootfs and, for
//! `CommandInfo.shell=false`, the executable (Mesos execs `value` with
//! `arguments` as the whole argv, argv\[0\] included).

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    Capabilities, Capability, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxDevice,
    LinuxDeviceBuilder, LinuxDeviceType, LinuxResources, Mount, MountBuilder, PosixRlimit,
    ProcessBuilder, RootBuilder, Spec, SpecBuilder, UserBuilder,
};

use crate::namespaces::Namespaces;
use crate::user::ResolvedUser;

/// Annotation keys for what OCI has no field for.
pub mod annotations {
    /// The container id.
    pub const CONTAINER_ID: &str = "org.apache.mesos.container_id";
    /// The host path of the sandbox (`MESOS_DIRECTORY`).
    pub const SANDBOX: &str = "org.apache.mesos.sandbox";
    /// For `shell=false`: the file to exec; `process.args` is the whole argv.
    pub const EXECUTABLE: &str = "org.apache.mesos.executable";
    /// Overlay lower directories, topmost first, separated by ':'.
    pub const OVERLAY_LOWER: &str = "org.apache.mesos.rootfs.overlay.lowerdir";
    /// Overlay upper directory.
    pub const OVERLAY_UPPER: &str = "org.apache.mesos.rootfs.overlay.upperdir";
    /// Overlay work directory.
    pub const OVERLAY_WORK: &str = "org.apache.mesos.rootfs.overlay.workdir";
}

/// The default `PATH` when the environment has none (Mesos's
/// `os::host_default_path()`).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The capability set a root task keeps: Docker's default set. Non-root tasks
/// keep none.
pub const DEFAULT_CAPABILITIES: [Capability; 14] = [
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];

/// An image rootfs assembled with overlayfs by the helper.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverlayRootfs {
    /// Where the overlay is mounted (inside the container's mount namespace).
    pub mountpoint: PathBuf,
    /// Read-only layers, topmost first.
    pub lower: Vec<PathBuf>,
    /// The container's writable layer.
    pub upper: PathBuf,
    /// Overlayfs's scratch directory, on the same filesystem as `upper`.
    pub work: PathBuf,
}

/// What the executor runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Program {
    /// `CommandInfo.shell=true`: `/bin/sh -c <value>`.
    Shell(String),
    /// `CommandInfo.shell=false`: exec `executable` with `argv` (argv\[0\]
    /// included; `[executable]` when empty).
    Exec {
        /// The file to exec, looked up in `PATH` when it has no '/'.
        executable: String,
        /// The whole argv.
        argv: Vec<String>,
    },
}

/// Everything the spec is built from.
#[derive(Debug, Clone)]
pub struct SpecInput<'a> {
    /// The container id.
    pub container_id: &'a str,
    /// What to run.
    pub program: &'a Program,
    /// The complete environment, `KEY=VALUE`, in order.
    pub env: Vec<String>,
    /// The user to run as.
    pub user: &'a ResolvedUser,
    /// rlimits to set.
    pub rlimits: &'a [PosixRlimit],
    /// Namespaces (already normalized).
    pub namespaces: Namespaces,
    /// Hostname in the UTS namespace.
    pub hostname: Option<&'a str>,
    /// The sandbox on the host.
    pub sandbox: &'a Path,
    /// Where the sandbox appears inside an image rootfs.
    pub sandbox_directory: &'a Path,
    /// The image rootfs, if any.
    pub rootfs: Option<&'a OverlayRootfs>,
    /// The container's cgroup (informational: the cgroup is prepared by the
    /// isolator and the child is cloned into it).
    pub cgroups_path: Option<PathBuf>,
    /// The limits the isolator applied (informational).
    pub resources: Option<LinuxResources>,
}

/// A spec that could not be built, written or read.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// A builder rejected a value.
    #[error("invalid OCI spec: {0}")]
    Build(#[from] oci_spec::OciSpecError),
    /// config.json could not be written or read.
    #[error("{action} '{path}': {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The failure.
        #[source]
        source: io::Error,
    },
    /// config.json is not a valid spec.
    #[error("parse '{path}': {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The failure.
        #[source]
        source: serde_json::Error,
    },
}

impl SpecError {
    /// The errno behind the error, if any.
    pub fn errno(&self) -> Option<i32> {
        match self {
            SpecError::Io { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}

/// Builds the spec of a launch.
pub fn build(input: &SpecInput<'_>) -> Result<Spec, SpecError> {
    let (args, executable) = match input.program {
        Program::Shell(command) => (vec!["/bin/sh".into(), "-c".into(), command.clone()], None),
        Program::Exec { executable, argv } if argv.is_empty() => {
            (vec![executable.clone()], Some(executable))
        }
        Program::Exec { executable, argv } => (argv.clone(), Some(executable)),
    };

    let cwd = match input.rootfs {
        Some(_) => input.sandbox_directory,
        None => input.sandbox,
    };
    let process = ProcessBuilder::default()
        .terminal(false)
        .user(
            UserBuilder::default()
                .uid(input.user.uid)
                .gid(input.user.gid)
                .additional_gids(input.user.groups.clone())
                .umask(0o022u32)
                .username(input.user.name.clone())
                .build()?,
        )
        .args(args)
        .env(input.env.clone())
        .cwd(cwd)
        .capabilities(capabilities(input.user.uid == 0)?)
        .rlimits(input.rlimits.to_vec())
        .no_new_privileges(true)
        .build()?;

    let root = RootBuilder::default()
        .path(
            input
                .rootfs
                .map_or_else(|| PathBuf::from("/"), |r| r.mountpoint.clone()),
        )
        .readonly(false)
        .build()?;

    let mut linux = LinuxBuilder::default().namespaces(input.namespaces.to_oci());
    if let Some(path) = &input.cgroups_path {
        linux = linux.cgroups_path(path.clone());
    }
    if let Some(resources) = &input.resources {
        linux = linux.resources(resources.clone());
    }
    if input.rootfs.is_some() {
        linux = linux.devices(default_devices()?);
    }

    let mut spec = SpecBuilder::default()
        .version("1.1.0")
        .root(root)
        .process(process)
        .mounts(mounts(input)?)
        .annotations(annotations(input, executable))
        .linux(linux.build()?);
    if input.namespaces.uts {
        spec = spec.hostname(input.hostname.unwrap_or(input.container_id));
    }
    Ok(spec.build()?)
}

fn capabilities(root: bool) -> Result<oci_spec::runtime::LinuxCapabilities, SpecError> {
    let set: Capabilities = if root {
        DEFAULT_CAPABILITIES.into_iter().collect()
    } else {
        Capabilities::new()
    };
    Ok(LinuxCapabilitiesBuilder::default()
        .bounding(set.clone())
        .effective(set.clone())
        .permitted(set.clone())
        .inheritable(set)
        .ambient(Capabilities::new())
        .build()?)
}

fn annotations(input: &SpecInput<'_>, executable: Option<&String>) -> HashMap<String, String> {
    let mut map = HashMap::new();
    map.insert(annotations::CONTAINER_ID.into(), input.container_id.into());
    map.insert(
        annotations::SANDBOX.into(),
        input.sandbox.display().to_string(),
    );
    if let Some(executable) = executable {
        map.insert(annotations::EXECUTABLE.into(), executable.clone());
    }
    if let Some(rootfs) = input.rootfs {
        let lower: Vec<String> = rootfs
            .lower
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        map.insert(annotations::OVERLAY_LOWER.into(), lower.join(":"));
        map.insert(
            annotations::OVERLAY_UPPER.into(),
            rootfs.upper.display().to_string(),
        );
        map.insert(
            annotations::OVERLAY_WORK.into(),
            rootfs.work.display().to_string(),
        );
    }
    map
}

fn mount(destination: &str, typ: &str, source: &str, options: &[&str]) -> Result<Mount, SpecError> {
    Ok(MountBuilder::default()
        .destination(destination)
        .typ(typ)
        .source(source)
        .options(options.iter().map(|o| o.to_string()).collect::<Vec<_>>())
        .build()?)
}

/// The mounts, in order. Without an image only a fresh /proc for a new pid
/// namespace; with one, the minimal /dev, /proc, /sys and the sandbox.
fn mounts(input: &SpecInput<'_>) -> Result<Vec<Mount>, SpecError> {
    let mut mounts = Vec::new();
    if input.rootfs.is_none() {
        if input.namespaces.pid {
            mounts.push(mount(
                "/proc",
                "proc",
                "proc",
                &["nosuid", "noexec", "nodev"],
            )?);
        }
        return Ok(mounts);
    }
    mounts.push(mount(
        "/proc",
        "proc",
        "proc",
        &["nosuid", "noexec", "nodev"],
    )?);
    mounts.push(mount(
        "/dev",
        "tmpfs",
        "tmpfs",
        &["nosuid", "strictatime", "mode=755", "size=65536k"],
    )?);
    mounts.push(mount(
        "/dev/pts",
        "devpts",
        "devpts",
        &[
            "nosuid",
            "noexec",
            "newinstance",
            "ptmxmode=0666",
            "mode=0620",
            "gid=5",
        ],
    )?);
    mounts.push(mount(
        "/dev/shm",
        "tmpfs",
        "shm",
        &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
    )?);
    if input.namespaces.ipc {
        mounts.push(mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        )?);
    }
    mounts.push(mount(
        "/sys",
        "sysfs",
        "sysfs",
        &["nosuid", "noexec", "nodev", "ro"],
    )?);
    let sandbox = input.sandbox.display().to_string();
    let destination = input.sandbox_directory.display().to_string();
    mounts.push(mount(&destination, "bind", &sandbox, &["rbind", "rw"])?);
    Ok(mounts)
}

/// The device nodes every container with a rootfs gets (runtime-spec
/// config-linux.md "Default Devices").
fn default_devices() -> Result<Vec<LinuxDevice>, SpecError> {
    [
        ("/dev/null", 1, 3),
        ("/dev/zero", 1, 5),
        ("/dev/full", 1, 7),
        ("/dev/random", 1, 8),
        ("/dev/urandom", 1, 9),
        ("/dev/tty", 5, 0),
    ]
    .into_iter()
    .map(|(path, major, minor)| {
        Ok(LinuxDeviceBuilder::default()
            .path(path)
            .typ(LinuxDeviceType::C)
            .major(major)
            .minor(minor)
            .file_mode(0o666u32)
            .uid(0u32)
            .gid(0u32)
            .build()?)
    })
    .collect()
}

/// Merges environments: later entries override earlier ones by key, keeping
/// the first position of each key. Entries without '=' are dropped.
pub fn merge_env<'a>(layers: impl IntoIterator<Item = &'a [(String, String)]>) -> Vec<String> {
    let mut order: Vec<&str> = Vec::new();
    let mut values: HashMap<&str, &str> = HashMap::new();
    for layer in layers {
        for (key, value) in layer {
            if values.insert(key, value).is_none() {
                order.push(key);
            }
        }
    }
    order
        .into_iter()
        .map(|key| format!("{key}={}", values[key]))
        .collect()
}

/// Writes `spec` to `path` with mode 0600.
pub fn save(spec: &Spec, path: &Path) -> Result<(), SpecError> {
    let io_error = |action| {
        move |source| SpecError::Io {
            action,
            path: path.to_owned(),
            source,
        }
    };
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io_error("create"))?;
    let mut writer = io::BufWriter::new(file);
    serde_json::to_writer_pretty(&mut writer, spec)
        .map_err(io::Error::from)
        .map_err(io_error("write"))?;
    writer.flush().map_err(io_error("write"))
}

/// Reads a spec written by [`save`].
pub fn load(path: &Path) -> Result<Spec, SpecError> {
    let bytes = std::fs::read(path).map_err(|source| SpecError::Io {
        action: "read",
        path: path.to_owned(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|source| SpecError::Parse {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn user(uid: u32) -> ResolvedUser {
        ResolvedUser {
            name: "u".into(),
            uid,
            gid: uid,
            groups: vec![uid, 100],
        }
    }

    fn input<'a>(
        program: &'a Program,
        user: &'a ResolvedUser,
        rootfs: Option<&'a OverlayRootfs>,
    ) -> SpecInput<'a> {
        SpecInput {
            container_id: "cid",
            program,
            env: vec!["A=1".into()],
            user,
            rlimits: &[],
            namespaces: Namespaces::isolated(),
            hostname: None,
            sandbox: Path::new("/work/sandbox"),
            sandbox_directory: Path::new("/mnt/mesos/sandbox"),
            rootfs,
            cgroups_path: None,
            resources: None,
        }
    }

    #[test]
    fn shell_command_runs_under_sh_in_the_host_sandbox() {
        let program = Program::Shell("echo hi".into());
        let user = user(1000);
        let spec = build(&input(&program, &user, None)).expect("spec");
        let process = spec.process().as_ref().expect("process");
        assert_eq!(
            process.args().as_deref(),
            Some(&["/bin/sh".to_string(), "-c".into(), "echo hi".into()][..])
        );
        assert_eq!(process.cwd(), Path::new("/work/sandbox"));
        assert_eq!(spec.root().as_ref().expect("root").path(), Path::new("/"));
        assert_eq!(spec.hostname().as_deref(), Some("cid"));
        let caps = process.capabilities().as_ref().expect("caps");
        assert!(
            caps.bounding().as_ref().expect("bounding").is_empty(),
            "non-root keeps no capabilities"
        );
        let mounts = spec.mounts().as_ref().expect("mounts");
        assert_eq!(mounts.len(), 1, "only /proc without an image");
        assert_eq!(mounts[0].destination(), Path::new("/proc"));
    }

    #[test]
    fn exec_command_keeps_argv_and_names_the_executable() {
        let program = Program::Exec {
            executable: "/bin/echo".into(),
            argv: vec!["echo-as-argv0".into(), "x".into()],
        };
        let root = user(0);
        let spec = build(&input(&program, &root, None)).expect("spec");
        let process = spec.process().as_ref().expect("process");
        assert_eq!(
            process.args().as_deref(),
            Some(&["echo-as-argv0".to_string(), "x".into()][..])
        );
        let annotations = spec.annotations().as_ref().expect("annotations");
        assert_eq!(annotations[annotations::EXECUTABLE], "/bin/echo");
        let bounding = process
            .capabilities()
            .as_ref()
            .and_then(|c| c.bounding().clone())
            .expect("bounding");
        assert_eq!(bounding.len(), DEFAULT_CAPABILITIES.len());
    }

    #[test]
    fn image_rootfs_mounts_sandbox_and_dev_and_works_from_it() {
        let program = Program::Shell("true".into());
        let root = user(0);
        let rootfs = OverlayRootfs {
            mountpoint: "/p/rootfs".into(),
            lower: vec!["/l/b".into(), "/l/a".into()],
            upper: "/p/upper".into(),
            work: "/p/work".into(),
        };
        let spec = build(&input(&program, &root, Some(&rootfs))).expect("spec");
        assert_eq!(
            spec.root().as_ref().expect("root").path(),
            Path::new("/p/rootfs")
        );
        let process = spec.process().as_ref().expect("process");
        assert_eq!(process.cwd(), Path::new("/mnt/mesos/sandbox"));
        let mounts = spec.mounts().as_ref().expect("mounts");
        let sandbox = mounts.last().expect("sandbox mount");
        assert_eq!(sandbox.destination(), Path::new("/mnt/mesos/sandbox"));
        assert_eq!(
            sandbox.source().as_deref(),
            Some(Path::new("/work/sandbox"))
        );
        let devices = spec
            .linux()
            .as_ref()
            .and_then(|l| l.devices().clone())
            .expect("devices");
        assert!(devices.iter().any(|d| d.path() == Path::new("/dev/null")));
        let annotations = spec.annotations().as_ref().expect("annotations");
        assert_eq!(annotations[annotations::OVERLAY_LOWER], "/l/b:/l/a");
    }

    #[test]
    fn later_env_layers_override_earlier_ones_in_place() {
        let image = [
            ("PATH".to_string(), "/img".to_string()),
            ("A".into(), "1".into()),
        ];
        let task = [("A".to_string(), "2".to_string()), ("B".into(), "3".into())];
        assert_eq!(
            merge_env([&image[..], &task[..]]),
            ["PATH=/img", "A=2", "B=3"]
        );
    }

    #[test]
    fn saved_spec_is_private_and_loads_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config.json");
        let program = Program::Shell("true".into());
        let user = user(0);
        let spec = build(&input(&program, &user, None)).expect("spec");
        save(&spec, &path).expect("save");
        let mode = std::fs::metadata(&path)
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(load(&path).expect("load"), spec);
    }
}
