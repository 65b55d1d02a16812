//! A per-task timeline of the eight seed steps of task assignment.
//!
//! The master, the agent and the SDKs mark each step where it really happens
//! with an ordinary tracing event (or span) carrying two fields:
//!
//! ```
//! # let task_id = "t1";
//! tracing::info!(seed_step = 6u64, task_id = %task_id, "RunTask sent to agent");
//! ```
//!
//! [`TimelineLayer`] picks those out of the tracing stream and stores them in a
//! [`Timeline`], which `/timeline` endpoints and `mesos-local` read. Nothing is
//! simulated: if a step is not on the real code path it does not show up.
//!
//! An optional `at` field (seconds since the Unix epoch, `f64`) dates a step
//! that was timed elsewhere, e.g. by the containerizer's launch helper.
//!
//! `seed_step` is the step number (1–8, see `docs/architecture.md`); `task_id`
//! may be a comma-separated list when one event covers several tasks (an
//! allocation run or an ACCEPT launching many tasks). Events for an offer
//! before any task exists carry `offer_id` instead; the first event naming
//! both `task_id` and `offer_id` (the ACCEPT) copies the offer's marks into
//! its tasks' timelines ([`Timeline::link_offer`]).

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::span::Attributes;
use tracing::{Event, Id, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::Layer;

/// How many tasks (and offers) a timeline remembers; the oldest go first.
pub const DEFAULT_CAPACITY: usize = 10_000;

/// One recorded step.
#[derive(Debug, Clone, PartialEq)]
pub struct Mark {
    /// Seed step number, 1–8.
    pub step: u64,
    /// What happened, from the event's message.
    pub what: String,
    /// Wall-clock time, seconds since the Unix epoch.
    pub time: f64,
    /// Which process recorded it (`master`, `agent`, `scheduler`, …).
    pub source: String,
}

#[derive(Debug, Default)]
struct Store {
    tasks: HashMap<String, Vec<Mark>>,
    task_order: VecDeque<String>,
    offers: HashMap<String, Vec<Mark>>,
    offer_order: VecDeque<String>,
}

/// A shared, bounded store of marks keyed by task id.
#[derive(Debug, Clone)]
pub struct Timeline {
    store: Arc<Mutex<Store>>,
    capacity: usize,
}

impl Default for Timeline {
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY)
    }
}

static GLOBAL: LazyLock<Timeline> = LazyLock::new(Timeline::default);

impl Timeline {
    /// An empty timeline remembering at most `capacity` tasks.
    pub fn new(capacity: usize) -> Self {
        Self {
            store: Arc::new(Mutex::new(Store::default())),
            capacity: capacity.max(1),
        }
    }

    /// The process-wide timeline that binaries install with [`Timeline::layer`].
    pub fn global() -> &'static Timeline {
        &GLOBAL
    }

    /// A tracing layer feeding this timeline; `source` names the process.
    pub fn layer(&self, source: &str) -> TimelineLayer {
        TimelineLayer {
            timeline: self.clone(),
            source: source.to_owned(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Store> {
        // A panic while holding the lock leaves only complete pushes behind.
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a mark for one task.
    pub fn record(&self, task_id: &str, mark: Mark) {
        let mut store = self.lock();
        let capacity = self.capacity;
        let Store {
            tasks, task_order, ..
        } = &mut *store;
        push_bounded(tasks, task_order, capacity, task_id, mark);
    }

    /// Records a mark for an offer (before its tasks exist).
    pub fn record_offer(&self, offer_id: &str, mark: Mark) {
        let mut store = self.lock();
        let capacity = self.capacity;
        let Store {
            offers,
            offer_order,
            ..
        } = &mut *store;
        push_bounded(offers, offer_order, capacity, offer_id, mark);
    }

    /// Copies the marks recorded for `offer_id` (allocation, offer sent) into
    /// `task_id`'s timeline, when the task is launched from that offer.
    pub fn link_offer(&self, offer_id: &str, task_id: &str) {
        let marks = self
            .lock()
            .offers
            .get(offer_id)
            .cloned()
            .unwrap_or_default();
        let known = self.lock().tasks.get(task_id).cloned().unwrap_or_default();
        // Several events may name the same offer (launch_tasks, ACCEPT sent).
        for mark in marks.into_iter().filter(|m| !known.contains(m)) {
            self.record(task_id, mark);
        }
    }

    /// The marks of one task, ordered by time.
    pub fn task(&self, task_id: &str) -> Vec<Mark> {
        let mut marks = self.lock().tasks.get(task_id).cloned().unwrap_or_default();
        marks.sort_by(|a, b| a.time.total_cmp(&b.time));
        marks
    }

    /// Every task id with marks, oldest first.
    pub fn task_ids(&self) -> Vec<String> {
        self.lock().task_order.iter().cloned().collect()
    }

    /// `{"tasks":{"<task id>":[{"step":6,"what":"…","time":…,"source":"master"}]}}`,
    /// the body of `/timeline` endpoints.
    pub fn to_json(&self) -> serde_json::Value {
        let tasks: serde_json::Map<String, serde_json::Value> = self
            .task_ids()
            .into_iter()
            .map(|id| {
                let marks = self.task(&id).into_iter().map(|m| mark_json(&m)).collect();
                (id, serde_json::Value::Array(marks))
            })
            .collect();
        serde_json::json!({ "tasks": tasks })
    }

    /// Merges marks from another process's `/timeline` body.
    pub fn merge_json(&self, body: &serde_json::Value) {
        let Some(tasks) = body.get("tasks").and_then(|t| t.as_object()) else {
            return;
        };
        for (task_id, marks) in tasks {
            for mark in marks.as_array().into_iter().flatten() {
                if let Some(mark) = mark_from_json(mark) {
                    self.record(task_id, mark);
                }
            }
        }
    }
}

/// Installs the process's tracing subscriber: human-readable logs on stderr
/// filtered by `RUST_LOG` (else `default_filter`), plus the global
/// [`Timeline`]'s layer, which sees seed-step events whatever the log level.
pub fn init_tracing(source: &str, default_filter: &str) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::EnvFilter;

    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let console = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(filter);
    // Seed-step events are logged at INFO; nothing below it reaches the layer.
    let timeline = Timeline::global()
        .layer(source)
        .with_filter(tracing_subscriber::filter::LevelFilter::INFO);
    // A second initialisation (tests starting several components) keeps the first.
    let _ = tracing_subscriber::registry()
        .with(console)
        .with(timeline)
        .try_init();
}

fn push_bounded(
    map: &mut HashMap<String, Vec<Mark>>,
    order: &mut VecDeque<String>,
    capacity: usize,
    key: &str,
    mark: Mark,
) {
    if let Some(marks) = map.get_mut(key) {
        marks.push(mark);
        return;
    }
    if order.len() >= capacity {
        if let Some(oldest) = order.pop_front() {
            map.remove(&oldest);
        }
    }
    order.push_back(key.to_owned());
    map.insert(key.to_owned(), vec![mark]);
}

fn mark_json(mark: &Mark) -> serde_json::Value {
    serde_json::json!({
        "step": mark.step,
        "what": mark.what,
        "time": mark.time,
        "source": mark.source,
    })
}

fn mark_from_json(value: &serde_json::Value) -> Option<Mark> {
    Some(Mark {
        step: value.get("step")?.as_u64()?,
        what: value.get("what")?.as_str()?.to_owned(),
        time: value.get("time")?.as_f64()?,
        source: value.get("source")?.as_str()?.to_owned(),
    })
}

fn split_ids(ids: Option<&str>) -> Vec<&str> {
    ids.map(|ids| {
        ids.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect()
    })
    .unwrap_or_default()
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

/// The tracing layer behind a [`Timeline`]; see the crate docs.
#[derive(Debug)]
pub struct TimelineLayer {
    timeline: Timeline,
    source: String,
}

#[derive(Default)]
struct StepFields {
    step: Option<u64>,
    task_ids: Option<String>,
    offer_id: Option<String>,
    message: Option<String>,
    state: Option<String>,
    at: Option<f64>,
}

impl Visit for StepFields {
    fn record_f64(&mut self, field: &Field, value: f64) {
        // An event may report a step that was timed elsewhere (e.g. in a
        // child process) with its own wall-clock time.
        if field.name() == "at" {
            self.at = Some(value);
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "seed_step" {
            self.step = Some(value);
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if field.name() == "seed_step" {
            self.step = u64::try_from(value).ok();
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.record_text(field, value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.record_text(field, format!("{value:?}"));
    }
}

impl StepFields {
    fn record_text(&mut self, field: &Field, text: String) {
        match field.name() {
            "task_id" => self.task_ids = Some(text),
            "offer_id" => self.offer_id = Some(text),
            "message" => self.message = Some(text),
            "state" => self.state = Some(text),
            _ => {}
        }
    }

    fn store(self, timeline: &Timeline, source: &str, default_what: &str) {
        let Some(step) = self.step else { return };
        let mark = Mark {
            step,
            what: match (self.message, self.state) {
                (Some(what), Some(state)) => format!("{what}: {state}"),
                (None, Some(state)) => format!("{default_what}: {state}"),
                (what, None) => what.unwrap_or_else(|| default_what.to_owned()),
            },
            time: self.at.unwrap_or_else(now),
            source: source.to_owned(),
        };
        let tasks = split_ids(self.task_ids.as_deref());
        let offers = split_ids(self.offer_id.as_deref());
        if tasks.is_empty() {
            for offer in offers {
                timeline.record_offer(offer, mark.clone());
            }
            return;
        }
        // An event naming both (e.g. ACCEPT) is where an offer's history
        // becomes its tasks' history.
        for task in &tasks {
            for offer in &offers {
                timeline.link_offer(offer, task);
            }
            timeline.record(task, mark.clone());
        }
    }
}

impl<S: Subscriber> Layer<S> for TimelineLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut fields = StepFields::default();
        event.record(&mut fields);
        fields.store(&self.timeline, &self.source, event.metadata().name());
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, _id: &Id, _ctx: Context<'_, S>) {
        let mut fields = StepFields::default();
        attrs.record(&mut fields);
        fields.store(&self.timeline, &self.source, attrs.metadata().name());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    #[test]
    fn events_with_seed_steps_become_marks() {
        let timeline = Timeline::new(16);
        let subscriber = tracing_subscriber::registry().with(timeline.layer("master"));
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(seed_step = 1u64, offer_id = "o1", "allocation run");
            tracing::info!(seed_step = 2u64, offer_id = "o1", "offer sent");
            tracing::info!(
                seed_step = 4u64,
                task_id = "t1,t2",
                offer_id = "o1",
                "launch"
            );
            tracing::info!(
                seed_step = 5u64,
                task_id = "t1,t2",
                offer_id = "o1",
                "ACCEPT received"
            );
            tracing::info!(task_id = "t1", "not a seed step");
            let _span = tracing::info_span!("run_task", seed_step = 6u64, task_id = "t1").entered();
        });
        let steps: Vec<u64> = timeline.task("t1").iter().map(|m| m.step).collect();
        // The offer's marks keep their own (earlier) times when linked.
        assert_eq!(steps, vec![1, 2, 4, 5, 6]);
        assert_eq!(timeline.task("t2").len(), 4);
        assert_eq!(timeline.task("t1")[0].source, "master");
    }

    #[test]
    fn capacity_evicts_oldest_tasks() {
        let timeline = Timeline::new(2);
        for id in ["a", "b", "c"] {
            timeline.record(
                id,
                Mark {
                    step: 1,
                    what: "x".into(),
                    time: 1.0,
                    source: "m".into(),
                },
            );
        }
        assert_eq!(timeline.task_ids(), vec!["b".to_string(), "c".to_string()]);
        assert!(timeline.task("a").is_empty());
    }

    #[test]
    fn json_round_trip_merges() {
        let a = Timeline::new(8);
        a.record(
            "t",
            Mark {
                step: 7,
                what: "sandbox ready".into(),
                time: 2.0,
                source: "agent".into(),
            },
        );
        let b = Timeline::new(8);
        b.record(
            "t",
            Mark {
                step: 6,
                what: "RunTask sent".into(),
                time: 1.0,
                source: "master".into(),
            },
        );
        b.merge_json(&a.to_json());
        let steps: Vec<u64> = b.task("t").iter().map(|m| m.step).collect();
        assert_eq!(steps, vec![6, 7]);
    }
}
