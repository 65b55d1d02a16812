#!/usr/bin/env python3
"""A pymesos 0.3.15 scheduler for the master's client-compatibility test.

Usage: pymesos_scheduler.py <master host:port>

Subscribes, launches one command task on the first offer, declines the
rest, and exits 0 once it has seen TASK_RUNNING and then TASK_FINISHED
(pymesos acknowledges each update implicitly). Exits 1 on any other
terminal state, an error from the master, or after 60 seconds.
"""

import logging
import socket
import sys
import threading

from addict import Dict
from pymesos import MesosSchedulerDriver, Scheduler

TASK_ID = "pymesos-task-1"


class OneTask(Scheduler):
    def __init__(self):
        self.launched = False
        self.states = []
        self.done = threading.Event()
        self.ok = False

    def registered(self, driver, framework_id, master_info):
        print("registered", framework_id["value"], master_info.get("version"), flush=True)

    def resourceOffers(self, driver, offers):
        for offer in offers:
            if self.launched:
                driver.declineOffer(offer.id, Dict(refuse_seconds=60))
                continue
            task = Dict()
            task.task_id.value = TASK_ID
            task.agent_id.value = offer.agent_id.value
            task.name = "hello from pymesos"
            task.command.value = "echo hello"
            task.resources = [
                dict(name="cpus", type="SCALAR", scalar={"value": 0.1}),
                dict(name="mem", type="SCALAR", scalar={"value": 32}),
            ]
            driver.launchTasks(offer.id, [task], Dict(refuse_seconds=5))
            self.launched = True
            print("launched", TASK_ID, "on", offer.agent_id.value, flush=True)

    def statusUpdate(self, driver, update):
        print("update", update.task_id.value, update.state, flush=True)
        self.states.append(update.state)
        if update.state == "TASK_FINISHED":
            self.ok = "TASK_RUNNING" in self.states
            self.done.set()
        elif update.state in ("TASK_FAILED", "TASK_KILLED", "TASK_LOST", "TASK_ERROR"):
            self.done.set()

    def error(self, driver, message):
        print("error", message, flush=True)
        self.done.set()


def main():
    logging.basicConfig(level=logging.INFO)
    master = sys.argv[1]
    scheduler = OneTask()
    framework = Dict(user="root", name="pymesos-compat", hostname=socket.gethostname())
    driver = MesosSchedulerDriver(scheduler, framework, master, use_addict=True)
    driver.start()
    finished = scheduler.done.wait(60)
    driver.stop()
    driver.join()
    if not finished:
        print("timed out; states:", scheduler.states, flush=True)
        return 1
    return 0 if scheduler.ok else 1


if __name__ == "__main__":
    sys.exit(main())
