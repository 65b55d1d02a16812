# Functions that stage files into an initramfs tree and pack it; sourced by
# scripts/run-v2-guest-tests.sh. The guest has no root filesystem besides this:
# busybox for the shell and tools, our /init, the test binaries and every shared
# library they load.
# shellcheck shell=bash

# Copies FILE to the same path below ROOT (dereferencing symlinks).
stage_file_as() { # ROOT SRC DEST
  local root=$1 src=$2 dest=$3
  mkdir -p "$root$(dirname "$dest")"
  cp -L --preserve=mode "$src" "$root$dest"
}

# The shared libraries (including the ELF interpreter) that FILE needs, one
# absolute path a line; nothing for static binaries and non-ELF files.
shared_libraries_of() { # FILE
  local out
  out=$(ldd "$1" 2>/dev/null) || return 0
  awk '
    $2 == "=>" && $3 ~ /^\// { print $3 }   # libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)
    $1 ~ /^\// { print $1 }                 # /lib64/ld-linux-x86-64.so.2 (0x...)
  ' <<<"$out"
}

# Fails with the names of libraries ldd could not find.
check_libraries_resolve() { # FILE
  local missing
  missing=$(ldd "$1" 2>/dev/null | awk '$3 == "not" { print $1 }') || true
  if [[ -n $missing ]]; then
    echo "v2-guest: $1 needs libraries that are not installed: $missing" >&2
    return 1
  fi
}

# Stages an executable or data file at DEST plus, for dynamic ELF files, the
# shared libraries it needs at their host paths (the dynamic loader finds them in
# its default directories, /lib/x86_64-linux-gnu and friends). STRIP=1 drops debug
# info from ELF files: debug test binaries are mostly DWARF, and the initramfs
# lives in the guest's RAM.
stage_with_libraries() { # ROOT SRC DEST STRIP
  local root=$1 src=$2 dest=$3 strip=$4 lib
  check_libraries_resolve "$src"
  stage_file_as "$root" "$src" "$dest"
  if [[ $strip == 1 ]] && is_elf "$src"; then
    strip --strip-debug "$root$dest"
  fi
  while IFS= read -r lib; do
    [[ -e $root$lib ]] || stage_file_as "$root" "$lib" "$lib"
  done < <(shared_libraries_of "$src")
}

is_elf() { # FILE
  [[ $(head -c4 "$1" | od -An -c | tr -d ' ') == '177ELF' ]]
}

# busybox-static at /bin/busybox, with a symlink per applet at its usual path.
stage_busybox() { # ROOT
  local root=$1 busybox applet
  busybox=$(command -v busybox) || {
    echo "v2-guest: busybox not found (install busybox-static)" >&2
    return 1
  }
  if ldd "$busybox" >/dev/null 2>&1; then
    echo "v2-guest: $busybox is dynamically linked; install busybox-static" >&2
    return 1
  fi
  mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,run,root,etc,v2-guest}
  cp "$busybox" "$root/bin/busybox"
  while IFS= read -r applet; do
    [[ -e $root/$applet || -L $root/$applet ]] || ln -s /bin/busybox "$root/$applet"
  done < <("$busybox" --list-full)
}

# Minimal /etc so that getpwuid, getent hosts and friends find root and localhost.
stage_etc() { # ROOT
  local root=$1
  # root, and Debian's nobody/nogroup for tests that run tasks as a non-root user.
  printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'nobody:x:65534:65534:nobody:/nonexistent:/bin/sh' >"$root/etc/passwd"
  printf '%s\n' 'root:x:0:' 'nogroup:x:65534:' >"$root/etc/group"
  printf '127.0.0.1\tlocalhost v2-guest\n::1\tlocalhost ip6-localhost\n' >"$root/etc/hosts"
  echo 'hosts: files' >"$root/etc/nsswitch.conf"
  echo v2-guest >"$root/etc/hostname"
}

# Stages kernel module NAME (from KERNEL_DIR/modules, see kernel.sh) and its
# dependencies, and appends their guest paths to /v2-guest/modules in load order.
stage_module() { # ROOT KERNEL_DIR NAME
  local root=$1 kernel_dir=$2 name=$3 release line deps dep
  release=$(cat "$kernel_dir/release")
  line=$(grep -E "(^|/)${name}\.ko(\.[a-z]+)?:" "$kernel_dir/modules/modules.dep" | head -n1) || true
  if [[ -z $line ]]; then
    if grep -qE "/${name}\.ko" "$kernel_dir/modules/modules.builtin" 2>/dev/null; then
      return 0 # built into the kernel
    fi
    echo "v2-guest: kernel $release has no module $name" >&2
    return 1
  fi
  # modules.dep lists a module's dependencies nearest first: load them in reverse.
  read -r -a deps <<<"${line#*:}"
  for ((dep = ${#deps[@]} - 1; dep >= 0; dep--)); do
    stage_module_file "$root" "$kernel_dir" "${deps[dep]}"
  done
  stage_module_file "$root" "$kernel_dir" "${line%%:*}"
}

stage_module_file() { # ROOT KERNEL_DIR RELATIVE-PATH
  local root=$1 kernel_dir=$2 relative=$3 release guest_path
  release=$(cat "$kernel_dir/release")
  guest_path=/lib/modules/$release/$relative
  grep -qxF "$guest_path" "$root/v2-guest/modules" 2>/dev/null && return 0
  stage_file_as "$root" "$kernel_dir/modules/$relative" "$guest_path"
  echo "$guest_path" >>"$root/v2-guest/modules"
}

# Packs ROOT as a newc cpio archive, uncompressed: for a 15 MB archive gzip made no
# measurable difference to boot time under emulation, and skipping it keeps packing
# instant.
pack_initramfs() { # ROOT OUT
  (cd "$1" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc --reproducible) >"$2"
}
