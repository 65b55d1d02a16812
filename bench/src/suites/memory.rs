//! `memory`: how fast a memory limit breach is noticed, and that tasks
//! within their limit are left alone.
//!
//! A child (`mesos-bench __alloc`) touches memory 1 MiB at a time up to 1.1×
//! or 2× its container's limit (as read from its own cgroup: through the
//! cluster that includes the command executor's allowance), stamping `CLOCK_MONOTONIC` after every step; the last
//! stamp before the OOM kill marks the breach. Measured twice:
//! - **isolator**: breach → `ContainerCgroup::limitation()` resolving (the
//!   child placed in a cgroup from `Isolator::prepare`);
//! - **cluster**: breach → the scheduler receiving `TASK_FAILED` with
//!   `REASON_CONTAINER_LIMITATION_MEMORY` (a task through master and agent).
//!
//! Tasks touching 90 % of the limit and holding it must finish untouched
//! (no false positives). Through the cluster the executor shares the
//! task's container and its memory, so the 90 % case leaves less headroom
//! there.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use clap::Args;
use mesos_isolator::{CgroupsConfig, ContainerLimits, Isolation, Isolator};
use mesos_proto::v1::task_status::Reason;
use mesos_proto::v1::TaskState;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::clock::{monotonic_ns, ms_between};
use crate::framework::{Event, TaskRequest};
use crate::progress;
use crate::report::{Cell, Chart, ChartKind, Series, SuiteReport, Table};
use crate::stats::Summary;
use crate::suites::{Context, Session};
use crate::workload::{last_stamp, target_and_limit};

/// The allocation sizes, as multiples of the limit.
const FACTORS: [f64; 3] = [1.1, 2.0, 0.9];
/// How long a child may run at most.
const CHILD_TIMEOUT: Duration = Duration::from_secs(60);
/// How long after an OOM-killed child the limitation may take to show.
const LIMITATION_TIMEOUT: Duration = Duration::from_secs(10);

/// Options of the memory suite.
#[derive(Debug, Clone, Args)]
pub struct MemoryOptions {
    /// The memory limit of each task, MiB.
    #[arg(long, default_value_t = 256)]
    pub limit_mb: u64,
    /// Runs per allocation size and path.
    #[arg(long, default_value_t = 10)]
    pub runs: usize,
    /// How long the 90 % tasks hold their memory, seconds.
    #[arg(long, default_value_t = 2.0)]
    pub hold_secs: f64,
    /// Skip the path through the local cluster.
    #[arg(long)]
    pub no_cluster: bool,
}

impl Default for MemoryOptions {
    fn default() -> Self {
        MemoryOptions {
            limit_mb: 256,
            runs: 10,
            hold_secs: 2.0,
            no_cluster: false,
        }
    }
}

impl MemoryOptions {
    /// The smoke-test size.
    pub fn quick() -> Self {
        MemoryOptions {
            limit_mb: 128,
            runs: 1,
            hold_secs: 0.5,
            no_cluster: false,
        }
    }
}

/// How one child ended.
#[derive(Debug, Clone)]
struct Outcome {
    /// Breach → reaction in ms, if the limit was enforced and noticed.
    latency_ms: Option<f64>,
    /// The isolator's limitation fired / the task failed with the memory reason.
    limited: bool,
    /// Reached its target and exited normally.
    completed: bool,
    /// State and reason (cluster) or exit status (isolator), for notes.
    detail: String,
    /// What the child set out to touch, MiB.
    target_mib: Option<f64>,
    /// The container's limit as the child read it from its cgroup, MiB.
    limit_mib: Option<f64>,
}

impl Outcome {
    /// Fills in the child's `target` / `limit` lines.
    fn with_sizes(mut self, output: &str) -> Self {
        let (target, limit) = target_and_limit(output);
        let mib = |b: u64| b as f64 / f64::from(1u32 << 20);
        self.target_mib = target.map(mib);
        self.limit_mib = limit.map(mib);
        self
    }
}

/// The `__alloc` arguments for `factor`: breaches are relative to the
/// container's real limit (read by the child from its cgroup: through the
/// cluster it includes the command executor's allowance), the 90 % case to
/// the task's own memory.
fn alloc_args(factor: f64, limit_mb: u64) -> Vec<String> {
    if factor > 1.0 {
        vec!["--limit-factor".to_owned(), factor.to_string()]
    } else {
        vec!["--mb".to_owned(), target_mb(limit_mb, factor).to_string()]
    }
}

/// Results per factor.
#[derive(Debug, Default)]
struct CaseResults {
    outcomes: Vec<Outcome>,
}

/// Runs the suite.
pub async fn run(options: &MemoryOptions, ctx: &Context) -> SuiteReport {
    let mut report = SuiteReport::new(
        "memory",
        "memory enforcement: limit breach → limitation / TASK_FAILED, no false positives at 90 %",
    );
    report.param("limit_mb", options.limit_mb);
    report.param("runs", options.runs);
    report.param("hold_secs", options.hold_secs);
    report.param("factors", FACTORS.to_vec());
    if let Some(why) = ctx.needs_root() {
        report.skip(why);
        return report;
    }
    if options.runs == 0 || options.limit_mb < 32 {
        report.fail("--runs must be at least 1 and --limit-mb at least 32 (Mesos's minimum)");
        return report;
    }
    let mut table = Table::new(
        format!(
            "limit {} MiB, {} runs per size: breach → reaction (ms)",
            options.limit_mb, options.runs
        ),
        &[
            "path",
            "allocates",
            "of",
            "target MiB",
            "runs",
            "enforced",
            "p50",
            "p90",
            "max",
            "untouched",
        ],
    );
    match isolator_path(options, ctx).await {
        Ok(results) => add_rows(&mut report, &mut table, "isolator → limitation()", &results),
        Err(e) => report.fail(format!("isolator path: {e}")),
    }
    if options.no_cluster {
        report.note("cluster path skipped (--no-cluster)");
    } else if let Some(why) = ctx.needs_cluster() {
        report.note(format!("cluster path skipped: {why}"));
    } else {
        match cluster_path(options, ctx).await {
            Ok(run) => {
                add_rows(
                    &mut report,
                    &mut table,
                    "cluster → TASK_FAILED",
                    &run.results,
                );
                report.notes.extend(run.notes);
                if let Some(e) = run.failure {
                    report.fail(format!("cluster path: {e}"));
                }
            }
            Err(e) => report.fail(format!("cluster path: {e}")),
        }
    }
    report.tables.push(table);
    report.note("enforced = killed and reported (isolator: limitation() resolved; cluster: TASK_FAILED with REASON_CONTAINER_LIMITATION_MEMORY); untouched = reached its target and exited normally, the expected outcome only at 0.9×");
    report.charts.push(Chart {
        id: "memory-breach".to_owned(),
        title: "memory limit breach → reaction".to_owned(),
        kind: ChartKind::Cdf,
        x_label: "ms".to_owned(),
        y_label: "fraction of breaches".to_owned(),
        reference_lines: Vec::new(),
    });
    report
}

fn target_mb(limit_mb: u64, factor: f64) -> u64 {
    (limit_mb as f64 * factor).round() as u64
}

fn add_rows(
    report: &mut SuiteReport,
    table: &mut Table,
    path: &str,
    results: &[(f64, CaseResults)],
) {
    for (factor, case) in results {
        let latencies: Vec<f64> = case.outcomes.iter().filter_map(|o| o.latency_ms).collect();
        let s = Summary::of(&latencies);
        let limited = case.outcomes.iter().filter(|o| o.limited).count();
        let completed = case.outcomes.iter().filter(|o| o.completed).count();
        let n = case.outcomes.len();
        let target = case.outcomes.iter().find_map(|o| o.target_mib);
        let limit = case.outcomes.iter().find_map(|o| o.limit_mib);
        let of = match (factor > &1.0, limit) {
            (true, Some(limit)) => format!("container limit {limit:.0} MiB"),
            (true, None) => "container limit".to_owned(),
            (false, _) => "task mem".to_owned(),
        };
        table.row(vec![
            Cell::text(path),
            Cell::text(format!("{factor}×")),
            Cell::text(of),
            Cell::opt(target, 0),
            Cell::int(n),
            Cell::text(format!("{limited}/{n}")),
            Cell::opt(s.map(|s| s.p50), 1),
            Cell::opt(s.map(|s| s.p90), 1),
            Cell::opt(s.map(|s| s.max), 1),
            Cell::text(format!("{completed}/{n}")),
        ]);
        let expected = if *factor < 1.0 {
            |o: &Outcome| o.completed && !o.limited
        } else {
            |o: &Outcome| o.limited
        };
        for outcome in case.outcomes.iter().filter(|o| !expected(o)) {
            report.note(format!(
                "{path}, {factor}×: unexpected outcome: {}",
                outcome.detail
            ));
        }
        if *factor > 1.0 {
            report.series.push(Series::new(
                format!("{path}, {factor}×"),
                "ms",
                Some("memory-breach"),
                latencies,
            ));
        }
    }
}

async fn isolator_path(
    options: &MemoryOptions,
    ctx: &Context,
) -> Result<Vec<(f64, CaseResults)>, String> {
    let root = format!("mesos-bench-{}-memory", std::process::id());
    let config = CgroupsConfig {
        root: root.clone(),
        ..CgroupsConfig::default()
    };
    let isolation: Isolation = "cgroups/cpu,cgroups/mem"
        .parse()
        .map_err(|e| format!("{e}"))?;
    let isolator = Isolator::new(config, isolation).map_err(|e| e.to_string())?;
    let bar = progress::bar((FACTORS.len() * options.runs) as u64, "mem isolator");
    let mut results = Vec::new();
    let mut failure = None;
    'cases: for (c, factor) in FACTORS.into_iter().enumerate() {
        let mut case = CaseResults::default();
        for r in 0..options.runs {
            match isolator_once(&isolator, ctx, &format!("m{c}-{r}"), options, factor).await {
                Ok(outcome) => case.outcomes.push(outcome),
                Err(e) => {
                    failure = Some(e);
                    break 'cases;
                }
            }
            bar.inc(1);
        }
        results.push((factor, case));
    }
    bar.finish_and_clear();
    let cleanup = isolator.destroy_all().await;
    match (failure, cleanup) {
        (Some(e), _) => Err(e),
        (None, Err(e)) => Err(format!("removing {root}: {e}")),
        (None, Ok(())) => Ok(results),
    }
}

async fn isolator_once(
    isolator: &Isolator,
    ctx: &Context,
    id: &str,
    options: &MemoryOptions,
    factor: f64,
) -> Result<Outcome, String> {
    let limit = options.limit_mb << 20;
    let cgroup = isolator
        .prepare(id, &ContainerLimits::new(0.5, limit))
        .map_err(|e| e.to_string())?;
    let hold = options.hold_secs.to_string();
    let mut child = tokio::process::Command::new(&ctx.self_exe)
        .arg("__alloc")
        .args(alloc_args(factor, options.limit_mb))
        .args(["--hold-secs", &hold, "--wait-go"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("spawn {}: {e}", ctx.self_exe.display()))?;
    let pid = child
        .id()
        .and_then(|p| i32::try_from(p).ok())
        .ok_or("the child has no pid")?;
    cgroup.attach(pid).map_err(|e| e.to_string())?;
    let watch = cgroup.limitation_watch();
    let mut limitation = tokio::spawn(async move {
        let result = watch.try_wait().await;
        (result.map_err(|e| e.to_string()), monotonic_ns())
    });
    // Let the watch arm (register its eventfd / inotify) before the breach.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut stdout = child.stdout.take().ok_or("no stdout")?;
    let reader = tokio::spawn(async move {
        let mut output = String::new();
        let _ = stdout.read_to_string(&mut output).await;
        output
    });
    child
        .stdin
        .take()
        .ok_or("no stdin")?
        .write_all(b"g")
        .await
        .map_err(|e| e.to_string())?;
    let status = tokio::time::timeout(CHILD_TIMEOUT, child.wait()).await;
    let output = reader.await.unwrap_or_default();
    let completed = matches!(&status, Ok(Ok(s)) if s.success());
    let detail = format!("child {status:?}");
    let fired = if factor > 1.0 {
        tokio::time::timeout(LIMITATION_TIMEOUT, &mut limitation)
            .await
            .ok()
            .and_then(Result::ok)
    } else {
        // Nothing should fire; give a late event a moment to show up.
        tokio::time::sleep(Duration::from_millis(200)).await;
        if limitation.is_finished() {
            (&mut limitation).await.ok()
        } else {
            None
        }
    };
    limitation.abort();
    let _ = child.kill().await;
    cgroup.destroy().await.map_err(|e| e.to_string())?;
    let (limited, at) = match fired {
        Some((Ok(_), at)) => (true, Some(at)),
        Some((Err(e), _)) => return Err(format!("the OOM watch failed: {e}")),
        None => (false, None),
    };
    let breach = last_stamp(&output).map(|(ns, _)| ns);
    Ok(Outcome {
        latency_ms: at.zip(breach).map(|(at, breach)| ms_between(breach, at)),
        limited,
        completed,
        detail,
        target_mib: None,
        limit_mib: None,
    }
    .with_sizes(&output))
}

/// What the cluster path got, also when it stopped early.
struct ClusterRun {
    results: Vec<(f64, CaseResults)>,
    notes: Vec<String>,
    failure: Option<String>,
}

async fn cluster_path(options: &MemoryOptions, ctx: &Context) -> Result<ClusterRun, String> {
    let stamps = tempfile::Builder::new()
        .prefix("mesos-bench-memory-")
        .tempdir()
        .map_err(|e| format!("temporary directory: {e}"))?;
    let mut session = Session::start(&ctx.cluster_config(), "mesos-bench memory").await?;
    let bar = progress::bar((FACTORS.len() * options.runs) as u64, "mem cluster");
    let mut results = Vec::new();
    let mut failure = None;
    'cases: for (c, factor) in FACTORS.into_iter().enumerate() {
        let mut case = CaseResults::default();
        for r in 0..options.runs {
            match cluster_once(
                &mut session,
                ctx,
                options,
                factor,
                &stamps.path().join(format!("{c}-{r}")),
            )
            .await
            {
                Ok(outcome) => case.outcomes.push(outcome),
                Err(e) => {
                    failure = Some(session.explain(e));
                    results.push((factor, case));
                    break 'cases;
                }
            }
            bar.inc(1);
        }
        results.push((factor, case));
    }
    bar.finish_and_clear();
    let cleanup = session.stop().await;
    Ok(ClusterRun {
        results,
        notes: cleanup.into_iter().collect(),
        failure,
    })
}

async fn cluster_once(
    session: &mut Session,
    ctx: &Context,
    options: &MemoryOptions,
    factor: f64,
    stamp: &Path,
) -> Result<Outcome, String> {
    let id = stamp
        .file_name()
        .map(|n| format!("memory-{}", n.to_string_lossy()))
        .unwrap_or_else(|| "memory".to_owned());
    let hold = options.hold_secs.to_string();
    let stamp_arg = stamp.display().to_string();
    let mut args: Vec<String> = vec!["__alloc".to_owned()];
    args.extend(alloc_args(factor, options.limit_mb));
    args.extend([
        "--hold-secs".to_owned(),
        hold,
        "--stamp-file".to_owned(),
        stamp_arg,
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    session.framework.submit([TaskRequest {
        id: id.clone(),
        cpus: 0.5,
        mem_mb: options.limit_mb as f64,
        command: ctx.self_command(&args),
    }]);
    let events = session
        .framework
        .collect_until(CHILD_TIMEOUT, &format!("the terminal update of {id}"), |e| {
            matches!(e, Event::Update { task_id, state, .. } if *task_id == id && state.is_terminal())
        })
        .await
        .map_err(|e| e.to_string())?;
    let Some(Event::Update {
        state,
        reason,
        message,
        at_ns,
        ..
    }) = events.last()
    else {
        return Err(format!("no terminal update for {id}"));
    };
    let output = std::fs::read_to_string(stamp).unwrap_or_default();
    let breach = last_stamp(&output);
    let limited =
        *state == TaskState::TaskFailed && *reason == Some(Reason::ContainerLimitationMemory);
    Ok(Outcome {
        latency_ms: if limited {
            breach.map(|(ns, _)| ms_between(ns, *at_ns))
        } else {
            None
        },
        limited,
        completed: *state == TaskState::TaskFinished,
        detail: format!(
            "{} {} {message}",
            state.as_str_name(),
            reason.map_or("", |r| r.as_str_name())
        ),
        target_mib: None,
        limit_mib: None,
    }
    .with_sizes(&output))
}
