//! A custom executor for the agent's fault-injection tests, on the
//! `mesos-executor` SDK: each task reports TASK_RUNNING and then runs until
//! it is killed (TASK_KILLED) or the executor is shut down. With
//! `MESOS_CHECKPOINT=1` the SDK keeps it alive across agent restarts and
//! re-subscribes with what the agent has not acknowledged.

use std::collections::BTreeSet;
use std::process::ExitCode;

use mesos_executor::{Executor, ExecutorDriver};
use mesos_proto::v1::{KillPolicy, TaskId, TaskInfo, TaskState, TaskStatus};

#[derive(Default)]
struct Sleepy {
    running: BTreeSet<String>,
    shutting_down: bool,
}

fn update(driver: &ExecutorDriver, task_id: &TaskId, state: TaskState) {
    let status = TaskStatus {
        task_id: task_id.clone(),
        state: state as i32,
        ..TaskStatus::default()
    };
    if let Err(e) = driver.send_status_update(status) {
        eprintln!("sleepy_executor: cannot send {}: {e}", state.as_str_name());
    }
}

impl Sleepy {
    fn maybe_stop(&self, driver: &ExecutorDriver) {
        if self.shutting_down
            && self.running.is_empty()
            && driver.unacknowledged_update_count() == 0
        {
            driver.stop();
        }
    }
}

impl Executor for Sleepy {
    fn launch_task(&mut self, driver: &ExecutorDriver, task: TaskInfo) {
        update(driver, &task.task_id, TaskState::TaskRunning);
        self.running.insert(task.task_id.value);
    }

    fn kill_task(&mut self, driver: &ExecutorDriver, task_id: TaskId, _: Option<KillPolicy>) {
        if self.running.remove(&task_id.value) {
            update(driver, &task_id, TaskState::TaskKilled);
        }
    }

    fn acknowledged(&mut self, driver: &ExecutorDriver, _: &TaskId, _: &[u8]) {
        self.maybe_stop(driver);
    }

    fn shutdown(&mut self, driver: &ExecutorDriver) {
        self.shutting_down = true;
        let tasks: Vec<String> = self.running.iter().cloned().collect();
        for task in tasks {
            self.kill_task(driver, TaskId { value: task }, None);
        }
        self.maybe_stop(driver);
    }
}

fn main() -> ExitCode {
    let driver = match ExecutorDriver::new(Sleepy::default()) {
        Ok(driver) => driver,
        Err(e) => {
            eprintln!("sleepy_executor: {e}");
            return ExitCode::FAILURE;
        }
    };
    match driver.run() {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sleepy_executor: {e}");
            ExitCode::FAILURE
        }
    }
}
