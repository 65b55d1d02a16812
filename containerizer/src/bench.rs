//! Launch latency: this containerizer against `runc run` and `crun run`.
//!
//! Reused by `cargo bench -p mesos-containerizer` (benches/launch.rs) and by
//! `mesos-bench launch`. [`launch_suite`] measures, round-robin so that load
//! from other processes hits every contender alike:
//! - this containerizer launching `/bin/true` with cgroups (cpu, memory,
//!   the cgroup2 tracking tree) and pid, mount, uts and ipc namespaces, on
//!   the host rootfs and on a busybox image: time to the `execve` of
//!   `/bin/true` (from the helper's status record), time until `launch`
//!   returned, and the whole launch → exit → destroy cycle;
//! - `runc run` and `crun run` of an equivalent OCI bundle (busybox rootfs,
//!   same namespaces, cpu shares and memory limit), whole command. crun
//!   refuses hybrid cgroup hosts; that is detected and reported, and crun is
//!   then also timed in a private mount namespace that shows only the v1
//!   hierarchies (isolation.md §8.2 "legacy view").

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::{
    LinuxBuilder, LinuxCpuBuilder, LinuxMemoryBuilder, LinuxNamespaceType, LinuxResourcesBuilder,
    ProcessBuilder, RootBuilder, Spec,
};

use crate::image::builder::{busybox_layer, ImageBuilder};
use crate::namespaces::Namespaces;
use crate::{CommandSpec, ContainerLimits, Containerizer, LaunchRequest, Step};

/// Order statistics of a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Number of samples.
    pub runs: usize,
    /// The median.
    pub median: Duration,
    /// The 99th percentile (nearest rank).
    pub p99: Duration,
    /// The fastest.
    pub min: Duration,
    /// The slowest.
    pub max: Duration,
}

impl Stats {
    /// Statistics of `samples`; `None` if empty.
    pub fn of(samples: &[Duration]) -> Option<Stats> {
        if samples.is_empty() {
            return None;
        }
        let mut sorted = samples.to_vec();
        sorted.sort_unstable();
        let rank = |q: f64| {
            // Nearest rank: ceil(q * n) - 1, within bounds.
            let index = (q * sorted.len() as f64).ceil() as usize;
            sorted[index.clamp(1, sorted.len()) - 1]
        };
        Some(Stats {
            runs: sorted.len(),
            median: if sorted.len() % 2 == 1 {
                sorted[sorted.len() / 2]
            } else {
                (sorted[sorted.len() / 2 - 1] + sorted[sorted.len() / 2]) / 2
            },
            p99: rank(0.99),
            min: sorted[0],
            max: sorted[sorted.len() - 1],
        })
    }
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// What was measured.
    pub name: String,
    /// Its statistics, `None` if it could not run.
    pub stats: Option<Stats>,
    /// Why it could not run, or a remark.
    pub note: String,
}

impl Row {
    fn new(name: &str, samples: &[Duration], note: impl Into<String>) -> Row {
        Row {
            name: name.to_owned(),
            stats: Stats::of(samples),
            note: note.into(),
        }
    }
}

fn ms(duration: Duration) -> String {
    format!("{:.2}", duration.as_secs_f64() * 1e3)
}

/// Renders rows as a Markdown table, with each median's ratio to the
/// `baseline` row's.
pub fn table(rows: &[Row], baseline: &str) -> String {
    let base = rows
        .iter()
        .find(|r| r.name == baseline)
        .and_then(|r| r.stats)
        .map(|s| s.median);
    let mut out = String::from(
        "| what | runs | median ms | p99 ms | min ms | max ms | × baseline | note |\n",
    );
    out.push_str("|---|---:|---:|---:|---:|---:|---:|---|\n");
    for row in rows {
        match row.stats {
            Some(s) => {
                let ratio = base.map_or_else(String::new, |b| {
                    format!("{:.1}", s.median.as_secs_f64() / b.as_secs_f64())
                });
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} | {} | {} | {} |",
                    row.name,
                    s.runs,
                    ms(s.median),
                    ms(s.p99),
                    ms(s.min),
                    ms(s.max),
                    ratio,
                    row.note
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "| {} | 0 | – | – | – | – | – | {} |",
                    row.name, row.note
                );
            }
        }
    }
    out
}

/// Samples from launching with this containerizer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerizerSamples {
    /// `launch` called → `execve` of the executor.
    pub to_exec: Vec<Duration>,
    /// `launch` called → `launch` returned.
    pub to_confirmed: Vec<Duration>,
    /// `launch` + `wait` + `destroy`.
    pub cycle: Vec<Duration>,
    /// Time spent in each step.
    pub steps: BTreeMap<&'static str, Vec<Duration>>,
}

impl ContainerizerSamples {
    /// Launches, waits for and destroys one container; records its timings.
    pub async fn run_once(
        &mut self,
        containerizer: &Containerizer,
        request: LaunchRequest,
    ) -> Result<(), String> {
        let id = request.container_id.clone();
        let started = Instant::now();
        let launched = containerizer
            .launch(request)
            .await
            .map_err(|e| e.to_string())?;
        let termination = containerizer.wait(&id).await.map_err(|e| e.to_string())?;
        containerizer
            .destroy(&id)
            .await
            .map_err(|e| e.to_string())?;
        self.cycle.push(started.elapsed());
        if termination.exit_code != Some(0) {
            return Err(format!("{id}: {}", termination.message));
        }
        self.to_exec.push(launched.timings.to_exec());
        self.to_confirmed.push(launched.timings.to_confirmed());
        for (step, duration) in launched.timings.durations() {
            self.steps.entry(step).or_default().push(duration);
        }
        Ok(())
    }
}

/// Writes an OCI bundle at `dir` running `/bin/true` from a busybox rootfs,
/// with pid, mount, uts and ipc namespaces, the cpu shares and memory limit
/// of `limits`, starting from the runtime-spec defaults (`runc spec`).
pub fn write_bundle(
    dir: &Path,
    busybox: &Path,
    limits: &ContainerLimits,
) -> Result<PathBuf, String> {
    let rootfs = dir.join("rootfs");
    fn io(what: &'static str) -> impl Fn(std::io::Error) -> String {
        move |e| format!("{what}: {e}")
    }
    std::fs::create_dir_all(rootfs.join("bin")).map_err(io("create the bundle rootfs"))?;
    for sub in ["proc", "dev", "sys", "tmp"] {
        std::fs::create_dir_all(rootfs.join(sub)).map_err(io("create the bundle rootfs"))?;
    }
    std::fs::copy(busybox, rootfs.join("bin/busybox")).map_err(io("copy busybox"))?;
    let _ = std::fs::remove_file(rootfs.join("bin/true"));
    std::os::unix::fs::symlink("busybox", rootfs.join("bin/true")).map_err(io("link /bin/true"))?;

    let mut spec = Spec::default();
    let process = ProcessBuilder::default()
        .terminal(false)
        .args(vec!["/bin/true".to_string()])
        .env(vec![format!("PATH={}", crate::spec::DEFAULT_PATH)])
        .cwd("/")
        .build()
        .map_err(|e| e.to_string())?;
    spec.set_process(Some(process));
    spec.set_root(Some(
        RootBuilder::default()
            .path("rootfs")
            .readonly(true)
            .build()
            .map_err(|e| e.to_string())?,
    ));
    spec.set_hostname(Some("bench".into()));
    let default_linux = spec.linux().clone().unwrap_or_default();
    let resources = LinuxResourcesBuilder::default()
        .cpu(
            LinuxCpuBuilder::default()
                .shares(mesos_isolator::cpu_shares(limits.cpus))
                .build()
                .map_err(|e| e.to_string())?,
        )
        .memory(
            LinuxMemoryBuilder::default()
                .limit(
                    mesos_isolator::memory_hard_limit(limits)
                        .map_or(-1, |b| b.min(i64::MAX as u64) as i64),
                )
                .build()
                .map_err(|e| e.to_string())?,
        )
        .build()
        .map_err(|e| e.to_string())?;
    let namespaces = Namespaces::isolated().to_oci();
    debug_assert!(namespaces
        .iter()
        .all(|n| n.typ() != LinuxNamespaceType::Network));
    let linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .resources(resources)
        .masked_paths(default_linux.masked_paths().clone().unwrap_or_default())
        .readonly_paths(default_linux.readonly_paths().clone().unwrap_or_default())
        .build()
        .map_err(|e| e.to_string())?;
    spec.set_linux(Some(linux));
    spec.save(dir.join("config.json"))
        .map_err(|e| e.to_string())?;
    Ok(dir.to_owned())
}

/// An OCI runtime binary run as `<runtime> --root <state> run --bundle <b> <id>`.
#[derive(Debug)]
pub struct OciRuntime {
    /// Display name.
    pub name: String,
    /// The binary.
    pub binary: PathBuf,
    /// Its `--root` state directory.
    pub state: PathBuf,
    /// A mount namespace to run it in (the legacy cgroup view), if any.
    pub mount_ns: Option<OwnedFd>,
}

impl OciRuntime {
    /// Runs the bundle once; the wall time of the whole command.
    pub async fn run_once(&self, bundle: &Path, id: &str) -> Result<Duration, String> {
        let mut command = tokio::process::Command::new(&self.binary);
        command
            .arg("--root")
            .arg(&self.state)
            .args(["run", "--bundle"])
            .arg(bundle)
            .arg(id)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(ns) = &self.mount_ns {
            let fd = ns.as_raw_fd();
            // SAFETY: setns is async-signal-safe and only reads an fd number
            // the parent keeps open until the child has exec'd.
            unsafe {
                command.pre_exec(move || {
                    if libc::setns(fd, libc::CLONE_NEWNS) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let started = Instant::now();
        let output = command
            .output()
            .await
            .map_err(|e| format!("{}: {e}", self.binary.display()))?;
        let elapsed = started.elapsed();
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            return Err(format!(
                "{} exited with {}: {}",
                self.name,
                output.status,
                stderr.trim()
            ));
        }
        Ok(elapsed)
    }
}

/// A private mount namespace where /sys/fs/cgroup shows only the v1
/// hierarchies (no `unified/`), kept alive by a sleeping process. The host's
/// mounts are untouched.
#[derive(Debug)]
pub struct LegacyCgroupView {
    keeper: Child,
    namespace: Option<OwnedFd>,
}

const LEGACY_VIEW_SCRIPT: &str = r#"
set -e
d=$(mktemp -d)
mount -t tmpfs legacy-cgroups "$d"
for c in /sys/fs/cgroup/*; do
  n=${c##*/}
  [ "$n" = unified ] && continue
  mkdir "$d/$n"
  mount --bind "$c" "$d/$n"
done
mount --move "$d" /sys/fs/cgroup
rmdir "$d"
echo ready
exec sleep 1000000
"#;

impl LegacyCgroupView {
    /// Sets the namespace up (needs `unshare` from util-linux).
    pub fn new() -> Result<Self, String> {
        let mut keeper = std::process::Command::new("unshare")
            .args([
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                LEGACY_VIEW_SCRIPT,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("unshare: {e}"))?;
        let mut line = String::new();
        if let Some(stdout) = keeper.stdout.take() {
            let _ = BufReader::new(stdout).read_line(&mut line);
        }
        let mut view = LegacyCgroupView {
            keeper,
            namespace: None,
        };
        if line.trim() != "ready" {
            return Err("setting up the legacy cgroup view failed".into());
        }
        let ns = std::fs::File::open(format!("/proc/{}/ns/mnt", view.keeper.id()))
            .map_err(|e| format!("open the legacy view's mount namespace: {e}"))?;
        view.namespace = Some(ns.into());
        Ok(view)
    }

    /// A handle on the namespace for [`OciRuntime::mount_ns`].
    pub fn namespace(&self) -> Result<OwnedFd, String> {
        self.namespace
            .as_ref()
            .ok_or("no namespace")?
            .try_clone()
            .map_err(|e| e.to_string())
    }
}

impl Drop for LegacyCgroupView {
    fn drop(&mut self) {
        let _ = self.keeper.kill();
        let _ = self.keeper.wait();
    }
}

/// What [`launch_suite`] measures.
#[derive(Debug, Clone)]
pub struct SuiteOptions {
    /// Measured runs per contender.
    pub runs: usize,
    /// Unmeasured runs first.
    pub warmup: usize,
    /// A static busybox for the image and the bundle (Debian's busybox-static).
    pub busybox: Option<PathBuf>,
    /// OCI runtimes to compare with, by binary name (`runc`, `crun`).
    pub runtimes: Vec<String>,
    /// Scratch space (work, runtime, store, bundle, runtime state).
    pub scratch: PathBuf,
}

/// The report of [`launch_suite`].
#[derive(Debug, Clone)]
pub struct SuiteReport {
    /// One row per contender and metric.
    pub rows: Vec<Row>,
    /// Median time per launch step (host rootfs), in launch order.
    pub steps: Vec<(String, Duration)>,
}

impl SuiteReport {
    /// The Markdown tables.
    pub fn render(&self) -> String {
        let mut out = table(&self.rows, BASELINE);
        out.push_str("\nMedian time per step (containerizer, host rootfs):\n\n| step | median µs |\n|---|---:|\n");
        for (step, median) in &self.steps {
            let _ = writeln!(out, "| {step} | {:.0} |", median.as_secs_f64() * 1e6);
        }
        out
    }
}

const BASELINE: &str = "containerizer → exec (host rootfs)";

/// The request the suite launches.
pub fn true_request(container_id: &str, image: Option<&str>) -> LaunchRequest {
    LaunchRequest {
        container_id: container_id.to_owned(),
        agent_id: "bench-agent".into(),
        framework_id: "bench-framework".into(),
        executor_id: "bench-executor".into(),
        command: CommandSpec {
            shell: false,
            value: "/bin/true".into(),
            arguments: vec!["true".into()],
            env: vec![],
            user: None,
        },
        limits: bench_limits(),
        hostname: None,
        image: image.map(str::to_owned),
        rlimits: vec![],
        checkpoint: false,
    }
}

fn bench_limits() -> ContainerLimits {
    ContainerLimits::new(0.5, 64 << 20)
}

/// A contender of the round-robin.
enum Contender {
    Ours {
        image: Option<&'static str>,
        samples: ContainerizerSamples,
    },
    Oci {
        runtime: OciRuntime,
        samples: Vec<Duration>,
    },
}

/// A contender, and why it stopped (a failed run ends its measurements).
struct Entry {
    contender: Contender,
    failure: Option<String>,
}

impl Entry {
    fn new(contender: Contender) -> Entry {
        Entry {
            contender,
            failure: None,
        }
    }

    /// One run; the samples are kept only if `measured`.
    async fn run(
        &mut self,
        containerizer: &Containerizer,
        bundle: Option<&Path>,
        id: &str,
        measured: bool,
    ) {
        if self.failure.is_some() {
            return;
        }
        let result = match &mut self.contender {
            Contender::Ours { image, samples } => {
                let mut discarded = ContainerizerSamples::default();
                let target = if measured { samples } else { &mut discarded };
                target
                    .run_once(containerizer, true_request(id, *image))
                    .await
            }
            Contender::Oci { runtime, samples } => match bundle {
                Some(bundle) => runtime.run_once(bundle, id).await.map(|elapsed| {
                    if measured {
                        samples.push(elapsed);
                    }
                }),
                None => Err("no bundle".into()),
            },
        };
        self.failure = result.err();
    }
}

const IMAGE: &str = "bench-busybox:latest";

/// Everything to measure, plus notes on what could not be set up.
struct Plan {
    entries: Vec<Entry>,
    bundle: Option<PathBuf>,
    notes: BTreeMap<&'static str, String>,
    /// Kept alive while crun runs in it.
    legacy: Option<LegacyCgroupView>,
}

/// Sets up the image, the bundle and the runtimes (with a trial run each).
async fn plan(store: &Path, options: &SuiteOptions) -> Plan {
    let mut plan = Plan {
        entries: vec![Entry::new(Contender::Ours {
            image: None,
            samples: ContainerizerSamples::default(),
        })],
        bundle: None,
        notes: BTreeMap::new(),
        legacy: None,
    };
    let Some(busybox) = &options.busybox else {
        plan.notes.insert(
            "busybox",
            "no static busybox: image and runtimes skipped".into(),
        );
        return plan;
    };
    match ImageBuilder::new()
        .layer(busybox_layer(busybox))
        .write(store, IMAGE)
    {
        Ok(()) => plan.entries.push(Entry::new(Contender::Ours {
            image: Some(IMAGE),
            samples: ContainerizerSamples::default(),
        })),
        Err(e) => {
            plan.notes
                .insert("image", format!("could not write the busybox image: {e}"));
        }
    }
    match write_bundle(&options.scratch.join("bundle"), busybox, &bench_limits()) {
        Ok(dir) => plan.bundle = Some(dir),
        Err(e) => {
            plan.notes.insert("bundle", e);
            return plan;
        }
    }
    for name in &options.runtimes {
        add_runtime(&mut plan, name, &options.scratch).await;
    }
    plan
}

/// Adds `runc run`-style contenders for `name`; one that refuses the host
/// is reported and retried in the legacy cgroup view.
async fn add_runtime(plan: &mut Plan, name: &str, scratch: &Path) {
    let (Some(binary), Some(bundle)) = (find_binary(name), plan.bundle.clone()) else {
        plan.notes
            .insert("runtime", format!("{name} not installed"));
        return;
    };
    let runtime = OciRuntime {
        name: format!("{name} run"),
        binary: binary.clone(),
        state: scratch.join(format!("state-{name}")),
        mount_ns: None,
    };
    let trial = runtime
        .run_once(
            &bundle,
            &format!("bench-trial-{name}-{}", std::process::id()),
        )
        .await;
    let refused = trial.err();
    let mut entry = Entry::new(Contender::Oci {
        runtime,
        samples: Vec::new(),
    });
    entry.failure = refused
        .as_ref()
        .map(|refusal| format!("refused on this host: {refusal}"));
    plan.entries.push(entry);
    if refused.is_none() {
        return;
    }
    if plan.legacy.is_none() {
        match LegacyCgroupView::new() {
            Ok(view) => plan.legacy = Some(view),
            Err(e) => {
                plan.notes.insert("legacy", e);
                return;
            }
        }
    }
    let namespace = plan.legacy.as_ref().map(LegacyCgroupView::namespace);
    match namespace {
        Some(Ok(ns)) => plan.entries.push(Entry::new(Contender::Oci {
            runtime: OciRuntime {
                name: format!("{name} run (legacy cgroup view)"),
                binary,
                state: scratch.join(format!("state-{name}-legacy")),
                mount_ns: Some(ns),
            },
            samples: Vec::new(),
        })),
        Some(Err(e)) => {
            plan.notes.insert("legacy", e);
        }
        None => {}
    }
}

/// Measures everything round-robin with `containerizer` (which must have
/// the OCI image provider on `store` and namespaces pid, mount, uts, ipc).
/// See the module documentation.
pub async fn launch_suite(
    containerizer: &Containerizer,
    store: &Path,
    options: &SuiteOptions,
) -> SuiteReport {
    let mut plan = plan(store, options).await;
    for round in 0..options.warmup + options.runs {
        let measured = round >= options.warmup;
        for (index, entry) in plan.entries.iter_mut().enumerate() {
            let id = format!("bench-{}-{index}-{round}", std::process::id());
            entry
                .run(containerizer, plan.bundle.as_deref(), &id, measured)
                .await;
        }
    }
    report(&plan)
}

fn report(plan: &Plan) -> SuiteReport {
    let mut rows = Vec::new();
    let mut steps = Vec::new();
    for entry in &plan.entries {
        let note = entry.failure.clone().unwrap_or_default();
        match &entry.contender {
            Contender::Ours { image, samples } => {
                let what = if image.is_some() {
                    "busybox image"
                } else {
                    "host rootfs"
                };
                rows.push(Row::new(
                    &format!("containerizer → exec ({what})"),
                    &samples.to_exec,
                    note.clone(),
                ));
                rows.push(Row::new(
                    &format!("containerizer launch() returned ({what})"),
                    &samples.to_confirmed,
                    note.clone(),
                ));
                rows.push(Row::new(
                    &format!("containerizer launch+wait+destroy ({what})"),
                    &samples.cycle,
                    note,
                ));
                if image.is_none() {
                    steps = step_medians(samples);
                }
            }
            Contender::Oci { runtime, samples } => {
                rows.push(Row::new(&runtime.name, samples, note))
            }
        }
    }
    for (what, note) in &plan.notes {
        rows.push(Row {
            name: format!("({what})"),
            stats: None,
            note: note.clone(),
        });
    }
    SuiteReport { rows, steps }
}

fn step_medians(samples: &ContainerizerSamples) -> Vec<(String, Duration)> {
    let mut steps: Vec<(u8, String, Duration)> = samples
        .steps
        .iter()
        .filter_map(|(name, durations)| {
            // `dispatch` precedes every step.
            let order = (1..=u8::MAX)
                .filter_map(Step::from_u8)
                .find(|s| s.name() == *name)
                .map_or(0, |s| s as u8);
            Some((order, (*name).to_owned(), Stats::of(durations)?.median))
        })
        .collect();
    steps.sort();
    steps
        .into_iter()
        .map(|(_, name, median)| (name, median))
        .collect()
}

fn find_binary(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|dir| dir.join(name))
        .find(|candidate| nix::unistd::access(candidate, nix::unistd::AccessFlags::X_OK).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(values: &[u64]) -> Vec<Duration> {
        values.iter().map(|v| Duration::from_millis(*v)).collect()
    }

    #[test]
    fn stats_use_nearest_rank_and_midpoint_median() {
        let stats = Stats::of(&ms(&[5, 1, 3, 2, 4])).expect("stats");
        assert_eq!(
            (stats.median, stats.min, stats.max),
            (
                Duration::from_millis(3),
                Duration::from_millis(1),
                Duration::from_millis(5)
            )
        );
        let even = Stats::of(&ms(&[1, 2, 3, 4])).expect("stats");
        assert_eq!(even.median, Duration::from_micros(2500));
        let hundred: Vec<u64> = (1..=100).collect();
        assert_eq!(
            Stats::of(&ms(&hundred)).expect("stats").p99,
            Duration::from_millis(99)
        );
        assert!(Stats::of(&[]).is_none());
    }

    #[test]
    fn table_shows_ratios_to_the_baseline_and_failures() {
        let rows = vec![
            Row::new("base", &ms(&[2, 2, 2]), ""),
            Row::new("slow", &ms(&[10, 10, 10]), ""),
            Row::new("broken", &[], "refused"),
        ];
        let text = table(&rows, "base");
        assert!(
            text.contains("| slow | 3 | 10.00 | 10.00 | 10.00 | 10.00 | 5.0 |"),
            "{text}"
        );
        assert!(text.contains("| broken | 0 | – |"), "{text}");
    }
}
