//! `e2e`: scheduling latency and throughput through a local cluster. The
//! benchmark framework queues N short tasks (`true`) and launches them on
//! the offers it gets; per task it records offer accepted (`launch_tasks`
//! called) → `TASK_RUNNING` and → `TASK_FINISHED` as seen by the scheduler.

use std::collections::HashMap;
use std::time::Duration;

use clap::Args;
use mesos_proto::v1::TaskState;

use crate::clock::ms_between;
use crate::framework::{Event, TaskRequest};
use crate::progress;
use crate::report::{Cell, Chart, ChartKind, Series, SuiteReport, Table};
use crate::stats::Summary;
use crate::suites::{Context, Session};

/// A run fails when no event arrives for this long.
const STALL_TIMEOUT: Duration = Duration::from_secs(60);

/// Options of the e2e suite.
#[derive(Debug, Clone, Args)]
pub struct E2eOptions {
    /// Tasks to run.
    #[arg(long, default_value_t = 1000)]
    pub tasks: usize,
    /// cpus per task.
    #[arg(long, default_value_t = 0.05)]
    pub task_cpus: f64,
    /// mem per task, MB.
    #[arg(long, default_value_t = 32.0)]
    pub task_mem: f64,
}

impl Default for E2eOptions {
    fn default() -> Self {
        E2eOptions {
            tasks: 1000,
            task_cpus: 0.05,
            task_mem: 32.0,
        }
    }
}

impl E2eOptions {
    /// The smoke-test size.
    pub fn quick() -> Self {
        E2eOptions {
            tasks: 10,
            ..E2eOptions::default()
        }
    }
}

/// When things happened to one task (`CLOCK_MONOTONIC` ns).
#[derive(Debug, Default, Clone)]
struct TaskTimes {
    launched: Option<u64>,
    running: Option<u64>,
    terminal: Option<(u64, TaskState, String)>,
}

/// Runs the suite.
pub async fn run(options: &E2eOptions, ctx: &Context) -> SuiteReport {
    let mut report = SuiteReport::new(
        "e2e",
        "offer accepted → TASK_RUNNING / TASK_FINISHED through master + agent, and tasks/s",
    );
    report.param("tasks", options.tasks);
    report.param("task_cpus", options.task_cpus);
    report.param("task_mem", options.task_mem);
    report.param("agent_resources", ctx.cluster_config().resources);
    if let Some(why) = ctx.needs_cluster() {
        report.skip(why);
        return report;
    }
    if options.tasks == 0 || options.task_cpus <= 0.0 || options.task_mem <= 0.0 {
        report.fail("--tasks, --task-cpus and --task-mem must be positive");
        return report;
    }
    let mut session = match Session::start(&ctx.cluster_config(), "mesos-bench e2e").await {
        Ok(session) => session,
        Err(e) => {
            report.fail(e);
            return report;
        }
    };
    let ids: Vec<String> = (0..options.tasks).map(|i| format!("e2e-{i:05}")).collect();
    let mut times: HashMap<String, TaskTimes> = ids
        .iter()
        .map(|id| (id.clone(), TaskTimes::default()))
        .collect();
    let result = run_tasks(&mut session, options, &ids, &mut times).await;
    let result = result.map_err(|e| session.explain(e));
    if let Some(note) = session.stop().await {
        report.note(note);
    }
    // Partial results are still worth showing next to the error.
    summarise(&mut report, &times, options);
    if let Err(e) = result {
        report.fail(e);
    }
    report
}

async fn run_tasks(
    session: &mut Session,
    options: &E2eOptions,
    ids: &[String],
    times: &mut HashMap<String, TaskTimes>,
) -> Result<(), String> {
    session.framework.submit(ids.iter().map(|id| TaskRequest {
        id: id.clone(),
        cpus: options.task_cpus,
        mem_mb: options.task_mem,
        command: "true".to_owned(),
    }));
    let bar = progress::bar(options.tasks as u64, "e2e");
    let mut done = 0;
    while done < options.tasks {
        let event = match session
            .framework
            .next(
                STALL_TIMEOUT,
                &format!("event ({done}/{} tasks ended)", options.tasks),
            )
            .await
        {
            Ok(event) => event,
            Err(e) => {
                bar.finish_and_clear();
                return Err(format!("{e}; {}", unfinished(times)));
            }
        };
        match event {
            Event::Launched { task_id, at_ns } => {
                if let Some(t) = times.get_mut(&task_id) {
                    t.launched = Some(at_ns);
                }
            }
            Event::Update {
                task_id,
                state,
                message,
                at_ns,
                ..
            } => {
                let Some(t) = times.get_mut(&task_id) else {
                    continue;
                };
                if state == TaskState::TaskRunning {
                    t.running.get_or_insert(at_ns);
                } else if state.is_terminal() && t.terminal.is_none() {
                    t.terminal = Some((at_ns, state, message));
                    done += 1;
                    bar.inc(1);
                }
            }
            Event::Error(e) => {
                bar.finish_and_clear();
                return Err(e);
            }
            Event::FirstOffer { .. } => {}
        }
    }
    bar.finish_and_clear();
    Ok(())
}

/// The tasks still without a terminal update and how far they got.
fn unfinished(times: &HashMap<String, TaskTimes>) -> String {
    let mut open: Vec<String> = times
        .iter()
        .filter(|(_, t)| t.terminal.is_none())
        .map(|(id, t)| {
            let stage = match (t.launched, t.running) {
                (None, _) => "not launched",
                (Some(_), None) => "launched, no TASK_RUNNING",
                (Some(_), Some(_)) => "TASK_RUNNING",
            };
            format!("{id} ({stage})")
        })
        .collect();
    open.sort();
    let shown = open.len().min(10);
    format!(
        "{} task(s) without a terminal update: {}",
        open.len(),
        open[..shown].join(", ")
    )
}

fn summarise(report: &mut SuiteReport, times: &HashMap<String, TaskTimes>, options: &E2eOptions) {
    let mut to_running = Vec::new();
    let mut to_finished = Vec::new();
    let mut failed: HashMap<&str, usize> = HashMap::new();
    let mut sorted: Vec<(&String, &TaskTimes)> = times.iter().collect();
    sorted.sort_by_key(|(id, _)| *id);
    for (_, t) in &sorted {
        let Some(launched) = t.launched else { continue };
        if let Some(running) = t.running {
            to_running.push(ms_between(launched, running));
        }
        match &t.terminal {
            Some((at, TaskState::TaskFinished, _)) => to_finished.push(ms_between(launched, *at)),
            Some((_, state, _)) => *failed.entry(state.as_str_name()).or_default() += 1,
            None => {}
        }
    }
    let mut table = Table::new(
        format!(
            "{} tasks of `true` (cpus {}, mem {} MB) on one agent (ms)",
            options.tasks, options.task_cpus, options.task_mem
        ),
        &["measure", "n", "p50", "p90", "p99", "max"],
    );
    for (measure, samples) in [
        ("accepted → TASK_RUNNING", &to_running),
        ("accepted → TASK_FINISHED", &to_finished),
    ] {
        let s = Summary::of(samples);
        table.row(vec![
            Cell::text(measure),
            Cell::int(samples.len()),
            Cell::opt(s.map(|s| s.p50), 1),
            Cell::opt(s.map(|s| s.p90), 1),
            Cell::opt(s.map(|s| s.p99), 1),
            Cell::opt(s.map(|s| s.max), 1),
        ]);
        report.series.push(Series::new(
            measure,
            "ms",
            Some("e2e-latency"),
            samples.clone(),
        ));
    }
    report.tables.push(table);

    let first_launch = times.values().filter_map(|t| t.launched).min();
    let last_end = times
        .values()
        .filter_map(|t| t.terminal.as_ref().map(|(at, _, _)| *at))
        .max();
    let span_secs = first_launch
        .zip(last_end)
        .map(|(a, b)| ms_between(a, b) / 1e3);
    let mut throughput = Table::new(
        "throughput",
        &[
            "tasks",
            "finished",
            "other end",
            "first accept → last end (s)",
            "tasks/s",
        ],
    );
    throughput.row(vec![
        Cell::int(options.tasks),
        Cell::int(to_finished.len()),
        Cell::int(failed.values().sum()),
        Cell::opt(span_secs, 2),
        Cell::opt(
            span_secs
                .filter(|s| *s > 0.0)
                .map(|s| to_finished.len() as f64 / s),
            1,
        ),
    ]);
    report.tables.push(throughput);
    for (state, count) in failed {
        report.note(format!("{count} task(s) ended {state}"));
    }
    if let Some((id, t)) = sorted
        .iter()
        .find(|(_, t)| matches!(&t.terminal, Some((_, s, _)) if *s != TaskState::TaskFinished))
    {
        if let Some((_, state, message)) = &t.terminal {
            report.note(format!("e.g. {id}: {} {message}", state.as_str_name()));
        }
    }
    report.charts.push(Chart {
        id: "e2e-latency".to_owned(),
        title: format!("offer accepted → task state, {} tasks", options.tasks),
        kind: ChartKind::Cdf,
        x_label: "ms".to_owned(),
        y_label: "fraction of tasks".to_owned(),
        reference_lines: Vec::new(),
    });
}
