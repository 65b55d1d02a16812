//! The sample workload `mesos-local` runs: a few command tasks with CPU and
//! memory limits, one of which breaches its memory limit on purpose so the
//! enforcement shows.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use mesos_proto::resources::{self, Resources};
use mesos_proto::v1::{
    task_status, value, CommandInfo, Filters, Offer, TaskId, TaskInfo, TaskState, TaskStatus,
};
use mesos_scheduler::{Scheduler, SchedulerDriver};

/// One task of the workload and the end it is expected to reach.
#[derive(Debug, Clone)]
pub struct SampleTask {
    /// Task id and name.
    pub id: String,
    /// What it shows.
    pub description: &'static str,
    /// The shell command.
    pub command: String,
    /// CPUs requested.
    pub cpus: f64,
    /// Memory requested, MB.
    pub mem: f64,
    /// A hard CPU limit (`TaskInfo.limits["cpus"]`), enforced with CFS.
    pub cpus_limit: Option<f64>,
    /// The terminal state it should reach.
    pub expect: TaskState,
    /// The reason that state should carry, if any.
    pub expect_reason: Option<task_status::Reason>,
}

/// The default workload: `count` tasks cycling through the three kinds.
pub fn sample_tasks(count: usize) -> Vec<SampleTask> {
    let kinds = [
        SampleTask {
            id: String::new(),
            description: "prints where it runs: its cgroup and its pid namespace",
            command: "echo \"hello from $(hostname), pid $$\"; cat /proc/self/cgroup".into(),
            cpus: 0.1,
            mem: 32.0,
            cpus_limit: None,
            expect: TaskState::TaskFinished,
            expect_reason: None,
        },
        SampleTask {
            id: String::new(),
            description: "busy-loops for 1 s under a hard 0.5-cpu limit",
            command:
                "end=$(($(date +%s) + 1)); while [ \"$(date +%s)\" -lt \"$end\" ]; do :; done; \
                      echo done spinning"
                    .into(),
            cpus: 0.5,
            mem: 32.0,
            cpus_limit: Some(0.5),
            expect: TaskState::TaskFinished,
            expect_reason: None,
        },
        SampleTask {
            id: String::new(),
            description: "allocates 3x its 64 MB limit and is OOM-killed",
            // `tail` keeps the newline-free line in memory.
            command: "echo allocating 192 MB; head -c 192m /dev/zero | tail".into(),
            cpus: 0.1,
            mem: 64.0,
            cpus_limit: None,
            expect: TaskState::TaskFailed,
            expect_reason: Some(task_status::Reason::ContainerLimitationMemory),
        },
    ];
    let names = ["hello", "cpu-limited", "memory-hog"];
    (0..count)
        .map(|i| {
            let kind = i % kinds.len();
            SampleTask {
                id: format!("{}-{}", names[kind], i / kinds.len() + 1),
                ..kinds[kind].clone()
            }
        })
        .collect()
}

impl SampleTask {
    fn task_info(&self, offer: &Offer) -> TaskInfo {
        let mut limits = BTreeMap::new();
        if let Some(cpus) = self.cpus_limit {
            limits.insert("cpus".to_owned(), value::Scalar { value: cpus });
        }
        TaskInfo {
            name: self.id.clone(),
            task_id: TaskId {
                value: self.id.clone(),
            },
            agent_id: offer.agent_id.clone(),
            resources: vec![
                resources::scalar("cpus", self.cpus),
                resources::scalar("mem", self.mem),
            ],
            command: Some(CommandInfo {
                value: Some(self.command.clone()),
                shell: Some(true),
                ..Default::default()
            }),
            limits,
            ..Default::default()
        }
    }

    /// The command executor's overhead is added by the agent, so an offer
    /// must hold the task plus cpus 0.1 / mem 32 (Mesos's defaults).
    fn fits(&self, available: &Resources) -> bool {
        available.cpus().unwrap_or_default() >= self.cpus + 0.1
            && available.mem().unwrap_or_default() >= self.mem + 32.0
    }
}

/// How one task ended, as the scheduler saw it.
#[derive(Debug, Clone)]
pub struct TaskEnd {
    /// The terminal status.
    pub status: TaskStatus,
    /// Agent address (`ip:port`) from the offer the task was launched on.
    pub agent: Option<String>,
}

/// What the scheduler collected.
#[derive(Debug, Default)]
pub struct Results {
    /// Terminal statuses by task id.
    pub ends: BTreeMap<String, TaskEnd>,
    /// The framework id.
    pub framework_id: Option<String>,
}

/// Places the sample tasks on offers and records how they end; stops the
/// driver when every task is terminal.
#[derive(Debug)]
pub struct LocalScheduler {
    pending: VecDeque<SampleTask>,
    total: usize,
    agents: BTreeMap<String, String>,
    results: Arc<Mutex<Results>>,
}

impl LocalScheduler {
    /// A scheduler for `tasks`, reporting into `results`.
    pub fn new(tasks: Vec<SampleTask>, results: Arc<Mutex<Results>>) -> Self {
        Self {
            total: tasks.len(),
            pending: tasks.into(),
            agents: BTreeMap::new(),
            results,
        }
    }

    fn results(&self) -> std::sync::MutexGuard<'_, Results> {
        self.results.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn agent_address(offer: &Offer) -> Option<String> {
    let url = offer.url.as_ref()?;
    Some(format!("{}:{}", url.address.ip.clone()?, url.address.port))
}

impl Scheduler for LocalScheduler {
    fn registered(
        &mut self,
        _driver: &SchedulerDriver,
        framework_id: &mesos_proto::v1::FrameworkId,
        _master: Option<&mesos_proto::v1::MasterInfo>,
    ) {
        self.results().framework_id = Some(framework_id.value.clone());
    }

    fn resource_offers(&mut self, driver: &SchedulerDriver, offers: Vec<Offer>) {
        for offer in offers {
            let mut available = Resources::from(offer.resources.clone());
            let mut tasks = Vec::new();
            while let Some(task) = self.pending.front() {
                if !task.fits(&available) {
                    break;
                }
                let task = self.pending.pop_front().expect("front exists");
                let info = task.task_info(&offer);
                available.subtract(&Resources::from(info.resources.clone()));
                available.subtract(&Resources::from(vec![
                    resources::scalar("cpus", 0.1),
                    resources::scalar("mem", 32.0),
                ]));
                if let Some(agent) = agent_address(&offer) {
                    self.agents.insert(task.id.clone(), agent);
                }
                tasks.push(info);
            }
            if tasks.is_empty() {
                let refuse = if self.pending.is_empty() { 3600.0 } else { 1.0 };
                let filters = Filters {
                    refuse_seconds: Some(refuse),
                };
                let _ = driver.decline_offer(offer.id, Some(filters));
            } else if let Err(e) = driver.launch_tasks(vec![offer.id], tasks, None) {
                eprintln!("mesos-local: launch_tasks failed: {e}");
            }
        }
    }

    fn status_update(&mut self, driver: &SchedulerDriver, status: TaskStatus) {
        let state = status.state();
        if !state.is_terminal() {
            return;
        }
        let task_id = status.task_id.value.clone();
        let agent = self.agents.get(&task_id).cloned();
        let done = {
            let mut results = self.results();
            results.ends.insert(task_id, TaskEnd { status, agent });
            results.ends.len() >= self.total
        };
        if done {
            let _ = driver.stop(false);
        }
    }

    fn error(&mut self, _driver: &SchedulerDriver, message: &str) {
        eprintln!("mesos-local: framework error: {message}");
    }
}
