//! Seed steps 3, 4, 5 and 8 reach a `mesos-timeline` layer from the real code
//! path of an offer being accepted.

mod common;

use common::{config, join, next, Recorder, Seen};
use mesos_scheduler::testing::FakeMaster;
use mesos_scheduler::SchedulerDriver;
use mesos_timeline::Timeline;
use tracing_subscriber::layer::SubscriberExt as _;

// A current-thread runtime, so the thread's default subscriber sees the
// driver's tasks too.
#[tokio::test(flavor = "current_thread")]
async fn launch_marks_steps_three_to_five_and_updates() {
    let timeline = Timeline::new(64);
    let subscriber = tracing_subscriber::registry().with(timeline.layer("scheduler"));
    let _guard = tracing::subscriber::set_default(subscriber);

    let master = FakeMaster::start().await.unwrap();
    let (scheduler, mut seen) = Recorder::new(true);
    let driver = SchedulerDriver::new(scheduler, config(&master.address()));
    driver.start().unwrap();
    let offer_id = next(&mut seen, |s| match s {
        Seen::Offers(offers) => Some(offers[0].id.value.clone()),
        _ => None,
    })
    .await;
    join(&driver).await.unwrap();

    // launch_tasks names the offer and the task, which joins the offer's
    // marks to the task (linking again is harmless).
    timeline.link_offer(&offer_id, "t1");
    let marks = timeline.task("t1");
    let steps: Vec<u64> = marks.iter().map(|m| m.step).collect();
    // The fake master runs the task through STARTING, RUNNING, FINISHED.
    assert_eq!(steps, [3, 4, 5, 8, 8, 8], "{marks:?}");
    assert_eq!(marks[0].what, "resource_offers called");
    assert_eq!(marks[2].what, "ACCEPT sent");
    assert_eq!(marks[4].what, "status_update called: TASK_RUNNING");
    assert!(marks.iter().all(|m| m.source == "scheduler"));
}
