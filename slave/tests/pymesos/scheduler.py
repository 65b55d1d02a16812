"""A pymesos 0.3.15 scheduler for the agent's seed-flow test.

Launches, on the first offer: a command task that exits 0, one that exits 3,
and a task on a custom pymesos executor (executor.py next to this file).
Prints one JSON line per status update ({"task", "state", "reason",
"message", "source"}) and exits 0 once every task is terminal, then tears
the framework down.

usage: scheduler.py MASTER PYTHON
"""

import json
import os
import sys
import threading
import uuid

from pymesos import MesosSchedulerDriver, Scheduler, encode_data

TERMINAL = {"TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_ERROR",
            "TASK_LOST", "TASK_DROPPED", "TASK_GONE"}


def scalar(name, value):
    return {"name": name, "type": "SCALAR", "scalar": {"value": value}}


class SeedScheduler(Scheduler):
    def __init__(self, python):
        self.python = python
        self.launched = False
        self.pending = set()
        self.done = threading.Event()
        self.lock = threading.Lock()

    def tasks(self, agent_id):
        here = os.path.dirname(os.path.abspath(__file__))
        executor = {
            "executor_id": {"value": "py-executor-" + uuid.uuid4().hex[:8]},
            "name": "pymesos echo executor",
            "command": {"value": "%s %s" % (self.python, os.path.join(here, "executor.py"))},
            "resources": [scalar("cpus", 0.1), scalar("mem", 64)],
        }
        def task(task_id, **extra):
            info = {
                "task_id": {"value": task_id},
                "agent_id": agent_id,
                "name": task_id,
                "resources": [scalar("cpus", 0.1), scalar("mem", 32)],
            }
            info.update(extra)
            return info
        return [
            task("py-exit-0", command={"value": "echo pymesos-was-here"}),
            task("py-exit-3", command={"value": "exit 3"}),
            task("py-custom", executor=executor, data=encode_data(b"from-pymesos")),
        ]

    def resourceOffers(self, driver, offers):
        for offer in offers:
            with self.lock:
                if self.launched:
                    driver.declineOffer(offer["id"])
                    continue
                self.launched = True
                tasks = self.tasks(offer["agent_id"])
                self.pending = {t["task_id"]["value"] for t in tasks}
            driver.launchTasks(offer["id"], tasks)

    def statusUpdate(self, driver, update):
        print(json.dumps({
            "task": update["task_id"]["value"],
            "state": update["state"],
            "reason": update.get("reason"),
            "message": update.get("message"),
            "source": update.get("source"),
        }), flush=True)
        if update["state"] in TERMINAL:
            with self.lock:
                self.pending.discard(update["task_id"]["value"])
                if self.launched and not self.pending:
                    self.done.set()


def main():
    master, python = sys.argv[1], sys.argv[2]
    scheduler = SeedScheduler(python)
    framework = {"user": "root", "name": "pymesos-seed-flow", "hostname": "localhost"}
    driver = MesosSchedulerDriver(scheduler, framework, master, use_addict=True)
    driver.start()
    finished = scheduler.done.wait(120)
    driver.stop()  # not a failover: pymesos sends TEARDOWN from its I/O thread
    driver.join()
    sys.exit(0 if finished else 1)


if __name__ == "__main__":
    main()
