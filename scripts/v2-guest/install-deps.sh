#!/usr/bin/env bash
# Installs the Debian packages the cgroup-v2 guest runner needs: qemu (software
# emulation only: hardware KVM does not work on our hosts), cpio to pack the
# initramfs, busybox-static for the guest's shell and tools, binutils for `strip`.
# Safe to run repeatedly; does nothing when all are present. Needs root to install.
set -euo pipefail

packages=(qemu-system-x86 cpio busybox-static binutils)

missing_packages() {
  local p
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"
  done
}

main() {
  local missing
  mapfile -t missing < <(missing_packages)
  ((${#missing[@]})) || return 0
  if [[ $(id -u) -ne 0 ]]; then
    echo "v2-guest: missing packages ${missing[*]} (run as root to install them)" >&2
    return 1
  fi
  echo "v2-guest: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # No recommends: the guest needs no GUI, sound or firmware beyond the BIOS.
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

main "$@"
