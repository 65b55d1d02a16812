//! Offer filters: what a framework declined (DECLINE, or the unused rest of
//! an ACCEPT) is not offered to it again on that agent, in that role, for
//! `refuse_seconds` (Mesos's `RefusedOfferFilter`, keyed
//! `[framework][role][agent]`, MESOS-4302).
//!
//! Refusals are stored by agent, then framework: an allocation run looks up
//! the agent once and then each candidate framework with one hash lookup.
//!
//! Suppression (SUPPRESS until REVIVE) is not a filter here: a suppressed
//! framework is deactivated in the role's DRF sorter, as in Mesos.

use std::time::{Duration, Instant};

use mesos_proto::resources::Resources;

use super::FastMap;

/// `Filters.refuse_seconds` default (mesos.proto `[default = 5.0]`).
pub const DEFAULT_REFUSE_SECONDS: f64 = 5.0;

/// Longest filter Mesos installs: larger values are clamped to 365 days.
pub const MAX_REFUSE: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// How long a refusal with `refuse_seconds` filters, following Mesos's
/// `HierarchicalAllocatorProcess::recoverResources`:
///
/// * unset, negative or not a number → the default 5 s;
/// * above 365 days → 365 days;
/// * zero → no filter (`None`);
/// * otherwise at least one `allocation_interval`, since a shorter filter
///   would expire before the next periodic allocation could honour it.
pub fn refuse_duration(
    refuse_seconds: Option<f64>,
    allocation_interval: Duration,
) -> Option<Duration> {
    let seconds = match refuse_seconds {
        None => DEFAULT_REFUSE_SECONDS,
        Some(s) if s.is_nan() || s < 0.0 => DEFAULT_REFUSE_SECONDS,
        Some(s) => s,
    };
    let duration = if seconds > MAX_REFUSE.as_secs_f64() {
        MAX_REFUSE
    } else {
        Duration::from_secs_f64(seconds)
    };
    if duration.is_zero() {
        return None;
    }
    Some(duration.max(allocation_interval))
}

/// One refusal: the framework, in `role`, is not offered these resources
/// of the agent again until `expires`.
#[derive(Debug, Clone)]
pub struct Refusal {
    role: String,
    resources: Resources,
    expires: Instant,
}

/// One agent's refusals, by framework.
pub type AgentRefusals = FastMap<String, Vec<Refusal>>;

/// All frameworks' refusals, by agent.
#[derive(Debug, Clone, Default)]
pub struct OfferFilters {
    by_agent: FastMap<String, AgentRefusals>,
}

impl OfferFilters {
    /// Installs a refusal of `resources` (unallocated) on `agent` for
    /// `framework` in `role` until `now + duration`.
    pub fn refuse(
        &mut self,
        framework: &str,
        role: &str,
        agent: &str,
        resources: Resources,
        now: Instant,
        duration: Duration,
    ) {
        if resources.is_empty() {
            return;
        }
        let refusal = Refusal {
            role: role.to_string(),
            resources,
            expires: now + duration,
        };
        self.by_agent
            .entry(agent.to_string())
            .or_default()
            .entry(framework.to_string())
            .or_default()
            .push(refusal);
    }

    /// The refusals concerning `agent`, for [`is_filtered`].
    pub fn for_agent(&self, agent: &str) -> Option<&AgentRefusals> {
        self.by_agent.get(agent)
    }

    /// Whether offering `resources` (unallocated) of `agent` to `framework`
    /// in `role` is filtered at `now`.
    pub fn is_filtered(
        &self,
        framework: &str,
        role: &str,
        agent: &str,
        resources: &Resources,
        now: Instant,
    ) -> bool {
        is_filtered(self.for_agent(agent), framework, role, resources, now)
    }

    /// Drops refusals that expired by `now`.
    pub fn expire(&mut self, now: Instant) {
        self.by_agent.retain(|_, frameworks| {
            frameworks.retain(|_, list| {
                list.retain(|r| r.expires > now);
                !list.is_empty()
            });
            !frameworks.is_empty()
        });
    }

    /// Drops a framework's refusals in `roles` (all roles if `None`), as
    /// REVIVE does.
    pub fn clear(&mut self, framework: &str, roles: Option<&[String]>) {
        self.by_agent.retain(|_, frameworks| {
            match roles {
                None => {
                    frameworks.remove(framework);
                }
                Some(roles) => {
                    if let Some(list) = frameworks.get_mut(framework) {
                        list.retain(|r| !roles.contains(&r.role));
                        if list.is_empty() {
                            frameworks.remove(framework);
                        }
                    }
                }
            }
            !frameworks.is_empty()
        });
    }

    /// Drops every refusal concerning `agent` (it was removed).
    pub fn remove_agent(&mut self, agent: &str) {
        self.by_agent.remove(agent);
    }

    /// Number of live refusals (for metrics and tests).
    pub fn len(&self) -> usize {
        self.by_agent
            .values()
            .flat_map(|frameworks| frameworks.values())
            .map(Vec::len)
            .sum()
    }

    /// Whether there is no refusal.
    pub fn is_empty(&self) -> bool {
        self.by_agent.is_empty()
    }
}

/// Whether some live refusal in `refusals` (one agent's) by `framework` in
/// `role` covers all of `resources`. Offering more than was refused (e.g.
/// after a task ended) passes, as with Mesos's `RefusedOfferFilter`.
pub fn is_filtered(
    refusals: Option<&AgentRefusals>,
    framework: &str,
    role: &str,
    resources: &Resources,
    now: Instant,
) -> bool {
    refusals
        .and_then(|frameworks| frameworks.get(framework))
        .is_some_and(|list| {
            list.iter()
                .any(|r| r.role == role && r.expires > now && r.resources.contains(resources))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn refuse_seconds_follow_mesos_clamping() {
        assert_eq!(refuse_duration(None, SECOND), Some(5 * SECOND));
        assert_eq!(refuse_duration(Some(-3.0), SECOND), Some(5 * SECOND));
        assert_eq!(refuse_duration(Some(f64::NAN), SECOND), Some(5 * SECOND));
        assert_eq!(refuse_duration(Some(0.0), SECOND), None);
        assert_eq!(refuse_duration(Some(0.2), SECOND), Some(SECOND));
        assert_eq!(refuse_duration(Some(30.0), SECOND), Some(30 * SECOND));
        assert_eq!(refuse_duration(Some(1e12), SECOND), Some(MAX_REFUSE));
        assert_eq!(
            refuse_duration(Some(f64::INFINITY), SECOND),
            Some(MAX_REFUSE)
        );
    }

    #[test]
    fn refusal_covers_subsets_until_it_expires() {
        let now = Instant::now();
        let mut filters = OfferFilters::default();
        let offered = Resources::parse("cpus:2;mem:1024", "*").unwrap();
        filters.refuse("f", "*", "a", offered.clone(), now, 5 * SECOND);
        assert!(filters.is_filtered("f", "*", "a", &offered, now));
        let less = Resources::parse("cpus:1", "*").unwrap();
        assert!(filters.is_filtered("f", "*", "a", &less, now + 4 * SECOND));
        let more = Resources::parse("cpus:3;mem:1024", "*").unwrap();
        assert!(!filters.is_filtered("f", "*", "a", &more, now));
        assert!(!filters.is_filtered("f", "*", "b", &offered, now));
        assert!(!filters.is_filtered("f", "web", "a", &offered, now));
        assert!(!filters.is_filtered("g", "*", "a", &offered, now));
        assert!(!filters.is_filtered("f", "*", "a", &offered, now + 5 * SECOND));
        filters.expire(now + 5 * SECOND);
        assert!(filters.is_empty());
    }

    #[test]
    fn clear_by_role_and_agent_removal() {
        let now = Instant::now();
        let mut filters = OfferFilters::default();
        let r = Resources::parse("cpus:1", "*").unwrap();
        filters.refuse("f", "x", "a", r.clone(), now, SECOND);
        filters.refuse("f", "y", "a", r.clone(), now, SECOND);
        filters.refuse("f", "y", "b", r.clone(), now, SECOND);
        filters.refuse("g", "y", "b", r.clone(), now, SECOND);
        filters.clear("f", Some(&["x".to_string()]));
        assert_eq!(filters.len(), 3);
        filters.remove_agent("b");
        assert_eq!(filters.len(), 1);
        filters.clear("f", None);
        assert!(filters.is_empty());
    }
}
