//! The command line, and running the chosen suites into one report.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use clap::{Parser, Subcommand};

use crate::host::Host;
use crate::plot;
use crate::report::{self, Report, Status, SuiteReport};
use crate::suites::allocator::{self, AllocatorOptions};
use crate::suites::cpu::{self, CpuOptions};
use crate::suites::e2e::{self, E2eOptions};
use crate::suites::launch::{self, LaunchOptions};
use crate::suites::memory::{self, MemoryOptions};
use crate::suites::overhead::{self, OverheadOptions};
use crate::suites::Context;
use crate::workload::{AllocArgs, SpinArgs};

/// Errors that stop a run (a failing suite does not: it is reported).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// `--bin-dir` was not given and the binary's own directory is unknown.
    #[error("cannot find this executable ({0}); pass --bin-dir")]
    SelfExe(std::io::Error),
    /// `--json` could not be written.
    #[error("--json: {0}")]
    Json(#[from] report::ReportError),
    /// `--plot` could not be written.
    #[error("--plot: {0}")]
    Plot(#[from] plot::PlotError),
}

/// mesos-bench: launch latency, scheduling throughput, CPU and memory
/// enforcement, overhead and allocator scale of mesos-rs, with readable,
/// comparable results (distributions and ratios, never pass/fail).
#[derive(Debug, Parser)]
#[command(name = "mesos-bench", version)]
pub struct Cli {
    /// The suite to run.
    #[command(subcommand)]
    pub command: Command,
    /// Write every sample and the host description to FILE as JSON.
    #[arg(long, global = true, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write PNG charts (latency CDFs, CPU share over time) into DIR.
    #[arg(long, global = true, value_name = "DIR")]
    pub plot: Option<PathBuf>,
    /// Smoke run with tiny sizes (replaces the suite options); CI checks the
    /// output's structure, not its numbers.
    #[arg(long, global = true)]
    pub quick: bool,
    /// Directory of mesos-master, mesos-agent, mesos-executor and
    /// mesos-containerizer (default: next to mesos-bench).
    #[arg(long, global = true, value_name = "DIR")]
    pub bin_dir: Option<PathBuf>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Container launch latency: mesos-rs containerizer vs runc, crun, fork+exec, unshare.
    Launch(LaunchOptions),
    /// Offer accepted → TASK_RUNNING / TASK_FINISHED and tasks/s through a local cluster.
    E2e(E2eOptions),
    /// CPU share vs CFS limit (alone, competing) and weight-proportional sharing.
    Cpu(CpuOptions),
    /// Memory limit breach → limitation / TASK_FAILED; no false positives at 90 %.
    Memory(MemoryOptions),
    /// Agent idle RSS and CPU, executor RSS per task, agent RSS with running tasks.
    Overhead(OverheadOptions),
    /// One DRF allocation over A agents × F frameworks, beside Mesos's 1.06 s.
    Allocator(AllocatorOptions),
    /// Every suite with its default (or --quick) options.
    All,
    /// Child workload: a busy loop (internal).
    #[command(name = "__spin", hide = true)]
    Spin(SpinArgs),
    /// Child workload: touch memory (internal).
    #[command(name = "__alloc", hide = true)]
    Alloc(AllocArgs),
}

/// The suite order of `all`: cheap and cluster-free first.
pub const SUITES: &[&str] = &["allocator", "launch", "cpu", "memory", "e2e", "overhead"];

/// One suite with its options.
#[derive(Debug, Clone)]
enum Suite {
    Launch(LaunchOptions),
    E2e(E2eOptions),
    Cpu(CpuOptions),
    Memory(MemoryOptions),
    Overhead(OverheadOptions),
    Allocator(AllocatorOptions),
}

impl Suite {
    fn name(&self) -> &'static str {
        match self {
            Suite::Launch(_) => "launch",
            Suite::E2e(_) => "e2e",
            Suite::Cpu(_) => "cpu",
            Suite::Memory(_) => "memory",
            Suite::Overhead(_) => "overhead",
            Suite::Allocator(_) => "allocator",
        }
    }

    fn by_name(name: &str, quick: bool) -> Option<Suite> {
        Some(match (name, quick) {
            ("launch", false) => Suite::Launch(LaunchOptions::default()),
            ("launch", true) => Suite::Launch(LaunchOptions::quick()),
            ("e2e", false) => Suite::E2e(E2eOptions::default()),
            ("e2e", true) => Suite::E2e(E2eOptions::quick()),
            ("cpu", false) => Suite::Cpu(CpuOptions::default()),
            ("cpu", true) => Suite::Cpu(CpuOptions::quick()),
            ("memory", false) => Suite::Memory(MemoryOptions::default()),
            ("memory", true) => Suite::Memory(MemoryOptions::quick()),
            ("overhead", false) => Suite::Overhead(OverheadOptions::default()),
            ("overhead", true) => Suite::Overhead(OverheadOptions::quick()),
            ("allocator", false) => Suite::Allocator(AllocatorOptions::default()),
            ("allocator", true) => Suite::Allocator(AllocatorOptions::quick()),
            _ => return None,
        })
    }

    async fn run(&self, ctx: &Context) -> SuiteReport {
        match self {
            Suite::Launch(o) => launch::run(o, ctx).await,
            Suite::E2e(o) => e2e::run(o, ctx).await,
            Suite::Cpu(o) => cpu::run(o, ctx).await,
            Suite::Memory(o) => memory::run(o, ctx).await,
            Suite::Overhead(o) => overhead::run(o, ctx).await,
            // Pure computation: keep it off the async worker threads.
            Suite::Allocator(o) => {
                let o = o.clone();
                tokio::task::spawn_blocking(move || allocator::run(&o))
                    .await
                    .unwrap_or_else(|e| {
                        let mut report = SuiteReport::new("allocator", "DRF allocation");
                        report.fail(format!("the allocator suite panicked: {e}"));
                        report
                    })
            }
        }
    }
}

/// The suites a command runs, with `--quick` applied.
fn suites(command: &Command, quick: bool) -> Vec<Suite> {
    let single = match command {
        Command::All => {
            return SUITES
                .iter()
                .filter_map(|name| Suite::by_name(name, quick))
                .collect();
        }
        Command::Spin(_) | Command::Alloc(_) => return Vec::new(),
        Command::Launch(o) => Suite::Launch(o.clone()),
        Command::E2e(o) => Suite::E2e(o.clone()),
        Command::Cpu(o) => Suite::Cpu(o.clone()),
        Command::Memory(o) => Suite::Memory(o.clone()),
        Command::Overhead(o) => Suite::Overhead(o.clone()),
        Command::Allocator(o) => Suite::Allocator(o.clone()),
    };
    if quick {
        Suite::by_name(single.name(), true).into_iter().collect()
    } else {
        vec![single]
    }
}

/// Runs the command: prints each suite as it finishes, then writes the JSON
/// and the charts. `Ok(false)` when a suite failed.
pub async fn run(cli: Cli) -> Result<bool, CliError> {
    let self_exe = std::env::current_exe().map_err(CliError::SelfExe)?;
    let bin_dir = match &cli.bin_dir {
        Some(dir) => dir.clone(),
        None => self_exe.parent().map(PathBuf::from).unwrap_or_default(),
    };
    let ctx = Context {
        bin_dir,
        self_exe,
        quick: cli.quick,
        host: Host::describe(),
    };
    let mut report = Report {
        tool: "mesos-bench",
        version: env!("CARGO_PKG_VERSION"),
        command: std::env::args().collect(),
        quick: cli.quick,
        started_unix: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64()),
        host: ctx.host.clone(),
        suites: Vec::new(),
    };
    print_flush(&report.render_header());
    for suite in suites(&cli.command, cli.quick) {
        let started = Instant::now();
        let mut result = suite.run(&ctx).await;
        result.duration_secs = started.elapsed().as_secs_f64();
        print_flush(&format!("\n{}", report::render_suite(&result)));
        report.suites.push(result);
    }
    let ok = report.suites.iter().all(|s| s.status != Status::Failed);
    let counts = |status| report.suites.iter().filter(|s| s.status == status).count();
    print_flush(&format!(
        "\n{} suite(s): {} ran, {} skipped, {} failed\n",
        report.suites.len(),
        counts(Status::Ran),
        counts(Status::Skipped),
        counts(Status::Failed)
    ));
    if let Some(path) = &cli.json {
        report.write_json(path)?;
        print_flush(&format!("wrote {}\n", path.display()));
    }
    if let Some(dir) = &cli.plot {
        let plotted = plot::write_charts(&report, dir)?;
        let text = if plotted.with_text {
            ""
        } else {
            " (no font found: charts without text; install fonts-dejavu-core or set MESOS_BENCH_FONT)"
        };
        print_flush(&format!(
            "wrote {} chart(s) to {}{text}\n",
            plotted.files.len(),
            dir.display()
        ));
    }
    Ok(ok)
}

fn print_flush(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}
