#!/usr/bin/env bash
# Builds the release binaries on the host and stages them (with the systemd
# units) in vagrant/dist for the Vagrantfile's file provisioner.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/.."
cargo build --release --bins
rm -rf "$here/dist"
install -d "$here/dist/bin" "$here/dist/systemd"
for b in mesos-master mesos-agent mesos-execute mesos-executor mesos-containerizer mesos-bench; do
  [[ -x target/release/$b ]] && install -m 0755 "target/release/$b" "$here/dist/bin/"
done
install -m 0644 packaging/systemd/*.service "$here/dist/systemd/"
echo "staged in $here/dist"
