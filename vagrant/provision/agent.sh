#!/usr/bin/env bash
# Configures and starts an agent. Usage: agent.sh MASTER_IP AGENT_IP
set -euo pipefail
master=$1 ip=$2
cat >/etc/default/mesos-agent <<EOT
MESOS_MASTER=$master:5050
MESOS_IP=$ip
MESOS_HOSTNAME=$(hostname)
MESOS_PORT=5051
MESOS_WORK_DIR=/var/lib/mesos/agent
MESOS_LAUNCHER_DIR=/usr/local/libexec/mesos
MESOS_ISOLATION=cgroups/cpu,cgroups/mem,cgroups/pids,namespaces/pid,namespaces/ipc,filesystem/linux
MESOS_CGROUPS_ENABLE_CFS=true
EOT
systemctl enable --now mesos-agent
for _ in $(seq 60); do
  curl -fsS "http://$ip:5051/health" >/dev/null 2>&1 && { echo "agent healthy at $ip:5051"; exit 0; }
  sleep 1
done
echo "agent did not become healthy" >&2
journalctl -u mesos-agent --no-pager | tail -50 >&2
exit 1
