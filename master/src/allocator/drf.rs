//! The hierarchical Dominant Resource Fairness sorter (Mesos's
//! `src/master/allocator/mesos/sorter/drf/sorter.cpp`).
//!
//! Clients (roles in the role sorter, frameworks in a role's framework
//! sorter) are leaves of a tree named by `/`-separated paths: role `a/b` sits
//! under `a`. A node's share is the largest fraction it holds of any scalar
//! resource of the cluster, divided by its weight; siblings are ordered by
//! (share, number of allocations, name), and [`DrfSorter::iter`] walks the
//! tree depth-first, which yields the clients in allocation order.
//!
//! Unlike Mesos, which re-sorts every client whenever an allocation dirtied
//! the sorter, each node keeps its children in an ordered set and an
//! allocation only re-keys the nodes on its path: O(depth · log n) instead
//! of O(n log n) per allocation. This is what keeps an allocation run over
//! 10,000 agents and 1,000 frameworks in milliseconds.

use std::cmp::Ordering;
use std::collections::{btree_set, BTreeSet, HashMap};

use super::FastMap;
use std::sync::Arc;

/// Scalar quantities by resource name, sorted by name.
pub type Quantities = Vec<(String, f64)>;

/// Mesos gives a client that is both a role and a parent of roles a virtual
/// leaf named `<role>/.` for its own allocation (`.` is not a valid role).
const SELF_LEAF: &str = ".";

/// A sibling's position: share, then allocation count, then name.
#[derive(Debug, Clone, PartialEq)]
struct Key {
    share: f64,
    count: u64,
    name: Arc<str>,
}

impl Eq for Key {}

impl Ord for Key {
    fn cmp(&self, other: &Self) -> Ordering {
        self.share
            .total_cmp(&other.share)
            .then(self.count.cmp(&other.count))
            .then_with(|| self.name.cmp(&other.name))
    }
}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[derive(Debug, Clone)]
struct Node {
    /// This node's path, shared with its key in the parent's children.
    name: Arc<str>,
    parent: Option<Arc<str>>,
    /// Children that are in the walk (active, or internal), in order.
    children: BTreeSet<Key>,
    /// Number of children, walked or not.
    child_count: usize,
    /// Allocation of the whole subtree.
    allocation: Quantities,
    count: u64,
    share: f64,
    /// Whether this node is a client leaf (a role or framework itself).
    client: bool,
    active: bool,
}

impl Node {
    fn new(name: &str, parent: Option<Arc<str>>, client: bool) -> Self {
        Node {
            name: Arc::from(name),
            parent,
            children: BTreeSet::new(),
            child_count: 0,
            allocation: Quantities::new(),
            count: 0,
            share: 0.0,
            client,
            active: false,
        }
    }

    fn in_walk(&self) -> bool {
        !self.client || self.active
    }

    fn key(&self) -> Key {
        Key {
            share: self.share,
            count: self.count,
            name: self.name.clone(),
        }
    }
}

/// A hierarchical DRF sorter. See the module documentation.
#[derive(Debug, Clone, Default)]
pub struct DrfSorter {
    /// Nodes by path; the root is `""`.
    nodes: FastMap<Arc<str>, Node>,
    /// Cluster totals the shares are relative to.
    total: Quantities,
    weights: HashMap<String, f64>,
    excluded: Vec<String>,
    /// Set when totals or weights changed: every share must be recomputed.
    dirty: bool,
}

impl DrfSorter {
    /// An empty sorter; `excluded` resource names do not count towards shares
    /// (`--fair_sharing_excluded_resource_names`).
    pub fn new(excluded: Vec<String>) -> Self {
        let mut nodes = FastMap::default();
        nodes.insert(Arc::from(""), Node::new("", None, false));
        DrfSorter {
            nodes,
            excluded,
            ..Default::default()
        }
    }

    /// Whether `client` was added.
    pub fn contains(&self, client: &str) -> bool {
        self.client_node(client).is_some()
    }

    /// Number of clients.
    pub fn len(&self) -> usize {
        self.nodes.values().filter(|n| n.client).count()
    }

    /// Whether there are no clients.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds an (inactive) client. Adding an existing client does nothing.
    pub fn add(&mut self, client: &str) {
        if self.contains(client) {
            return;
        }
        let parent = self.ensure_internal(parent_of(client));
        if self.nodes.contains_key(client) {
            // `client` already exists as an internal node (its sub-roles came
            // first): its own allocation lives in a virtual leaf.
            self.insert_leaf(&join(client, SELF_LEAF), client);
        } else {
            self.insert_leaf(client, &parent);
        }
    }

    /// Removes a client (its allocation must have been unallocated first).
    pub fn remove(&mut self, client: &str) {
        let Some(path) = self.client_node(client).map(|n| n.name.clone()) else {
            return;
        };
        let mut next = self.remove_node(&path);
        // Drop internal ancestors that no longer have children.
        while let Some(path) = next {
            if path.is_empty() || self.nodes.get(&path).is_none_or(|n| n.child_count > 0) {
                break;
            }
            next = self.remove_node(&path);
        }
    }

    /// Makes a client part of the walk.
    pub fn activate(&mut self, client: &str) {
        self.set_active(client, true);
    }

    /// Takes a client out of the walk (suppressed or disconnected) while
    /// keeping its allocation.
    pub fn deactivate(&mut self, client: &str) {
        self.set_active(client, false);
    }

    /// Whether a client is in the walk.
    pub fn is_active(&self, client: &str) -> bool {
        self.client_node(client).is_some_and(|n| n.active)
    }

    /// Sets the cluster totals shares are measured against.
    pub fn set_total(&mut self, total: Quantities) {
        if self.total != total {
            self.total = total;
            self.dirty = true;
        }
    }

    /// Sets a client's (or inner role's) weight; the default is 1.0.
    pub fn set_weight(&mut self, path: &str, weight: f64) {
        self.weights.insert(path.to_string(), weight);
        self.dirty = true;
    }

    /// Records resources allocated to `client`.
    pub fn allocated(&mut self, client: &str, quantities: &[(&str, f64)]) {
        self.update(client, quantities, 1.0, 1);
    }

    /// Records resources taken back from `client`.
    pub fn unallocated(&mut self, client: &str, quantities: &[(&str, f64)]) {
        self.update(client, quantities, -1.0, 0);
    }

    /// The client's current share (after weights).
    pub fn share(&mut self, client: &str) -> f64 {
        self.refresh();
        self.client_node(client).map_or(0.0, |n| n.share)
    }

    /// The client's allocation quantities.
    pub fn allocation(&self, client: &str) -> Quantities {
        self.client_node(client)
            .map(|n| n.allocation.clone())
            .unwrap_or_default()
    }

    /// Recomputes every share if totals or weights changed. Call before
    /// [`DrfSorter::iter`].
    pub fn refresh(&mut self) {
        if !self.dirty {
            return;
        }
        self.dirty = false;
        let paths: Vec<Arc<str>> = self.nodes.keys().cloned().collect();
        for path in &paths {
            let share = self.compute_share(path);
            if let Some(node) = self.nodes.get_mut(path) {
                node.share = share;
                node.children.clear();
            }
        }
        for path in paths.iter().filter(|p| !p.is_empty()) {
            self.attach(path);
        }
    }

    /// Active clients in allocation order (lowest share first). Reflects
    /// the state as of the last [`DrfSorter::refresh`] for share changes
    /// caused by totals or weights; allocations are reflected at once.
    pub fn iter(&self) -> SortedClients<'_> {
        let root = self.nodes.get("").map(|n| n.children.iter());
        SortedClients {
            sorter: self,
            stack: root.into_iter().collect(),
        }
    }

    /// The clients in allocation order, as owned names.
    pub fn sort(&mut self) -> Vec<String> {
        self.refresh();
        self.iter().map(str::to_string).collect()
    }

    /// The leaf holding `client`'s own allocation.
    fn client_node(&self, client: &str) -> Option<&Node> {
        match self.nodes.get(client) {
            Some(node) if node.client => Some(node),
            Some(_) => self.nodes.get(join(client, SELF_LEAF).as_str()),
            None => None,
        }
    }

    /// Makes sure `path` exists as an internal node and returns its name.
    fn ensure_internal(&mut self, path: &str) -> Arc<str> {
        match self.nodes.get(path) {
            Some(node) if !node.client => return node.name.clone(),
            Some(_) => return self.convert_to_internal(path),
            None => {}
        }
        let parent = self.ensure_internal(parent_of(path));
        let node = Node::new(path, Some(parent.clone()), false);
        let name = node.name.clone();
        self.nodes.insert(name.clone(), node);
        if let Some(parent) = self.nodes.get_mut(&parent) {
            parent.child_count += 1;
        }
        self.attach(&name);
        name
    }

    /// A leaf client gains children: its own allocation moves into a virtual
    /// leaf and the node becomes internal, keeping the subtree's totals.
    fn convert_to_internal(&mut self, path: &str) -> Arc<str> {
        self.detach(path);
        let Some(mut leaf) = self.nodes.remove(path) else {
            return Arc::from(path);
        };
        let mut internal = Node::new(path, leaf.parent.clone(), false);
        internal.allocation = leaf.allocation.clone();
        internal.count = leaf.count;
        internal.share = leaf.share;
        internal.child_count = 1;
        let name = internal.name.clone();
        self.nodes.insert(name.clone(), internal);
        self.attach(&name);
        leaf.parent = Some(name.clone());
        leaf.name = Arc::from(join(path, SELF_LEAF));
        let leaf_name = leaf.name.clone();
        self.nodes.insert(leaf_name.clone(), leaf);
        self.attach(&leaf_name);
        name
    }

    fn insert_leaf(&mut self, path: &str, parent: &str) {
        let parent = self.nodes.get(parent).map(|n| n.name.clone());
        if let Some(parent) = parent.as_ref().and_then(|p| self.nodes.get_mut(p)) {
            parent.child_count += 1;
        }
        let node = Node::new(path, parent, true);
        self.nodes.insert(node.name.clone(), node);
    }

    /// Removes one node, returning its parent.
    fn remove_node(&mut self, path: &str) -> Option<Arc<str>> {
        self.detach(path);
        let parent = self.nodes.remove(path)?.parent?;
        if let Some(node) = self.nodes.get_mut(&parent) {
            node.child_count = node.child_count.saturating_sub(1);
        }
        Some(parent)
    }

    fn set_active(&mut self, client: &str, active: bool) {
        let Some(path) = self.client_node(client).map(|n| n.name.clone()) else {
            return;
        };
        if self.nodes.get(&path).is_some_and(|n| n.active == active) {
            return;
        }
        self.detach(&path);
        if let Some(node) = self.nodes.get_mut(&path) {
            node.active = active;
        }
        self.attach(&path);
    }

    fn update(&mut self, client: &str, quantities: &[(&str, f64)], sign: f64, count: u64) {
        let mut next = self.client_node(client).map(|n| n.name.clone());
        while let Some(path) = next {
            if path.is_empty() {
                break;
            }
            self.detach(&path);
            let Some(node) = self.nodes.get_mut(&path) else {
                break;
            };
            add_quantities(&mut node.allocation, quantities, sign);
            node.count += count;
            next = node.parent.clone();
            let share = self.compute_share(&path);
            if let Some(node) = self.nodes.get_mut(&path) {
                node.share = share;
            }
            self.attach(&path);
        }
    }

    fn compute_share(&self, path: &str) -> f64 {
        let Some(node) = self.nodes.get(path) else {
            return 0.0;
        };
        let mut share: f64 = 0.0;
        for (name, amount) in &node.allocation {
            if self.excluded.contains(name) {
                continue;
            }
            let total = self
                .total
                .iter()
                .find(|(n, _)| n == name)
                .map_or(0.0, |(_, t)| *t);
            if total > 0.0 {
                share = share.max(amount / total);
            }
        }
        share / self.weight(path)
    }

    fn weight(&self, path: &str) -> f64 {
        let role = path
            .strip_suffix(SELF_LEAF)
            .and_then(|p| p.strip_suffix('/'))
            .unwrap_or(path);
        self.weights
            .get(role)
            .copied()
            .filter(|w| *w > 0.0)
            .unwrap_or(1.0)
    }

    /// Takes `path` out of its parent's ordered children.
    fn detach(&mut self, path: &str) {
        let Some((parent, key)) = self
            .nodes
            .get(path)
            .and_then(|n| Some((n.parent.clone()?, n.key())))
        else {
            return;
        };
        if let Some(parent) = self.nodes.get_mut(&parent) {
            parent.children.remove(&key);
        }
    }

    /// Puts `path` (back) into its parent's ordered children if it walks.
    fn attach(&mut self, path: &str) {
        let Some((parent, key)) = self
            .nodes
            .get(path)
            .filter(|n| n.in_walk())
            .and_then(|n| Some((n.parent.clone()?, n.key())))
        else {
            return;
        };
        if let Some(parent) = self.nodes.get_mut(&parent) {
            parent.children.insert(key);
        }
    }
}

/// Iterator over active clients in allocation order; see [`DrfSorter::iter`].
#[derive(Debug)]
pub struct SortedClients<'a> {
    sorter: &'a DrfSorter,
    stack: Vec<btree_set::Iter<'a, Key>>,
}

impl<'a> Iterator for SortedClients<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        loop {
            let top = self.stack.last_mut()?;
            let Some(key) = top.next() else {
                self.stack.pop();
                continue;
            };
            let node = self.sorter.nodes.get(&key.name)?;
            if node.client {
                let name: &str = &key.name;
                return Some(name.strip_suffix("/.").unwrap_or(name));
            }
            self.stack.push(node.children.iter());
        }
    }
}

fn add_quantities(into: &mut Quantities, quantities: &[(&str, f64)], sign: f64) {
    for &(name, amount) in quantities {
        match into.iter_mut().find(|(n, _)| n == name) {
            Some((_, total)) => {
                // Keep Mesos's three decimal digits so shares never drift.
                *total = ((*total + sign * amount) * 1000.0).round() / 1000.0;
                if *total < 0.0 {
                    *total = 0.0;
                }
            }
            None if sign > 0.0 => into.push((name.to_string(), amount)),
            None => {}
        }
    }
}

fn parent_of(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(parent, _)| parent)
}

fn join(parent: &str, child: &str) -> String {
    format!("{parent}/{child}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(cpus: f64, mem: f64) -> Vec<(&'static str, f64)> {
        vec![("cpus", cpus), ("mem", mem)]
    }

    fn owned(q: &[(&str, f64)]) -> Quantities {
        q.iter().map(|(n, v)| (n.to_string(), *v)).collect()
    }

    fn sorter(clients: &[&str]) -> DrfSorter {
        let mut s = DrfSorter::new(vec![]);
        s.set_total(owned(&q(10.0, 100.0)));
        for c in clients {
            s.add(c);
            s.activate(c);
        }
        s
    }

    #[test]
    fn lowest_dominant_share_first() {
        let mut s = sorter(&["a", "b", "c"]);
        s.allocated("a", &q(5.0, 10.0)); // cpus 50 %
        s.allocated("b", &q(1.0, 30.0)); // mem 30 %
        assert_eq!(s.sort(), vec!["c", "b", "a"]);
        s.unallocated("a", &q(5.0, 10.0));
        assert_eq!(s.sort(), vec!["c", "a", "b"]);
    }

    #[test]
    fn ties_break_on_allocation_count_then_name() {
        let mut s = sorter(&["b", "a"]);
        assert_eq!(s.sort(), vec!["a", "b"]);
        s.allocated("a", &[]);
        assert_eq!(s.sort(), vec!["b", "a"]);
    }

    #[test]
    fn weights_divide_shares() {
        let mut s = sorter(&["heavy", "light"]);
        s.set_weight("heavy", 4.0);
        s.allocated("heavy", &q(4.0, 0.0)); // 40 % / 4 = 10 %
        s.allocated("light", &q(2.0, 0.0)); // 20 %
        assert_eq!(s.sort(), vec!["heavy", "light"]);
        assert!((s.share("heavy") - 0.1).abs() < 1e-9);
    }

    #[test]
    fn inactive_clients_are_skipped_but_keep_allocation() {
        let mut s = sorter(&["a", "b"]);
        s.allocated("a", &q(1.0, 0.0));
        s.deactivate("a");
        assert_eq!(s.sort(), vec!["b"]);
        s.activate("a");
        assert_eq!(s.sort(), vec!["b", "a"]);
        assert_eq!(s.allocation("a"), owned(&q(1.0, 0.0)));
    }

    #[test]
    fn hierarchical_roles_compete_as_subtrees() {
        let mut s = sorter(&["eng/web", "eng/db", "ops"]);
        // eng as a whole holds 60 % > ops 30 %, so ops goes first even though
        // eng/db alone holds only 10 %.
        s.allocated("eng/web", &q(5.0, 0.0));
        s.allocated("eng/db", &q(1.0, 0.0));
        s.allocated("ops", &q(3.0, 0.0));
        assert_eq!(s.sort(), vec!["ops", "eng/db", "eng/web"]);
    }

    #[test]
    fn a_role_can_be_client_and_parent() {
        let mut s = sorter(&["eng"]);
        s.allocated("eng", &q(2.0, 0.0));
        s.add("eng/web");
        s.activate("eng/web");
        assert!(s.contains("eng") && s.contains("eng/web"));
        assert_eq!(s.sort(), vec!["eng/web", "eng"]);
        assert_eq!(s.allocation("eng"), owned(&q(2.0, 0.0)));
        s.unallocated("eng", &q(2.0, 0.0));
        s.remove("eng/web");
        assert_eq!(s.sort(), vec!["eng"]);
        s.remove("eng");
        assert!(s.is_empty());
        assert_eq!(s.sort(), Vec::<String>::new());
    }

    #[test]
    fn excluded_resources_do_not_count() {
        let mut s = DrfSorter::new(vec!["gpus".to_string()]);
        s.set_total(vec![("cpus".into(), 10.0), ("gpus".into(), 1.0)]);
        for c in ["a", "b"] {
            s.add(c);
            s.activate(c);
        }
        s.allocated("a", &[("gpus", 1.0)]);
        s.allocated("b", &[("cpus", 1.0)]);
        assert_eq!(s.sort(), vec!["a", "b"]);
    }

    #[test]
    fn totals_change_reorders_after_refresh() {
        let mut s = sorter(&["a", "b"]);
        s.allocated("a", &q(2.0, 0.0)); // 20 %
        s.allocated("b", &q(0.0, 30.0)); // 30 %
        assert_eq!(s.sort(), vec!["a", "b"]);
        s.set_total(owned(&q(10.0, 1000.0))); // b now at 3 %
        assert_eq!(s.sort(), vec!["b", "a"]);
    }
}
