//! The steps of the launch sequence and the error naming the one that failed.
//!
//! Steps run in declaration order. The parent (agent) side runs up to
//! [`Step::CgroupAttach`]/[`Step::Checkpoint`]; the launch helper runs the rest
//! and reports its progress and failures over the status pipe
//! (`status_pipe.rs`), so the wire value of each step is part of that protocol.

use std::fmt;

macro_rules! steps {
    ($($(#[$doc:meta])* $variant:ident = $value:literal => $name:literal,)*) => {
        /// One step of the launch sequence.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum Step {
            $($(#[$doc])* $variant = $value,)*
        }

        impl Step {
            /// The step's name as reported in errors and logs.
            pub fn name(self) -> &'static str {
                match self {
                    $(Step::$variant => $name,)*
                }
            }

            /// Decodes the wire value used on the status pipe.
            pub fn from_u8(value: u8) -> Option<Step> {
                match value {
                    $($value => Some(Step::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

steps! {
    /// Check the request: IDs, command, a container id not in use.
    Validate = 1 => "validate",
    /// Resolve the task user to uid, gid and supplementary groups.
    ResolveUser = 2 => "resolve-user",
    /// Create the sandbox directory, the `runs/latest` link and stdout/stderr.
    Sandbox = 3 => "sandbox",
    /// Resolve the image in the OCI store and prepare its layers.
    ProvisionImage = 4 => "provision-image",
    /// Create the container's cgroups with their limits (isolator).
    IsolatorPrepare = 5 => "isolator-prepare",
    /// Write `<runtime_dir>/containers/<id>/config.json`.
    WriteConfig = 6 => "write-config",
    /// Open the sandbox's stdout/stderr and the pipes to the child.
    OpenStdio = 7 => "open-stdio",
    /// `clone3` into the cgroup with the namespaces asked for.
    Clone = 8 => "clone",
    /// Write the pid into the cgroup hierarchies the clone did not cover.
    CgroupAttach = 9 => "cgroup-attach",
    /// Checkpoint the pid under the runtime and meta directories.
    Checkpoint = 10 => "checkpoint",
    /// Send the go byte: the helper may continue.
    Release = 11 => "release",
    /// The cloned child execs the launch helper.
    ExecHelper = 12 => "exec-helper",
    /// The helper reads config.json.
    LoadConfig = 13 => "load-config",
    /// The helper waits for the parent's go byte.
    WaitParent = 14 => "wait-parent",
    /// `setsid`: executors kill their own process group on shutdown.
    Setsid = 15 => "setsid",
    /// Make every mount a slave so nothing propagates back to the host.
    MountPropagation = 16 => "mount-propagation",
    /// Clone the bind mounts' sources while the host is visible.
    BindSources = 17 => "bind-sources",
    /// Mount the image's overlay rootfs.
    MountRootfs = 18 => "mount-rootfs",
    /// `pivot_root` into the rootfs and detach the old root.
    PivotRoot = 19 => "pivot-root",
    /// The OCI `mounts`: /proc, /dev, the sandbox, ...
    Mounts = 20 => "mounts",
    /// Device nodes and /dev symlinks.
    Devices = 21 => "devices",
    /// Set the hostname in the new UTS namespace.
    Hostname = 22 => "hostname",
    /// Bring up `lo` in a new network namespace.
    Loopback = 23 => "loopback",
    /// Apply rlimits.
    Rlimits = 24 => "rlimits",
    /// Reduce the capability bounding set.
    CapabilityBounding = 25 => "capability-bounding",
    /// Switch to the task user (groups, gid, uid).
    SwitchUser = 26 => "switch-user",
    /// Set the effective, permitted, inheritable and ambient capabilities.
    Capabilities = 27 => "capabilities",
    /// `PR_SET_NO_NEW_PRIVS`.
    NoNewPrivs = 28 => "no-new-privs",
    /// Change to the working directory.
    Chdir = 29 => "chdir",
    /// Reset signal dispositions and the signal mask.
    Signals = 30 => "signals",
    /// Close every inherited fd except 0, 1, 2.
    CloseFds = 31 => "close-fds",
    /// Exec the executor.
    Exec = 32 => "exec",
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A launch that failed, naming the step and (when a syscall failed) the errno.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct LaunchError {
    /// The step that failed.
    pub step: Step,
    /// The errno of the failing syscall, if one failed.
    pub errno: Option<i32>,
    /// What went wrong, naming the path, user or image involved.
    pub message: String,
}

impl LaunchError {
    /// A failure without an errno.
    pub fn new(step: Step, message: impl Into<String>) -> Self {
        LaunchError {
            step,
            errno: None,
            message: message.into(),
        }
    }

    /// A failure of a syscall.
    pub fn errno(step: Step, errno: i32, message: impl Into<String>) -> Self {
        LaunchError {
            step,
            errno: Some(errno),
            message: message.into(),
        }
    }

    /// A failure from an `io::Error`, keeping its errno if it has one.
    pub fn io(step: Step, error: &std::io::Error, context: impl fmt::Display) -> Self {
        LaunchError {
            step,
            errno: error.raw_os_error(),
            message: format!("{context}: {error}"),
        }
    }
}

/// The errno at the root of an error chain (an `io::Error` or a nix `Errno`).
pub fn errno_in(error: &(dyn std::error::Error + 'static)) -> Option<i32> {
    let mut current = Some(error);
    while let Some(error) = current {
        if let Some(io) = error.downcast_ref::<std::io::Error>() {
            if let Some(errno) = io.raw_os_error() {
                return Some(errno);
            }
        }
        if let Some(errno) = error.downcast_ref::<nix::errno::Errno>() {
            return Some(*errno as i32);
        }
        current = error.source();
    }
    None
}

impl fmt::Display for LaunchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "launch failed at step '{}': {}", self.step, self.message)?;
        if let Some(errno) = self.errno {
            // The message usually already carries strerror; the symbolic name
            // is what one greps the kernel source for.
            write!(f, " [{:?}]", nix::errno::Errno::from_raw(errno))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_wire_value_round_trips() {
        let mut seen = 0;
        for value in 0..=u8::MAX {
            if let Some(step) = Step::from_u8(value) {
                assert_eq!(step as u8, value);
                seen += 1;
            }
        }
        assert_eq!(
            seen,
            Step::Exec as u8 as usize,
            "steps are numbered 1..=Exec"
        );
    }

    #[test]
    fn display_names_step_and_errno() {
        let error = LaunchError::errno(Step::Exec, libc::ENOENT, "no such file '/nope'");
        let text = error.to_string();
        assert!(text.contains("'exec'"), "{text}");
        assert!(text.contains("ENOENT"), "{text}");
    }
}
