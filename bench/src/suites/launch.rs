//! `launch`: container launch latency of `/bin/true` with a cgroup and pid,
//! mount, uts and ipc namespaces, through our containerizer and, side by
//! side, `runc run` and `crun run` of the same configuration, and two
//! baselines (`fork+exec`, `unshare -m -p -i -u -f`).
//!
//! The containerizer's own launch and comparison pieces
//! (`mesos_containerizer::bench`: the request, the OCI bundle, the runtime
//! runner, the legacy cgroup view for crun) are reused; this suite adds the
//! baselines, concurrency and the reporting.
//!
//! Sequential runs are interleaved round-robin (one run of every contender
//! per round), so load from other processes on a shared host hits all of them
//! alike; ratios to `fork+exec` are the comparable figures. With concurrency
//! C, each contender in turn runs N launches from C parallel workers.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use mesos_containerizer::bench::{
    true_request, write_bundle, ContainerizerSamples, LegacyCgroupView, OciRuntime,
};
use mesos_containerizer::{ContainerLimits, Containerizer, ContainerizerConfig, Namespaces};
use mesos_isolator::{CgroupsConfig, Isolation, Isolator};

use crate::progress;
use crate::report::{Cell, Chart, ChartKind, Series, SuiteReport, Table};
use crate::stats::Summary;
use crate::suites::Context;

/// Options of the launch suite.
#[derive(Debug, Clone, Args)]
pub struct LaunchOptions {
    /// Measured sequential runs per contender (N).
    #[arg(long, default_value_t = 200)]
    pub runs: usize,
    /// Parallel workers for the concurrent runs (C); 0 or 1 skips them.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Unmeasured runs of each contender first.
    #[arg(long, default_value_t = 5)]
    pub warmup: usize,
    /// Do not time crun in a private "legacy view" mount namespace when it
    /// refuses the host's hybrid cgroup layout.
    #[arg(long)]
    pub no_legacy_view: bool,
}

impl Default for LaunchOptions {
    fn default() -> Self {
        LaunchOptions {
            runs: 200,
            concurrency: 8,
            warmup: 5,
            no_legacy_view: false,
        }
    }
}

impl LaunchOptions {
    /// The smoke-test size.
    pub fn quick() -> Self {
        LaunchOptions {
            runs: 5,
            concurrency: 2,
            warmup: 1,
            no_legacy_view: false,
        }
    }
}

/// How one contender launches `/bin/true`.
#[derive(Debug, Clone)]
enum Runner {
    /// A plain command (the baselines).
    Command(Vec<String>),
    /// Our containerizer: launch, wait, destroy.
    Containerizer(Containerizer),
    /// `<runtime> run --bundle B <id>`.
    Oci {
        runtime: Arc<OciRuntime>,
        bundle: PathBuf,
    },
}

/// One launch's measurements.
#[derive(Debug, Default)]
struct Sample {
    /// Start to exit and clean-up: the figure every contender has.
    run: Duration,
    /// Containerizer only: `launch` called → `execve` of `/bin/true`.
    to_exec: Option<Duration>,
    /// Containerizer only: `launch` called → `launch` returned.
    to_confirmed: Option<Duration>,
    /// Containerizer only: time per launch step.
    steps: Vec<(&'static str, Duration)>,
}

impl Runner {
    async fn run_once(&self, id: &str) -> Result<Sample, String> {
        match self {
            Runner::Command(argv) => run_command(argv).await,
            Runner::Containerizer(containerizer) => {
                let mut samples = ContainerizerSamples::default();
                samples
                    .run_once(containerizer, true_request(id, None))
                    .await?;
                Ok(Sample {
                    run: samples.cycle.first().copied().unwrap_or_default(),
                    to_exec: samples.to_exec.first().copied(),
                    to_confirmed: samples.to_confirmed.first().copied(),
                    steps: samples
                        .steps
                        .iter()
                        .filter_map(|(step, d)| Some((*step, *d.first()?)))
                        .collect(),
                })
            }
            Runner::Oci { runtime, bundle } => Ok(Sample {
                run: runtime.run_once(bundle, id).await?,
                ..Sample::default()
            }),
        }
    }
}

async fn run_command(argv: &[String]) -> Result<Sample, String> {
    let (program, args) = argv.split_first().ok_or("empty command")?;
    let started = Instant::now();
    let status = tokio::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .await
        .map_err(|e| format!("{program}: {e}"))?;
    let run = started.elapsed();
    if !status.success() {
        return Err(format!("{} exited with {status}", argv.join(" ")));
    }
    Ok(Sample {
        run,
        ..Sample::default()
    })
}

/// The samples of one contender in one mode, in milliseconds.
#[derive(Debug, Default, Clone)]
struct Samples {
    run: Vec<f64>,
    to_exec: Vec<f64>,
    to_confirmed: Vec<f64>,
    steps: BTreeMap<&'static str, Vec<f64>>,
    /// Wall time of the whole batch (concurrent mode: for runs per second).
    wall_secs: f64,
}

impl Samples {
    fn push(&mut self, sample: Sample) {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        self.run.push(ms(sample.run));
        self.to_exec.extend(sample.to_exec.map(ms));
        self.to_confirmed.extend(sample.to_confirmed.map(ms));
        for (step, d) in sample.steps {
            self.steps.entry(step).or_default().push(ms(d));
        }
    }
}

/// A row of the comparison.
#[derive(Debug)]
struct Contender {
    name: String,
    runner: Runner,
    sequential: Samples,
    concurrent: Samples,
    failure: Option<String>,
}

impl Contender {
    fn new(name: &str, runner: Runner) -> Self {
        Contender {
            name: name.to_owned(),
            runner,
            sequential: Samples::default(),
            concurrent: Samples::default(),
            failure: None,
        }
    }
}

/// Everything set up for the runs, removed by [`Setup::cleanup`].
struct Setup {
    contenders: Vec<Contender>,
    notes: Vec<String>,
    /// The containerizer's `--cgroups_root` and isolation, to remove at the end.
    isolator_root: Option<(String, String)>,
    /// Keeps crun's legacy-view mount namespace alive until the runs are over.
    legacy_view: Option<LegacyCgroupView>,
    /// Bundles, runtime state and sandboxes; removed when dropped.
    scratch_dir: tempfile::TempDir,
}

const ISOLATION: &str = "cgroups/cpu,cgroups/mem,namespaces/pid,namespaces/ipc,filesystem/linux";

/// Runs the suite.
pub async fn run(options: &LaunchOptions, ctx: &Context) -> SuiteReport {
    let mut report = SuiteReport::new(
        "launch",
        "launch latency of /bin/true with cgroups + pid/mount/uts/ipc namespaces",
    );
    report.param("runs", options.runs);
    report.param("concurrency", options.concurrency);
    report.param("warmup", options.warmup);
    report.param("limits", "cpus 0.5 (CFS quota), mem 64 MiB");
    if let Some(why) = ctx.needs_root() {
        report.skip(why);
        return report;
    }
    if options.runs == 0 {
        report.fail("--runs must be at least 1");
        return report;
    }
    let mut setup = match prepare(options, ctx).await {
        Ok(setup) => setup,
        Err(e) => {
            report.fail(e);
            return report;
        }
    };
    report.notes.append(&mut setup.notes);

    run_sequential(&mut setup.contenders, options).await;
    if options.concurrency > 1 {
        for contender in &mut setup.contenders {
            run_concurrent(contender, options).await;
        }
    }
    if let Some((root, isolation)) = &setup.isolator_root {
        if let Err(e) = crate::cluster::remove_cgroups(root, isolation).await {
            report.note(format!("cleaning up the containerizer's cgroups: {e}"));
        }
    }
    summarise(&mut report, &setup.contenders, options);
    report
}

/// Builds the contenders: baselines, our containerizer, runc and crun
/// (each only if available, with a note otherwise).
async fn prepare(options: &LaunchOptions, ctx: &Context) -> Result<Setup, String> {
    let scratch = tempfile::Builder::new()
        .prefix("mesos-bench-launch-")
        .tempdir()
        .map_err(|e| format!("temporary directory: {e}"))?;
    let mut setup = Setup {
        contenders: vec![Contender::new(
            "fork+exec",
            Runner::Command(vec!["/bin/true".to_owned()]),
        )],
        notes: Vec::new(),
        isolator_root: None,
        legacy_view: None,
        scratch_dir: scratch,
    };
    let scratch = setup.scratch_dir.path().to_owned();
    match find_in_path("unshare") {
        Some(unshare) => setup.contenders.push(Contender::new(
            "unshare -m -p -i -u -f",
            Runner::Command(
                [
                    unshare.display().to_string().as_str(),
                    "-m",
                    "-p",
                    "-i",
                    "-u",
                    "-f",
                    "/bin/true",
                ]
                .map(str::to_owned)
                .to_vec(),
            ),
        )),
        None => setup
            .notes
            .push("unshare (util-linux) not installed: no namespace baseline".to_owned()),
    }
    match containerizer(ctx, &scratch) {
        Ok((containerizer, root)) => {
            setup.isolator_root = Some((root, ISOLATION.to_owned()));
            setup.contenders.push(Contender::new(
                "mesos-rs containerizer",
                Runner::Containerizer(containerizer),
            ));
        }
        Err(e) => setup
            .notes
            .push(format!("mesos-rs containerizer not measured: {e}")),
    }
    add_oci_runtimes(&mut setup, options, &scratch).await;
    Ok(setup)
}

fn containerizer(ctx: &Context, scratch: &Path) -> Result<(Containerizer, String), String> {
    let helper = ctx.bin_dir.join(mesos_containerizer::config::HELPER_BINARY);
    if !helper.is_file() {
        return Err(format!(
            "{} not found (cargo build -p mesos-containerizer)",
            helper.display()
        ));
    }
    let root = format!("mesos-bench-{}-launch", std::process::id());
    let cgroups = CgroupsConfig {
        root: root.clone(),
        enable_cfs: true,
        ..CgroupsConfig::default()
    };
    let isolation: Isolation = ISOLATION.parse().map_err(|e| format!("{e}"))?;
    let isolator = Isolator::new(cgroups, isolation).map_err(|e| e.to_string())?;
    let mut config = ContainerizerConfig::new(
        scratch.join("work"),
        scratch.join("run"),
        &ctx.bin_dir,
        isolator,
    );
    config.namespaces = Namespaces::isolated();
    let containerizer = Containerizer::new(config).map_err(|e| e.to_string())?;
    Ok((containerizer, root))
}

/// runc and crun with a busybox bundle of the same configuration. A trial
/// run decides whether a runtime works here; crun refuses hybrid hosts, and
/// is then timed in the legacy cgroup view instead (unless disabled).
async fn add_oci_runtimes(setup: &mut Setup, options: &LaunchOptions, scratch: &Path) {
    let installed: Vec<(&str, PathBuf)> = ["runc", "crun"]
        .into_iter()
        .filter_map(|name| match find_in_path(name) {
            Some(path) => Some((name, path)),
            None => {
                setup.notes.push(format!(
                    "{name} not installed (apt-get install {name}): skipped"
                ));
                None
            }
        })
        .collect();
    if installed.is_empty() {
        return;
    }
    let Some(busybox) = ["/bin/busybox", "/usr/bin/busybox"]
        .map(PathBuf::from)
        .into_iter()
        .find(|p| p.is_file())
    else {
        setup.notes.push(
            "busybox (busybox-static) not installed: no rootfs for runc/crun bundles".to_owned(),
        );
        return;
    };
    let limits = ContainerLimits::new(0.5, 64 << 20);
    let bundle = match write_bundle(&scratch.join("bundle"), &busybox, &limits) {
        Ok(bundle) => bundle,
        Err(e) => {
            setup
                .notes
                .push(format!("cannot write the OCI bundle: {e}"));
            return;
        }
    };
    for (name, binary) in installed {
        let runtime = OciRuntime {
            name: name.to_owned(),
            binary: binary.clone(),
            state: scratch.join(format!("state-{name}")),
            mount_ns: None,
        };
        let trial = runtime
            .run_once(
                &bundle,
                &format!("mesos-bench-trial-{name}-{}", std::process::id()),
            )
            .await;
        let Err(refusal) = trial else {
            setup.contenders.push(Contender::new(
                &format!("{name} run"),
                Runner::Oci {
                    runtime: Arc::new(runtime),
                    bundle: bundle.clone(),
                },
            ));
            continue;
        };
        let hybrid = refusal.contains("hybrid");
        setup.notes.push(if hybrid {
            format!("{name} refuses this host's hybrid cgroup layout: {refusal}")
        } else {
            format!("{name} failed its trial run: {refusal}")
        });
        if !hybrid || options.no_legacy_view {
            continue;
        }
        match legacy_runtime(setup, name, &binary, scratch) {
            Ok(runtime) => setup.contenders.push(Contender::new(
                &format!("{name} run (legacy cgroup view)"),
                Runner::Oci {
                    runtime: Arc::new(runtime),
                    bundle: bundle.clone(),
                },
            )),
            Err(e) => setup
                .notes
                .push(format!("{name} in the legacy cgroup view: {e}")),
        }
    }
}

/// The runtime inside a private mount namespace that shows only the v1
/// hierarchies at /sys/fs/cgroup (isolation.md §8.1); host mounts untouched.
fn legacy_runtime(
    setup: &mut Setup,
    name: &str,
    binary: &Path,
    scratch: &Path,
) -> Result<OciRuntime, String> {
    if setup.legacy_view.is_none() {
        setup.legacy_view = Some(LegacyCgroupView::new()?);
        setup.notes.push(
            "legacy cgroup view: a private mount namespace with only the v1 hierarchies at /sys/fs/cgroup"
                .to_owned(),
        );
    }
    let ns = setup
        .legacy_view
        .as_ref()
        .ok_or("no legacy view")?
        .namespace()?;
    Ok(OciRuntime {
        name: format!("{name} (legacy view)"),
        binary: binary.to_owned(),
        state: scratch.join(format!("state-{name}-legacy")),
        mount_ns: Some(ns),
    })
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

fn run_id(contender: usize, mode: &str, round: usize) -> String {
    format!(
        "mesos-bench-{}-{contender}-{mode}-{round}",
        std::process::id()
    )
}

/// Round-robin: warm-up rounds, then N measured rounds of one run each.
async fn run_sequential(contenders: &mut [Contender], options: &LaunchOptions) {
    let rounds = options.warmup + options.runs;
    let bar = progress::bar((rounds * contenders.len()) as u64, "launch seq");
    for round in 0..rounds {
        for (index, contender) in contenders.iter_mut().enumerate() {
            bar.inc(1);
            if contender.failure.is_some() {
                continue;
            }
            let started = Instant::now();
            match contender.runner.run_once(&run_id(index, "s", round)).await {
                Ok(sample) if round >= options.warmup => {
                    contender.sequential.push(sample);
                    contender.sequential.wall_secs += started.elapsed().as_secs_f64();
                }
                Ok(_) => {}
                Err(e) => contender.failure = Some(e),
            }
        }
    }
    bar.finish_and_clear();
}

/// N runs from C workers; per-run latencies and the batch's wall time.
async fn run_concurrent(contender: &mut Contender, options: &LaunchOptions) {
    if contender.failure.is_some() {
        return;
    }
    let bar = progress::bar(options.runs as u64, &format!("C={}", options.concurrency));
    bar.set_message(contender.name.clone());
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..options.concurrency {
        let (runner, next, bar, runs) = (
            contender.runner.clone(),
            Arc::clone(&next),
            bar.clone(),
            options.runs,
        );
        workers.spawn(async move {
            let mut results = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= runs {
                    break;
                }
                let result = runner
                    .run_once(&format!("mesos-bench-{}-c-{i}", std::process::id()))
                    .await;
                bar.inc(1);
                let failed = result.is_err();
                results.push(result);
                if failed {
                    break;
                }
            }
            results
        });
    }
    while let Some(joined) = workers.join_next().await {
        for result in joined.unwrap_or_else(|e| vec![Err(format!("worker panicked: {e}"))]) {
            match result {
                Ok(sample) => contender.concurrent.push(sample),
                Err(e) => contender.failure = Some(format!("concurrent: {e}")),
            }
        }
    }
    contender.concurrent.wall_secs = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
}

const COLUMNS: &[&str] = &[
    "contender",
    "measure",
    "n",
    "p50",
    "p90",
    "p99",
    "max",
    "× fork+exec",
    "runs/s",
];

fn summarise(report: &mut SuiteReport, contenders: &[Contender], options: &LaunchOptions) {
    let baseline = |samples: fn(&Contender) -> &Samples| {
        contenders
            .iter()
            .find(|c| c.name == "fork+exec")
            .and_then(|c| Summary::of(&samples(c).run))
            .map(|s| s.p50)
    };
    let mut sequential = Table::new(
        format!(
            "sequential, interleaved round-robin, {} runs each (ms)",
            options.runs
        ),
        COLUMNS,
    );
    let mut concurrent = Table::new(
        format!(
            "{} runs from {} parallel workers (ms)",
            options.runs, options.concurrency
        ),
        COLUMNS,
    );
    let base_seq = baseline(|c| &c.sequential);
    let base_conc = baseline(|c| &c.concurrent);
    for contender in contenders {
        add_rows(
            report,
            &mut sequential,
            contender,
            &contender.sequential,
            base_seq,
            "sequential",
        );
        if options.concurrency > 1 {
            add_rows(
                report,
                &mut concurrent,
                contender,
                &contender.concurrent,
                base_conc,
                "concurrent",
            );
        }
        if let Some(e) = &contender.failure {
            report.note(format!("{} stopped after an error: {e}", contender.name));
        }
    }
    report.tables.push(sequential);
    if options.concurrency > 1 {
        report.tables.push(concurrent);
    }
    if let Some(ours) = contenders
        .iter()
        .find(|c| matches!(c.runner, Runner::Containerizer(_)))
    {
        report.tables.push(steps_table(&ours.sequential));
    }
    report.note("run = start to exit and clean-up (containerizer: launch + wait + destroy; runc/crun: the whole `run` command); launch → exec is from the helper's own timestamps");
    for (id, mode) in [
        ("launch-sequential", "sequential"),
        ("launch-concurrent", "concurrent"),
    ] {
        if mode == "concurrent" && options.concurrency <= 1 {
            continue;
        }
        report.charts.push(Chart {
            id: id.to_owned(),
            title: format!("launch latency of /bin/true, {mode}"),
            kind: ChartKind::Cdf,
            x_label: "ms".to_owned(),
            y_label: "fraction of launches".to_owned(),
            reference_lines: Vec::new(),
        });
    }
}

fn add_rows(
    report: &mut SuiteReport,
    table: &mut Table,
    contender: &Contender,
    samples: &Samples,
    baseline_p50: Option<f64>,
    mode: &str,
) {
    let chart = format!("launch-{mode}");
    let measures = [
        ("run", &samples.run),
        ("launch → exec", &samples.to_exec),
        ("launch returned", &samples.to_confirmed),
    ];
    for (i, (measure, values)) in measures.into_iter().enumerate() {
        if i > 0 && values.is_empty() {
            continue;
        }
        let summary = Summary::of(values);
        let ratio = summary.zip(baseline_p50).map(|(s, b)| s.p50 / b);
        let per_sec = (i == 0 && mode == "concurrent" && samples.wall_secs > 0.0)
            .then(|| values.len() as f64 / samples.wall_secs);
        table.row(vec![
            Cell::text(&contender.name),
            Cell::text(measure),
            Cell::int(values.len()),
            Cell::opt(summary.map(|s| s.p50), 2),
            Cell::opt(summary.map(|s| s.p90), 2),
            Cell::opt(summary.map(|s| s.p99), 2),
            Cell::opt(summary.map(|s| s.max), 2),
            Cell::opt(ratio, 1),
            Cell::opt(per_sec, 1),
        ]);
        report.series.push(Series::new(
            format!("{}: {measure} ({mode})", contender.name),
            "ms",
            Some(&chart),
            values.clone(),
        ));
    }
}

fn steps_table(samples: &Samples) -> Table {
    let mut table = Table::new(
        "mesos-rs containerizer: time per launch step, sequential (µs)",
        &["step", "p50", "p90", "max"],
    );
    let mut steps: Vec<(&&str, Summary)> = samples
        .steps
        .iter()
        .filter_map(|(step, values)| Some((step, Summary::of(values)?)))
        .collect();
    // Steps are keyed by name; order them by how long they take, longest first.
    steps.sort_by(|a, b| b.1.p50.total_cmp(&a.1.p50));
    for (step, s) in steps {
        table.row(vec![
            Cell::text(step.to_string()),
            Cell::num(s.p50 * 1e3, 0),
            Cell::num(s.p90 * 1e3, 0),
            Cell::num(s.max * 1e3, 0),
        ]);
    }
    table
}
