//! Multi-host tests without VMs: the real `mesos-master` and `mesos-agent`
//! binaries on separate "hosts" that are Linux network namespaces joined by
//! a private bridge.
//!
//! # Topology
//!
//! ```text
//!                      bridge mlb<tag>  (no address, no uplink)
//!        ┌────────────────┬──────┴─────────┬─────────────────┐
//!   veth mlv<tag>h0   mlv<tag>h1      mlv<tag>h2        mlv<tag>h3
//!        │                │                │                 │
//!   netns master      agent-1          agent-2          framework
//!   eth0  10.244.77.10  10.244.77.11     10.244.77.12     10.244.77.13
//!         mesos-master  mesos-agent      mesos-agent      the test's scheduler
//!         :5050         :5051            :5051            (Rust SDK, in-process)
//! ```
//!
//! * Namespaces are `mesos-lab-<tag>-<host>`; `<tag>` is `<pid>x<n>` in hex,
//!   unique per test process and lab, so tests can run in parallel.
//! * Only the namespace ends of the veths have addresses, all in
//!   [`netns::SUBNET`] (checked unused on the machine when a lab is built).
//!   The machine's own namespace has no address or route there: lab traffic
//!   never leaves the bridge.
//! * [`Lab::link_down`] takes a host's bridge port down: a silent network
//!   cut (frames dropped, no RST). [`Lab::link_up`] heals it.
//! * Processes run in a host through [`Lab::command`] (`setns(2)` between
//!   fork and exec; the mounts, hence `/sys/fs/cgroup`, stay the machine's)
//!   or, for in-process clients, [`Lab::run_in`] (a thread in the host).
//! * Dropping a [`Lab`] deletes its veths, namespaces and bridge, also when a
//!   test panics; a new lab also removes leftovers of killed test processes.
//!
//! # Running the tests
//!
//! ```text
//! cargo test -p mesos-lab               # as root; prints "skipping" otherwise
//! cargo test -p mesos-lab -- --nocapture  # also shows the measured timings
//! MESOS_LAB_SHOW_LOGS=1 cargo test -p mesos-lab -- --nocapture  # and all logs
//! ```
//!
//! A failing test prints the tail of the master's and agents' logs.
//!
//! The tests need root, iproute2 (`ip`) and cgroups; they build the
//! `mesos-master`, `mesos-agent`, `mesos-executor` and `mesos-containerizer`
//! binaries themselves (`cargo build --bins -p …`, a no-op when fresh) and
//! run them from the same target directory as the test. `tests/multi_host.rs`
//! runs the master with `--agent_ping_timeout=1secs
//! --max_agent_ping_timeouts=2` and the agents with
//! `--isolation=cgroups/cpu,cgroups/mem` under a unique `--cgroups_root`,
//! removed afterwards. Scenarios: tasks on both agents from a framework on a
//! third host; agent loss (TASK_LOST, or TASK_UNREACHABLE for a
//! PARTITION_AWARE framework; offers rescinded, the other agent untouched);
//! the agent's return after a short (3 s) and a long (12 s) cut (it
//! re-registers under its id and its task is reported running again, as in
//! Mesos 1.11). The whole file takes about 15–20 s once the binaries are
//! built; each scenario is bounded at 2 minutes.
//!
//! To look at a lab by hand while a test runs: `ip netns list`, then e.g.
//! `ip netns exec mesos-lab-<tag>-master curl -s 10.244.77.10:5050/state`.

#![warn(missing_docs)]

pub mod daemon;
pub mod netns;

pub use daemon::{Daemon, DaemonError};
pub use netns::{Lab, NetnsError};
