//! v1 OOM detection: an eventfd registered for `memory.oom_control` through
//! `cgroup.event_control` (cgroup-v1/memory.rst §9), as Mesos's v1 isolator and the
//! containerd runc shim do. The kernel signals the eventfd when the cgroup hits its
//! limit and the OOM killer runs, and also when the cgroup is removed.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;

use nix::errno::Errno;
use nix::sys::eventfd::{EfdFlags, EventFd};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use crate::fs::{flat_keyed_value, CgroupFs};
use crate::IsolatorError;

/// Resolves when the kernel reports an OOM in the memory cgroup `dir` (or `oom_kill`
/// is already non-zero). Stays pending if the cgroup is removed. Cancel-safe: dropping
/// the future closes the eventfd, which unregisters the event.
pub(super) async fn wait_for_oom(fs: &CgroupFs, dir: &Path) -> Result<(), IsolatorError> {
    let control_path = dir.join("memory.oom_control");
    let control = match File::open(&control_path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return std::future::pending().await,
        Err(e) => return Err(IsolatorError::watch(&control_path, e)),
    };
    let eventfd = EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)
        .map_err(|e| IsolatorError::watch(&control_path, e))?;
    let registration = format!("{} {}", eventfd.as_raw_fd(), control.as_raw_fd());
    fs.write(&dir.join("cgroup.event_control"), &registration)?;
    crate::kill::require_runtime(&control_path)?;
    // SAFETY: `EventFd` owns its fd, so the raw fd stays open and refers to the same
    // eventfd until the `AsyncFd` (which owns it) is dropped.
    let eventfd = unsafe { AsyncFd::register_with_interest(eventfd, Interest::READABLE) }
        .map_err(|e| IsolatorError::watch(&control_path, e))?;

    // A kill that happened before the registration (or before an agent restart).
    match fs.read_opt(&control_path)? {
        None => return std::future::pending().await,
        Some(text) if flat_keyed_value(&text, "oom_kill").unwrap_or(0) > 0 => return Ok(()),
        Some(_) => {}
    }
    let mut guard = eventfd
        .readable()
        .await
        .map_err(|e| IsolatorError::watch(&control_path, e))?;
    match guard.get_inner().read() {
        Ok(_) | Err(Errno::EAGAIN) => guard.clear_ready(),
        Err(e) => return Err(IsolatorError::watch(&control_path, e)),
    }
    // The removal of the cgroup signals the eventfd too; any other event is an OOM.
    // (The `oom_kill` counter may lag: the notification precedes the kill.)
    if fs.read_opt(&control_path)?.is_none() {
        return std::future::pending().await;
    }
    Ok(())
}
