#!/usr/bin/env bash
# Smoke test of a running Vagrant cluster: a task finishes on every agent, and
# a task breaching its memory limit is reported as such.
set -euo pipefail
cd "$(dirname "$0")"
AGENTS=${AGENTS:-2}
SUBNET=${MESOS_SUBNET:-192.168.56}
master="$SUBNET.10:5050"

run() { vagrant ssh master -c "$*" -- -q; }

declare -A seen=()
for attempt in $(seq $((AGENTS * 6))); do
  out=$(run "mesos-execute --master=$master --name=smoke-$attempt --command='hostname' --resources='cpus:0.1;mem:32'" || true)
  if grep -q TASK_FINISHED <<<"$out"; then
    host=$(grep -o 'agent-[0-9]*' <<<"$out" | head -1)
    [[ -n $host ]] && seen[$host]=1
  fi
  ((${#seen[@]} == AGENTS)) && break
done
echo "tasks finished on: ${!seen[*]}"
if ((${#seen[@]} != AGENTS)); then
  echo "FAIL: expected a finished task on each of $AGENTS agents" >&2
  exit 1
fi

out=$(run "mesos-execute --master=$master --name=smoke-oom --command='head -c 200m /dev/zero | tail' --resources='cpus:0.1;mem:64'" || true)
echo "$out" | tail -5
if grep -q TASK_FAILED <<<"$out" && grep -q REASON_CONTAINER_LIMITATION_MEMORY <<<"$out"; then
  echo "PASS: memory limit breach reported"
else
  echo "FAIL: no REASON_CONTAINER_LIMITATION_MEMORY for the memory hog" >&2
  exit 1
fi
