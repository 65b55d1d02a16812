//! Multi-host tests of the real `mesos-master` and `mesos-agent` binaries:
//! each on its own network-namespace host of a private bridge (see the crate
//! docs for the topology), the scheduler on a fourth host. Root only; they
//! print why and pass when the machine cannot run them.

mod support;

use std::future::Future;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use mesos_lab::netns::{self, SUBNET};
use mesos_lab::Lab;
use mesos_proto::v1::task_status::{Reason, Source};
use mesos_proto::v1::TaskState;
use serde_json::Value;
use support::cluster::{binaries, Cluster, AGENTS, FRAMEWORK, HOSTS};
use support::framework::{command_task, Event, Framework, WAIT};

/// Bound on each Mesos scenario (a few seconds each when healthy).
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(120);
/// The master's health checks give up after 2 × 1 s; allow for scheduling
/// noise on a busy machine.
const LOSS_WAIT: Duration = Duration::from_secs(20);
/// The agent notices the silence (2 s), retries with backoff, and its first
/// attempt may sit in a stalled TCP connection for up to 10 s.
const RETURN_WAIT: Duration = Duration::from_secs(45);

/// Heal as soon as the loss is seen: the agent's re-registrations, stuck in
/// TCP retransmission, go through on the same connections.
const SHORT_CUT: Duration = Duration::ZERO;
/// Longer than the transport's 10 s request timeout: the agent abandons its
/// stalled connection and must reconnect after the link returns.
const LONG_CUT: Duration = Duration::from_secs(12);

/// Builds the binaries and a lab of the four hosts, or says why not.
fn lab(test: &str) -> Option<Lab> {
    if let Some(reason) = netns::unavailable() {
        eprintln!("skipping {test}: {reason}");
        return None;
    }
    binaries();
    Some(Lab::new(&HOSTS).expect("build the lab network"))
}

/// Runs `scenario` on the framework host, on a tokio runtime of its own.
fn on_framework_host<F: Future<Output = ()>>(lab: &Lab, scenario: impl FnOnce() -> F + Send) {
    lab.run_in(FRAMEWORK, || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        runtime.block_on(async {
            if tokio::time::timeout(SCENARIO_TIMEOUT, scenario())
                .await
                .is_err()
            {
                panic!("scenario did not end within {SCENARIO_TIMEOUT:?}");
            }
        });
    })
    .expect("enter the framework host");
}

#[test]
fn framework_on_a_third_host_runs_a_task_on_each_agent() {
    let Some(lab) = lab("framework_on_a_third_host_runs_a_task_on_each_agent") else {
        return;
    };
    on_framework_host(&lab, || tasks_on_both_agents(&lab));
}

#[test]
fn lost_agent_tasks_are_lost_then_running_again_when_it_returns() {
    let Some(lab) = lab("lost_agent_tasks_are_lost_then_running_again_when_it_returns") else {
        return;
    };
    on_framework_host(&lab, || agent_loss_and_return(&lab, false, SHORT_CUT));
}

#[test]
fn lost_agent_tasks_are_unreachable_for_a_partition_aware_framework() {
    let Some(lab) = lab("lost_agent_tasks_are_unreachable_for_a_partition_aware_framework") else {
        return;
    };
    on_framework_host(&lab, || agent_loss_and_return(&lab, true, LONG_CUT));
}

/// (a) both agents register and a task runs and finishes on each; (d) the
/// framework, on a third host, gets offers from both agents.
async fn tasks_on_both_agents(lab: &Lab) {
    let cluster = Cluster::start(lab).await;
    let ids = cluster.agent_ids().await;
    let mut framework = Framework::subscribe(cluster.master_addr(), "lab-both-agents", false).await;
    let agent_ids: Vec<&str> = ids.values().map(String::as_str).collect();
    let offers = framework.offers_from(0, &agent_ids).await;
    for (host, id) in &ids {
        let offer = &offers[id];
        let url = offer.url.as_ref().expect("offers carry the agent's URL");
        assert_eq!(
            url.address.ip.as_deref(),
            Some(lab.address(host).expect("agent host").to_string().as_str()),
            "offer of {host} names its host's address: {offer:?}"
        );
        // Exits 0 only on the agent's host: the task sees that host's
        // interface (agents do not isolate the network).
        let address = lab.address(host).expect("agent host");
        let check = format!(
            "PATH=/usr/sbin:/sbin:$PATH ip -4 -o addr show dev eth0 | grep -qF 'inet {address}/'"
        );
        framework.launch(offer, vec![command_task(&format!("on-{host}"), id, &check)]);
    }
    for host in ids.keys() {
        framework
            .update(0, &format!("on-{host}"), TaskState::TaskFinished, WAIT)
            .await;
    }
    // A terminal task moves to completed_tasks once its update is
    // acknowledged, which the driver does right after the callback.
    let state = cluster
        .wait_state("both tasks completed", WAIT, |state| {
            let ours = framework_json(state, &framework.id);
            ids.keys()
                .all(|host| task_state(ours, "completed_tasks", &format!("on-{host}")).is_some())
        })
        .await;
    let completed = &framework_json(&state, &framework.id)["completed_tasks"];
    for (host, id) in &ids {
        let task = completed
            .as_array()
            .into_iter()
            .flatten()
            .find(|t| t["id"] == format!("on-{host}"))
            .expect("waited for it");
        assert_eq!(task["state"], "TASK_FINISHED", "{task}");
        assert_eq!(
            task["slave_id"],
            id.as_str(),
            "on-{host} ran on {host}: {task}"
        );
    }
    let leftovers = cluster.shutdown();
    assert!(leftovers.is_empty(), "cgroups left behind: {leftovers:?}");
}

/// (b) agent-1 is cut off past the ping timeout: it is removed, its task
/// reported TASK_LOST (TASK_UNREACHABLE when `partition_aware`), its offer
/// rescinded, agent-2 unaffected; (c) the link returns: the agent
/// re-registers under its id and the task is reported running again
/// (Mesos 1.11 `Master::__reregisterSlave`: REASON_SLAVE_REREGISTERED,
/// "Unreachable agent re-reregistered"), and the agent works again. The
/// link stays down for at least `cut_for`.
async fn agent_loss_and_return(lab: &Lab, partition_aware: bool, cut_for: Duration) {
    let (lost_host, kept_host) = (AGENTS[0], AGENTS[1]);
    let cluster = Cluster::start(lab).await;
    let ids = cluster.agent_ids().await;
    let (lost, kept) = (ids[lost_host].as_str(), ids[kept_host].as_str());
    let name = if partition_aware {
        "lab-partition-aware"
    } else {
        "lab-loss"
    };
    let mut framework = Framework::subscribe(cluster.master_addr(), name, partition_aware).await;
    let offers = framework.offers_from(0, &[lost, kept]).await;

    // A long task on agent-1. The rest of agent-1 comes back as a new offer,
    // which the framework holds, as it holds agent-2's.
    framework.launch(
        &offers[lost],
        vec![command_task("sleeper", lost, "sleep 600")],
    );
    framework
        .update(0, "sleeper", TaskState::TaskRunning, WAIT)
        .await;
    let since_launch = framework.mark();
    let held = framework.offer_from(since_launch, lost).await;
    let kept_offer = offers[kept].clone();

    // (b) The cut.
    let before_cut = framework.mark();
    let cut = Instant::now();
    lab.link_down(lost_host).expect("cut agent-1 off");
    let expected = if partition_aware {
        TaskState::TaskUnreachable
    } else {
        TaskState::TaskLost
    };
    let status = framework
        .update(before_cut, "sleeper", expected, LOSS_WAIT)
        .await;
    let loss_seen = cut.elapsed();
    assert_eq!(status.reason(), Reason::AgentRemoved, "{status:?}");
    assert_eq!(status.source(), Source::Master, "{status:?}");
    // Mesos 1.11 `Master::__removeSlave` sets it for every framework.
    assert!(status.unreachable_time.is_some(), "{status:?}");
    let held_id = held.id.value.clone();
    framework
        .wait_for(before_cut, "RESCIND of agent-1's offer", WAIT, |e| {
            matches!(e, Event::Rescinded(id) if *id == held_id).then_some(())
        })
        .await;
    framework
        .wait_for(before_cut, "FAILURE of agent-1", WAIT, |e| {
            matches!(e, Event::AgentLost(id) if id == lost).then_some(())
        })
        .await;
    let kept_id = kept_offer.id.value.clone();
    assert!(
        !framework
            .seen_since(before_cut)
            .any(|e| matches!(e, Event::Rescinded(id) if *id == kept_id)),
        "agent-2's offer was rescinded:{}",
        framework.history()
    );

    let state = cluster.master_state().await;
    assert_eq!(
        agents_in(&state),
        vec![kept.to_string()],
        "only agent-2 is left"
    );
    assert_eq!(state["unreachable_slaves"], 1);
    let ours = framework_json(&state, &framework.id);
    assert_eq!(
        task_state(ours, "tasks", "sleeper"),
        None,
        "not live: {ours}"
    );
    if partition_aware {
        assert_eq!(
            task_state(ours, "unreachable_tasks", "sleeper").as_deref(),
            Some("TASK_UNREACHABLE"),
            "{ours}"
        );
    } else {
        // Mesos 1.11 lists it under unreachable_tasks too
        // (`Framework::removeTask(task, unreachable = true)`); this master
        // under completed_tasks. Either way it is TASK_LOST.
        let listed =
            ["unreachable_tasks", "completed_tasks"].map(|list| task_state(ours, list, "sleeper"));
        assert!(
            listed.iter().flatten().any(|s| s == "TASK_LOST"),
            "sleeper TASK_LOST in /state: {ours}"
        );
    }

    // agent-2's offer is still good.
    framework.launch(&kept_offer, vec![command_task("during-cut", kept, "true")]);
    framework
        .update(before_cut, "during-cut", TaskState::TaskFinished, WAIT)
        .await;

    // (c) The link returns.
    tokio::time::sleep(cut_for.saturating_sub(cut.elapsed())).await;
    let before_heal = framework.mark();
    let healed = Instant::now();
    lab.link_up(lost_host).expect("reconnect agent-1");
    let status = framework
        .update(before_heal, "sleeper", TaskState::TaskRunning, RETURN_WAIT)
        .await;
    let return_seen = healed.elapsed();
    assert_eq!(status.reason(), Reason::AgentReregistered, "{status:?}");
    assert_eq!(status.source(), Source::Master, "{status:?}");
    assert_eq!(
        status.message.as_deref(),
        Some("Unreachable agent re-reregistered")
    );

    let state = cluster.master_state().await;
    let mut agents = agents_in(&state);
    agents.sort();
    let mut both = vec![lost.to_string(), kept.to_string()];
    both.sort();
    assert_eq!(agents, both, "agent-1 is back under its id");
    assert_eq!(state["unreachable_slaves"], 0);
    let ours = framework_json(&state, &framework.id);
    assert_eq!(
        task_state(ours, "tasks", "sleeper").as_deref(),
        Some("TASK_RUNNING")
    );
    assert_eq!(task_state(ours, "unreachable_tasks", "sleeper"), None);

    // The agent was not shut down: it offers again and obeys a kill.
    framework.offer_from(before_heal, lost).await;
    framework
        .driver
        .kill_task(
            mesos_proto::v1::TaskId {
                value: "sleeper".into(),
            },
            Some(mesos_proto::v1::AgentId { value: lost.into() }),
        )
        .expect("queue KILL");
    framework
        .update(before_heal, "sleeper", TaskState::TaskKilled, WAIT)
        .await;

    eprintln!(
        "{name}: {expected:?} {:.1}s after the cut; link down {:.1}s; TASK_RUNNING again {:.1}s after it returned; events:{}",
        loss_seen.as_secs_f64(),
        (healed - cut).as_secs_f64(),
        return_seen.as_secs_f64(),
        framework.history()
    );
    let leftovers = cluster.shutdown();
    assert!(leftovers.is_empty(), "cgroups left behind: {leftovers:?}");
}

/// The lab itself: hosts reach each other over the bridge only, a cut
/// link isolates a host until it comes back, the machine gets no address,
/// and teardown removes everything.
#[test]
fn lab_hosts_talk_over_the_bridge_and_a_cut_isolates_one() {
    if let Some(reason) = netns::unavailable() {
        eprintln!("skipping: {reason}");
        return;
    }
    let mut lab = Lab::new(&["a", "b"]).expect("build the lab network");
    let a = SocketAddr::from((lab.address("a").expect("host a"), 0));
    let listener = lab
        .run_in("a", || TcpListener::bind(a))
        .expect("enter host a")
        .expect("listen on host a");
    let target = listener.local_addr().expect("listening address");
    let connect = || {
        lab.run_in("b", || {
            TcpStream::connect_timeout(&target, Duration::from_secs(1))
        })
        .expect("enter host b")
    };
    // Right after the link returns, b's ARP entry for a may still be in
    // FAILED state from the cut: allow for a few ARP/SYN retries.
    let reaches = || {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match connect() {
                Ok(_) => return Ok(()),
                Err(error) if Instant::now() >= deadline => return Err(error),
                Err(_) => {}
            }
        }
    };
    assert!(connect().is_ok(), "b reaches a over the bridge");
    let machine_addresses = std::process::Command::new(netns::ip_program())
        .args(["-4", "-o", "addr", "show", "to", &format!("{SUBNET}/24")])
        .output()
        .expect("run ip");
    assert!(
        machine_addresses.stdout.is_empty(),
        "the machine has no lab address"
    );

    lab.link_down("a").expect("cut a off");
    let cut = connect();
    assert!(
        cut.as_ref()
            .is_err_and(|e| e.kind() != io::ErrorKind::ConnectionRefused),
        "a cut host neither answers nor refuses: {cut:?}"
    );
    lab.link_up("a").expect("reconnect a");
    let again = reaches();
    assert!(again.is_ok(), "b reaches a again: {again:?}");

    drop(listener);
    lab.teardown().expect("tear down");
    assert_eq!(lab.leftovers(), Vec::<String>::new());
}

#[test]
fn lab_is_torn_down_when_a_test_panics() {
    if let Some(reason) = netns::unavailable() {
        eprintln!("skipping: {reason}");
        return;
    }
    let mut names = Vec::new();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let lab = Lab::new(&["a"]).expect("build the lab network");
        names.push(lab.netns("a").expect("host a").to_string());
        lab.run_in("a", || panic!("a failing test"))
            .expect("enter host a");
    }));
    assert!(outcome.is_err(), "the panic reached the caller");
    assert!(!names.is_empty());
    for name in &names {
        let pinned = std::path::Path::new("/run/netns").join(name);
        assert!(!pinned.exists(), "{} survived", pinned.display());
    }
}

/// The ids of the agents registered with the master.
fn agents_in(state: &Value) -> Vec<String> {
    state["slaves"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["id"].as_str().map(str::to_string))
        .collect()
}

/// The framework `id` in the master's `/state`.
fn framework_json<'a>(state: &'a Value, id: &str) -> &'a Value {
    state["frameworks"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|f| f["id"] == id)
        .unwrap_or_else(|| panic!("framework {id} not in /state: {}", state["frameworks"]))
}

/// The state of `task` in the framework's `list` (`tasks`,
/// `unreachable_tasks`, `completed_tasks`), if there.
fn task_state(framework: &Value, list: &str, task: &str) -> Option<String> {
    framework[list]
        .as_array()
        .into_iter()
        .flatten()
        .find(|t| t["id"] == task)
        .and_then(|t| t["state"].as_str().map(str::to_string))
}
