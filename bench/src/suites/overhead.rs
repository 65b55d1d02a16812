//! `overhead`: what the agent and executors cost. Through a local cluster:
//! the agent's (and master's) resident memory and CPU while idle, then T
//! long-sleeping tasks, the agent's memory with them running and each
//! command executor's own resident memory.

use std::time::{Duration, Instant};

use clap::Args;
use mesos_proto::v1::TaskState;

use crate::framework::{Event, TaskRequest};
use crate::procfs;
use crate::progress;
use crate::report::{Cell, Series, SuiteReport, Table};
use crate::stats::Summary;
use crate::suites::{Context, Session};

/// The executor binary's process name.
const EXECUTOR_COMM: &str = "mesos-executor";
/// How long all tasks get to reach TASK_RUNNING.
const RUNNING_TIMEOUT: Duration = Duration::from_secs(180);

/// Options of the overhead suite.
#[derive(Debug, Clone, Args)]
pub struct OverheadOptions {
    /// Long-running tasks to start.
    #[arg(long, default_value_t = 100)]
    pub running_tasks: usize,
    /// Idle window for the CPU figure, seconds.
    #[arg(long, default_value_t = 10.0)]
    pub idle_secs: f64,
}

impl Default for OverheadOptions {
    fn default() -> Self {
        OverheadOptions {
            running_tasks: 100,
            idle_secs: 10.0,
        }
    }
}

impl OverheadOptions {
    /// The smoke-test size.
    pub fn quick() -> Self {
        OverheadOptions {
            running_tasks: 5,
            idle_secs: 2.0,
        }
    }
}

/// Memory and CPU of one process over a window.
#[derive(Debug, Clone, Copy)]
struct ProcessFigures {
    rss_mib: Option<f64>,
    cpu_percent: Option<f64>,
}

/// Samples `pid` over `window`: RSS at the end, CPU time / wall time.
async fn observe(pid: Option<i32>, window: Duration) -> ProcessFigures {
    let Some(pid) = pid else {
        return ProcessFigures {
            rss_mib: None,
            cpu_percent: None,
        };
    };
    let (cpu0, t0) = (procfs::cpu_secs(pid), Instant::now());
    tokio::time::sleep(window).await;
    let (cpu1, wall) = (procfs::cpu_secs(pid), t0.elapsed().as_secs_f64());
    ProcessFigures {
        rss_mib: procfs::rss_kib(pid).map(kib_to_mib),
        cpu_percent: cpu0.zip(cpu1).map(|(a, b)| (b - a) / wall * 100.0),
    }
}

fn kib_to_mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Runs the suite.
pub async fn run(options: &OverheadOptions, ctx: &Context) -> SuiteReport {
    let mut report = SuiteReport::new(
        "overhead",
        "agent and executor resident memory and CPU, idle and with running tasks",
    );
    report.param("running_tasks", options.running_tasks);
    report.param("idle_secs", options.idle_secs);
    if let Some(why) = ctx.needs_cluster() {
        report.skip(why);
        return report;
    }
    if options.idle_secs <= 0.0 {
        report.fail("--idle-secs must be positive");
        return report;
    }
    let mut config = ctx.cluster_config();
    // Room for the tasks plus any per-executor allowance the agent adds.
    config.resources = "cpus:2;mem:16384".to_owned();
    report.param("agent_resources", config.resources.clone());
    let mut session = match Session::start(&config, "mesos-bench overhead").await {
        Ok(session) => session,
        Err(e) => {
            report.fail(e);
            return report;
        }
    };
    let result = measure(&mut session, options, &mut report)
        .await
        .map_err(|e| session.explain(e));
    if let Some(note) = session.stop().await {
        report.note(note);
    }
    if let Err(e) = result {
        report.fail(e);
    }
    report
}

async fn measure(
    session: &mut Session,
    options: &OverheadOptions,
    report: &mut SuiteReport,
) -> Result<(), String> {
    let window = Duration::from_secs_f64(options.idle_secs);
    let agent_pid = session.cluster.agent_pid();
    let master_pid = session.cluster.master_pid();
    let spinner = progress::spinner("overhead");
    spinner.set_message("idle cluster");
    let (agent_idle, master_idle) =
        tokio::join!(observe(agent_pid, window), observe(master_pid, window));

    spinner.set_message(format!("starting {} tasks", options.running_tasks));
    let started = start_sleepers(session, options.running_tasks).await?;
    spinner.set_message(format!("{started} running tasks"));
    let (agent_busy, master_busy) =
        tokio::join!(observe(agent_pid, window), observe(master_pid, window));
    let executors: Vec<f64> = agent_pid
        .map(procfs::descendants)
        .unwrap_or_default()
        .into_iter()
        .filter(|(_, comm)| comm == EXECUTOR_COMM)
        .filter_map(|(pid, _)| procfs::rss_kib(pid).map(kib_to_mib))
        .collect();
    spinner.finish_and_clear();

    let mut table = Table::new(
        format!(
            "resident memory (MiB) and CPU (% of one core over {:.0} s)",
            options.idle_secs
        ),
        &["process", "state", "RSS MiB", "CPU %"],
    );
    let busy = format!("{started} tasks running");
    for (process, state, figures) in [
        ("mesos-agent", "idle", agent_idle),
        ("mesos-agent", busy.as_str(), agent_busy),
        ("mesos-master", "idle", master_idle),
        ("mesos-master", busy.as_str(), master_busy),
    ] {
        table.row(vec![
            Cell::text(process),
            Cell::text(state),
            Cell::opt(figures.rss_mib, 1),
            Cell::opt(figures.cpu_percent, 2),
        ]);
    }
    report.tables.push(table);

    let per_task = agent_idle
        .rss_mib
        .zip(agent_busy.rss_mib)
        .filter(|_| started > 0)
        .map(|(idle, busy)| (busy - idle) / started as f64);
    let s = Summary::of(&executors);
    let mut per_task_table = Table::new(
        "per running task (MiB)",
        &["measure", "n", "p50", "max", "mean"],
    );
    per_task_table.row(vec![
        Cell::text("mesos-executor RSS"),
        Cell::int(executors.len()),
        Cell::opt(s.map(|s| s.p50), 2),
        Cell::opt(s.map(|s| s.max), 2),
        Cell::opt(s.map(|s| s.mean), 2),
    ]);
    per_task_table.row(vec![
        Cell::text("agent RSS growth"),
        Cell::int(started),
        Cell::Empty,
        Cell::Empty,
        Cell::opt(per_task, 3),
    ]);
    report.tables.push(per_task_table);
    if executors.len() != started {
        report.note(format!(
            "found {} {EXECUTOR_COMM} processes under the agent for {started} running tasks",
            executors.len()
        ));
    }
    report
        .series
        .push(Series::new("mesos-executor RSS", "MiB", None, executors));
    Ok(())
}

/// Launches `count` sleeping tasks and waits until all run; how many did.
async fn start_sleepers(session: &mut Session, count: usize) -> Result<usize, String> {
    session.framework.submit((0..count).map(|i| TaskRequest {
        id: format!("sleeper-{i:04}"),
        cpus: 0.01,
        mem_mb: 32.0,
        command: "sleep 3600".to_owned(),
    }));
    let mut running = 0;
    let mut ended = Vec::new();
    let bar = progress::bar(count as u64, "overhead");
    let result = session
        .framework
        .collect_until(RUNNING_TIMEOUT, "all tasks running", |event| {
            if let Event::Update {
                task_id,
                state,
                message,
                ..
            } = event
            {
                if *state == TaskState::TaskRunning {
                    running += 1;
                    bar.inc(1);
                } else if state.is_terminal() {
                    ended.push(format!("{task_id}: {} {message}", state.as_str_name()));
                }
            }
            running + ended.len() >= count
        })
        .await;
    bar.finish_and_clear();
    result.map_err(|e| e.to_string())?;
    if let Some(first) = ended.first() {
        return Err(format!(
            "{} task(s) ended instead of running, e.g. {first}",
            ended.len()
        ));
    }
    Ok(running)
}
