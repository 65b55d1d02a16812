//! `mesos-local`: a master and N agents on loopback, a sample workload, and
//! a timeline of the eight seed steps of task assignment for every task.
//!
//! The timeline is not simulated: the master, the agents and the scheduler
//! SDK mark each step with a tracing event where it really happens
//! (`mesos-timeline`); the master and agents serve theirs at `/timeline`, and
//! this process merges them with the SDK's own marks.

pub mod workload;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use clap::Parser;
use mesos_proto::v1::FrameworkInfo;
use mesos_scheduler::{DriverConfig, SchedulerDriver};
use mesos_timeline::{Mark, Timeline};

use crate::cluster::{ClusterConfig, ClusterError, LocalCluster};
use crate::execute::agent::AgentClient;
use workload::{LocalScheduler, Results, SampleTask};

/// Flags of `mesos-local`.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "mesos-local",
    about = "Run a local mesos-rs cluster (a master and agents on loopback), a sample workload, \
             and print each task's timeline through the eight steps of task assignment"
)]
pub struct Flags {
    /// How many agents to start.
    #[arg(long = "num_agents", alias = "num-agents", default_value_t = 1,
          value_parser = clap::value_parser!(u16).range(1..=16))]
    pub num_agents: u16,
    /// How many sample tasks to run (they cycle through hello, cpu-limited, memory-hog).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=300))]
    pub tasks: u16,
    /// Each agent's resources.
    #[arg(long, default_value = "cpus:2;mem:2048;disk:4096;ports:[31000-32000]")]
    pub resources: String,
    /// Each agent's isolators.
    #[arg(
        long,
        default_value = "filesystem/linux,cgroups/cpu,cgroups/mem,cgroups/pids,namespaces/pid,namespaces/ipc"
    )]
    pub isolation: String,
    /// Keep the cluster running after the workload, until Ctrl-C.
    #[arg(long = "keep-running", alias = "keep_running")]
    pub keep_running: bool,
    /// Directory with mesos-master, mesos-agent, mesos-executor and
    /// mesos-containerizer (default: next to this binary).
    #[arg(long = "bin_dir", alias = "bin-dir")]
    pub bin_dir: Option<PathBuf>,
    /// Give up on the workload after this many seconds.
    #[arg(long, default_value_t = 120)]
    pub timeout: u64,
}

/// Why `mesos-local` could not do its job.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// Not root: cgroups and namespaces need it.
    #[error("mesos-local needs root: agents isolate tasks with cgroups and namespaces")]
    NotRoot,
    /// The binaries' directory is unknown.
    #[error("cannot find the directory of this binary: {0}")]
    BinDir(std::io::Error),
    /// The cluster did not start or stop cleanly.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// The framework could not run.
    #[error("the sample framework failed: {0}")]
    Framework(String),
    /// The workload did not finish in time.
    #[error("the workload did not finish within {0} s")]
    Timeout(u64),
}

/// Runs the whole thing; `Ok(true)` when every task ended as expected.
pub async fn run(flags: Flags) -> Result<bool, LocalError> {
    if !nix::unistd::Uid::effective().is_root() {
        return Err(LocalError::NotRoot);
    }
    let bin_dir = match &flags.bin_dir {
        Some(dir) => dir.clone(),
        None => std::env::current_exe()
            .map_err(LocalError::BinDir)?
            .parent()
            .map(PathBuf::from)
            .unwrap_or_default(),
    };
    let config = ClusterConfig {
        agents: usize::from(flags.num_agents),
        resources: flags.resources.clone(),
        isolation: flags.isolation.clone(),
        agent_flags: vec!["--cgroups_enable_cfs=true".to_owned()],
        name: "mesos-local".to_owned(),
        ..ClusterConfig::new(&bin_dir)
    };
    println!(
        "starting a master and {} agent(s) from {}",
        config.agents,
        bin_dir.display()
    );
    let cluster = LocalCluster::start(&config).await?;
    print_endpoints(&cluster);

    let tasks = workload::sample_tasks(usize::from(flags.tasks));
    let outcome = run_workload(&cluster, &tasks, flags.timeout).await;
    let ok = match &outcome {
        Ok(results) => report(&cluster, &tasks, results).await,
        Err(e) => {
            eprintln!("mesos-local: {e}\n{}", cluster.log_tails());
            false
        }
    };

    if flags.keep_running {
        print_endpoints(&cluster);
        println!("cluster running; press Ctrl-C to stop it");
        let _ = tokio::signal::ctrl_c().await;
    }
    let dir = cluster.dir().to_owned();
    cluster.stop().await?;
    println!(
        "stopped the cluster; removed {} and its cgroups",
        dir.display()
    );
    outcome.map(|_| ok)
}

fn print_endpoints(cluster: &LocalCluster) {
    println!(
        "  master  http://{}/  (state: /state, timeline: /timeline)",
        cluster.master_addr()
    );
    for (i, agent) in cluster.agent_addrs().iter().enumerate() {
        println!(
            "  agent-{}  http://{agent}/  (state: /state, files: /files/browse)",
            i + 1
        );
    }
    println!("  logs and work dirs under {}", cluster.dir().display());
}

async fn run_workload(
    cluster: &LocalCluster,
    tasks: &[SampleTask],
    timeout: u64,
) -> Result<Results, LocalError> {
    let framework = FrameworkInfo {
        user: "root".to_owned(),
        name: "mesos-local sample workload".to_owned(),
        ..Default::default()
    };
    let config = DriverConfig::new(&cluster.master_addr(), framework)
        .map_err(|e| LocalError::Framework(e.to_string()))?
        .give_up_after(Duration::from_secs(timeout));
    let results = Arc::new(Mutex::new(Results::default()));
    let scheduler = LocalScheduler::new(tasks.to_vec(), results.clone());
    let driver = SchedulerDriver::new(scheduler, config);
    match tokio::time::timeout(Duration::from_secs(timeout), driver.run()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(LocalError::Framework(e.to_string())),
        Err(_) => {
            let _ = driver.stop(false);
            return Err(LocalError::Timeout(timeout));
        }
    }
    let results = std::mem::take(&mut *results.lock().unwrap_or_else(PoisonError::into_inner));
    Ok(results)
}

/// Pulls the master's and agents' timelines into this process's.
async fn gather_timeline(cluster: &LocalCluster) -> Timeline {
    let timeline = Timeline::global().clone();
    let authorities = std::iter::once(cluster.master_addr())
        .chain(cluster.agent_addrs().into_iter().map(|a| a.to_string()));
    for authority in authorities {
        let client = AgentClient::for_authority(&authority, Duration::from_secs(5));
        match client.get_json("/timeline").await {
            Ok(body) => timeline.merge_json(&body),
            Err(e) => eprintln!("mesos-local: no timeline from {authority}: {e}"),
        }
    }
    timeline
}

const STEP_NAMES: [&str; 8] = [
    "allocator runs",
    "offer sent",
    "resource_offers called",
    "launch_tasks called",
    "ACCEPT sent to master",
    "master validates, RunTask to agent",
    "agent: sandbox, cgroup, namespaces, executor",
    "executor launches task, updates flow back",
];

/// Prints every task's end, output and timeline; true if all ended as expected.
async fn report(cluster: &LocalCluster, tasks: &[SampleTask], results: &Results) -> bool {
    let timeline = gather_timeline(cluster).await;
    print_legend();
    let mut as_expected = 0;
    for task in tasks {
        println!();
        println!("== task {} — {}", task.id, task.description);
        let Some(end) = results.ends.get(&task.id) else {
            println!("   no terminal update received");
            continue;
        };
        let status = &end.status;
        let reason = status.reason.map(|_| status.reason().as_str_name());
        let ok = status.state() == task.expect
            && task
                .expect_reason
                .is_none_or(|r| status.reason == Some(r as i32));
        as_expected += usize::from(ok);
        println!(
            "   ended {}{}{}  ({})",
            status.state().as_str_name(),
            reason.map(|r| format!(" {r}")).unwrap_or_default(),
            // Limitation messages carry memory statistics on later lines.
            status
                .message
                .as_deref()
                .and_then(|m| m.lines().next())
                .map(|m| format!(": {m}"))
                .unwrap_or_default(),
            if ok { "as expected" } else { "UNEXPECTED" }
        );
        print_output(end, results.framework_id.as_deref(), &task.id).await;
        print_timeline(&timeline.task(&task.id));
    }
    println!();
    println!("{as_expected} of {} task(s) ended as expected", tasks.len());
    as_expected == tasks.len()
}

async fn print_output(end: &workload::TaskEnd, framework_id: Option<&str>, task_id: &str) {
    let (Some(agent), Some(framework_id)) = (&end.agent, framework_id) else {
        return;
    };
    let client = AgentClient::for_authority(agent, Duration::from_secs(5));
    // Command tasks run under an executor whose id is the task id.
    let sandbox = match client.sandbox(framework_id, task_id).await {
        Ok(sandbox) => sandbox,
        Err(e) => {
            println!("   (sandbox not found: {e})");
            return;
        }
    };
    println!("   sandbox {sandbox}");
    if let Ok(tail) = client.tail(&format!("{sandbox}/stdout"), 600).await {
        for line in tail.data.lines().filter(|l| !l.starts_with("Received")) {
            println!("   | {line}");
        }
    }
}

fn print_timeline(marks: &[Mark]) {
    let Some(first) = marks.first() else {
        println!("   (no timeline recorded)");
        return;
    };
    println!("   timeline (ms from the allocation that produced its offer):");
    for mark in marks {
        println!(
            "   {:>9.2}  [{}] {:<9} {}",
            (mark.time - first.time) * 1000.0,
            mark.step,
            mark.source,
            mark.what
        );
    }
}

fn print_legend() {
    println!();
    println!("seed steps of task assignment:");
    for (i, name) in STEP_NAMES.iter().enumerate() {
        println!("  [{}] {name}", i + 1);
    }
}
