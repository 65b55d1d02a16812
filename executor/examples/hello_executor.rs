//! A minimal custom executor: every task says hello for a while, then
//! finishes; kills end it early. Shows the callbacks, status updates,
//! framework messages and a clean stop.
//!
//! The agent runs it as a custom executor (`ExecutorInfo.command` pointing at
//! the built binary) and sets the `MESOS_*` environment. To try it by hand
//! against an agent (or the fake agent in this crate's tests):
//!
//! ```text
//! MESOS_AGENT_ENDPOINT=127.0.0.1:5051 MESOS_FRAMEWORK_ID=<fw> \
//! MESOS_EXECUTOR_ID=<ex> cargo run -p mesos-executor --example hello_executor
//! ```

use std::collections::HashMap;
use std::process::ExitCode;
use std::time::Duration;

use mesos_executor::{Executor, ExecutorDriver};
use mesos_proto::v1::executor::event::Subscribed;
use mesos_proto::v1::{KillPolicy, TaskId, TaskInfo, TaskState, TaskStatus};
use tokio::task::JoinHandle;

/// How long each task "works".
const WORK: Duration = Duration::from_secs(3);

#[derive(Default)]
struct HelloExecutor {
    /// The work of each running task, to cancel on kill.
    running: HashMap<String, JoinHandle<()>>,
    shutting_down: bool,
}

fn update(driver: &ExecutorDriver, task_id: &TaskId, state: TaskState, message: &str) {
    let status = TaskStatus {
        task_id: task_id.clone(),
        state: state as i32,
        message: Some(message.to_owned()),
        ..Default::default()
    };
    if let Err(e) = driver.send_status_update(status) {
        eprintln!("cannot send {}: {e}", state.as_str_name());
    }
}

impl Executor for HelloExecutor {
    fn registered(&mut self, _: &ExecutorDriver, subscribed: &Subscribed) {
        println!(
            "registered with agent {} for framework '{}'",
            subscribed.agent_info.hostname, subscribed.framework_info.name
        );
    }

    fn launch_task(&mut self, driver: &ExecutorDriver, task: TaskInfo) {
        let id = task.task_id.clone();
        update(driver, &id, TaskState::TaskRunning, "hello!");
        let (driver, task_id) = (driver.clone(), id.clone());
        // Callbacks must not block: the work runs as a tokio task.
        let work = tokio::spawn(async move {
            tokio::time::sleep(WORK).await;
            update(&driver, &task_id, TaskState::TaskFinished, "said hello");
        });
        self.running.insert(id.value, work);
    }

    fn kill_task(&mut self, driver: &ExecutorDriver, task_id: TaskId, _: Option<KillPolicy>) {
        if let Some(work) = self.running.remove(&task_id.value) {
            work.abort();
            update(
                driver,
                &task_id,
                TaskState::TaskKilled,
                "stopped saying hello",
            );
        }
    }

    fn acknowledged(&mut self, driver: &ExecutorDriver, _: &TaskId, _: &[u8]) {
        self.running.retain(|_, work| !work.is_finished());
        // Done once every task is over and the agent has everything.
        if self.shutting_down
            && self.running.is_empty()
            && driver.unacknowledged_update_count() == 0
        {
            driver.stop();
        }
    }

    fn framework_message(&mut self, driver: &ExecutorDriver, data: Vec<u8>) {
        let reply = format!("hello, {}", String::from_utf8_lossy(&data));
        let _ = driver.send_framework_message(reply.into_bytes());
    }

    fn shutdown(&mut self, driver: &ExecutorDriver) {
        self.shutting_down = true;
        let ids: Vec<String> = self.running.keys().cloned().collect();
        for id in ids {
            self.kill_task(driver, TaskId { value: id }, None);
        }
        if driver.unacknowledged_update_count() == 0 {
            driver.stop();
        }
    }
}

fn main() -> ExitCode {
    let driver = match ExecutorDriver::new(HelloExecutor::default()) {
        Ok(driver) => driver,
        Err(e) => {
            eprintln!("hello_executor: {e}");
            return ExitCode::FAILURE;
        }
    };
    match driver.run() {
        Ok(exit) => {
            println!("driver ended: {exit:?}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("hello_executor: {e}");
            ExitCode::FAILURE
        }
    }
}
