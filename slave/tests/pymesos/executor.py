"""A custom executor written with pymesos 0.3.15, as a framework would ship it.

On LAUNCH it reports TASK_RUNNING, prints the task's data to stdout, and
finishes the task with TASK_FINISHED (or TASK_FAILED if the data says
"fail"). On KILL it reports TASK_KILLED. Every update comes from the
executor itself (source SOURCE_EXECUTOR), as in pymesos's examples.
"""

import sys
import threading
import time

from pymesos import Executor, MesosExecutorDriver, decode_data, encode_data


def update(driver, task, state, message=None):
    status = {
        "task_id": task["task_id"],
        "state": state,
        "timestamp": time.time(),
    }
    if message:
        status["message"] = message
    driver.sendStatusUpdate(status)


class EchoExecutor(Executor):
    def registered(self, driver, executor_info, framework_info, agent_info):
        print("registered with agent", agent_info["id"]["value"], flush=True)

    def launchTask(self, driver, task):
        data = decode_data(task.get("data", "")).decode() if task.get("data") else ""
        print("launched", task["task_id"]["value"], "data:", data, flush=True)

        def run():
            update(driver, task, "TASK_RUNNING")
            if data == "hang":
                return  # stays running until killed
            time.sleep(0.2)
            if data == "fail":
                update(driver, task, "TASK_FAILED", "asked to fail")
            else:
                update(driver, task, "TASK_FINISHED", "echoed " + data)

        threading.Thread(target=run, daemon=True).start()

    def killTask(self, driver, task_id):
        print("killing", task_id["value"], flush=True)
        update(driver, {"task_id": task_id}, "TASK_KILLED", "killed by the executor")

    def shutdown(self, driver):
        print("shutting down", flush=True)


if __name__ == "__main__":
    driver = MesosExecutorDriver(EchoExecutor(), use_addict=True)
    driver.run()
    sys.exit(0)
