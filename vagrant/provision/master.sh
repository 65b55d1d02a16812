#!/usr/bin/env bash
# Configures and starts the master. Usage: master.sh MASTER_IP
set -euo pipefail
ip=$1
cat >/etc/default/mesos-master <<EOT
MESOS_IP=$ip
MESOS_HOSTNAME=$(hostname)
MESOS_PORT=5050
MESOS_WORK_DIR=/var/lib/mesos/master
EOT
systemctl enable --now mesos-master
for _ in $(seq 60); do
  curl -fsS "http://$ip:5050/health" >/dev/null 2>&1 && { echo "master healthy at $ip:5050"; exit 0; }
  sleep 1
done
echo "master did not become healthy" >&2
journalctl -u mesos-master --no-pager | tail -50 >&2
exit 1
