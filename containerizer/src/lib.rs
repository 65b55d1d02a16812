//! The Mesos containerizer: turns a launch request into a running, isolated
//! executor process, supervises it, and destroys and recovers containers.
//!
//! # API for the agent
//!
//! ```no_run
//! # async fn example(isolator: mesos_isolator::Isolator) -> anyhow::Result<()> {
//! use mesos_containerizer::{CommandSpec, Containerizer, ContainerizerConfig, LaunchRequest};
//! use mesos_isolator::ContainerLimits;
//!
//! let config = ContainerizerConfig::new("/var/lib/mesos", "/var/run/mesos", "/usr/libexec/mesos", isolator);
//! let containerizer = Containerizer::new(config)?;
//! let launched = containerizer
//!     .launch(LaunchRequest {
//!         container_id: "9d5f…".into(),
//!         agent_id: "S0".into(),
//!         framework_id: "F0".into(),
//!         executor_id: "task-1".into(),
//!         command: CommandSpec { shell: true, value: "echo hello".into(), ..Default::default() },
//!         limits: ContainerLimits::new(0.1, 32 << 20),
//!         hostname: None,
//!         image: None,
//!         rlimits: vec![],
//!         checkpoint: true,
//!     })
//!     .await?; // Err(LaunchError { step, errno, message }) names the failed step
//! let termination = containerizer.wait("9d5f…").await?; // exit, or an OOM limitation
//! containerizer.destroy("9d5f…").await?; // kill, remove cgroups/runtime dir, keep sandbox
//! # Ok(()) }
//! ```
//!
//! [`from_proto::launch_request`] builds the [`LaunchRequest`] from an
//! `ExecutorInfo` (command, environment, user, image, hostname, rlimits).
//! [`Containerizer`] also has `usage`, `update` and `recover` (after an agent
//! restart, with the container ids the agent checkpointed). The agent builds
//! the executor environment (`MESOS_FRAMEWORK_ID`, `MESOS_AGENT_ENDPOINT`, …)
//! into [`CommandSpec::env`]; the containerizer adds `MESOS_DIRECTORY` and
//! `MESOS_SANDBOX`.
//!
//! # Launch sequence
//!
//! Every step has a name ([`Step`]); a failure reports the step, the errno
//! and a message ([`LaunchError`]), and is cleaned up.
//!
//! 1. Parent (the agent, multi-threaded; `launch.rs`): validate, resolve the
//!    user, create the sandbox (`runs/<cid>` owned by the user, 0750, plus
//!    `runs/latest`, `stdout`, `stderr`), provision the image (`image/`),
//!    `Isolator::prepare` the cgroups, write the OCI spec to
//!    `<runtime_dir>/containers/<cid>/config.json` (0600; the single source
//!    of truth for the launch), then `clone3(CLONE_INTO_CGROUP | CLONE_PIDFD |
//!    CLONE_NEW*)` (`clone.rs`). The child only makes async-signal-safe calls
//!    and execs the launch helper `mesos-containerizer launch`. The parent
//!    attaches the pid to the v1 hierarchies the clone did not cover,
//!    checkpoints the pid, and sends the go byte. On x86-64 the child shares
//!    the agent's memory until its exec (`CLONE_VM | CLONE_VFORK`, like
//!    `posix_spawn`), so the clone costs the same however big the agent is.
//! 2. Helper (single-threaded; `helper/`): closes inherited fds, reads
//!    config.json, waits for the go byte (so `/proc/self/cgroup` is final
//!    before any user code), then `setsid`, mount propagation, overlay rootfs,
//!    `pivot_root`, /proc, /dev, the sandbox at `--sandbox_directory`,
//!    hostname, rlimits, capability bounding set, user and groups,
//!    capabilities, `NO_NEW_PRIVS`, signal reset, and `execve` of the
//!    executor with exactly the spec's environment. With a pid namespace the
//!    executor is pid 1 of it (so killing goes through the cgroup: pid 1
//!    ignores SIGTERM without a handler).
//! 3. The parent learns of the exec from the close-on-exec status pipe
//!    (`status_pipe.rs`), or gets the failed step and errno; if the child dies
//!    silently it reports the last step the child started. It never hangs.
//! 4. A supervisor task waits on the pidfd from `clone3` (`reaper.rs`) and on
//!    the isolator's limitation, and publishes the [`Termination`].
//!
//! # Images
//!
//! With `--image_providers=oci`, [`LaunchRequest::image`] names an image in
//! a local OCI image-layout store ([`image`]); its layers are unpacked once
//! into a content-addressed cache and assembled per container with overlayfs
//! inside the container's mount namespace.
//!
//! # Benchmark
//!
//! [`mod@bench`] measures launch-to-exec latency against `runc run` and
//! `crun run`; `cargo bench -p mesos-containerizer` runs it.

#![warn(missing_docs)]

pub mod bench;
pub mod checkpoint;
pub(crate) mod clone;
pub mod config;
mod containerizer;
pub mod from_proto;
pub mod helper;
pub mod image;
mod launch;
pub mod namespaces;
pub mod paths;
pub mod reaper;
pub mod sandbox;
pub mod spec;
pub(crate) mod status_pipe;
pub mod step;
pub mod user;

pub use config::ContainerizerConfig;
pub use containerizer::{
    Containerizer, ContainerizerError, LaunchTimings, Launched, RecoveredContainer, Termination,
};
pub use launch::{CommandSpec, LaunchRequest};
pub use mesos_isolator::{ContainerLimits, Limitation, Usage};
pub use namespaces::Namespaces;
pub use step::{LaunchError, Step};
