//! Seed step 1: something changes, the allocator runs.
//!
//! A pure, deterministic hierarchical DRF allocator after Mesos's
//! `HierarchicalAllocatorProcess` (src/master/allocator/mesos/hierarchical.cpp).
//! It owns no clock and no timer: callers pass `now`, and the master drives
//! the runs:
//!
//! * **Triggers.** Framework activation, REVIVE and a new or changed agent
//!   call [`Allocator::request`] (all agents, or that agent). Recovered
//!   resources (DECLINE, the unused part of an ACCEPT, finished tasks,
//!   removed frameworks) are *not* triggers; they wait for the periodic run
//!   every `--allocation_interval`, as in Mesos (MESOS-3078).
//! * **Batching.** `request` only accumulates candidate agents and returns
//!   `true` when it turned the allocator from idle to pending; the master
//!   then queues exactly one "allocate" command behind whatever is already
//!   in its mailbox, so a burst of triggers causes one run (Mesos commit
//!   69875e52b does the same with `allocationCandidates`).
//! * **A run** ([`Allocator::allocate`]) walks the candidate agents in id
//!   order; for each, the roles in DRF order ([`drf`]), and in each role the
//!   frameworks in DRF order; the first framework that is active, not
//!   suppressed, not filtered ([`filters`]) and can use an allocatable amount
//!   (`--min_allocatable_resources`) gets everything available to its role on
//!   that agent. The result is one entry per (framework, role, agent), which
//!   the master turns into one offer each.
//!
//! Quota and the random sorter are not implemented.

pub mod bench;
pub mod drf;
pub mod filters;

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use mesos_proto::resources::{Resource, Resources};

use self::drf::{DrfSorter, Quantities};
use self::filters::OfferFilters;

/// Hash maps keyed by our own ids: no need for SipHash's DoS resistance,
/// and the allocator hashes ids on every step of a run.
pub(crate) type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Allocator settings taken from master flags.
#[derive(Debug, Clone)]
pub struct AllocatorConfig {
    /// `--allocation_interval` (default 1 s); also the shortest filter.
    pub allocation_interval: Duration,
    /// `--min_allocatable_resources`: an offer must hold at least one of
    /// these sets of quantities (default `cpus:0.01|mem:32`). Empty: any
    /// non-empty resources.
    pub min_allocatable: Vec<Quantities>,
    /// `--weights`: role → weight (default 1.0).
    pub weights: HashMap<String, f64>,
    /// `--fair_sharing_excluded_resource_names`.
    pub fair_sharing_excluded: Vec<String>,
    /// `--filter_gpu_resources`: only GPU_RESOURCES frameworks get offers
    /// from agents with GPUs (default true).
    pub filter_gpu_resources: bool,
}

impl Default for AllocatorConfig {
    fn default() -> Self {
        AllocatorConfig {
            allocation_interval: Duration::from_secs(1),
            min_allocatable: vec![
                vec![("cpus".to_string(), 0.01)],
                vec![("mem".to_string(), 32.0)],
            ],
            weights: HashMap::new(),
            fair_sharing_excluded: Vec::new(),
            filter_gpu_resources: true,
        }
    }
}

/// The framework capabilities that change what it may be offered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// REVOCABLE_RESOURCES.
    pub revocable: bool,
    /// SHARED_RESOURCES.
    pub shared: bool,
    /// GPU_RESOURCES.
    pub gpu: bool,
    /// RESERVATION_REFINEMENT.
    pub reservation_refinement: bool,
}

/// What the allocator knows about a framework.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FrameworkSpec {
    /// The roles it subscribed with.
    pub roles: BTreeSet<String>,
    /// Roles it subscribed suppressed (`Subscribe.suppressed_roles`).
    pub suppressed_roles: BTreeSet<String>,
    /// Capabilities relevant to allocation.
    pub capabilities: Capabilities,
    /// Per-role `FrameworkInfo.offer_filters[role].min_allocatable_resources`,
    /// overriding the global minimum.
    pub min_allocatable: HashMap<String, Vec<Quantities>>,
}

/// Resources for one framework in one role on one agent: one future offer.
#[derive(Debug, Clone, PartialEq)]
pub struct Offerable {
    /// The role the resources are allocated to.
    pub role: String,
    /// The agent they are on.
    pub agent_id: String,
    /// The resources, with `allocation_info.role` set.
    pub resources: Resources,
}

/// What one run allocated, by framework id (sorted).
pub type AllocationResult = BTreeMap<String, Vec<Offerable>>;

/// Which agents the next run considers.
#[derive(Debug, Clone, Default, PartialEq)]
enum Candidates {
    #[default]
    None,
    Some(BTreeSet<String>),
    All,
}

#[derive(Debug, Clone)]
struct Agent {
    total: Resources,
    /// `total` minus everything allocated (offered or in use).
    available: Resources,
    /// In use by frameworks the allocator does not know (yet), reported
    /// when the agent was added.
    unknown_used: Resources,
    active: bool,
    has_gpus: bool,
    /// Whether some resources need a capability (revocable, shared,
    /// refined reservations), so offers must be stripped per framework.
    needs_capabilities: bool,
}

#[derive(Debug, Clone)]
struct Framework {
    spec: FrameworkSpec,
    active: bool,
    suppressed: BTreeSet<String>,
    /// Allocated resources by agent.
    allocated: FastMap<String, Resources>,
}

/// The allocator state. See the module documentation.
#[derive(Debug, Clone)]
pub struct Allocator {
    config: AllocatorConfig,
    agents: BTreeMap<String, Agent>,
    frameworks: FastMap<String, Framework>,
    roles: DrfSorter,
    /// One framework sorter per role.
    framework_sorters: FastMap<String, DrfSorter>,
    filters: OfferFilters,
    total: Resources,
    candidates: Candidates,
    runs: u64,
}

impl Allocator {
    /// An allocator with no agents and no frameworks.
    pub fn new(config: AllocatorConfig) -> Self {
        let mut roles = DrfSorter::new(config.fair_sharing_excluded.clone());
        for (role, weight) in &config.weights {
            roles.set_weight(role, *weight);
        }
        Allocator {
            config,
            agents: BTreeMap::new(),
            frameworks: FastMap::default(),
            roles,
            framework_sorters: FastMap::default(),
            filters: OfferFilters::default(),
            total: Resources::new(),
            candidates: Candidates::None,
            runs: 0,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &AllocatorConfig {
        &self.config
    }

    /// Number of completed runs (`allocator/mesos/allocation_runs`).
    pub fn runs(&self) -> u64 {
        self.runs
    }

    /// Total resources of all agents.
    pub fn total(&self) -> &Resources {
        &self.total
    }

    /// Resources allocated (offered or in use) on all agents, without
    /// allocation roles.
    pub fn allocated(&self) -> Resources {
        let mut sum = Resources::new();
        for agent in self.agents.values() {
            sum.add(&(&agent.total - &agent.available));
        }
        sum
    }

    /// Number of live offer filters.
    pub fn filter_count(&self) -> usize {
        self.filters.len()
    }

    /// A role's DRF share (for `/roles` and tests).
    pub fn role_share(&mut self, role: &str) -> f64 {
        self.roles.share(role)
    }

    /// Whether a run is pending.
    pub fn is_pending(&self) -> bool {
        self.candidates != Candidates::None
    }

    /// Asks for a run over `agent` (or every agent if `None`). Returns true
    /// when no run was pending before, i.e. when the caller must schedule
    /// one; further requests until that run are merged into it.
    pub fn request(&mut self, agent: Option<&str>) -> bool {
        let was_idle = !self.is_pending();
        self.candidates = match (std::mem::take(&mut self.candidates), agent) {
            (Candidates::All, _) | (_, None) => Candidates::All,
            (Candidates::None, Some(a)) => Candidates::Some(BTreeSet::from([a.to_string()])),
            (Candidates::Some(mut set), Some(a)) => {
                set.insert(a.to_string());
                Candidates::Some(set)
            }
        };
        was_idle
    }

    /// Adds a framework; an active one triggers a run over all agents.
    /// Returns whether a run must be scheduled (see [`Allocator::request`]).
    pub fn add_framework(&mut self, id: &str, spec: FrameworkSpec, active: bool) -> bool {
        if self.frameworks.contains_key(id) {
            return self.update_framework(id, spec);
        }
        let suppressed = spec.suppressed_roles.clone();
        let roles = spec.roles.clone();
        self.frameworks.insert(
            id.to_string(),
            Framework {
                spec,
                active,
                suppressed,
                allocated: FastMap::default(),
            },
        );
        for role in &roles {
            self.track_role(id, role);
        }
        active && self.request(None)
    }

    /// Changes a framework's roles, suppressed roles or capabilities
    /// (re-SUBSCRIBE or UPDATE_FRAMEWORK).
    pub fn update_framework(&mut self, id: &str, spec: FrameworkSpec) -> bool {
        let Some(framework) = self.frameworks.get_mut(id) else {
            return false;
        };
        let old_roles = std::mem::replace(&mut framework.spec, spec.clone()).roles;
        framework.suppressed = spec.suppressed_roles.clone();
        for role in old_roles.difference(&spec.roles) {
            self.untrack_role(id, role);
        }
        for role in &spec.roles {
            self.track_role(id, role);
        }
        self.frameworks.get(id).is_some_and(|f| f.active) && self.request(None)
    }

    /// Marks a framework connected again; triggers a run.
    pub fn activate_framework(&mut self, id: &str) -> bool {
        let Some(framework) = self.frameworks.get_mut(id) else {
            return false;
        };
        framework.active = true;
        self.sync_activation(id);
        self.request(None)
    }

    /// Marks a framework disconnected: it gets no offers and its filters are
    /// dropped (Mesos's `deactivateFramework`).
    pub fn deactivate_framework(&mut self, id: &str) {
        if let Some(framework) = self.frameworks.get_mut(id) {
            framework.active = false;
        }
        self.sync_activation(id);
        self.filters.clear(id, None);
    }

    /// Removes a framework and frees everything allocated to it.
    pub fn remove_framework(&mut self, id: &str) {
        let Some(framework) = self.frameworks.get(id) else {
            return;
        };
        let allocations: Vec<(String, Resources)> = framework
            .allocated
            .iter()
            .map(|(a, r)| (a.clone(), r.clone()))
            .collect();
        let roles = framework.spec.roles.clone();
        for (agent, resources) in allocations {
            self.recover(id, &agent, &resources, None, Instant::now());
        }
        for role in &roles {
            self.untrack_role(id, role);
        }
        self.frameworks.remove(id);
        self.filters.clear(id, None);
    }

    /// SUPPRESS: no offers in `roles` (all of the framework's roles if
    /// empty) until REVIVE.
    pub fn suppress(&mut self, id: &str, roles: &[String]) {
        let Some(framework) = self.frameworks.get_mut(id) else {
            return;
        };
        let roles = if roles.is_empty() {
            framework.spec.roles.iter().cloned().collect()
        } else {
            roles.to_vec()
        };
        framework.suppressed.extend(roles);
        self.sync_activation(id);
    }

    /// REVIVE: drops the filters of `roles` (all if empty), un-suppresses
    /// them and triggers a run over all agents.
    pub fn revive(&mut self, id: &str, roles: &[String]) -> bool {
        let Some(framework) = self.frameworks.get_mut(id) else {
            return false;
        };
        if roles.is_empty() {
            framework.suppressed.clear();
            self.filters.clear(id, None);
        } else {
            for role in roles {
                framework.suppressed.remove(role);
            }
            self.filters.clear(id, Some(roles));
        }
        self.sync_activation(id);
        self.request(None)
    }

    /// Adds an agent with its total resources and what is already in use
    /// (by framework; allocation roles set). Triggers a run for it.
    pub fn add_agent(&mut self, id: &str, total: Resources, used: &[(String, Resources)]) -> bool {
        self.remove_agent(id);
        let has_gpus = total.gpus().is_some_and(|g| g > 0.0);
        let needs_capabilities = !total.filter(needs_capability).is_empty();
        self.agents.insert(
            id.to_string(),
            Agent {
                available: total.clone(),
                unknown_used: Resources::new(),
                total: total.clone(),
                active: true,
                has_gpus,
                needs_capabilities,
            },
        );
        self.total.add(&total);
        self.update_totals();
        for (framework, resources) in used {
            self.track_allocation(framework, id, resources);
        }
        self.request(Some(id))
    }

    /// Changes an agent's total resources (e.g. oversubscription); triggers
    /// a run for it.
    pub fn update_agent(&mut self, id: &str, total: Resources) -> bool {
        let Some(agent) = self.agents.get_mut(id) else {
            return false;
        };
        if agent.total == total {
            return false;
        }
        self.total.subtract(&agent.total);
        self.total.add(&total);
        let used = &agent.total - &agent.available;
        agent.available = &total - &used;
        agent.has_gpus = total.gpus().is_some_and(|g| g > 0.0);
        agent.needs_capabilities = !total.filter(needs_capability).is_empty();
        agent.total = total;
        self.update_totals();
        self.request(Some(id))
    }

    /// Removes an agent and everything allocated on it.
    pub fn remove_agent(&mut self, id: &str) {
        let Some(agent) = self.agents.remove(id) else {
            return;
        };
        let holders: Vec<(String, Resources)> = self
            .frameworks
            .iter()
            .filter_map(|(f, fw)| fw.allocated.get(id).map(|r| (f.clone(), r.clone())))
            .collect();
        for (framework, resources) in holders {
            self.untrack_allocation(&framework, id, &resources);
        }
        self.total.subtract(&agent.total);
        self.update_totals();
        self.filters.remove_agent(id);
        if let Candidates::Some(set) = &mut self.candidates {
            set.remove(id);
            if set.is_empty() {
                self.candidates = Candidates::None;
            }
        }
    }

    /// Stops offering an agent's resources (it disconnected).
    pub fn deactivate_agent(&mut self, id: &str) {
        if let Some(agent) = self.agents.get_mut(id) {
            agent.active = false;
        }
    }

    /// Offers an agent's resources again; triggers a run for it.
    pub fn activate_agent(&mut self, id: &str) -> bool {
        match self.agents.get_mut(id) {
            Some(agent) => {
                agent.active = true;
                self.request(Some(id))
            }
            None => false,
        }
    }

    /// Records resources the master allocated outside of an offer's
    /// remainder, e.g. tasks found on a re-registering agent.
    pub fn add_used(&mut self, framework: &str, agent: &str, resources: &Resources) {
        self.track_allocation(framework, agent, resources);
    }

    /// Takes resources back from a framework: a declined offer, the unused
    /// part of an ACCEPT, a finished task, a rescinded offer. With
    /// `refuse = Some(d)` they are not offered to that framework (in that
    /// role, on that agent) again for `d` (see
    /// [`filters::refuse_duration`]). Not a trigger: the next periodic run
    /// re-offers them.
    pub fn recover(
        &mut self,
        framework: &str,
        agent: &str,
        resources: &Resources,
        refuse: Option<Duration>,
        now: Instant,
    ) {
        if resources.is_empty() {
            return;
        }
        let resources = self.with_allocation_roles(framework, resources);
        self.untrack_allocation(framework, agent, &resources);
        if let Some(duration) = refuse {
            if self.agents.contains_key(agent) && self.frameworks.contains_key(framework) {
                for role in resources.allocation_roles() {
                    let mut refused = resources.allocated_to(&role);
                    refused.unallocate();
                    self.filters
                        .refuse(framework, &role, agent, refused, now, duration);
                }
            }
        }
    }

    /// One allocation run over the pending candidates (nothing if none is
    /// pending). Deterministic given the state and `now`.
    pub fn allocate(&mut self, now: Instant) -> AllocationResult {
        let candidates = std::mem::take(&mut self.candidates);
        self.filters.expire(now);
        let agents: Vec<String> = match candidates {
            Candidates::None => return AllocationResult::new(),
            Candidates::All => self.agents.keys().cloned().collect(),
            Candidates::Some(set) => set.into_iter().collect(),
        };
        self.runs += 1;
        self.roles.refresh();
        for sorter in self.framework_sorters.values_mut() {
            sorter.refresh();
        }
        let mut result = AllocationResult::new();
        for agent in &agents {
            if self.agents.get(agent).is_some_and(|a| a.active) {
                self.allocate_agent(agent, now, &mut result);
            }
        }
        result
    }

    /// Runs a full allocation at once, ignoring batching (tests, benches).
    pub fn allocate_all(&mut self, now: Instant) -> AllocationResult {
        self.request(None);
        self.allocate(now)
    }

    fn allocate_agent(&mut self, agent_id: &str, now: Instant, result: &mut AllocationResult) {
        let roles: Vec<String> = self.roles.iter().map(str::to_string).collect();
        for role in roles {
            let mut offered_here: Vec<String> = Vec::new();
            loop {
                let Some(agent) = self.agents.get(agent_id) else {
                    return;
                };
                if agent.available.is_empty() {
                    return;
                }
                let available = agent.available.allocatable_to(&role);
                if available.is_empty() {
                    break;
                }
                let Some((framework, resources)) =
                    self.pick_framework(agent_id, agent, &role, &available, &offered_here, now)
                else {
                    break;
                };
                let mut allocated = resources;
                allocated.allocate(&role);
                self.track_allocation(&framework, agent_id, &allocated);
                result
                    .entry(framework.clone())
                    .or_default()
                    .push(Offerable {
                        role: role.clone(),
                        agent_id: agent_id.to_string(),
                        resources: allocated,
                    });
                offered_here.push(framework);
            }
        }
    }

    /// The first framework of `role`, in DRF order, that can take an
    /// allocatable part of `available`, with that part.
    fn pick_framework(
        &self,
        agent_id: &str,
        agent: &Agent,
        role: &str,
        available: &Resources,
        offered_here: &[String],
        now: Instant,
    ) -> Option<(String, Resources)> {
        let sorter = self.framework_sorters.get(role)?;
        let refusals = self.filters.for_agent(agent_id);
        for framework_id in sorter.iter() {
            if offered_here.iter().any(|f| f == framework_id) {
                continue;
            }
            let Some(framework) = self.frameworks.get(framework_id) else {
                continue;
            };
            let caps = framework.spec.capabilities;
            if self.config.filter_gpu_resources && agent.has_gpus && !caps.gpu {
                continue;
            }
            let offerable = if agent.needs_capabilities {
                Cow::Owned(available.filter(|r| usable_with(r, caps)))
            } else {
                Cow::Borrowed(available)
            };
            if !self.allocatable(framework, role, &offerable) {
                continue;
            }
            if filters::is_filtered(refusals, framework_id, role, &offerable, now) {
                continue;
            }
            return Some((framework_id.to_string(), offerable.into_owned()));
        }
        None
    }

    fn allocatable(&self, framework: &Framework, role: &str, resources: &Resources) -> bool {
        if resources.is_empty() {
            return false;
        }
        let minimums = framework
            .spec
            .min_allocatable
            .get(role)
            .unwrap_or(&self.config.min_allocatable);
        minimums.is_empty()
            || minimums.iter().any(|set| {
                set.iter()
                    .all(|(name, q)| resources.scalar(name).is_some_and(|have| have + 1e-9 >= *q))
            })
    }

    /// Resources without an allocation role (a non-MULTI_ROLE framework's
    /// task) belong to the framework's only role.
    fn with_allocation_roles<'a>(
        &self,
        framework: &str,
        resources: &'a Resources,
    ) -> Cow<'a, Resources> {
        if !resources.has_unallocated() {
            return Cow::Borrowed(resources);
        }
        let role = self
            .frameworks
            .get(framework)
            .and_then(|f| f.spec.roles.iter().next().cloned())
            .unwrap_or_else(|| "*".to_string());
        let mut fixed = Resources::new();
        for mut r in resources.iter() {
            if allocation_role(&r).is_none() {
                r.allocation_info = Some(mesos_proto::v1::resource::AllocationInfo {
                    role: Some(role.clone()),
                });
            }
            fixed.add_resource(r);
        }
        Cow::Owned(fixed)
    }

    fn track_allocation(&mut self, framework: &str, agent_id: &str, resources: &Resources) {
        let resources = self.with_allocation_roles(framework, resources);
        let known = self.frameworks.contains_key(framework);
        if let Some(agent) = self.agents.get_mut(agent_id) {
            let mut unallocated = resources.clone().into_owned();
            unallocated.unallocate();
            agent.available.subtract(&unallocated);
            if !known {
                agent.unknown_used.add(&resources);
            }
        }
        if let Some(fw) = self.frameworks.get_mut(framework) {
            match fw.allocated.get_mut(agent_id) {
                Some(held) => held.add(&resources),
                None => {
                    fw.allocated
                        .insert(agent_id.to_string(), resources.clone().into_owned());
                }
            }
        }
        for (role, part) in by_role(&resources) {
            let quantities: Vec<(&str, f64)> = part.scalars().collect();
            if !self.roles.contains(&role) {
                self.roles.add(&role);
                self.roles.activate(&role);
            }
            self.roles.allocated(&role, &quantities);
            let sorter = self.framework_sorter(&role);
            if !sorter.contains(framework) {
                sorter.add(framework);
            }
            sorter.allocated(framework, &quantities);
        }
    }

    /// Gives back what of `resources` is actually allocated to `framework`
    /// on the agent (the master may race with agent or framework removal).
    fn untrack_allocation(&mut self, framework: &str, agent_id: &str, resources: &Resources) {
        let mut returned = Resources::new();
        if let Some(fw) = self.frameworks.get_mut(framework) {
            if let Some(held) = fw.allocated.get_mut(agent_id) {
                returned = take(held, resources);
                if held.is_empty() {
                    fw.allocated.remove(agent_id);
                }
            }
        }
        // Usage reported before the framework was known.
        let rest = resources - &returned;
        if !rest.is_empty() {
            if let Some(agent) = self.agents.get_mut(agent_id) {
                returned.add(&take(&mut agent.unknown_used, &rest));
            }
        }
        if let Some(agent) = self.agents.get_mut(agent_id) {
            let mut unallocated = returned.clone();
            unallocated.unallocate();
            agent.available.add(&unallocated);
        }
        for (role, part) in by_role(&returned) {
            let quantities: Vec<(&str, f64)> = part.scalars().collect();
            self.roles.unallocated(&role, &quantities);
            if let Some(sorter) = self.framework_sorters.get_mut(&role) {
                sorter.unallocated(framework, &quantities);
            }
            self.forget_role_if_unused(&role);
        }
    }

    fn framework_sorter(&mut self, role: &str) -> &mut DrfSorter {
        if !self.framework_sorters.contains_key(role) {
            let mut sorter = DrfSorter::new(self.config.fair_sharing_excluded.clone());
            sorter.set_total(self.total.scalar_quantities());
            self.framework_sorters.insert(role.to_string(), sorter);
        }
        self.framework_sorters
            .get_mut(role)
            .expect("inserted above if missing")
    }

    fn track_role(&mut self, framework: &str, role: &str) {
        if !self.roles.contains(role) {
            self.roles.add(role);
            self.roles.activate(role);
        }
        let sorter = self.framework_sorter(role);
        sorter.add(framework);
        self.sync_activation(framework);
    }

    fn untrack_role(&mut self, framework: &str, role: &str) {
        let still_allocated = self
            .framework_sorters
            .get(role)
            .is_some_and(|s| s.allocation(framework).iter().any(|(_, q)| *q > 0.0));
        if let Some(sorter) = self.framework_sorters.get_mut(role) {
            if still_allocated {
                sorter.deactivate(framework);
            } else {
                sorter.remove(framework);
            }
        }
        self.filters.clear(framework, Some(&[role.to_string()]));
        self.forget_role_if_unused(role);
    }

    /// A role leaves the sorters once no framework is in it and nothing is
    /// allocated to it.
    fn forget_role_if_unused(&mut self, role: &str) {
        let in_use = self
            .frameworks
            .values()
            .any(|f| f.spec.roles.contains(role))
            || self.roles.allocation(role).iter().any(|(_, q)| *q > 0.0);
        if !in_use {
            self.roles.remove(role);
            self.framework_sorters.remove(role);
        }
    }

    /// A framework walks in a role's sorter iff it is active, subscribed to
    /// the role and has not suppressed it.
    fn sync_activation(&mut self, id: &str) {
        let Some(framework) = self.frameworks.get(id) else {
            return;
        };
        let wanted: Vec<(String, bool)> = framework
            .spec
            .roles
            .iter()
            .map(|role| {
                (
                    role.clone(),
                    framework.active && !framework.suppressed.contains(role),
                )
            })
            .collect();
        for (role, active) in wanted {
            if let Some(sorter) = self.framework_sorters.get_mut(&role) {
                if active {
                    sorter.activate(id);
                } else {
                    sorter.deactivate(id);
                }
            }
        }
    }

    fn update_totals(&mut self) {
        let total = self.total.scalar_quantities();
        self.roles.set_total(total.clone());
        for sorter in self.framework_sorters.values_mut() {
            sorter.set_total(total.clone());
        }
    }
}

/// The resources split by allocation role (no copy for the usual single
/// role).
fn by_role(resources: &Resources) -> Vec<(String, Cow<'_, Resources>)> {
    let roles = resources.allocation_roles();
    if roles.len() == 1 {
        return roles
            .into_iter()
            .map(|r| (r, Cow::Borrowed(resources)))
            .collect();
    }
    roles
        .into_iter()
        .map(|r| {
            let part = resources.allocated_to(&r);
            (r, Cow::Owned(part))
        })
        .collect()
}

/// Removes `wanted` from `held` as far as present; returns what was removed.
fn take(held: &mut Resources, wanted: &Resources) -> Resources {
    let before = held.clone();
    held.subtract(wanted);
    &before - held
}

fn allocation_role(r: &Resource) -> Option<&str> {
    r.allocation_info.as_ref()?.role.as_deref()
}

fn needs_capability(r: &Resource) -> bool {
    r.revocable.is_some() || r.shared.is_some() || r.reservations.len() > 1
}

fn usable_with(r: &Resource, caps: Capabilities) -> bool {
    (caps.revocable || r.revocable.is_none())
        && (caps.shared || r.shared.is_none())
        && (caps.reservation_refinement || r.reservations.len() <= 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const AGENT: &str = "cpus:2;mem:1024;disk:4096;ports:[31000-32000]";

    fn res(text: &str) -> Resources {
        Resources::parse(text, "*").unwrap()
    }

    fn spec(roles: &[&str]) -> FrameworkSpec {
        FrameworkSpec {
            roles: roles.iter().map(|r| r.to_string()).collect(),
            ..Default::default()
        }
    }

    fn offers_for(result: &AllocationResult, framework: &str) -> Vec<(String, String)> {
        result
            .get(framework)
            .map(|o| {
                o.iter()
                    .map(|o| (o.role.clone(), o.agent_id.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn a_burst_of_triggers_is_one_pending_run() {
        let mut a = Allocator::new(AllocatorConfig::default());
        assert!(a.add_agent("s1", res(AGENT), &[]));
        assert!(!a.add_agent("s2", res(AGENT), &[]));
        assert!(!a.add_framework("f1", spec(&["*"]), true));
        let now = Instant::now();
        let result = a.allocate(now);
        assert_eq!(offers_for(&result, "f1").len(), 2);
        assert_eq!(a.runs(), 1);
        assert!(!a.is_pending());
        assert!(a.allocate(now).is_empty());
        assert_eq!(a.runs(), 1);
    }

    #[test]
    fn whole_agent_goes_to_one_framework_per_role_in_drf_order() {
        let mut a = Allocator::new(AllocatorConfig::default());
        a.add_framework("f1", spec(&["*"]), true);
        a.add_framework("f2", spec(&["*"]), true);
        a.add_agent("s1", res(AGENT), &[]);
        a.add_agent("s2", res(AGENT), &[]);
        let result = a.allocate(Instant::now());
        // f1 wins s1 (tie broken by name), then f2 has the lower share.
        assert_eq!(offers_for(&result, "f1"), vec![("*".into(), "s1".into())]);
        assert_eq!(offers_for(&result, "f2"), vec![("*".into(), "s2".into())]);
        let offered = &result["f1"][0].resources;
        assert_eq!(offered.cpus(), Some(2.0));
        assert_eq!(offered.allocation_roles(), vec!["*"]);
        // Everything is allocated now: a second run offers nothing.
        assert!(a.allocate_all(Instant::now()).is_empty());
    }

    #[test]
    fn declined_resources_are_filtered_then_reoffered() {
        let mut a = Allocator::new(AllocatorConfig::default());
        a.add_framework("f1", spec(&["*"]), true);
        a.add_agent("s1", res(AGENT), &[]);
        let t0 = Instant::now();
        let offer = a.allocate(t0)["f1"][0].resources.clone();
        a.recover("f1", "s1", &offer, Some(Duration::from_secs(5)), t0);
        assert_eq!(a.filter_count(), 1);
        assert!(a.allocate_all(t0 + Duration::from_secs(4)).is_empty());
        let again = a.allocate_all(t0 + Duration::from_secs(5));
        assert_eq!(again["f1"][0].resources, offer);
        assert_eq!(a.filter_count(), 0);
    }

    #[test]
    fn filtered_framework_lets_the_next_one_have_the_agent() {
        let mut a = Allocator::new(AllocatorConfig::default());
        a.add_framework("f1", spec(&["*"]), true);
        a.add_framework("f2", spec(&["*"]), true);
        a.add_agent("s1", res(AGENT), &[]);
        let now = Instant::now();
        let offer = a.allocate(now)["f1"][0].resources.clone();
        a.recover("f1", "s1", &offer, Some(Duration::from_secs(60)), now);
        let result = a.allocate_all(now);
        assert_eq!(offers_for(&result, "f2"), vec![("*".into(), "s1".into())]);
        assert!(offers_for(&result, "f1").is_empty());
    }

    #[test]
    fn suppress_stops_offers_and_revive_restores_them() {
        let mut a = Allocator::new(AllocatorConfig::default());
        a.add_framework("f1", spec(&["*"]), true);
        a.add_agent("s1", res(AGENT), &[]);
        a.suppress("f1", &[]);
        let now = Instant::now();
        assert!(a.allocate(now).is_empty());
        assert!(a.revive("f1", &[]));
        assert_eq!(offers_for(&a.allocate(now), "f1").len(), 1);
    }

    #[test]
    fn revive_clears_filters() {
        let mut a = Allocator::new(AllocatorConfig::default());
        a.add_framework("f1", spec(&["*"]), true);
        a.add_agent("s1", res(AGENT), &[]);
        let now = Instant::now();
        let offer = a.allocate(now)["f1"][0].resources.clone();
        a.recover("f1", "s1", &offer, Some(Duration::from_secs(600)), now);
        a.revive("f1", &[]);
        assert_eq!(offers_for(&a.allocate(now), "f1").len(), 1);
    }

    #[test]
    fn min_allocatable_resources_hold_back_crumbs() {
        let mut a = Allocator::new(AllocatorConfig::default());
        a.add_framework("f1", spec(&["*"]), true);
        a.add_agent("s1", res("cpus:0.005;mem:16;ports:[1-2]"), &[]);
        assert!(a.allocate(Instant::now()).is_empty());
        a.update_agent("s1", res("cpus:0.005;mem:32"));
        assert_eq!(offers_for(&a.allocate(Instant::now()), "f1").len(), 1);
    }

    #[test]
    fn reservations_go_to_their_role_and_unreserved_to_the_first_role() {
        let mut a = Allocator::new(AllocatorConfig::default());
        a.add_framework("web", spec(&["web"]), true);
        a.add_framework("batch", spec(&["batch"]), true);
        a.add_agent("s1", res("cpus:4;mem:1024;cpus(web):2;mem(web):256"), &[]);
        let result = a.allocate(Instant::now());
        // Roles tie at share 0 ("batch" < "web" by name): batch takes the
        // unreserved part, web still gets its reservation.
        let batch = &result["batch"][0].resources;
        let web = &result["web"][0].resources;
        assert_eq!(batch.cpus(), Some(4.0));
        assert_eq!(web.cpus(), Some(2.0));
        assert_eq!(web.mem(), Some(256.0));
    }

    #[test]
    fn multi_role_framework_gets_one_offer_per_role() {
        let mut a = Allocator::new(AllocatorConfig::default());
        a.add_framework("f", spec(&["a", "b"]), true);
        a.add_agent("s1", res("cpus:1;mem:64;cpus(b):1;mem(b):64"), &[]);
        let result = a.allocate(Instant::now());
        let mut roles: Vec<String> = result["f"].iter().map(|o| o.role.clone()).collect();
        roles.sort();
        assert_eq!(roles, vec!["a", "b"]);
    }

    #[test]
    fn weights_favour_heavier_roles() {
        let config = AllocatorConfig {
            weights: HashMap::from([("gold".to_string(), 3.0)]),
            ..Default::default()
        };
        let mut a = Allocator::new(config);
        a.add_framework("g", spec(&["gold"]), true);
        a.add_framework("s", spec(&["silver"]), true);
        for i in 0..8 {
            a.add_agent(&format!("s{i}"), res(AGENT), &[]);
        }
        let result = a.allocate(Instant::now());
        assert_eq!(result["g"].len(), 6);
        assert_eq!(result["s"].len(), 2);
    }

    #[test]
    fn removing_agent_or_framework_frees_allocations() {
        let mut a = Allocator::new(AllocatorConfig::default());
        a.add_framework("f1", spec(&["*"]), true);
        a.add_agent("s1", res(AGENT), &[]);
        a.add_agent("s2", res(AGENT), &[]);
        a.allocate(Instant::now());
        assert_eq!(a.allocated().cpus(), Some(4.0));
        a.remove_agent("s1");
        assert_eq!(a.allocated().cpus(), Some(2.0));
        assert_eq!(a.total().cpus(), Some(2.0));
        a.remove_framework("f1");
        assert!(a.allocated().is_empty());
        a.add_framework("f2", spec(&["*"]), true);
        assert_eq!(offers_for(&a.allocate(Instant::now()), "f2").len(), 1);
    }

    #[test]
    fn used_resources_count_toward_shares() {
        let mut a = Allocator::new(AllocatorConfig::default());
        a.add_framework("f1", spec(&["*"]), true);
        a.add_framework("f2", spec(&["*"]), true);
        let mut used = res("cpus:1;mem:512");
        used.allocate("*");
        a.add_agent("s1", res(AGENT), &[("f1".to_string(), used)]);
        let result = a.allocate(Instant::now());
        // f1 already holds half the agent, so f2 gets the rest.
        assert_eq!(result["f2"][0].resources.cpus(), Some(1.0));
        assert!(!result.contains_key("f1"));
    }

    #[test]
    fn deactivated_framework_and_agent_get_nothing() {
        let mut a = Allocator::new(AllocatorConfig::default());
        a.add_framework("f1", spec(&["*"]), true);
        a.add_agent("s1", res(AGENT), &[]);
        a.deactivate_framework("f1");
        assert!(a.allocate_all(Instant::now()).is_empty());
        a.activate_framework("f1");
        a.deactivate_agent("s1");
        assert!(a.allocate_all(Instant::now()).is_empty());
        a.activate_agent("s1");
        assert_eq!(offers_for(&a.allocate(Instant::now()), "f1").len(), 1);
    }

    #[test]
    fn revocable_resources_only_for_capable_frameworks() {
        let mut a = Allocator::new(AllocatorConfig::default());
        a.add_framework("plain", spec(&["*"]), true);
        let mut total = res("cpus:1;mem:64");
        let mut revocable = mesos_proto::resources::scalar("cpus", 8.0);
        revocable.revocable = Some(Default::default());
        total.add_resource(revocable);
        a.add_agent("s1", total, &[]);
        let result = a.allocate(Instant::now());
        let offered = &result["plain"][0].resources;
        assert_eq!(offered.cpus(), Some(1.0));
        assert!(offered.revocable().is_empty());
        let mut caps = spec(&["*"]);
        caps.capabilities.revocable = true;
        a.add_framework("greedy", caps, true);
        let result = a.allocate(Instant::now());
        assert_eq!(result["greedy"][0].resources.revocable().cpus(), Some(8.0));
    }
}
