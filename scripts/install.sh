#!/usr/bin/env bash
# Installs the mesos-rs binaries, systemd units and default environment files.
#   PREFIX=/usr/local DESTDIR= scripts/install.sh [--no-build]
# Binaries the agent launches (mesos-executor, mesos-containerizer) go to
# $PREFIX/libexec/mesos, which is the agent's --launcher_dir in the shipped
# /etc/default/mesos-agent. Existing files under /etc/default are kept.
set -euo pipefail
cd "$(dirname "$0")/.."

PREFIX=${PREFIX:-/usr/local}
DESTDIR=${DESTDIR:-}
SYSTEMD_DIR=${SYSTEMD_DIR:-/etc/systemd/system}

if [[ ${1:-} != --no-build ]]; then
  cargo build --release --bins
fi
bin=target/release

install -d "$DESTDIR$PREFIX/sbin" "$DESTDIR$PREFIX/bin" "$DESTDIR$PREFIX/libexec/mesos" \
  "$DESTDIR$PREFIX/share/doc/mesos-rs" "$DESTDIR$SYSTEMD_DIR" "$DESTDIR/etc/default"
install -m 0755 "$bin/mesos-master" "$bin/mesos-agent" "$DESTDIR$PREFIX/sbin/"
for b in mesos-execute mesos-local mesos-bench; do
  [[ -x $bin/$b ]] && install -m 0755 "$bin/$b" "$DESTDIR$PREFIX/bin/"
done
install -m 0755 "$bin/mesos-executor" "$bin/mesos-containerizer" "$DESTDIR$PREFIX/libexec/mesos/"
install -m 0644 README.md docs/*.md "$DESTDIR$PREFIX/share/doc/mesos-rs/"

for unit in mesos-master mesos-agent; do
  sed "s|@PREFIX@|$PREFIX|g" "packaging/systemd/$unit.service" >"$DESTDIR$SYSTEMD_DIR/$unit.service"
  if [[ ! -e $DESTDIR/etc/default/$unit ]]; then
    sed "s|@PREFIX@|$PREFIX|g" "packaging/default/$unit" >"$DESTDIR/etc/default/$unit"
  fi
done
echo "installed under $DESTDIR$PREFIX; enable with: systemctl daemon-reload && systemctl enable --now mesos-master mesos-agent"
