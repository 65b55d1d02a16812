//! Counters behind `/metrics/snapshot` (Mesos metric names; gauges such as
//! `master/slaves_active` are computed from the state when the snapshot is
//! taken, see `endpoints`).

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use mesos_proto::v1::scheduler::{call, event, Event};
use mesos_proto::v1::TaskState;

/// Samples kept per timer for its statistics.
const TIMER_WINDOW: usize = 1000;

/// A libprocess-style timer: recent durations in milliseconds.
#[derive(Debug, Default)]
pub struct Timer {
    samples_ms: VecDeque<f64>,
}

impl Timer {
    /// Records one duration.
    pub(crate) fn record(&mut self, took: Duration) {
        self.samples_ms.push_back(took.as_secs_f64() * 1000.0);
        while self.samples_ms.len() > TIMER_WINDOW {
            self.samples_ms.pop_front();
        }
    }

    /// Statistics in Mesos's layout: `<base>` (last), `<base>/count`,
    /// `/min`, `/max`, `/p50`, `/p90`, `/p99`; nothing before a sample.
    pub(crate) fn snapshot(&self, base: &str) -> Vec<(String, f64)> {
        let Some(last) = self.samples_ms.back() else {
            return vec![];
        };
        let mut sorted: Vec<f64> = self.samples_ms.iter().copied().collect();
        sorted.sort_by(f64::total_cmp);
        let pct = |p: f64| sorted[((sorted.len() - 1) as f64 * p).round() as usize];
        vec![
            (base.to_string(), *last),
            (format!("{base}/count"), sorted.len() as f64),
            (format!("{base}/min"), sorted[0]),
            (format!("{base}/max"), sorted[sorted.len() - 1]),
            (format!("{base}/p50"), pct(0.5)),
            (format!("{base}/p90"), pct(0.9)),
            (format!("{base}/p99"), pct(0.99)),
        ]
    }
}

/// Master counters.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Terminal task transitions by state name (`master/tasks_finished`, ...).
    pub(crate) terminal_tasks: BTreeMap<&'static str, u64>,
    /// Events sent, by type name.
    pub(crate) events: BTreeMap<&'static str, u64>,
    /// Scheduler calls handled, by type name.
    pub(crate) calls: BTreeMap<&'static str, u64>,
    pub(crate) valid_status_updates: u64,
    pub(crate) invalid_status_updates: u64,
    pub(crate) acknowledgements: u64,
    pub(crate) offers_rescinded: u64,
    pub(crate) agent_removals: u64,
    pub(crate) dropped_messages: u64,
    pub(crate) tasks_launched: u64,
    pub(crate) allocation_runs: u64,
    /// `allocator/mesos/allocation_run_ms`.
    pub(crate) allocation_run: Timer,
    /// `master/slave_registrations`, `master/slave_reregistrations`.
    pub(crate) agent_registrations: u64,
    pub(crate) agent_reregistrations: u64,
    /// `master/recovery_slave_removals`: recovered agents that did not
    /// re-register in time.
    pub(crate) recovery_agent_removals: u64,
    /// `registrar/state_store_ms`: duration of each registry write.
    pub(crate) registry_store: Timer,
}

impl Metrics {
    /// Counts a task reaching a terminal state.
    pub(crate) fn count_terminal(&mut self, state: i32) {
        let name = match TaskState::try_from(state) {
            Ok(TaskState::TaskFinished) => "finished",
            Ok(TaskState::TaskFailed) => "failed",
            Ok(TaskState::TaskKilled) => "killed",
            Ok(TaskState::TaskLost) => "lost",
            Ok(TaskState::TaskError) => "error",
            Ok(TaskState::TaskDropped) => "dropped",
            Ok(TaskState::TaskGone) => "gone",
            Ok(TaskState::TaskGoneByOperator) => "gone_by_operator",
            _ => return,
        };
        *self.terminal_tasks.entry(name).or_default() += 1;
    }

    /// Counts an event sent to a framework.
    pub(crate) fn count_event(&mut self, event: &Event) {
        let name = event
            .r#type
            .and_then(|t| event::Type::try_from(t).ok())
            .map_or("unknown", |t| t.as_str_name());
        *self.events.entry(name).or_default() += 1;
    }

    /// Counts a scheduler call.
    pub(crate) fn count_call(&mut self, kind: Option<i32>) {
        let name = kind
            .and_then(|t| call::Type::try_from(t).ok())
            .map_or("UNKNOWN", |t| t.as_str_name());
        *self.calls.entry(name).or_default() += 1;
    }

    /// Records one allocation run.
    pub(crate) fn record_allocation_run(&mut self, took: Duration) {
        self.allocation_runs += 1;
        self.allocation_run.record(took);
    }
}
