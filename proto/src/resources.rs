//! Resource arithmetic over `mesos.v1.Resource` lists, and Mesos's text form
//! of resources (`--resources`, `--min_allocatable_resources`).
//!
//! [`Resources`] mirrors Mesos's `Resources` class (src/common/resources.cpp):
//!
//! * resources of the same *kind* (name, type, reservations, allocation,
//!   disk, revocable, shared, provider) are merged into one entry; empty
//!   entries disappear;
//! * scalars use Mesos's fixed point of three decimal digits, so `0.1 + 0.2`
//!   is exactly `0.3` and repeated add/subtract never drifts;
//! * ranges are kept sorted and coalesced; sets are de-duplicated;
//! * persistent volumes, shared resources and MOUNT/BLOCK/RAW disks are
//!   *atomic*: never merged or split, only added and removed whole;
//! * reservations are stored in the post-refinement format (`reservations`);
//!   the deprecated `role`/`reservation` fields are converted on the way in
//!   and [`pre_refinement`] converts back for frameworks and agents that
//!   expect the old format (`"role":"*"`).
//!
//! Text form: `cpus:2;mem:1024;disk:4096;ports:[31000-32000];zones:{a,b}`,
//! each name optionally followed by `(role)`, or a JSON array of `Resource`
//! objects. See [`Resources::parse`].

// The deprecated pre-refinement fields (`role`, `reservation`) are exactly
// what the format conversions below read and write.
#![allow(deprecated)]

use std::fmt;
use std::sync::Arc;

use crate::v1::resource::{reservation_info, AllocationInfo, ReservationInfo};
use crate::v1::value::{self, Range, Ranges, Scalar, Set};
pub use crate::v1::Resource;

/// Why a resource text or list is invalid. `Display` follows Mesos's wording.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ResourcesError {
    /// A `;`-separated token without exactly one `:`.
    #[error("Bad value for resources, missing or extra ':' in {0}")]
    MissingColon(String),
    /// `name(role` without a closing parenthesis.
    #[error("Bad value for resources, mismatched parentheses in {0}")]
    Parentheses(String),
    /// A value that is neither a number, `[ranges]` nor `{set}`.
    #[error("Bad value for resource {name}: '{value}': {reason}")]
    BadValue {
        /// The resource name.
        name: String,
        /// The text of the value.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The same name used with two value types.
    #[error("Resources with the same name ('{0}') but different types are not allowed")]
    MixedTypes(String),
    /// An empty name, a negative scalar, a range with begin > end, ...
    #[error("Invalid resource {name}: {reason}")]
    Invalid {
        /// The resource name.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The JSON form did not decode into `Resource` messages.
    #[error("Some JSON resources were not formatted properly: {0}")]
    Json(String),
}

/// A normalized multiset of resources. See the module documentation.
///
/// Internally each entry is a shared *kind* (the `Resource` message without
/// its amount and allocation role) plus a compact amount: a generated
/// `Resource` is over a kilobyte, and the allocator adds, subtracts and
/// compares resources of 10,000 agents per run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resources {
    items: Vec<Entry>,
}

#[derive(Debug, Clone, PartialEq)]
struct Entry {
    /// Everything but `scalar`/`ranges`/`set` and `allocation_info`, in the
    /// post-refinement format.
    kind: Arc<Resource>,
    /// `allocation_info.role`.
    allocation: Option<Arc<str>>,
    amount: Amount,
}

#[derive(Debug, Clone, PartialEq)]
enum Amount {
    /// Thousandths (Mesos's fixed point).
    Scalar(i64),
    /// Sorted, coalesced, inclusive bounds.
    Ranges(Vec<(u64, u64)>),
    /// Distinct items in insertion order.
    Set(Vec<String>),
}

impl Entry {
    fn from_resource(mut resource: Resource) -> Option<Entry> {
        upgrade(&mut resource);
        let amount = match value::Type::try_from(resource.r#type) {
            Ok(value::Type::Scalar) => {
                Amount::Scalar(to_millis(resource.scalar.take().map_or(0.0, |s| s.value)))
            }
            Ok(value::Type::Ranges) => Amount::Ranges(coalesce_bounds(
                resource
                    .ranges
                    .take()
                    .unwrap_or_default()
                    .range
                    .into_iter()
                    .map(|r| (r.begin, r.end))
                    .collect(),
            )),
            Ok(value::Type::Set) => {
                let mut items: Vec<String> = Vec::new();
                for item in resource.set.take().unwrap_or_default().item {
                    if !items.contains(&item) {
                        items.push(item);
                    }
                }
                Amount::Set(items)
            }
            _ => return None,
        };
        resource.scalar = None;
        resource.ranges = None;
        resource.set = None;
        let allocation = resource
            .allocation_info
            .take()
            .and_then(|a| a.role)
            .map(Arc::from);
        Some(Entry {
            kind: Arc::new(resource),
            allocation,
            amount,
        })
    }

    fn to_resource(&self) -> Resource {
        let mut r = (*self.kind).clone();
        match &self.amount {
            Amount::Scalar(millis) => {
                r.scalar = Some(Scalar {
                    value: from_millis(*millis),
                })
            }
            Amount::Ranges(bounds) => {
                r.ranges = Some(Ranges {
                    range: bounds
                        .iter()
                        .map(|&(begin, end)| Range { begin, end })
                        .collect(),
                })
            }
            Amount::Set(items) => {
                r.set = Some(Set {
                    item: items.clone(),
                })
            }
        }
        r.allocation_info = self.allocation.as_ref().map(|role| AllocationInfo {
            role: Some(role.to_string()),
        });
        r
    }

    fn is_empty(&self) -> bool {
        match &self.amount {
            Amount::Scalar(m) => *m == 0,
            Amount::Ranges(b) => b.is_empty(),
            Amount::Set(s) => s.is_empty(),
        }
    }

    /// Same resource apart from the amount.
    fn same_kind(&self, other: &Entry) -> bool {
        self.allocation == other.allocation
            && (Arc::ptr_eq(&self.kind, &other.kind) || *self.kind == *other.kind)
    }

    fn is_atomic(&self) -> bool {
        use crate::v1::resource::disk_info::source::Type as Source;
        let r = &self.kind;
        r.shared.is_some()
            || r.disk.as_ref().is_some_and(|disk| {
                disk.persistence.is_some()
                    || disk.source.as_ref().is_some_and(|s| {
                        s.r#type == Source::Mount as i32
                            || s.r#type == Source::Block as i32
                            || s.r#type == Source::Raw as i32
                    })
            })
    }

    fn add(&mut self, other: &Amount) {
        match (&mut self.amount, other) {
            (Amount::Scalar(a), Amount::Scalar(b)) => *a += b,
            (Amount::Ranges(a), Amount::Ranges(b)) => {
                a.extend_from_slice(b);
                *a = coalesce_bounds(std::mem::take(a));
            }
            (Amount::Set(a), Amount::Set(b)) => {
                for item in b {
                    if !a.contains(item) {
                        a.push(item.clone());
                    }
                }
            }
            _ => {}
        }
    }

    fn subtract(&mut self, other: &Amount) {
        match (&mut self.amount, other) {
            (Amount::Scalar(a), Amount::Scalar(b)) => *a = (*a - b).max(0),
            (Amount::Ranges(a), Amount::Ranges(b)) => *a = subtract_bounds(std::mem::take(a), b),
            (Amount::Set(a), Amount::Set(b)) => a.retain(|item| !b.contains(item)),
            _ => {}
        }
    }

    fn contains(&self, other: &Amount) -> bool {
        match (&self.amount, other) {
            (Amount::Scalar(a), Amount::Scalar(b)) => a >= b,
            (Amount::Ranges(a), Amount::Ranges(b)) => bounds_contain(a, b),
            (Amount::Set(a), Amount::Set(b)) => b.iter().all(|item| a.contains(item)),
            _ => false,
        }
    }
}

impl Resources {
    /// No resources.
    pub fn new() -> Self {
        Resources::default()
    }

    /// Parses Mesos's text form (or a JSON array of `Resource`), giving
    /// resources without an explicit `(role)` the `default_role` (`*` means
    /// unreserved; any other role becomes a static reservation).
    pub fn parse(text: &str, default_role: &str) -> Result<Self, ResourcesError> {
        let list = if text.trim_start().starts_with('[') {
            parse_json(text, default_role)?
        } else {
            parse_text(text, default_role)?
        };
        let mut types: Vec<(&str, i32)> = Vec::new();
        for resource in &list {
            match types.iter().find(|(name, _)| *name == resource.name) {
                Some((_, t)) if *t != resource.r#type => {
                    return Err(ResourcesError::MixedTypes(resource.name.clone()))
                }
                Some(_) => {}
                None => types.push((&resource.name, resource.r#type)),
            }
        }
        for resource in &list {
            validate(resource)?;
        }
        Ok(Resources::from(list))
    }

    /// Validates and normalizes a list received on the wire (a task's or an
    /// agent's resources).
    pub fn from_list(list: &[Resource]) -> Result<Self, ResourcesError> {
        for resource in list {
            validate(resource)?;
        }
        Ok(Resources::from(list.to_vec()))
    }

    /// The entries as `Resource` messages, in post-refinement format.
    pub fn iter(&self) -> impl Iterator<Item = Resource> + '_ {
        self.items.iter().map(Entry::to_resource)
    }

    /// The entries as `Resource` messages, in post-refinement format.
    pub fn to_vec(&self) -> Vec<Resource> {
        self.iter().collect()
    }

    /// The entries as `Resource` messages, in post-refinement format.
    pub fn into_vec(self) -> Vec<Resource> {
        self.to_vec()
    }

    /// Whether there is nothing.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Adds one resource (normalizing its format first).
    pub fn add_resource(&mut self, resource: Resource) {
        if let Some(entry) = Entry::from_resource(resource) {
            self.add_entry(entry);
        }
    }

    /// Removes one resource as far as present (a partially present scalar or
    /// range is removed in part; an atomic one only if present whole).
    pub fn subtract_resource(&mut self, resource: &Resource) {
        if let Some(entry) = Entry::from_resource(resource.clone()) {
            self.subtract_entry(&entry);
        }
    }

    /// Whether `resource` is in `self`.
    pub fn contains_resource(&self, resource: &Resource) -> bool {
        Entry::from_resource(resource.clone())
            .is_none_or(|e| self.contains(&Resources { items: vec![e] }))
    }

    /// Adds all of `other`.
    pub fn add(&mut self, other: &Resources) {
        for entry in &other.items {
            self.add_entry(entry.clone());
        }
    }

    /// Removes `other` as far as present.
    pub fn subtract(&mut self, other: &Resources) {
        for entry in &other.items {
            self.subtract_entry(entry);
        }
    }

    /// Whether all of `other` is in `self`.
    pub fn contains(&self, other: &Resources) -> bool {
        other.items.iter().enumerate().all(|(i, want)| {
            if want.is_atomic() {
                // Multiset semantics: as many identical copies as asked for.
                let wanted = other.items[..=i].iter().filter(|e| *e == want).count();
                self.items.iter().filter(|e| *e == want).count() >= wanted
            } else {
                self.items
                    .iter()
                    .find(|have| have.same_kind(want))
                    .is_some_and(|have| have.contains(&want.amount))
            }
        })
    }

    /// The entries whose kind satisfies `keep`. The `Resource` passed to
    /// `keep` has every field except the amount (`scalar`, `ranges`, `set`)
    /// and `allocation_info` (see [`Resources::allocated_to`]).
    pub fn filter(&self, keep: impl Fn(&Resource) -> bool) -> Resources {
        Resources {
            items: self
                .items
                .iter()
                .filter(|e| keep(&e.kind))
                .cloned()
                .collect(),
        }
    }

    /// The entries allocated to `role`.
    pub fn allocated_to(&self, role: &str) -> Resources {
        Resources {
            items: self
                .items
                .iter()
                .filter(|e| e.allocation.as_deref() == Some(role))
                .cloned()
                .collect(),
        }
    }

    /// Whether some entry has no allocation role.
    pub fn has_unallocated(&self) -> bool {
        self.items.iter().any(|e| e.allocation.is_none())
    }

    /// Sum of the scalar resources called `name` (any reservation).
    pub fn scalar(&self, name: &str) -> Option<f64> {
        let mut found = false;
        let mut millis = 0i64;
        for e in self.items.iter().filter(|e| e.kind.name == name) {
            if let Amount::Scalar(m) = e.amount {
                found = true;
                millis += m;
            }
        }
        found.then(|| from_millis(millis))
    }

    /// `cpus`, if any.
    pub fn cpus(&self) -> Option<f64> {
        self.scalar("cpus")
    }

    /// `mem` in MB, if any.
    pub fn mem(&self) -> Option<f64> {
        self.scalar("mem")
    }

    /// `disk` in MB, if any.
    pub fn disk(&self) -> Option<f64> {
        self.scalar("disk")
    }

    /// `gpus`, if any.
    pub fn gpus(&self) -> Option<f64> {
        self.scalar("gpus")
    }

    /// The union of the range resources called `name` (any reservation).
    pub fn ranges(&self, name: &str) -> Option<Ranges> {
        let mut found = false;
        let mut all = Vec::new();
        for e in self.items.iter().filter(|e| e.kind.name == name) {
            if let Amount::Ranges(bounds) = &e.amount {
                found = true;
                all.extend_from_slice(bounds);
            }
        }
        found.then(|| Ranges {
            range: coalesce_bounds(all)
                .into_iter()
                .map(|(begin, end)| Range { begin, end })
                .collect(),
        })
    }

    /// `ports`, if any.
    pub fn ports(&self) -> Option<Ranges> {
        self.ranges("ports")
    }

    /// Every scalar entry as (name, value), not summed by name.
    pub fn scalars(&self) -> impl Iterator<Item = (&str, f64)> + '_ {
        self.items.iter().filter_map(|e| match e.amount {
            Amount::Scalar(millis) => Some((e.kind.name.as_str(), from_millis(millis))),
            _ => None,
        })
    }

    /// Scalar quantities summed by name, sorted by name (what DRF shares and
    /// `--min_allocatable_resources` look at).
    pub fn scalar_quantities(&self) -> Vec<(String, f64)> {
        let mut out: Vec<(&str, i64)> = Vec::new();
        for e in &self.items {
            if let Amount::Scalar(millis) = e.amount {
                match out.iter_mut().find(|(name, _)| *name == e.kind.name) {
                    Some((_, total)) => *total += millis,
                    None => out.push((&e.kind.name, millis)),
                }
            }
        }
        out.sort_by(|a, b| a.0.cmp(b.0));
        out.into_iter()
            .map(|(n, m)| (n.to_string(), from_millis(m)))
            .collect()
    }

    /// Unreserved resources.
    pub fn unreserved(&self) -> Resources {
        self.filter(|r| r.reservations.is_empty())
    }

    /// Resources reserved to exactly `role`.
    pub fn reserved(&self, role: &str) -> Resources {
        self.filter(|r| reservation_role(r) == Some(role))
    }

    /// Resources a framework in `role` may be offered: unreserved ones and
    /// those reserved to `role` or one of its ancestors (`a` for `a/b`).
    pub fn allocatable_to(&self, role: &str) -> Resources {
        self.filter(|r| match reservation_role(r) {
            None => true,
            Some(reserved) => reserved == role || is_strict_subrole(role, reserved),
        })
    }

    /// Revocable resources.
    pub fn revocable(&self) -> Resources {
        self.filter(|r| r.revocable.is_some())
    }

    /// Marks every entry as allocated to `role` (`allocation_info.role`).
    pub fn allocate(&mut self, role: &str) {
        let role: Arc<str> = Arc::from(role);
        let items = std::mem::take(&mut self.items);
        for mut e in items {
            e.allocation = Some(role.clone());
            self.add_entry(e);
        }
    }

    /// Clears the allocation role of every entry.
    pub fn unallocate(&mut self) {
        if self.items.iter().all(|e| e.allocation.is_none()) {
            return;
        }
        let items = std::mem::take(&mut self.items);
        for mut e in items {
            e.allocation = None;
            self.add_entry(e);
        }
    }

    /// The roles the entries are allocated to, sorted and de-duplicated.
    pub fn allocation_roles(&self) -> Vec<String> {
        let mut roles: Vec<String> = self
            .items
            .iter()
            .filter_map(|e| e.allocation.as_deref().map(str::to_string))
            .collect();
        roles.sort();
        roles.dedup();
        roles
    }

    /// The entries in the pre-refinement format (`role` set, `"*"` when
    /// unreserved), for frameworks without RESERVATION_REFINEMENT and for
    /// `AgentInfo.resources`. Refined reservations (more than one level)
    /// cannot be expressed and are returned in the post-refinement format.
    pub fn to_pre_refinement(&self) -> Vec<Resource> {
        self.iter().map(pre_refinement).collect()
    }

    fn add_entry(&mut self, entry: Entry) {
        if entry.is_empty() {
            return;
        }
        if !entry.is_atomic() {
            if let Some(existing) = self.items.iter_mut().find(|e| e.same_kind(&entry)) {
                existing.add(&entry.amount);
                return;
            }
        }
        self.items.push(entry);
    }

    fn subtract_entry(&mut self, entry: &Entry) {
        let index = if entry.is_atomic() {
            self.items.iter().position(|e| e == entry)
        } else {
            self.items.iter().position(|e| e.same_kind(entry))
        };
        let Some(index) = index else {
            return;
        };
        if entry.is_atomic() {
            self.items.remove(index);
            return;
        }
        self.items[index].subtract(&entry.amount);
        if self.items[index].is_empty() {
            self.items.remove(index);
        }
    }
}

impl From<Vec<Resource>> for Resources {
    /// Normalizes without validation; use [`Resources::from_list`] for
    /// untrusted input.
    fn from(list: Vec<Resource>) -> Self {
        let mut resources = Resources::new();
        for resource in list {
            resources.add_resource(resource);
        }
        resources
    }
}

impl From<Resource> for Resources {
    fn from(resource: Resource) -> Self {
        Resources::from(vec![resource])
    }
}

impl std::ops::AddAssign<&Resources> for Resources {
    fn add_assign(&mut self, other: &Resources) {
        self.add(other);
    }
}

impl std::ops::SubAssign<&Resources> for Resources {
    fn sub_assign(&mut self, other: &Resources) {
        self.subtract(other);
    }
}

impl std::ops::Add<&Resources> for &Resources {
    type Output = Resources;

    fn add(self, other: &Resources) -> Resources {
        let mut out = self.clone();
        Resources::add(&mut out, other);
        out
    }
}

impl std::ops::Sub<&Resources> for &Resources {
    type Output = Resources;

    fn sub(self, other: &Resources) -> Resources {
        let mut out = self.clone();
        Resources::subtract(&mut out, other);
        out
    }
}

impl fmt::Display for Resources {
    /// Mesos's notation, e.g. `cpus:2; mem:1024; ports:[31000-32000]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write_resource(f, &r)?;
        }
        Ok(())
    }
}

/// A scalar resource, e.g. `scalar("cpus", 2.0)`.
pub fn scalar(name: &str, value: f64) -> Resource {
    Resource {
        name: name.to_string(),
        r#type: value::Type::Scalar as i32,
        scalar: Some(Scalar { value }),
        ..Default::default()
    }
}

/// A ranges resource, e.g. `ranges("ports", &[(31000, 32000)])`.
pub fn ranges(name: &str, bounds: &[(u64, u64)]) -> Resource {
    Resource {
        name: name.to_string(),
        r#type: value::Type::Ranges as i32,
        ranges: Some(Ranges {
            range: coalesce(
                bounds
                    .iter()
                    .map(|&(begin, end)| Range { begin, end })
                    .collect(),
            ),
        }),
        ..Default::default()
    }
}

/// A set resource, e.g. `set("zones", &["a", "b"])`.
pub fn set(name: &str, items: &[&str]) -> Resource {
    Resource {
        name: name.to_string(),
        r#type: value::Type::Set as i32,
        set: Some(Set {
            item: items.iter().map(|s| s.to_string()).collect(),
        }),
        ..Default::default()
    }
}

/// The role of the innermost reservation, `None` when unreserved.
pub fn reservation_role(resource: &Resource) -> Option<&str> {
    match resource.reservations.last() {
        Some(reservation) => reservation.role.as_deref(),
        None => match resource.role.as_deref() {
            None | Some("*") => None,
            Some(role) => Some(role),
        },
    }
}

/// Whether `role` is strictly below `ancestor` in the role tree (`a/b` under
/// `a`).
pub fn is_strict_subrole(role: &str, ancestor: &str) -> bool {
    role.len() > ancestor.len() + 1
        && role.starts_with(ancestor)
        && role.as_bytes()[ancestor.len()] == b'/'
}

/// Converts one resource to the post-refinement format (Mesos's
/// `convertResourceFormat(POST_RESERVATION_REFINEMENT)`): `role` and
/// `reservation` become a `reservations` entry.
pub fn upgrade(resource: &mut Resource) {
    if !resource.reservations.is_empty() {
        resource.role = None;
        resource.reservation = None;
        return;
    }
    let role = resource.role.take();
    let dynamic = resource.reservation.take();
    match role.as_deref() {
        None | Some("*") => {}
        Some(role) => {
            let mut reservation = dynamic.clone().unwrap_or_default();
            reservation.r#type = Some(if dynamic.is_some() {
                reservation_info::Type::Dynamic as i32
            } else {
                reservation_info::Type::Static as i32
            });
            reservation.role = Some(role.to_string());
            resource.reservations.push(reservation);
        }
    }
}

/// Converts one resource to the pre-refinement format (Mesos's
/// `convertResourceFormat(PRE_RESERVATION_REFINEMENT)`): unreserved gets
/// `role: "*"`, a single reservation becomes `role` (+ `reservation` if
/// dynamic). Refined reservations are left as they are.
pub fn pre_refinement(mut resource: Resource) -> Resource {
    match resource.reservations.len() {
        0 => resource.role = Some("*".to_string()),
        1 => {
            let source = resource.reservations.remove(0);
            if source.r#type == Some(reservation_info::Type::Dynamic as i32) {
                resource.reservation = Some(ReservationInfo {
                    principal: source.principal.clone(),
                    labels: source.labels.clone(),
                    ..Default::default()
                });
            }
            resource.role = source.role;
        }
        _ => {}
    }
    resource
}

// Mesos stores scalars as fixed point with three decimal digits
// (src/common/values.cpp `convertToFixed`).
fn to_millis(value: f64) -> i64 {
    (value * 1000.0).round() as i64
}

fn from_millis(millis: i64) -> f64 {
    millis as f64 / 1000.0
}

/// Sorts and merges overlapping or adjacent ranges.
pub fn coalesce(ranges: Vec<Range>) -> Vec<Range> {
    coalesce_bounds(ranges.into_iter().map(|r| (r.begin, r.end)).collect())
        .into_iter()
        .map(|(begin, end)| Range { begin, end })
        .collect()
}

fn coalesce_bounds(mut bounds: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    bounds.retain(|(begin, end)| begin <= end);
    bounds.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(bounds.len());
    for (begin, end) in bounds {
        match out.last_mut() {
            Some(last) if begin <= last.1.saturating_add(1) => last.1 = last.1.max(end),
            _ => out.push((begin, end)),
        }
    }
    out
}

/// Whether `want` ⊆ `have` (both sorted and coalesced): one merge pass.
fn bounds_contain(have: &[(u64, u64)], want: &[(u64, u64)]) -> bool {
    let mut have = have.iter().peekable();
    want.iter().all(|&(begin, end)| {
        while have.peek().is_some_and(|h| h.1 < begin) {
            have.next();
        }
        have.peek().is_some_and(|h| h.0 <= begin && end <= h.1)
    })
}

/// `have` minus `remove` (both sorted and coalesced), as sets of integers.
fn subtract_bounds(have: Vec<(u64, u64)>, remove: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut out = Vec::with_capacity(have.len() + 1);
    let mut cuts = remove.iter().peekable();
    for (mut begin, end) in have {
        // Skip cuts entirely before this range.
        while cuts.peek().is_some_and(|c| c.1 < begin) {
            cuts.next();
        }
        let mut rest = Some((begin, end));
        for &(cut_begin, cut_end) in cuts.clone() {
            if cut_begin > end {
                break;
            }
            if cut_begin > begin {
                out.push((begin, cut_begin - 1));
            }
            if cut_end >= end {
                rest = None;
                break;
            }
            begin = cut_end + 1;
            rest = Some((begin, end));
        }
        out.extend(rest);
    }
    out
}

fn validate(r: &Resource) -> Result<(), ResourcesError> {
    let invalid = |reason: &str| ResourcesError::Invalid {
        name: r.name.clone(),
        reason: reason.to_string(),
    };
    if r.name.is_empty() {
        return Err(invalid("empty resource name"));
    }
    match value::Type::try_from(r.r#type) {
        Ok(value::Type::Scalar) => {
            let value = r
                .scalar
                .as_ref()
                .ok_or_else(|| invalid("scalar value missing"))?
                .value;
            if !value.is_finite() || value < 0.0 {
                return Err(invalid("scalar value must be a non-negative number"));
            }
        }
        Ok(value::Type::Ranges) => {
            let ranges = r
                .ranges
                .as_ref()
                .ok_or_else(|| invalid("ranges value missing"))?;
            if ranges.range.iter().any(|range| range.begin > range.end) {
                return Err(invalid("range begin is greater than its end"));
            }
        }
        Ok(value::Type::Set) => {
            r.set.as_ref().ok_or_else(|| invalid("set value missing"))?;
        }
        _ => return Err(invalid("type must be SCALAR, RANGES or SET")),
    }
    if !r.reservations.is_empty() && (r.role.is_some() || r.reservation.is_some()) {
        return Err(invalid(
            "'role' and 'reservation' cannot be combined with 'reservations'",
        ));
    }
    Ok(())
}

fn parse_json(text: &str, default_role: &str) -> Result<Vec<Resource>, ResourcesError> {
    let json: serde_json::Value =
        serde_json::from_str(text).map_err(|e| ResourcesError::Json(e.to_string()))?;
    let array = json
        .as_array()
        .ok_or_else(|| ResourcesError::Json("expected a JSON array".to_string()))?;
    array
        .iter()
        .map(|item| {
            let mut resource: Resource = crate::codec::from_json_value(item)
                .map_err(|e| ResourcesError::Json(e.to_string()))?;
            if resource.role.is_none() && resource.reservations.is_empty() {
                resource.role = Some(default_role.to_string());
            }
            Ok(resource)
        })
        .collect()
}

fn parse_text(text: &str, default_role: &str) -> Result<Vec<Resource>, ResourcesError> {
    let mut out = Vec::new();
    for token in text.split(';').filter(|t| !t.trim().is_empty()) {
        let pair: Vec<&str> = token.split(':').filter(|p| !p.is_empty()).collect();
        let [key, value] = pair[..] else {
            return Err(ResourcesError::MissingColon(token.to_string()));
        };
        let (name, role) = match key.find('(') {
            None => (key.trim(), default_role),
            Some(open) => {
                let close = key
                    .find(')')
                    .filter(|&close| close > open)
                    .ok_or_else(|| ResourcesError::Parentheses(token.to_string()))?;
                (key[..open].trim(), key[open + 1..close].trim())
            }
        };
        let mut resource = parse_value(name, value.trim())?;
        resource.role = Some(role.to_string());
        out.push(resource);
    }
    Ok(out)
}

fn parse_value(name: &str, text: &str) -> Result<Resource, ResourcesError> {
    let bad = |reason: &str| ResourcesError::BadValue {
        name: name.to_string(),
        value: text.to_string(),
        reason: reason.to_string(),
    };
    if let Some(inner) = text.strip_prefix('[') {
        let inner = inner.strip_suffix(']').ok_or_else(|| bad("missing ']'"))?;
        let mut bounds = Vec::new();
        for part in inner.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (begin, end) = part.split_once('-').unwrap_or((part, part));
            let begin: u64 = begin
                .trim()
                .parse()
                .map_err(|_| bad("expected ranges like [1-2, 5-9]"))?;
            let end: u64 = end
                .trim()
                .parse()
                .map_err(|_| bad("expected ranges like [1-2, 5-9]"))?;
            if begin > end {
                return Err(bad("range begin is greater than its end"));
            }
            bounds.push((begin, end));
        }
        return Ok(ranges(name, &bounds));
    }
    if let Some(inner) = text.strip_prefix('{') {
        let inner = inner.strip_suffix('}').ok_or_else(|| bad("missing '}'"))?;
        let items: Vec<&str> = inner
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect();
        return Ok(set(name, &items));
    }
    match text.parse::<f64>() {
        Ok(value) if value.is_finite() => Ok(scalar(name, value)),
        _ => Err(bad("expected a number, [ranges] or {set}")),
    }
}

fn write_resource(f: &mut fmt::Formatter<'_>, r: &Resource) -> fmt::Result {
    f.write_str(&r.name)?;
    if let Some(role) = r.allocation_info.as_ref().and_then(|a| a.role.as_deref()) {
        write!(f, "(allocated: {role})")?;
    }
    if let Some(role) = reservation_role(r) {
        write!(f, "({role})")?;
    }
    if r.revocable.is_some() {
        f.write_str("{REV}")?;
    }
    if r.shared.is_some() {
        f.write_str("<SHARED>")?;
    }
    f.write_str(":")?;
    match value::Type::try_from(r.r#type) {
        Ok(value::Type::Scalar) => write!(f, "{}", r.scalar.as_ref().map_or(0.0, |s| s.value)),
        Ok(value::Type::Ranges) => {
            f.write_str("[")?;
            for (i, range) in r.ranges.iter().flat_map(|rs| rs.range.iter()).enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{}-{}", range.begin, range.end)?;
            }
            f.write_str("]")
        }
        Ok(value::Type::Set) => {
            write!(
                f,
                "{{{}}}",
                r.set
                    .iter()
                    .flat_map(|s| s.item.iter())
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
        _ => f.write_str("?"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(text: &str) -> Resources {
        Resources::parse(text, "*").unwrap()
    }

    #[test]
    fn parses_the_agent_default_resources() {
        let r = res("cpus:2;mem:1024;disk:4096;ports:[31000-32000]");
        assert_eq!(r.cpus(), Some(2.0));
        assert_eq!(r.mem(), Some(1024.0));
        assert_eq!(r.disk(), Some(4096.0));
        assert_eq!(
            r.ports().unwrap().range,
            vec![Range {
                begin: 31000,
                end: 32000
            }]
        );
        assert_eq!(
            r.to_string(),
            "cpus:2; mem:1024; disk:4096; ports:[31000-32000]"
        );
        assert!(r
            .iter()
            .all(|x| reservation_role(&x).is_none() && x.role.is_none()));
    }

    #[test]
    fn parses_roles_sets_and_merges_duplicates() {
        let r =
            Resources::parse(" cpus(prod):1 ; cpus:0.5;cpus(prod):1;zones:{a, b};", "*").unwrap();
        assert_eq!(r.reserved("prod").cpus(), Some(2.0));
        assert_eq!(r.unreserved().cpus(), Some(0.5));
        assert_eq!(r.cpus(), Some(2.5));
        assert_eq!(r.len(), 3);
        let zones = r.iter().find(|x| x.name == "zones").unwrap();
        assert_eq!(zones.set.as_ref().unwrap().item, vec!["a", "b"]);
        let statically = Resources::parse("mem:10", "web").unwrap();
        assert_eq!(reservation_role(&statically.to_vec()[0]), Some("web"));
    }

    #[test]
    fn parses_json_form() {
        let r = Resources::parse(
            r#"[{"name":"cpus","type":"SCALAR","scalar":{"value":4}},
                {"name":"ports","type":"RANGES","ranges":{"range":[{"begin":1,"end":3}]},"role":"x"}]"#,
            "*",
        )
        .unwrap();
        assert_eq!(r.cpus(), Some(4.0));
        assert_eq!(r.reserved("x").ports().unwrap().range.len(), 1);
        assert!(matches!(
            Resources::parse("[{\"name\":\"cpus\"}]", "*"),
            Err(ResourcesError::Json(_))
        ));
    }

    #[test]
    fn reports_bad_text_clearly() {
        let err = |t: &str| Resources::parse(t, "*").unwrap_err().to_string();
        assert_eq!(
            err("cpus"),
            "Bad value for resources, missing or extra ':' in cpus"
        );
        assert_eq!(
            err("cpus:1:2"),
            "Bad value for resources, missing or extra ':' in cpus:1:2"
        );
        assert_eq!(
            err("cpus(a:1"),
            "Bad value for resources, mismatched parentheses in cpus(a:1"
        );
        assert!(err("cpus:lots").starts_with("Bad value for resource cpus: 'lots'"));
        assert!(err("ports:[5-1]").contains("begin is greater"));
        assert!(err("ports:[1-2").contains("missing ']'"));
        assert_eq!(
            err("cpus:-1"),
            "Invalid resource cpus: scalar value must be a non-negative number"
        );
        assert_eq!(
            err("x:1;x:[1-2]"),
            "Resources with the same name ('x') but different types are not allowed"
        );
    }

    #[test]
    fn fixed_point_scalars_do_not_drift() {
        let mut r = Resources::new();
        for _ in 0..10 {
            r.add_resource(scalar("cpus", 0.1));
        }
        assert_eq!(r.cpus(), Some(1.0));
        for _ in 0..10 {
            r.subtract_resource(&scalar("cpus", 0.1));
        }
        assert!(r.is_empty());
    }

    #[test]
    fn ranges_arithmetic() {
        let mut r = res("ports:[1-10, 20-30]");
        r.subtract(&res("ports:[5-5, 20-25]"));
        assert_eq!(r.to_string(), "ports:[1-4, 6-10, 26-30]");
        r.add(&res("ports:[5-5, 11-25]"));
        assert_eq!(r.to_string(), "ports:[1-30]");
        assert!(r.contains(&res("ports:[3-7, 30-30]")));
        assert!(!r.contains(&res("ports:[30-31]")));
    }

    #[test]
    fn contains_and_subtract_respect_reservations_and_allocation() {
        let total = res("cpus:4;mem:100;cpus(r):1");
        assert!(total.contains(&res("cpus:4;cpus(r):1;mem:50")));
        assert!(!total.contains(&res("cpus:5")));
        assert!(!total.contains(&res("cpus(q):1")));
        let mut allocated = res("cpus:1");
        allocated.allocate("web");
        assert!(!total.contains(&allocated));
        assert_eq!(allocated.allocation_roles(), vec!["web"]);
        allocated.unallocate();
        assert!(total.contains(&allocated));
        assert_eq!((&total - &res("cpus:4")).to_string(), "mem:100; cpus(r):1");
    }

    #[test]
    fn allocatable_to_includes_ancestor_reservations() {
        let r = res("cpus:1;cpus(a):2;cpus(a/b):3;cpus(c):4");
        assert_eq!(r.allocatable_to("a/b").cpus(), Some(6.0));
        assert_eq!(r.allocatable_to("a").cpus(), Some(3.0));
        assert_eq!(r.allocatable_to("ab").cpus(), Some(1.0));
    }

    #[test]
    fn converts_between_reservation_formats() {
        let r = res("cpus:1;mem(web):2");
        let old = r.to_pre_refinement();
        assert_eq!(old[0].role.as_deref(), Some("*"));
        assert_eq!(old[1].role.as_deref(), Some("web"));
        assert!(old.iter().all(|x| x.reservations.is_empty()));
        assert_eq!(Resources::from(old), r);
    }

    #[test]
    fn atomic_resources_are_not_merged() {
        let mut volume = scalar("disk", 10.0);
        volume.disk = Some(crate::v1::resource::DiskInfo {
            persistence: Some(crate::v1::resource::disk_info::Persistence {
                id: "v1".into(),
                principal: None,
            }),
            ..Default::default()
        });
        let mut r = Resources::from(vec![volume.clone(), volume.clone()]);
        assert_eq!(r.len(), 2);
        let mut half = volume.clone();
        half.scalar = Some(Scalar { value: 5.0 });
        assert!(!r.contains_resource(&half));
        r.subtract_resource(&volume);
        assert_eq!(r.len(), 1);
    }

    #[test]
    fn range_subtraction_edge_cases() {
        let cut =
            |have: &[(u64, u64)], remove: &[(u64, u64)]| subtract_bounds(have.to_vec(), remove);
        assert_eq!(cut(&[(1, 10)], &[(0, 100)]), vec![]);
        assert_eq!(cut(&[(1, 10)], &[(1, 1), (10, 10)]), vec![(2, 9)]);
        assert_eq!(cut(&[(1, 3), (5, 7)], &[(2, 6)]), vec![(1, 1), (7, 7)]);
        assert_eq!(cut(&[(1, 3), (5, 7)], &[(8, 9)]), vec![(1, 3), (5, 7)]);
        assert_eq!(cut(&[(5, 7)], &[(0, 1), (3, 4)]), vec![(5, 7)]);
        assert_eq!(cut(&[(0, u64::MAX)], &[(0, 0)]), vec![(1, u64::MAX)]);
    }
}
