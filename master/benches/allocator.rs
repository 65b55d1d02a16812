//! `cargo bench -p mesos-master`: one full allocation run over 10,000 agents
//! and 1,000 frameworks with declining filters (Mesos's
//! `HierarchicalAllocator_BENCHMARK_Test.DeclineOffers`, 1.06 s in Mesos).
//! Prints each round and the median; target ≤ 100 ms.

use std::time::Duration;

use mesos_master::allocator::bench::DeclineOffers;

fn main() {
    let agents = env_or("AGENTS", 10_000);
    let frameworks = env_or("FRAMEWORKS", 1_000);
    let rounds = env_or("ROUNDS", 7);
    let setup = std::time::Instant::now();
    let mut scenario = DeclineOffers::new(agents, frameworks);
    println!(
        "DeclineOffers: {agents} agents x {frameworks} frameworks (setup {:?})",
        setup.elapsed()
    );
    let mut times: Vec<Duration> = Vec::new();
    for i in 0..rounds {
        let round = scenario.round();
        println!(
            "round {i}: allocate took {:.2} ms to make {} offers with {} filters",
            round.elapsed.as_secs_f64() * 1e3,
            round.offers,
            round.filters
        );
        times.push(round.elapsed);
    }
    times.sort();
    if let Some(median) = times.get(times.len() / 2) {
        println!(
            "median allocation run: {:.2} ms (Mesos: 1060 ms)",
            median.as_secs_f64() * 1e3
        );
    }
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
