//! The `launch_n` example framework against the fake master.

#[allow(dead_code)]
#[path = "../examples/launch_n.rs"]
mod launch_n;

use launch_n::{run, Args};
use mesos_proto::v1::scheduler::call;
use mesos_scheduler::testing::{FakeMaster, TaskScript};

fn args(master: &str, tasks: usize) -> Args {
    Args {
        master: master.into(),
        tasks,
        command: "echo hello".into(),
        cpus: 1.0,
        mem: 32.0,
        connect_timeout: 5,
    }
}

#[tokio::test]
async fn launches_n_tasks_across_offers_and_reports_all_finished() {
    // 4 cpus fit 4 tasks per offer: 6 tasks need a second offer.
    let master = FakeMaster::start().await.unwrap();
    let summary = run(args(&master.address(), 6)).await.unwrap();
    let mut finished = summary.finished.clone();
    finished.sort();
    assert_eq!(
        finished,
        (0..6).map(|i| format!("task-{i}")).collect::<Vec<_>>()
    );
    assert!(summary.failed.is_empty());
    assert!(master.calls_of(call::Type::Accept).len() >= 2);
    assert!(master.torn_down());
}

#[tokio::test]
async fn reports_tasks_that_failed() {
    let master = FakeMaster::builder()
        .task_script(|task| {
            if task.task_id.value == "task-1" {
                TaskScript::exits(7)
            } else {
                TaskScript::finished()
            }
        })
        .start()
        .await
        .unwrap();
    let summary = run(args(&master.address(), 2)).await.unwrap();
    assert_eq!(summary.finished, ["task-0"]);
    assert_eq!(summary.failed.len(), 1);
    assert_eq!(summary.failed[0].0, "task-1");
    assert!(summary.failed[0].1.contains("Command exited with status 7"));
}
