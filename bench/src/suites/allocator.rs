//! `allocator`: one allocation run over A agents × F frameworks, the scenario
//! of Mesos's `HierarchicalAllocator_BENCHMARK_Test.DeclineOffers`
//! (`mesos_master::allocator::bench::DeclineOffers`), with the Mesos figure
//! beside it: 1.06 s for 10,000 × 1,000 (commit 86653356d, optimised build).

use std::time::Instant;

use clap::Args;
use mesos_master::allocator::bench::DeclineOffers;

use crate::progress;
use crate::report::{Cell, Chart, ChartKind, Series, SuiteReport, Table};
use crate::stats::{self, Summary};

/// Mesos 1.x `DeclineOffers/21` (10,000 agents × 1,000 frameworks), seconds.
const MESOS_DECLINE_OFFERS_SECS: f64 = 1.06;
const MESOS_AGENTS: usize = 10_000;
const MESOS_FRAMEWORKS: usize = 1_000;

/// Options of the allocator suite.
#[derive(Debug, Clone, Args)]
pub struct AllocatorOptions {
    /// Agents (A).
    #[arg(long, default_value_t = MESOS_AGENTS)]
    pub agents: usize,
    /// Frameworks (F).
    #[arg(long, default_value_t = MESOS_FRAMEWORKS)]
    pub frameworks: usize,
    /// Timed allocation runs (each after every framework declined the previous offers).
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
}

impl Default for AllocatorOptions {
    fn default() -> Self {
        AllocatorOptions {
            agents: MESOS_AGENTS,
            frameworks: MESOS_FRAMEWORKS,
            rounds: 5,
        }
    }
}

impl AllocatorOptions {
    /// The smoke-test size.
    pub fn quick() -> Self {
        AllocatorOptions {
            agents: 200,
            frameworks: 20,
            rounds: 3,
        }
    }
}

/// Runs the suite (pure computation: no root, no cluster).
pub fn run(options: &AllocatorOptions) -> SuiteReport {
    let mut report = SuiteReport::new(
        "allocator",
        "one DRF allocation run over A agents × F frameworks (DeclineOffers)",
    );
    report.param("agents", options.agents);
    report.param("frameworks", options.frameworks);
    report.param("rounds", options.rounds);
    if options.agents == 0 || options.frameworks == 0 || options.rounds == 0 {
        report.fail("--agents, --frameworks and --rounds must be at least 1");
        return report;
    }
    let spinner = progress::spinner("allocator");
    spinner.set_message(format!(
        "setting up {} agents × {} frameworks",
        options.agents, options.frameworks
    ));
    let setup_start = Instant::now();
    let mut scenario = DeclineOffers::new(options.agents, options.frameworks);
    let setup_secs = setup_start.elapsed().as_secs_f64();
    let mut times_ms = Vec::with_capacity(options.rounds);
    let mut offers = Vec::with_capacity(options.rounds);
    for i in 0..options.rounds {
        spinner.set_message(format!("round {}/{}", i + 1, options.rounds));
        let round = scenario.round();
        times_ms.push(round.elapsed.as_secs_f64() * 1e3);
        offers.push(round.offers);
    }
    spinner.finish_and_clear();

    let summary = Summary::of(&times_ms);
    let median_s = stats::median(&times_ms).map(|ms| ms / 1e3);
    let mut table = Table::new(
        "one allocate() run (ms); Mesos: DeclineOffers 10k agents × 1k frameworks = 1060 ms (optimised build)",
        &["agents", "frameworks", "rounds", "offers/run", "p50", "min", "max", "Mesos", "× Mesos"],
    );
    let comparable = options.agents == MESOS_AGENTS && options.frameworks == MESOS_FRAMEWORKS;
    table.row(vec![
        Cell::int(options.agents),
        Cell::int(options.frameworks),
        Cell::int(options.rounds),
        Cell::opt(
            stats::median(&offers.iter().map(|&o| o as f64).collect::<Vec<_>>()),
            0,
        ),
        Cell::opt(summary.map(|s| s.p50), 2),
        Cell::opt(summary.map(|s| s.min), 2),
        Cell::opt(summary.map(|s| s.max), 2),
        if comparable {
            Cell::num(MESOS_DECLINE_OFFERS_SECS * 1e3, 0)
        } else {
            Cell::Empty
        },
        if comparable {
            Cell::opt(median_s.map(|m| m / MESOS_DECLINE_OFFERS_SECS), 3)
        } else {
            Cell::Empty
        },
    ]);
    report.tables.push(table);
    report.note(format!(
        "setup (adding agents and frameworks, initial allocation) took {setup_secs:.2} s"
    ));
    if !comparable {
        report
            .note("the Mesos figure is for 10,000 × 1,000 only; run with the defaults to compare");
    }
    if cfg!(debug_assertions) {
        report.note("debug build: the allocator is several times slower than in a release build (cargo run --release -p mesos-bench)");
    }
    report.series.push(Series::new(
        "allocate() run",
        "ms",
        Some("allocator-runs"),
        times_ms,
    ));
    report.charts.push(Chart {
        id: "allocator-runs".to_owned(),
        title: format!(
            "allocate() over {} agents × {} frameworks",
            options.agents, options.frameworks
        ),
        kind: ChartKind::Cdf,
        x_label: "ms".to_owned(),
        y_label: "fraction of runs".to_owned(),
        reference_lines: Vec::new(),
    });
    report
}
