//! A framework on the `framework` host, driven by the Rust scheduler SDK:
//! every callback becomes an [`Event`], kept in order so a test can wait for
//! one and look back at what else happened.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mesos_proto::resources;
use mesos_proto::v1::framework_info::capability::Type as CapabilityType;
use mesos_proto::v1::framework_info::Capability;
use mesos_proto::v1::{
    AgentId, CommandInfo, FrameworkId, FrameworkInfo, MasterInfo, Offer, OfferId, TaskId, TaskInfo,
    TaskState, TaskStatus,
};
use mesos_scheduler::{CallFailure, DriverConfig, Scheduler, SchedulerDriver};
use tokio::sync::mpsc;

/// How long to wait for an event unless a test says otherwise.
pub const WAIT: Duration = Duration::from_secs(30);

/// A scheduler callback.
#[derive(Debug, Clone)]
pub enum Event {
    /// SUBSCRIBED (first time).
    Registered(String),
    /// OFFERS.
    Offers(Vec<Offer>),
    /// RESCIND.
    Rescinded(String),
    /// UPDATE.
    Update(Box<TaskStatus>),
    /// FAILURE without an executor: the agent was removed.
    AgentLost(String),
    /// The event stream broke.
    Disconnected,
    /// ERROR, or a rejected SUBSCRIBE.
    Error(String),
    /// A call the master refused.
    CallFailed(String),
}

/// Hands callbacks to the test, stamped with their arrival time.
struct Forward(mpsc::UnboundedSender<(Instant, Event)>);

impl Forward {
    fn send(&self, event: Event) {
        // The test may have finished and dropped the receiver.
        let _ = self.0.send((Instant::now(), event));
    }
}

impl Scheduler for Forward {
    fn registered(&mut self, _: &SchedulerDriver, id: &FrameworkId, _: Option<&MasterInfo>) {
        self.send(Event::Registered(id.value.clone()));
    }

    fn disconnected(&mut self, _: &SchedulerDriver) {
        self.send(Event::Disconnected);
    }

    fn resource_offers(&mut self, _: &SchedulerDriver, offers: Vec<Offer>) {
        self.send(Event::Offers(offers));
    }

    fn offer_rescinded(&mut self, _: &SchedulerDriver, offer_id: &OfferId) {
        self.send(Event::Rescinded(offer_id.value.clone()));
    }

    fn status_update(&mut self, _: &SchedulerDriver, status: TaskStatus) {
        self.send(Event::Update(Box::new(status)));
    }

    fn agent_lost(&mut self, _: &SchedulerDriver, agent_id: &AgentId) {
        self.send(Event::AgentLost(agent_id.value.clone()));
    }

    fn error(&mut self, _: &SchedulerDriver, message: &str) {
        self.send(Event::Error(message.to_string()));
    }

    fn call_failed(&mut self, _: &SchedulerDriver, failure: &CallFailure) {
        self.send(Event::CallFailed(format!("{failure:?}")));
    }
}

/// A subscribed framework and everything it has been told.
pub struct Framework {
    pub driver: SchedulerDriver,
    pub id: String,
    events: mpsc::UnboundedReceiver<(Instant, Event)>,
    seen: Vec<(Instant, Event)>,
}

impl Framework {
    /// Subscribes `name` to the master at `master`, optionally
    /// PARTITION_AWARE. Must run on the framework host's runtime.
    pub async fn subscribe(master: SocketAddr, name: &str, partition_aware: bool) -> Framework {
        let capabilities = if partition_aware {
            vec![Capability {
                r#type: Some(CapabilityType::PartitionAware as i32),
            }]
        } else {
            Vec::new()
        };
        let info = FrameworkInfo {
            user: "root".into(),
            name: name.into(),
            capabilities,
            ..Default::default()
        };
        let config = DriverConfig::new(&master.to_string(), info)
            .expect("a host:port master address")
            .backoff(Duration::from_millis(100), Duration::from_secs(1));
        let (tx, events) = mpsc::unbounded_channel();
        let driver = SchedulerDriver::new(Forward(tx), config);
        driver.start().expect("start the scheduler driver");
        let mut framework = Framework {
            driver,
            id: String::new(),
            events,
            seen: Vec::new(),
        };
        framework.id = framework
            .wait_for(0, "SUBSCRIBED", WAIT, |e| match e {
                Event::Registered(id) => Some(id.clone()),
                _ => None,
            })
            .await;
        framework
    }

    /// A position in the event history: a wait `since` it only looks at
    /// later events.
    pub fn mark(&self) -> usize {
        self.seen.len()
    }

    /// Events from `since` on.
    pub fn seen_since(&self, since: usize) -> impl Iterator<Item = &Event> {
        self.seen[since.min(self.seen.len())..]
            .iter()
            .map(|(_, e)| e)
    }

    /// The first event from `since` on that `pick` accepts (waiting for new
    /// events up to `timeout`); panics with the history when none comes.
    pub async fn wait_for<T>(
        &mut self,
        since: usize,
        what: &str,
        timeout: Duration,
        mut pick: impl FnMut(&Event) -> Option<T>,
    ) -> T {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut next = since;
        loop {
            while next < self.seen.len() {
                if let Some(found) = pick(&self.seen[next].1) {
                    return found;
                }
                next += 1;
            }
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                // No scenario expects the master to refuse anything.
                Ok(Some((_, Event::Error(message) | Event::CallFailed(message)))) => {
                    panic!("{what}: {message}; saw {}", self.history())
                }
                Ok(Some(stamped)) => self.seen.push(stamped),
                Ok(None) => panic!("{what}: the scheduler driver ended; saw {}", self.history()),
                Err(_) => panic!("{what}: nothing within {timeout:?}; saw {}", self.history()),
            }
        }
    }

    /// One offer from each of `agents` received from `since` on (the latest
    /// if several), keyed by agent id.
    pub async fn offers_from(&mut self, since: usize, agents: &[&str]) -> HashMap<String, Offer> {
        let mut found = HashMap::new();
        for agent in agents {
            let offer = self.offer_from(since, agent).await;
            found.insert(agent.to_string(), offer);
        }
        found
    }

    /// An offer of `agent` received from `since` on.
    pub async fn offer_from(&mut self, since: usize, agent: &str) -> Offer {
        self.wait_for(
            since,
            &format!("an offer from {agent}"),
            WAIT,
            |e| match e {
                Event::Offers(offers) => offers.iter().find(|o| o.agent_id.value == agent).cloned(),
                _ => None,
            },
        )
        .await
    }

    /// The first update of `task` to `state` received from `since` on.
    pub async fn update(
        &mut self,
        since: usize,
        task: &str,
        state: TaskState,
        timeout: Duration,
    ) -> TaskStatus {
        self.wait_for(since, &format!("{task} {state:?}"), timeout, |e| match e {
            Event::Update(s) if s.task_id.value == task && s.state() == state => Some(*s.clone()),
            _ => None,
        })
        .await
    }

    /// Launches `tasks` on `offer`; the unused rest of the offer comes back
    /// at the next allocation (no refusal filter).
    pub fn launch(&self, offer: &Offer, tasks: Vec<TaskInfo>) {
        let filters = mesos_proto::v1::Filters {
            refuse_seconds: Some(0.0),
        };
        self.driver
            .launch_tasks(vec![offer.id.clone()], tasks, Some(filters))
            .expect("queue ACCEPT");
    }

    /// Events so far, one per line, with their time.
    pub fn history(&self) -> String {
        let start = self.seen.first().map(|(t, _)| *t);
        self.seen
            .iter()
            .map(|(t, e)| {
                let at = start.map(|s| t.duration_since(s)).unwrap_or_default();
                format!("\n  +{:.3}s {}", at.as_secs_f64(), brief(e))
            })
            .collect()
    }
}

/// One line per event (offers and updates shortened).
fn brief(event: &Event) -> String {
    match event {
        Event::Offers(offers) => {
            let list: Vec<String> = offers
                .iter()
                .map(|o| format!("{} on {}", o.id.value, o.agent_id.value))
                .collect();
            format!("OFFERS [{}]", list.join(", "))
        }
        Event::Update(s) => format!(
            "UPDATE {} {:?} reason={:?} source={:?} message={:?}",
            s.task_id.value,
            s.state(),
            s.reason.map(|_| s.reason()),
            s.source.map(|_| s.source()),
            s.message.as_deref().unwrap_or("")
        ),
        other => format!("{other:?}"),
    }
}

/// A shell-command task of 0.1 cpus and 32 MB on `agent`.
pub fn command_task(id: &str, agent: &str, command: &str) -> TaskInfo {
    TaskInfo {
        name: id.into(),
        task_id: TaskId { value: id.into() },
        agent_id: AgentId {
            value: agent.into(),
        },
        resources: vec![
            resources::scalar("cpus", 0.1),
            resources::scalar("mem", 32.0),
        ],
        command: Some(CommandInfo {
            value: Some(command.into()),
            shell: Some(true),
            ..Default::default()
        }),
        ..Default::default()
    }
}
