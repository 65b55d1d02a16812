//! Benchmark scenarios shared by `cargo bench -p mesos-master` and
//! `mesos-bench allocator`.
//!
//! [`DeclineOffers`] is the scale of Mesos's
//! `HierarchicalAllocator_BENCHMARK_Test.DeclineOffers` (10,000 agents ×
//! 1,000 frameworks: one allocation took 1.06 s in Mesos, commit 86653356d):
//! every agent has part of its resources in use by one framework (round
//! robin), each round the frameworks decline every offer they got with a
//! year-long filter, and the next allocation run has to route each agent
//! past the frameworks that refused it.

use std::time::{Duration, Instant};

use mesos_proto::resources::Resources;

use super::{Allocator, AllocatorConfig, FrameworkSpec};

/// Agent resources in the scenario.
pub const AGENT_RESOURCES: &str = "cpus:2;mem:1024;disk:4096;ports:[31000-32000]";

/// Timing of one allocation round.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Round {
    /// Wall time of the allocation run alone.
    pub elapsed: Duration,
    /// Offers (framework, role, agent) the run made.
    pub offers: usize,
    /// Offer filters live during the run.
    pub filters: usize,
}

/// The DeclineOffers scenario, ready to run rounds.
#[derive(Debug)]
pub struct DeclineOffers {
    allocator: Allocator,
    now: Instant,
    /// Offers of the last round, declined at the start of the next.
    pending: Vec<(String, String, Resources)>,
}

impl DeclineOffers {
    /// Sets up `agents` agents and `frameworks` frameworks (role `*`) and
    /// runs the initial allocation, which is not timed.
    pub fn new(agents: usize, frameworks: usize) -> Self {
        let mut allocator = Allocator::new(AllocatorConfig::default());
        let framework_ids: Vec<String> = (0..frameworks)
            .map(|i| format!("framework-{i:05}"))
            .collect();
        for id in &framework_ids {
            let spec = FrameworkSpec {
                roles: ["*".to_string()].into(),
                ..Default::default()
            };
            allocator.add_framework(id, spec, true);
        }
        let total = Resources::parse(AGENT_RESOURCES, "*").expect("constant resources parse");
        let used = used_resources();
        for i in 0..agents {
            let holder = framework_ids[i % frameworks.max(1)].clone();
            allocator.add_agent(
                &format!("agent-{i:06}"),
                total.clone(),
                &[(holder, used.clone())],
            );
        }
        let mut scenario = DeclineOffers {
            allocator,
            now: Instant::now(),
            pending: Vec::new(),
        };
        scenario.round();
        scenario
    }

    /// Declines every offer of the previous round for a year, then times
    /// one full allocation run.
    pub fn round(&mut self) -> Round {
        let year = Some(super::filters::MAX_REFUSE);
        for (framework, agent, resources) in std::mem::take(&mut self.pending) {
            self.allocator
                .recover(&framework, &agent, &resources, year, self.now);
        }
        self.now += self.allocator.config().allocation_interval;
        self.allocator.request(None);
        let filters = self.allocator.filter_count();
        let start = Instant::now();
        let result = self.allocator.allocate(self.now);
        let elapsed = start.elapsed();
        for (framework, offers) in result {
            for offer in offers {
                self.pending
                    .push((framework.clone(), offer.agent_id, offer.resources));
            }
        }
        Round {
            elapsed,
            offers: self.pending.len(),
            filters,
        }
    }
}

/// What each agent has in use: a cpu, some memory and disk, and 16 ports
/// spread over the range (so the remaining ports are fragmented, as with
/// Mesos's benchmark).
fn used_resources() -> Resources {
    let mut used =
        Resources::parse("cpus:1;mem:128;disk:1024", "*").expect("constant resources parse");
    let ports: Vec<(u64, u64)> = (0..16).map(|i| (31000 + i * 64, 31000 + i * 64)).collect();
    used.add_resource(mesos_proto::resources::ranges("ports", &ports));
    used.allocate("*");
    used
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_round_offers_each_agent_to_a_new_framework() {
        let mut scenario = DeclineOffers::new(50, 10);
        let first = scenario.round();
        assert_eq!(first.offers, 50);
        assert_eq!(first.filters, 50);
        let second = scenario.round();
        assert_eq!(second.offers, 50);
        assert_eq!(second.filters, 100);
        for _ in 3..10 {
            assert_eq!(scenario.round().offers, 50);
        }
        // Every framework has refused every agent: nothing is left to offer.
        assert_eq!(scenario.round().offers, 0);
    }
}
