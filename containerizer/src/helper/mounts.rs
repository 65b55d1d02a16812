//! Mount namespace set-up: propagation, overlay rootfs, `pivot_root`, the OCI
//! mounts and device nodes.
//!
//! Bind mounts are cloned with `open_tree` while the host is still visible
//! and attached with `move_mount` after `pivot_root`, so every destination is
//! resolved inside the new root: an image's symlinks cannot redirect a mount
//! onto the host.

use std::fs;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType, Mount, Spec};

use super::Failure;
use crate::spec::annotations;

const OPEN_TREE_CLONE: libc::c_uint = 1;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;

/// Makes every mount a slave of the host's: host mounts still propagate in,
/// nothing done here propagates out (Mesos's `MS_SLAVE | MS_REC` on `/`).
pub(super) fn make_rslave() -> Result<(), Failure> {
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| Failure::sys(e, "make / a recursive slave mount"))
}

/// Mounts the image's overlay (or binds a plain rootfs directory onto itself,
/// since `pivot_root` needs a mount point).
pub(super) fn mount_rootfs(spec: &Spec, root: &Path) -> Result<(), Failure> {
    let annotations = spec.annotations().clone().unwrap_or_default();
    let overlay = (
        annotations.get(annotations::OVERLAY_LOWER),
        annotations.get(annotations::OVERLAY_UPPER),
        annotations.get(annotations::OVERLAY_WORK),
    );
    match overlay {
        (Some(lower), Some(upper), Some(work)) => {
            let data = format!("lowerdir={lower},upperdir={upper},workdir={work}");
            mount(
                Some("overlay"),
                root,
                Some("overlay"),
                MsFlags::empty(),
                Some(data.as_str()),
            )
            .map_err(|e| Failure::sys(e, format!("mount overlay on '{}' ({data})", root.display())))
        }
        _ => mount(
            Some(root),
            root,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(|e| Failure::sys(e, format!("bind '{}' onto itself", root.display()))),
    }
}

/// `pivot_root` into `root` and detach the old root, without a temporary
/// directory: `pivot_root(".", ".")` stacks the old root on the new one, and
/// unmounting "." removes it.
pub(super) fn pivot_root(root: &Path) -> Result<(), Failure> {
    nix::unistd::chdir(root).map_err(|e| Failure::sys(e, format!("chdir '{}'", root.display())))?;
    nix::unistd::pivot_root(".", ".")
        .map_err(|e| Failure::sys(e, format!("pivot_root '{}'", root.display())))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(|e| Failure::sys(e, "detach the old root"))?;
    nix::unistd::chdir("/").map_err(|e| Failure::sys(e, "chdir '/'"))
}

/// A bind mount cloned from the host, waiting to be attached.
#[derive(Debug)]
pub(super) struct DetachedBind {
    tree: OwnedFd,
    read_only: bool,
}

/// Clones the source of every bind mount (in spec order).
pub(super) fn open_bind_sources(mounts: &[Mount]) -> Result<Vec<Option<DetachedBind>>, Failure> {
    mounts
        .iter()
        .map(|m| {
            let options = Options::parse(m.options().as_deref().unwrap_or_default());
            if !is_bind(m, &options) {
                return Ok(None);
            }
            let source = m.source().as_ref().ok_or_else(|| {
                Failure::msg(format!(
                    "bind mount '{}' has no source",
                    m.destination().display()
                ))
            })?;
            let tree = open_tree(source, options.flags.contains(MsFlags::MS_REC))?;
            Ok(Some(DetachedBind {
                tree,
                read_only: options.flags.contains(MsFlags::MS_RDONLY),
            }))
        })
        .collect()
}

fn is_bind(mount: &Mount, options: &Options) -> bool {
    mount.typ().as_deref() == Some("bind") || options.flags.contains(MsFlags::MS_BIND)
}

fn open_tree(source: &Path, recursive: bool) -> Result<OwnedFd, Failure> {
    let path = std::ffi::CString::new(source.as_os_str().as_encoded_bytes())
        .map_err(|_| Failure::msg(format!("bind source '{}' contains NUL", source.display())))?;
    let mut flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: `path` is NUL-terminated and outlives the call.
    let fd = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, path.as_ptr(), flags) };
    let fd = Errno::result(fd)
        .map_err(|e| Failure::sys(e, format!("open_tree '{}'", source.display())))?;
    // SAFETY: open_tree returned a new fd we own; fds fit in i32.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Performs the OCI mounts in order, at absolute paths of the (new) root.
pub(super) fn apply(mounts: &[Mount], binds: Vec<Option<DetachedBind>>) -> Result<(), Failure> {
    for (m, bind) in mounts.iter().zip(binds) {
        let destination = m.destination();
        if !destination.is_absolute() {
            return Err(Failure::msg(format!(
                "mount destination '{}' is not absolute",
                destination.display()
            )));
        }
        fs::create_dir_all(destination).map_err(|e| {
            Failure::from(e).context(format!("create mount point '{}'", destination.display()))
        })?;
        match bind {
            Some(bind) => attach_bind(bind, destination)?,
            None => mount_one(m, destination)?,
        }
    }
    Ok(())
}

fn attach_bind(bind: DetachedBind, destination: &Path) -> Result<(), Failure> {
    let target =
        std::ffi::CString::new(destination.as_os_str().as_encoded_bytes()).map_err(|_| {
            Failure::msg(format!(
                "mount destination '{}' contains NUL",
                destination.display()
            ))
        })?;
    // SAFETY: the empty string and `target` are NUL-terminated and outlive the
    // call; the tree fd is ours.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            bind.tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            target.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    Errno::result(ret)
        .map_err(|e| Failure::sys(e, format!("move_mount onto '{}'", destination.display())))?;
    if bind.read_only {
        let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
        mount(None::<&str>, destination, None::<&str>, flags, None::<&str>).map_err(|e| {
            Failure::sys(e, format!("remount '{}' read-only", destination.display()))
        })?;
    }
    Ok(())
}

fn mount_one(m: &Mount, destination: &Path) -> Result<(), Failure> {
    let options = Options::parse(m.options().as_deref().unwrap_or_default());
    let typ = m.typ().as_deref();
    let source = m.source().as_deref();
    let data = (!options.data.is_empty()).then_some(options.data.as_str());
    mount(source, destination, typ, options.flags, data).map_err(|e| {
        Failure::sys(
            e,
            format!(
                "mount {} on '{}'",
                typ.unwrap_or("(no type)"),
                destination.display()
            ),
        )
    })
}

/// fstab-style mount options split into flags and filesystem data.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Options {
    pub flags: MsFlags,
    pub data: String,
}

impl Options {
    pub(super) fn parse(options: &[String]) -> Options {
        let mut parsed = Options {
            flags: MsFlags::empty(),
            data: String::new(),
        };
        let mut data = Vec::new();
        for option in options {
            let (set, flag) = match option.as_str() {
                "ro" => (true, MsFlags::MS_RDONLY),
                "rw" => (false, MsFlags::MS_RDONLY),
                "nosuid" => (true, MsFlags::MS_NOSUID),
                "suid" => (false, MsFlags::MS_NOSUID),
                "nodev" => (true, MsFlags::MS_NODEV),
                "dev" => (false, MsFlags::MS_NODEV),
                "noexec" => (true, MsFlags::MS_NOEXEC),
                "exec" => (false, MsFlags::MS_NOEXEC),
                "bind" => (true, MsFlags::MS_BIND),
                "rbind" => (true, MsFlags::MS_BIND | MsFlags::MS_REC),
                "strictatime" => (true, MsFlags::MS_STRICTATIME),
                "relatime" => (true, MsFlags::MS_RELATIME),
                "noatime" => (true, MsFlags::MS_NOATIME),
                "nodiratime" => (true, MsFlags::MS_NODIRATIME),
                "sync" => (true, MsFlags::MS_SYNCHRONOUS),
                "defaults" => continue,
                other => {
                    data.push(other);
                    continue;
                }
            };
            if set {
                parsed.flags |= flag;
            } else {
                parsed.flags &= !flag;
            }
        }
        parsed.data = data.join(",");
        parsed
    }
}

impl Failure {
    fn context(mut self, context: impl std::fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }
}

/// Creates the device nodes and the conventional /dev symlinks.
pub(super) fn create_devices(devices: &[LinuxDevice]) -> Result<(), Failure> {
    for device in devices {
        create_device(device)?;
    }
    for (link, target) in [
        ("/dev/fd", "/proc/self/fd"),
        ("/dev/stdin", "/proc/self/fd/0"),
        ("/dev/stdout", "/proc/self/fd/1"),
        ("/dev/stderr", "/proc/self/fd/2"),
        ("/dev/ptmx", "pts/ptmx"),
    ] {
        match symlink(target, link) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Failure::from(e).context(format!("symlink '{link}'"))),
        }
    }
    Ok(())
}

fn create_device(device: &LinuxDevice) -> Result<(), Failure> {
    let path: PathBuf = device.path().clone();
    let kind = match device.typ() {
        LinuxDeviceType::C | LinuxDeviceType::U => nix::sys::stat::SFlag::S_IFCHR,
        LinuxDeviceType::B => nix::sys::stat::SFlag::S_IFBLK,
        LinuxDeviceType::P => nix::sys::stat::SFlag::S_IFIFO,
        LinuxDeviceType::A => {
            return Err(Failure::msg(format!(
                "device '{}' has type 'a'",
                path.display()
            )))
        }
    };
    let mode = device.file_mode().unwrap_or(0o666);
    // Device numbers are small non-negative integers.
    let dev = nix::sys::stat::makedev(device.major() as u64, device.minor() as u64);
    nix::sys::stat::mknod(
        &path,
        kind,
        nix::sys::stat::Mode::from_bits_truncate(mode),
        dev,
    )
    .map_err(|e| Failure::sys(e, format!("mknod '{}'", path.display())))?;
    // mknod's mode is filtered by the umask.
    fs::set_permissions(&path, fs::Permissions::from_mode(mode))
        .map_err(|e| Failure::from(e).context(format!("chmod '{}'", path.display())))?;
    std::os::unix::fs::chown(&path, device.uid(), device.gid())
        .map_err(|e| Failure::from(e).context(format!("chown '{}'", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(options: &[&str]) -> Options {
        Options::parse(&options.iter().map(|o| o.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn flags_and_data_are_separated() {
        let parsed = parse(&[
            "nosuid",
            "noexec",
            "newinstance",
            "ptmxmode=0666",
            "mode=0620",
        ]);
        assert_eq!(parsed.flags, MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC);
        assert_eq!(parsed.data, "newinstance,ptmxmode=0666,mode=0620");
    }

    #[test]
    fn later_options_override_earlier_ones() {
        assert_eq!(parse(&["ro", "rw"]).flags, MsFlags::empty());
        assert_eq!(
            parse(&["rbind", "ro"]).flags,
            MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_RDONLY
        );
    }
}
