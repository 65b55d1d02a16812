#!/usr/bin/env bash
# Installs the staged mesos-rs binaries, units and default files (every VM).
set -euo pipefail
dist=/tmp/mesos-dist
PREFIX=/usr/local
install -d $PREFIX/sbin $PREFIX/bin $PREFIX/libexec/mesos /etc/systemd/system /etc/default
install -m 0755 $dist/bin/mesos-master $dist/bin/mesos-agent $PREFIX/sbin/
install -m 0755 $dist/bin/mesos-execute $PREFIX/bin/
[[ -x $dist/bin/mesos-bench ]] && install -m 0755 $dist/bin/mesos-bench $PREFIX/bin/
install -m 0755 $dist/bin/mesos-executor $dist/bin/mesos-containerizer $PREFIX/libexec/mesos/
for unit in mesos-master mesos-agent; do
  sed "s|@PREFIX@|$PREFIX|g" "$dist/systemd/$unit.service" >/etc/systemd/system/$unit.service
done
systemctl daemon-reload
