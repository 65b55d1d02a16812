//! `cpu`: how faithfully CPU is enforced. Busy-loop children are placed in
//! container cgroups made by the isolator itself (`mesos_isolator::Isolator`:
//! `prepare`, `attach`, `usage`, `destroy`), without the cluster, so the
//! numbers are the kernel's enforcement of the isolator's settings and
//! nothing else. The share of a task is its cgroup's CPU time (user +
//! system, from `ContainerCgroup::usage`) over each 1 s wall-clock window.
//!
//! Scenarios:
//! - **alone**: one task at a time with a CFS quota of 0.25, 0.5 and 1.0 cpus;
//! - **competing**: the three capped tasks at once;
//! - **weights only**: the same three requests without a quota, all pinned
//!   to one CPU, so only `cpu.shares` (v1) / `cpu.weight` (v2) divide it: the
//!   expected fraction of the three tasks' total is the request over the sum.

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clap::Args;
use mesos_isolator::{CgroupsConfig, ContainerCgroup, ContainerLimits, Isolation, Isolator};

use crate::progress;
use crate::report::{Cell, Chart, ChartKind, SuiteReport, Table, TimeSeries};
use crate::stats::{error_percent, Summary};
use crate::suites::Context;

/// The requests the issue names.
const REQUESTS: [f64; 3] = [0.25, 0.5, 1.0];
/// Time for a freshly started spinner to settle before the first window.
const SETTLE: Duration = Duration::from_millis(300);

/// Options of the cpu suite.
#[derive(Debug, Clone, Args)]
pub struct CpuOptions {
    /// 1 s windows measured per scenario.
    #[arg(long, default_value_t = 10)]
    pub windows: usize,
    /// Window length in seconds.
    #[arg(long, default_value_t = 1.0)]
    pub window_secs: f64,
}

impl Default for CpuOptions {
    fn default() -> Self {
        CpuOptions {
            windows: 10,
            window_secs: 1.0,
        }
    }
}

impl CpuOptions {
    /// The smoke-test size.
    pub fn quick() -> Self {
        CpuOptions {
            windows: 2,
            window_secs: 1.0,
        }
    }
}

/// A busy loop in its own container cgroup.
struct Spinner {
    label: String,
    cpus: f64,
    cgroup: Option<ContainerCgroup>,
    child: Child,
}

impl Spinner {
    /// Prepares the cgroup, starts `__spin --wait-go`, attaches it, and
    /// optionally pins it to `cpu`.
    fn start(
        ctx: &Context,
        isolator: &Isolator,
        id: &str,
        limits: &ContainerLimits,
        pin: Option<usize>,
    ) -> Result<Self, String> {
        let cgroup = isolator.prepare(id, limits).map_err(|e| e.to_string())?;
        let child = Command::new(&ctx.self_exe)
            .args(["__spin", "--wait-go"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn();
        let spinner = Spinner {
            label: format!("{:.2} cpus", limits.cpus),
            cpus: limits.cpus,
            child: match child {
                Ok(child) => child,
                // The cgroup stays for `destroy_all` at the end of the suite.
                Err(e) => return Err(format!("spawn {}: {e}", ctx.self_exe.display())),
            },
            cgroup: Some(cgroup),
        };
        let pid = i32::try_from(spinner.child.id()).map_err(|e| e.to_string())?;
        spinner.cgroup()?.attach(pid).map_err(|e| e.to_string())?;
        if let Some(cpu) = pin {
            let mut set = nix::sched::CpuSet::new();
            set.set(cpu).map_err(|e| e.to_string())?;
            nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(pid), &set)
                .map_err(|e| format!("pin to cpu {cpu}: {e}"))?;
        }
        Ok(spinner)
    }

    fn cgroup(&self) -> Result<&ContainerCgroup, String> {
        self.cgroup
            .as_ref()
            .ok_or_else(|| "cgroup already destroyed".to_owned())
    }

    fn go(&mut self) -> Result<(), String> {
        let stdin = self.child.stdin.as_mut().ok_or("no stdin")?;
        stdin.write_all(b"g").map_err(|e| e.to_string())
    }

    /// CPU seconds (user + system) and throttled/total CFS periods so far.
    fn sample(&self) -> Result<(f64, Option<(u32, u32)>), String> {
        let usage = self.cgroup()?.usage().map_err(|e| e.to_string())?;
        let cpu =
            usage.cpus_user_time_secs.unwrap_or(0.0) + usage.cpus_system_time_secs.unwrap_or(0.0);
        let throttling = usage.cpus_nr_throttled.zip(usage.cpus_nr_periods);
        Ok((cpu, throttling))
    }

    async fn stop(mut self) -> Result<(), String> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        match self.cgroup.take() {
            Some(cgroup) => cgroup.destroy().await.map_err(|e| e.to_string()),
            None => Ok(()),
        }
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        // A spinner left running would skew every later measurement.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One task's measurements in one scenario.
struct Measured {
    label: String,
    cpus: f64,
    shares: Vec<f64>,
    points: Vec<(f64, f64)>,
    throttled: Option<f64>,
}

/// Starts all spinners, measures `windows` windows, stops them.
async fn measure(
    mut spinners: Vec<Spinner>,
    options: &CpuOptions,
    bar: &indicatif::ProgressBar,
) -> Result<Vec<Measured>, String> {
    let result = measure_running(&mut spinners, options, bar).await;
    let mut stop_error = None;
    for spinner in spinners {
        if let Err(e) = spinner.stop().await {
            stop_error.get_or_insert(e);
        }
    }
    match (result, stop_error) {
        (Err(e), _) | (Ok(_), Some(e)) => Err(e),
        (Ok(measured), None) => Ok(measured),
    }
}

async fn measure_running(
    spinners: &mut [Spinner],
    options: &CpuOptions,
    bar: &indicatif::ProgressBar,
) -> Result<Vec<Measured>, String> {
    for spinner in spinners.iter_mut() {
        spinner.go()?;
    }
    tokio::time::sleep(SETTLE).await;
    let mut measured: Vec<Measured> = spinners
        .iter()
        .map(|s| Measured {
            label: s.label.clone(),
            cpus: s.cpus,
            shares: Vec::new(),
            points: Vec::new(),
            throttled: None,
        })
        .collect();
    let start = Instant::now();
    let mut previous: Vec<(f64, Option<(u32, u32)>)> = spinners
        .iter()
        .map(Spinner::sample)
        .collect::<Result<_, _>>()?;
    let first = previous.clone();
    let mut at = Instant::now();
    for _ in 0..options.windows {
        tokio::time::sleep(Duration::from_secs_f64(options.window_secs)).await;
        let now = Instant::now();
        let wall = now.duration_since(at).as_secs_f64();
        at = now;
        let current: Vec<_> = spinners
            .iter()
            .map(Spinner::sample)
            .collect::<Result<_, _>>()?;
        for ((m, (cpu, _)), (before, _)) in measured.iter_mut().zip(&current).zip(&previous) {
            let share = (cpu - before) / wall;
            m.shares.push(share);
            m.points
                .push((now.duration_since(start).as_secs_f64(), share));
        }
        previous = current;
        bar.inc(1);
    }
    for ((m, (_, last)), (_, first)) in measured.iter_mut().zip(&previous).zip(&first) {
        if let (Some((t1, p1)), Some((t0, p0))) = (last, first) {
            let periods = p1.saturating_sub(*p0);
            m.throttled =
                (periods > 0).then(|| f64::from(t1.saturating_sub(*t0)) / f64::from(periods));
        }
    }
    Ok(measured)
}

/// Runs the suite.
pub async fn run(options: &CpuOptions, ctx: &Context) -> SuiteReport {
    let mut report = SuiteReport::new(
        "cpu",
        "CPU enforcement: measured share per 1 s window vs the limit or weight",
    );
    report.param("windows", options.windows);
    report.param("window_secs", options.window_secs);
    report.param("requests", REQUESTS.to_vec());
    report.param(
        "method",
        "isolator directly (no cluster): busy-loop children attached to container cgroups",
    );
    if let Some(why) = ctx.needs_root() {
        report.skip(why);
        return report;
    }
    if options.windows == 0 || options.window_secs <= 0.0 {
        report.fail("--windows and --window-secs must be positive");
        return report;
    }
    let root = format!("mesos-bench-{}-cpu", std::process::id());
    let isolator = match isolator(&root) {
        Ok(isolator) => isolator,
        Err(e) => {
            report.fail(e);
            return report;
        }
    };
    report.note(format!(
        "isolator driver {} (cgroup layout {})",
        isolator.driver(),
        isolator.layout()
    ));
    if isolator.driver() == "cgroups1" {
        report.note(
            "v1 CPU time comes from cpuacct.stat in USER_HZ ticks (10 ms): ±1 % per 1 s window",
        );
    }
    let result = run_scenarios(&mut report, options, ctx, &isolator).await;
    if let Err(e) = isolator.destroy_all().await {
        report.note(format!("removing {root}: {e}"));
    }
    if let Err(e) = result {
        report.fail(e);
    }
    report
}

fn isolator(root: &str) -> Result<Isolator, String> {
    let config = CgroupsConfig {
        root: root.to_owned(),
        enable_cfs: false,
        ..CgroupsConfig::default()
    };
    let isolation: Isolation = "cgroups/cpu,cgroups/mem"
        .parse()
        .map_err(|e| format!("{e}"))?;
    Isolator::new(config, isolation).map_err(|e| e.to_string())
}

/// A CFS-capped request: `cpus` as both request (shares) and limit (quota).
fn capped(cpus: f64) -> ContainerLimits {
    ContainerLimits {
        cpus_limit: Some(cpus),
        ..ContainerLimits::new(cpus, 64 << 20)
    }
}

async fn run_scenarios(
    report: &mut SuiteReport,
    options: &CpuOptions,
    ctx: &Context,
    isolator: &Isolator,
) -> Result<(), String> {
    let windows_total = options.windows * (REQUESTS.len() + 2);
    let bar = progress::bar(windows_total as u64, "cpu");
    let mut capped_table = Table::new(
        format!(
            "CFS quota: measured share over {} × {:.1} s windows (cpus)",
            options.windows, options.window_secs
        ),
        &[
            "scenario",
            "task",
            "limit",
            "mean",
            "min",
            "max",
            "error %",
            "throttled %",
        ],
    );
    let mut alone = Vec::new();
    for (i, &cpus) in REQUESTS.iter().enumerate() {
        let spinner = Spinner::start(ctx, isolator, &format!("alone-{i}"), &capped(cpus), None)?;
        alone.extend(measure(vec![spinner], options, &bar).await?);
    }
    capped_rows(&mut capped_table, "alone", &alone);
    let spinners = REQUESTS
        .iter()
        .enumerate()
        .map(|(i, &cpus)| {
            Spinner::start(
                ctx,
                isolator,
                &format!("competing-{i}"),
                &capped(cpus),
                None,
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    let competing = measure(spinners, options, &bar).await?;
    capped_rows(&mut capped_table, "competing", &competing);

    // Pin to the last CPU this process may use: all three fight over it.
    let cpu = ctx.host.cores.saturating_sub(1);
    let spinners = REQUESTS
        .iter()
        .enumerate()
        .map(|(i, &cpus)| {
            Spinner::start(
                ctx,
                isolator,
                &format!("weights-{i}"),
                &ContainerLimits::new(cpus, 64 << 20),
                Some(cpu),
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    let weights = measure(spinners, options, &bar).await?;
    bar.finish_and_clear();

    report.tables.push(capped_table);
    report.note(format!(
        "a quota only caps: a share below the limit means other load on the host took the CPU (load average now {}); a share above it would be an enforcement fault",
        std::fs::read_to_string("/proc/loadavg").unwrap_or_default().split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    ));
    report
        .tables
        .push(weights_table(&weights, options, cpu, isolator.driver()));
    for (scenario, measured, references) in [
        ("alone", &alone, REQUESTS.to_vec()),
        ("competing", &competing, REQUESTS.to_vec()),
        ("weights", &weights, Vec::new()),
    ] {
        let id = format!("cpu-{scenario}");
        for m in measured {
            report.timeseries.push(TimeSeries {
                name: format!("{} ({scenario})", m.label),
                unit: "cpus".to_owned(),
                chart: Some(id.clone()),
                points: m.points.clone(),
            });
        }
        report.charts.push(Chart {
            id,
            title: format!("CPU share per window, {scenario}"),
            kind: ChartKind::Time,
            x_label: "seconds".to_owned(),
            y_label: "cpus".to_owned(),
            reference_lines: references,
        });
    }
    Ok(())
}

fn capped_rows(table: &mut Table, scenario: &str, measured: &[Measured]) {
    for m in measured {
        let s = Summary::of(&m.shares);
        table.row(vec![
            Cell::text(scenario),
            Cell::text(&m.label),
            Cell::num(m.cpus, 2),
            Cell::opt(s.map(|s| s.mean), 3),
            Cell::opt(s.map(|s| s.min), 3),
            Cell::opt(s.map(|s| s.max), 3),
            Cell::opt(s.and_then(|s| error_percent(s.mean, m.cpus)), 1),
            Cell::opt(m.throttled.map(|t| t * 100.0), 0),
        ]);
    }
}

fn weights_table(measured: &[Measured], options: &CpuOptions, cpu: usize, driver: &str) -> Table {
    let knob = if driver == "cgroups2" {
        "cpu.weight"
    } else {
        "cpu.shares"
    };
    let mut table = Table::new(
        format!(
            "weights only ({knob}, no quota), all pinned to cpu {cpu}: fraction of the three tasks' total, {} windows",
            options.windows
        ),
        &["task", knob, "expected", "measured", "error %", "mean cpus"],
    );
    let total_requested: f64 = measured.iter().map(|m| m.cpus).sum();
    let means: Vec<f64> = measured
        .iter()
        .map(|m| Summary::of(&m.shares).map_or(0.0, |s| s.mean))
        .collect();
    let total_measured: f64 = means.iter().sum();
    for (m, mean) in measured.iter().zip(&means) {
        let expected = m.cpus / total_requested;
        let fraction = (total_measured > 0.0).then(|| mean / total_measured);
        let weight = if driver == "cgroups2" {
            mesos_isolator::cpu_weight(m.cpus)
        } else {
            mesos_isolator::cpu_shares(m.cpus)
        };
        table.row(vec![
            Cell::text(&m.label),
            Cell::int(usize::try_from(weight).unwrap_or(usize::MAX)),
            Cell::num(expected, 3),
            Cell::opt(fraction, 3),
            Cell::opt(fraction.and_then(|f| error_percent(f, expected)), 1),
            Cell::num(*mean, 3),
        ]);
    }
    table
}
