//! The crate's error type: lower-level errors (cgroupfs, layout) plus the failures of
//! the isolator's own operations, each naming the container, cgroup or pid involved.

use std::path::PathBuf;
use std::time::Duration;

use crate::fs::FsError;
use crate::layout::LayoutError;

/// Errors of [`crate::Isolator`] and [`crate::ContainerCgroup`].
#[derive(Debug, thiserror::Error)]
pub enum IsolatorError {
    /// A cgroupfs operation failed.
    #[error(transparent)]
    Fs(#[from] FsError),
    /// The host's cgroup layout could not be read.
    #[error(transparent)]
    Layout(#[from] LayoutError),
    /// Invalid `--cgroups_*` flags.
    #[error("invalid cgroups configuration: {0}")]
    Config(String),
    /// A controller `--isolation` needs is not available on this host.
    #[error("{isolator} in --isolation needs the '{controller}' cgroup controller, which is not available: {detail}")]
    ControllerUnavailable {
        controller: &'static str,
        isolator: &'static str,
        detail: String,
    },
    /// Enabling controllers in a cgroup's `cgroup.subtree_control` failed.
    #[error("enabling controllers {controllers} in {path}: {source}{hint}")]
    EnableControllers {
        path: PathBuf,
        controllers: String,
        source: FsError,
        hint: &'static str,
    },
    /// The container ID cannot name a cgroup.
    #[error("invalid container id {id:?}: {reason}")]
    InvalidContainerId { id: String, reason: &'static str },
    /// The container's limits are unusable.
    #[error("invalid limits for container {id}: {reason}")]
    InvalidLimits { id: String, reason: String },
    /// `prepare` found the container's cgroup already there.
    #[error("container {id} already has a cgroup at {path} (recover or destroy it first)")]
    AlreadyExists { id: String, path: PathBuf },
    /// A container to reopen has no cgroup.
    #[error("container {id} has no cgroup at {path}")]
    NotFound { id: String, path: PathBuf },
    /// Processes survived the kill for longer than `--cgroups_destroy_timeout`.
    #[error(
        "destroying container {id}: processes {pids:?} still present {timeout:?} after the kill"
    )]
    DestroyTimeout {
        id: String,
        pids: Vec<i32>,
        timeout: Duration,
    },
    /// Sending a signal to a container's process failed.
    #[error("sending SIGKILL to pid {pid} of container {id}: {source}")]
    Signal {
        id: String,
        pid: i32,
        source: nix::Error,
    },
    /// Arming the OOM watch failed.
    #[error("watching {path} for OOM kills: {source}")]
    Watch {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl IsolatorError {
    pub(crate) fn watch(path: impl Into<PathBuf>, source: impl Into<std::io::Error>) -> Self {
        IsolatorError::Watch {
            path: path.into(),
            source: source.into(),
        }
    }
}
