#!/usr/bin/env bash
# Installs the packages the tests use. Safe to run repeatedly.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: busybox-static (tiny OCI image in containerizer tests),
# iproute2 (network namespaces), procps (ps in tests), runc and crun (the
# launch benchmark compares against them), fonts-dejavu-core (chart labels).
apt_packages=(busybox-static iproute2 procps runc crun fonts-dejavu-core)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})) && [[ $(id -u) -eq 0 ]]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# qemu, cpio and a Debian cloud kernel for the cgroup v2 guest (docs/v2-guest.md).
scripts/v2-guest/install-deps.sh

# pymesos 0.3.15 for the client-compatibility tests.
if [[ -x scripts/install-pymesos.sh ]]; then
  scripts/install-pymesos.sh
fi
