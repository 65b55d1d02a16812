//! An example framework: launches N command tasks and exits when all have
//! ended: status 0 if every task finished, 1 if any did not, 2 on a driver
//! error (unreachable master, framework removed, bad flags).
//!
//! ```text
//! cargo run -p mesos-scheduler --example launch_n -- \
//!     --master 127.0.0.1:5050 --tasks 3 --command 'echo hello; sleep 1'
//! ```

use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use clap::Parser;
use mesos_proto::resources::{self, Resources};
use mesos_proto::v1::{
    AgentId, CommandInfo, Filters, FrameworkInfo, Offer, TaskId, TaskInfo, TaskState, TaskStatus,
};
use mesos_scheduler::{DriverConfig, Scheduler, SchedulerDriver};

/// Command-line flags.
#[derive(Debug, Clone, Parser)]
#[command(about = "Launch N command tasks on a Mesos cluster and wait for them")]
pub struct Args {
    /// The master, HOST:PORT.
    #[arg(long, default_value = "127.0.0.1:5050")]
    pub master: String,
    /// How many tasks to launch.
    #[arg(long, default_value_t = 3)]
    pub tasks: usize,
    /// The shell command each task runs.
    #[arg(long, default_value = "echo hello from mesos-rs")]
    pub command: String,
    /// CPUs per task.
    #[arg(long, default_value_t = 0.1)]
    pub cpus: f64,
    /// Memory per task, MB.
    #[arg(long, default_value_t = 32.0)]
    pub mem: f64,
    /// Give up if no master answers for this many seconds.
    #[arg(long, default_value_t = 30)]
    pub connect_timeout: u64,
}

/// How the run went.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    /// Tasks that reached `TASK_FINISHED`.
    pub finished: Vec<String>,
    /// Tasks that ended otherwise, with their state and message.
    pub failed: Vec<(String, String)>,
}

/// The scheduler: fills each offer with as many pending tasks as fit.
struct LaunchN {
    args: Args,
    launched: usize,
    summary: Arc<Mutex<Summary>>,
}

impl LaunchN {
    fn task(&self, index: usize, agent_id: &AgentId) -> TaskInfo {
        let id = format!("task-{index}");
        TaskInfo {
            name: id.clone(),
            task_id: TaskId { value: id },
            agent_id: agent_id.clone(),
            resources: vec![
                resources::scalar("cpus", self.args.cpus),
                resources::scalar("mem", self.args.mem),
            ],
            command: Some(CommandInfo {
                value: Some(self.args.command.clone()),
                shell: Some(true),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// How many tasks of our size the offer holds.
    fn capacity(&self, offer: &Offer) -> usize {
        let offered = Resources::from(offer.resources.clone());
        let by_cpus = offered.cpus().unwrap_or_default() / self.args.cpus;
        let by_mem = offered.mem().unwrap_or_default() / self.args.mem;
        // Both quotients are non-negative and finite for sane flags.
        by_cpus.min(by_mem).floor().max(0.0) as usize
    }
}

impl Scheduler for LaunchN {
    fn registered(
        &mut self,
        _driver: &SchedulerDriver,
        framework_id: &mesos_proto::v1::FrameworkId,
        _master: Option<&mesos_proto::v1::MasterInfo>,
    ) {
        println!("registered as framework {}", framework_id.value);
    }

    fn resource_offers(&mut self, driver: &SchedulerDriver, offers: Vec<Offer>) {
        for offer in offers {
            let wanted = self.args.tasks - self.launched;
            let count = wanted.min(self.capacity(&offer));
            if count == 0 {
                // Nothing to place: don't see this agent again for a while.
                let filters = Filters {
                    refuse_seconds: Some(if wanted == 0 { 3600.0 } else { 1.0 }),
                };
                let _ = driver.decline_offer(offer.id, Some(filters));
                continue;
            }
            let tasks: Vec<TaskInfo> = (self.launched..self.launched + count)
                .map(|i| self.task(i, &offer.agent_id))
                .collect();
            self.launched += count;
            println!(
                "launching {count} task(s) on agent {}",
                offer.agent_id.value
            );
            if let Err(e) = driver.launch_tasks(vec![offer.id], tasks, None) {
                eprintln!("launch_tasks failed: {e}");
            }
        }
    }

    fn status_update(&mut self, driver: &SchedulerDriver, status: TaskStatus) {
        let state = TaskState::try_from(status.state).unwrap_or(TaskState::TaskLost);
        let task_id = status.task_id.value;
        let message = status.message.unwrap_or_default();
        println!("{task_id}: {} {message}", state.as_str_name());
        if !state.is_terminal() {
            return;
        }
        let mut summary = self.summary.lock().unwrap_or_else(PoisonError::into_inner);
        if state == TaskState::TaskFinished {
            summary.finished.push(task_id);
        } else {
            summary
                .failed
                .push((task_id, format!("{} {message}", state.as_str_name())));
        }
        if summary.finished.len() + summary.failed.len() >= self.args.tasks {
            let _ = driver.stop(false);
        }
    }

    fn error(&mut self, _driver: &SchedulerDriver, message: &str) {
        eprintln!("error: {message}");
    }
}

/// Runs the framework to the end.
pub async fn run(args: Args) -> anyhow::Result<Summary> {
    anyhow::ensure!(args.tasks > 0, "--tasks must be at least 1");
    anyhow::ensure!(
        args.cpus > 0.0 && args.mem > 0.0,
        "--cpus and --mem must be positive"
    );
    let framework = FrameworkInfo {
        user: std::env::var("USER").unwrap_or_else(|_| "root".into()),
        name: "launch_n example".into(),
        ..Default::default()
    };
    let config = DriverConfig::new(&args.master, framework)?
        .give_up_after(Duration::from_secs(args.connect_timeout));
    let summary = Arc::new(Mutex::new(Summary::default()));
    let scheduler = LaunchN {
        args,
        launched: 0,
        summary: summary.clone(),
    };
    SchedulerDriver::new(scheduler, config).run().await?;
    let summary = summary
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    Ok(summary)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(summary) if summary.failed.is_empty() => {
            println!("all {} task(s) finished", summary.finished.len());
            ExitCode::SUCCESS
        }
        Ok(summary) => {
            for (task, how) in &summary.failed {
                eprintln!("{task} did not finish: {how}");
            }
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("launch_n: {e:#}");
            ExitCode::from(2)
        }
    }
}
