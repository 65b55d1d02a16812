#!/usr/bin/env bash
# Prints the directory of a cached Debian cloud kernel for the cgroup-v2 guest,
# downloading and unpacking it first when needed. The directory holds
#   vmlinuz          the kernel image
#   release          its `uname -r`
#   modules/         lib/modules/<release>/ of the package, with a modules.dep
# The package is the one linux-image-cloud-amd64 depends on (apt-cache, so the
# newest bookworm cloud kernel); the cache is keyed by package name and version.
# Environment:
#   V2_GUEST_CACHE           cache root (default /var/cache/mesos-rs-v2-guest, or
#                            ~/.cache/mesos-rs-v2-guest when /var/cache is not writable)
#   V2_GUEST_KERNEL_PACKAGE  use this linux-image-* package instead
set -euo pipefail

default_cache_root() {
  if [[ -w /var/cache ]]; then
    echo /var/cache/mesos-rs-v2-guest
  else
    echo "${XDG_CACHE_HOME:-$HOME/.cache}/mesos-rs-v2-guest"
  fi
}

cache_root=${V2_GUEST_CACHE:-$(default_cache_root)}
kernels=$cache_root/kernels

log() { echo "v2-guest: $*" >&2; }

# linux-image-6.1.0-<N>-cloud-amd64, from the metapackage's dependency.
wanted_package() {
  if [[ -n ${V2_GUEST_KERNEL_PACKAGE:-} ]]; then
    echo "$V2_GUEST_KERNEL_PACKAGE"
    return
  fi
  apt-cache depends linux-image-cloud-amd64 2>/dev/null |
    awk '$1 == "Depends:" && $2 ~ /^linux-image-/ { print $2; exit }'
}

package_version() { # PACKAGE
  apt-cache show --no-all-versions "$1" 2>/dev/null | awk '$1 == "Version:" { print $2; exit }'
}

apt_update() {
  [[ $(id -u) -eq 0 ]] || return 1
  log "apt-get update"
  apt-get update -qq >&2
}

newest_cached() {
  local dirs
  dirs=$(find "$kernels" -mindepth 2 -maxdepth 2 -name vmlinuz -printf '%h\n' 2>/dev/null | sort -V)
  [[ -n $dirs ]] && tail -n1 <<<"$dirs"
}

# Downloads PACKAGE into DEST: vmlinuz, release, modules/ (with a busybox depmod).
download_kernel() { # PACKAGE DEST
  local package=$1 dest=$2 work release
  work=$(mktemp -d "$kernels/.download.XXXXXX")
  log "downloading $package"
  if ! (cd "$work" && apt-get download -q "$package" >&2 2>"$work/apt.log"); then
    cat "$work/apt.log" >&2
    rm -rf "$work"
    return 1
  fi
  dpkg -x "$work"/*.deb "$work/root"
  release=$(ls "$work/root/lib/modules")
  # The package's postinst would run depmod; busybox's is enough to resolve deps.
  busybox depmod -b "$work/root" "$release"
  mkdir "$work/kernel"
  mv "$work/root/boot/vmlinuz-$release" "$work/kernel/vmlinuz"
  mv "$work/root/lib/modules/$release" "$work/kernel/modules"
  echo "$release" >"$work/kernel/release"
  rm -rf "$dest"
  mv "$work/kernel" "$dest"
  rm -rf "$work"
  log "kernel $release cached in $dest"
}

# Where the current package is (or would be) cached: kernels/<package>_<version>.
current_kernel_dir() {
  local package version
  package=$(wanted_package)
  [[ -n $package ]] || return 1
  version=$(package_version "$package")
  echo "$kernels/${package}_${version:-unknown}"
}

ensure_downloaded() { # DIR
  local base
  base=$(basename "$1")
  [[ -f $1/vmlinuz ]] || download_kernel "${base%_*}" "$1"
}

# The cached kernel directory for the current package, fetching it if needed.
resolve_kernel() {
  local dir
  if dir=$(current_kernel_dir) && ensure_downloaded "$dir"; then
    echo "$dir"
    return
  fi
  # No package lists yet (fresh machine), or stale ones naming a version the
  # mirror no longer has: refresh once and retry.
  if apt_update && dir=$(current_kernel_dir) && ensure_downloaded "$dir"; then
    echo "$dir"
    return
  fi
  log "could not resolve or download the cloud kernel; trying the newest cached one"
  newest_cached || { log "no cached kernel either"; return 1; }
}

main() {
  mkdir -p "$kernels"
  # Several runs may start at once on a shared machine: one downloads, others wait.
  exec 9>"$kernels/.lock"
  flock 9
  resolve_kernel
}

main "$@"
