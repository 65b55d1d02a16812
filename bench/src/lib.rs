//! `mesos-bench`: isolation and scheduling benchmarks for mesos-rs.
//!
//! Suites (each a subcommand, `all` runs them in order):
//! - `launch`: container launch latency against runc, crun and baselines;
//! - `e2e`: offer accepted → TASK_RUNNING / TASK_FINISHED and tasks/s;
//! - `cpu`: CFS quota accuracy and weight-proportional sharing;
//! - `memory`: limit breach → limitation / TASK_FAILED, no false positives;
//! - `overhead`: agent and executor memory and CPU;
//! - `allocator`: one DRF allocation over 10,000 agents × 1,000 frameworks.
//!
//! Results are distributions and ratios, never pass/fail on absolute times:
//! a plain-text table on stdout, `--json FILE` with every sample and the host
//! description, `--plot DIR` with PNG charts. `--quick` is a smoke run whose
//! output has the same structure.

pub mod cli;
pub mod clock;
/// The local cluster the cluster suites run against (shared with `mesos-local`).
pub use mesos_cli::cluster;
pub mod framework;
pub mod host;
pub mod plot;
pub mod procfs;
pub mod progress;
pub mod report;
pub mod stats;
pub mod suites;
pub mod workload;
