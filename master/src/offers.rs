//! Seed step 2: free resources become offers (`Master::offer`,
//! src/master/master.cpp ~9400).
//!
//! * One offer per (framework, role, agent) the allocator produced; all of a
//!   framework's offers of one run go out in a single OFFERS event.
//! * Offer ids are `<master_id>-O<n>`.
//! * Resource format follows the framework's capabilities: without
//!   MULTI_ROLE `allocation_info` is stripped; without
//!   RESERVATION_REFINEMENT the pre-refinement format is used, so unreserved
//!   resources carry `"role":"*"` (what pymesos sees).
//! * Offers are rescinded on `--offer_timeout`, when their agent goes away
//!   (RESCIND event) and, silently, when their framework disconnects.
//! * DECLINE returns the resources with a refusal filter.

use std::time::Instant;

use mesos_proto::resources::Resources;
use mesos_proto::v1::framework_info::capability::Type as Capability;
use mesos_proto::v1::resource::AllocationInfo;
use mesos_proto::v1::scheduler::{call, event, Event};
use mesos_proto::v1::{self, Address, AgentId, ExecutorId, FrameworkId, Offer, OfferId, Url};

use crate::allocator::filters::refuse_duration;
use crate::allocator::Offerable;
use crate::frameworks::Framework;
use crate::master::{Command, Master};

/// An outstanding offer.
#[derive(Debug, Clone)]
pub(crate) struct OfferEntry {
    /// The offer as sent to the framework.
    pub offer: Offer,
    pub framework_id: String,
    pub agent_id: String,
    /// The allocation role.
    pub role: String,
    /// The offered resources, post-refinement, with allocation role.
    pub resources: Resources,
}

impl Master {
    /// Runs the allocator and turns its result into offers.
    pub(crate) fn allocate(&mut self) {
        let started = Instant::now();
        let result = self.allocator.allocate(Instant::now());
        self.metrics.record_allocation_run(started.elapsed());
        for (framework_id, offerables) in result {
            self.offer(&framework_id, offerables);
        }
    }

    fn offer(&mut self, framework_id: &str, offerables: Vec<Offerable>) {
        let connected = self
            .frameworks
            .get(framework_id)
            .is_some_and(Framework::connected);
        let mut offers = Vec::new();
        for offerable in offerables {
            let usable = connected
                && self
                    .agents
                    .get(&offerable.agent_id)
                    .is_some_and(|a| a.connected);
            if !usable {
                // Lost a race with a disconnection: give the resources back.
                self.allocator.recover(
                    framework_id,
                    &offerable.agent_id,
                    &offerable.resources,
                    None,
                    Instant::now(),
                );
                continue;
            }
            let offer = self.make_offer(framework_id, offerable);
            tracing::info!(
                seed_step = 1u64,
                offer_id = %offer.id.value,
                agent = %offer.agent_id.value,
                "allocator allocated the agent's free resources to framework {framework_id}"
            );
            offers.push(offer);
        }
        if offers.is_empty() {
            return;
        }
        let offer_ids: Vec<&str> = offers.iter().map(|o| o.id.value.as_str()).collect();
        tracing::info!(
            seed_step = 2u64,
            offer_id = %offer_ids.join(","),
            "OFFERS event sent to framework {framework_id}"
        );
        let event = Event {
            r#type: Some(event::Type::Offers as i32),
            offers: Some(event::Offers { offers }),
            ..Default::default()
        };
        self.send_event(framework_id, &event);
    }

    fn make_offer(&mut self, framework_id: &str, offerable: Offerable) -> Offer {
        let id = format!("{}-O{}", self.info.id, self.next_offer);
        self.next_offer += 1;
        let framework = self.frameworks.get(framework_id);
        let multi_role = framework.is_some_and(|f| f.has_capability(Capability::MultiRole));
        let refinement =
            framework.is_some_and(|f| f.has_capability(Capability::ReservationRefinement));
        let agent = self.agents.get(&offerable.agent_id);
        let hostname = agent.map(|a| a.info.hostname.clone()).unwrap_or_default();
        let executor_ids: Vec<ExecutorId> = agent
            .and_then(|a| a.executors.get(framework_id))
            .map(|executors| {
                executors
                    .keys()
                    .map(|id| ExecutorId { value: id.clone() })
                    .collect()
            })
            .unwrap_or_default();
        let offer = Offer {
            id: OfferId { value: id.clone() },
            framework_id: FrameworkId {
                value: framework_id.to_string(),
            },
            agent_id: AgentId {
                value: offerable.agent_id.clone(),
            },
            hostname: hostname.clone(),
            resources: offer_resources(&offerable.resources, multi_role, refinement),
            executor_ids,
            attributes: agent.map(|a| a.info.attributes.clone()).unwrap_or_default(),
            url: agent.map(|a| Url {
                scheme: "http".to_string(),
                address: Address {
                    hostname: Some(hostname.clone()),
                    ip: Some(a.pid.address.ip().to_string()),
                    port: i32::from(a.pid.address.port()),
                },
                path: Some(format!("/{}", a.pid.id)),
                ..Default::default()
            }),
            allocation_info: multi_role.then(|| AllocationInfo {
                role: Some(offerable.role.clone()),
            }),
            domain: agent.and_then(|a| a.info.domain.clone()),
            ..Default::default()
        };
        if let Some(framework) = self.frameworks.get_mut(framework_id) {
            framework.offers.insert(id.clone());
        }
        if let Some(agent) = self.agents.get_mut(&offerable.agent_id) {
            agent.offers.insert(id.clone());
        }
        self.offers.insert(
            id.clone(),
            OfferEntry {
                offer: offer.clone(),
                framework_id: framework_id.to_string(),
                agent_id: offerable.agent_id,
                role: offerable.role,
                resources: offerable.resources,
            },
        );
        if let Some(timeout) = self.flags.offer_timeout {
            self.after(timeout, Command::OfferTimeout { offer_id: id });
        }
        offer
    }

    /// Forgets an offer (it was used, declined or rescinded) without
    /// touching its resources.
    pub(crate) fn remove_offer(&mut self, offer_id: &str) -> Option<OfferEntry> {
        let entry = self.offers.remove(offer_id)?;
        if let Some(framework) = self.frameworks.get_mut(&entry.framework_id) {
            framework.offers.remove(offer_id);
        }
        if let Some(agent) = self.agents.get_mut(&entry.agent_id) {
            agent.offers.remove(offer_id);
        }
        Some(entry)
    }

    /// Takes an offer back: resources go back to the allocator (no filter)
    /// and, if `notify`, the framework gets RESCIND.
    pub(crate) fn rescind_offer(&mut self, offer_id: &str, notify: bool) {
        let Some(entry) = self.remove_offer(offer_id) else {
            return;
        };
        self.allocator.recover(
            &entry.framework_id,
            &entry.agent_id,
            &entry.resources,
            None,
            Instant::now(),
        );
        self.metrics.offers_rescinded += 1;
        if notify {
            let event = Event {
                r#type: Some(event::Type::Rescind as i32),
                rescind: Some(event::Rescind {
                    offer_id: OfferId {
                        value: offer_id.to_string(),
                    },
                }),
                ..Default::default()
            };
            self.send_event(&entry.framework_id, &event);
        }
    }

    /// Silently takes back every outstanding offer of a framework (it
    /// disconnected or failed over).
    pub(crate) fn remove_offers_of(&mut self, framework_id: &str) {
        let ids: Vec<String> = self
            .frameworks
            .get(framework_id)
            .map(|f| f.offers.iter().cloned().collect())
            .unwrap_or_default();
        for id in ids {
            self.rescind_offer(&id, false);
        }
    }

    /// `--offer_timeout` expired.
    pub(crate) fn offer_timeout(&mut self, offer_id: &str) {
        if self.offers.contains_key(offer_id) {
            tracing::info!(offer = %offer_id, "offer timed out, rescinding");
            self.rescind_offer(offer_id, true);
        }
    }

    /// DECLINE: the resources go back with a refusal filter of
    /// `filters.refuse_seconds` (default 5 s, Mesos's clamping).
    pub(crate) fn decline(&mut self, framework_id: &str, decline: call::Decline) {
        let refuse_seconds = decline
            .filters
            .map_or(Some(v1::Filters::default().refuse_seconds()), |f| {
                Some(f.refuse_seconds())
            });
        let refuse = refuse_duration(refuse_seconds, self.flags.allocation_interval);
        for offer_id in decline.offer_ids {
            let belongs = self
                .offers
                .get(&offer_id.value)
                .is_some_and(|o| o.framework_id == framework_id);
            if !belongs {
                tracing::warn!(offer = %offer_id.value, "ignoring DECLINE of an unknown offer");
                continue;
            }
            if let Some(entry) = self.remove_offer(&offer_id.value) {
                self.allocator.recover(
                    framework_id,
                    &entry.agent_id,
                    &entry.resources,
                    refuse,
                    Instant::now(),
                );
            }
        }
    }
}

/// The offered resources in the format the framework understands.
fn offer_resources(resources: &Resources, multi_role: bool, refinement: bool) -> Vec<v1::Resource> {
    let mut list: Vec<v1::Resource> = if refinement {
        resources.to_vec()
    } else {
        resources.to_pre_refinement()
    };
    if !multi_role {
        for resource in &mut list {
            resource.allocation_info = None;
        }
    }
    list
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_frameworks_see_role_star_and_no_allocation_info() {
        let mut resources = Resources::parse("cpus:1;mem(web):32", "*").unwrap();
        resources.allocate("web");
        let old = offer_resources(&resources, false, false);
        #[allow(deprecated)]
        let roles: Vec<_> = old.iter().map(|r| r.role.clone()).collect();
        assert_eq!(roles, vec![Some("*".to_string()), Some("web".to_string())]);
        assert!(old.iter().all(|r| r.allocation_info.is_none()));
        let new = offer_resources(&resources, true, true);
        assert!(new.iter().all(|r| r.allocation_info.is_some()));
        assert!(new[1].reservations.len() == 1);
    }
}
