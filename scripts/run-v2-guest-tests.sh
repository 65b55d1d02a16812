#!/usr/bin/env bash
# Runs test binaries inside a qemu guest whose /sys/fs/cgroup is pure cgroup v2
# with the cpu, memory, pids, io and cpuset controllers, so the cgroup-v2 driver is
# tested against a real kernel on hosts (like CI's) whose own layout is hybrid.
# See docs/v2-guest.md. Usage: run with --help.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
guest_dir=$repo/scripts/v2-guest
# shellcheck source-path=SCRIPTDIR source=v2-guest/initramfs.sh
source "$guest_dir/initramfs.sh"

usage() {
  cat <<'EOF'
Usage: scripts/run-v2-guest-tests.sh [OPTIONS] [TEST-BINARY...] [-- TEST-ARGS...]

Boots the Debian cloud kernel under qemu (software emulation) with an initramfs
holding busybox, the test binaries and their shared libraries; /init mounts
cgroup2 at /sys/fs/cgroup and runs each binary with --test-threads=1 TEST-ARGS,
alone in /sys/fs/cgroup/system.slice/<name>.service. Output streams to stdout.

Test binaries:
  TEST-BINARY               a test executable (libtest harness) to run in the guest
  --cargo-test PKG[:TEST]   build with `cargo test -p PKG [--test TEST] --no-run` and
                            run the test binaries it makes (repeatable); the
                            package's bin targets are packed too, at their host
                            paths, for env!("CARGO_BIN_EXE_<name>")
  --selftest                build and run scripts/v2-guest/selftest.rs, which checks
                            the guest itself: OOM kill at memory.max, cpu.max
                            throttling, pids.max, cgroup.kill

Guest contents and set-up:
  --file SRC[:DEST]         also pack SRC at DEST (default: SRC's absolute path);
                            dynamic executables get their shared libraries too
  --module NAME             load kernel module NAME and its dependencies at boot
                            (e.g. overlay, veth, bridge)
  --env NAME=VALUE          export in the tests' environment (default RUST_BACKTRACE=1)
  --placement service|root  run each binary alone in system.slice/<name>.service
                            (default, like a systemd unit with Delegate=yes) or in
                            the root cgroup
  --controllers "LIST"      enabled in the root's cgroup.subtree_control
                            (default "cpuset cpu io memory pids"; "" for none)
  --no-strip                keep debug info in packed ELF files

qemu:
  --timeout SECONDS         for the whole guest run (default 1200)
  --memory MIB              guest RAM (default 1024)
  --cpus N                  guest vCPUs (default 2)
  --keep                    keep the work directory (staging tree, initramfs, log)

Environment: V2_GUEST_CACHE (kernel cache, default /var/cache/mesos-rs-v2-guest),
V2_GUEST_WORK (work directories, default target/v2-guest), V2_GUEST_KERNEL_PACKAGE.

Exit status: 0 every binary exited 0; 1 a binary failed; 2 the guest did not
report every result (timeout, boot failure, crash); 64 bad usage.
EOF
}

# ---------------------------------------------------------------- options

binaries=()        # host paths of test binaries, in run order
cargo_targets=()   # PKG or PKG:TEST
extra_files=()     # SRC:DEST
modules=()
guest_env=(RUST_BACKTRACE=1)
test_args=()
selftest=0
placement=service
controllers="cpuset cpu io memory pids"
strip_debug=1
timeout_secs=1200
memory_mib=1024
cpus=2
keep=0

log() { echo "v2-guest: $*" >&2; }

usage_error() {
  echo "run-v2-guest-tests.sh: $*" >&2
  echo "Try --help." >&2
  exit 64
}

need_value() { # OPTION ARGC
  (($2 >= 2)) || usage_error "$1 needs a value"
}

require_number() { # OPTION VALUE
  [[ $2 =~ ^[1-9][0-9]*$ ]] || usage_error "$1 must be a positive integer, got '$2'"
}

parse_args() {
  while (($#)); do
    case $1 in
      -h | --help) usage; exit 0 ;;
      --cargo-test)
        need_value "$1" $#
        [[ $2 =~ ^[A-Za-z0-9_-]+(:[A-Za-z0-9_-]+)?$ ]] ||
          usage_error "--cargo-test wants PACKAGE or PACKAGE:TEST, got '$2'"
        cargo_targets+=("$2"); shift ;;
      --selftest) selftest=1 ;;
      --file) need_value "$1" $#; extra_files+=("$2"); shift ;;
      --module)
        need_value "$1" $#
        [[ $2 =~ ^[A-Za-z0-9_-]+$ ]] || usage_error "--module wants a module name, got '$2'"
        modules+=("$2"); shift ;;
      --env)
        need_value "$1" $#
        [[ $2 =~ ^[A-Za-z_][A-Za-z0-9_]*=.*$ && $2 != *$'\n'* ]] ||
          usage_error "--env wants NAME=VALUE on one line, got '$2'"
        guest_env+=("$2"); shift ;;
      --placement)
        need_value "$1" $#
        [[ $2 == service || $2 == root ]] || usage_error "--placement is service or root, got '$2'"
        placement=$2; shift ;;
      --controllers)
        need_value "$1" $#
        [[ $2 =~ ^[a-z_\ ]*$ ]] || usage_error "--controllers wants controller names, got '$2'"
        controllers=$2; shift ;;
      --no-strip) strip_debug=0 ;;
      --timeout) need_value "$1" $#; require_number "$1" "$2"; timeout_secs=$2; shift ;;
      --memory) need_value "$1" $#; require_number "$1" "$2"; memory_mib=$2; shift ;;
      --cpus) need_value "$1" $#; require_number "$1" "$2"; cpus=$2; shift ;;
      --keep) keep=1 ;;
      --) shift; test_args=("$@"); break ;;
      -*) usage_error "unknown option $1" ;;
      *)
        [[ -f $1 && -x $1 ]] || usage_error "test binary '$1' is not an executable file"
        binaries+=("$(realpath "$1")") ;;
    esac
    shift
  done
  local arg
  for arg in "${test_args[@]}"; do
    [[ $arg != *$'\n'* ]] || usage_error "test arguments cannot contain newlines"
  done
  ((${#binaries[@]} + ${#cargo_targets[@]} + selftest)) ||
    usage_error "nothing to run: give test binaries, --cargo-test or --selftest"
}

# ---------------------------------------------------------------- host side builds

work_root=${V2_GUEST_WORK:-$repo/target/v2-guest}

# Compiles the self-test with plain rustc (std only); cached by source and rustc.
build_selftest() {
  local src=$guest_dir/selftest.rs key out
  key=$( (rustc --version; cat "$src") | sha256sum | cut -c1-16)
  out=$work_root/selftest/cgroup2_selftest-$key
  if [[ ! -x $out ]]; then
    log "building the self-test"
    mkdir -p "$(dirname "$out")"
    rustc --edition 2021 --test -C debuginfo=1 -o "$out.tmp" "$src"
    mv "$out.tmp" "$out"
  fi
  binaries+=("$out")
}

# Builds one --cargo-test target; adds its test binaries to the run and its bin
# targets to the packed files.
build_cargo_target() { # PKG[:TEST]
  local package=${1%%:*} cargo_args kind path
  cargo_args=(test -p "$package" --no-run --message-format=json-render-diagnostics)
  [[ $1 == *:* ]] && cargo_args+=(--test "${1#*:}")
  log "cargo ${cargo_args[*]}"
  local artifacts
  artifacts=$(cd "$repo" && cargo "${cargo_args[@]}" | python3 -c '
import json, sys
for line in sys.stdin:
    msg = json.loads(line)
    if msg.get("reason") != "compiler-artifact" or not msg.get("executable"):
        continue
    kind = "test" if msg["profile"]["test"] else "bin"
    print(kind, msg["executable"])
')
  [[ -n $artifacts ]] || { log "cargo built no test binary for $1"; exit 64; }
  while read -r kind path; do
    case $kind in
      test) binaries+=("$path") ;;
      bin) extra_files+=("$path:$path") ;;
    esac
  done <<<"$artifacts"
}

build_host_artifacts() {
  local target
  ((selftest)) && build_selftest
  for target in "${cargo_targets[@]}"; do
    build_cargo_target "$target"
  done
}

# A short name for a test binary: cargo's hash suffix removed, unique in the run.
test_name() { # PATH INDEX
  local name
  name=$(basename "$1")
  name=${name%-[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]}
  name=${name//[^A-Za-z0-9_.-]/_}
  if grep -q "^$name	" "$2" 2>/dev/null; then
    name=$name-$(($(wc -l <"$2") + 1))
  fi
  echo "$name"
}

# ---------------------------------------------------------------- initramfs

# The guest mounts proc, sysfs and devtmpfs over these: files packed there would vanish.
check_guest_path() { # PATH
  case $1 in
    /proc/* | /sys/* | /dev/*) usage_error "$1: cannot pack files below /proc, /sys or /dev" ;;
  esac
}

stage_guest_root() { # ROOT KERNEL_DIR
  local root=$1 kernel_dir=$2 path spec module
  stage_busybox "$root"
  stage_etc "$root"
  install -m 755 "$guest_dir/init" "$root/init"
  : >"$root/v2-guest/modules"
  : >"$root/v2-guest/tests"
  for path in "${binaries[@]}"; do
    check_guest_path "$path"
    stage_with_libraries "$root" "$path" "$path" "$strip_debug"
    printf '%s\t%s\n' "$(test_name "$path" "$root/v2-guest/tests")" "$path" >>"$root/v2-guest/tests"
  done
  for spec in "${extra_files[@]}"; do
    local src=${spec%%:*} dest=${spec#*:}
    [[ $spec == *:* ]] || dest=$(realpath "$src")
    [[ -e $src ]] || usage_error "--file $src does not exist"
    [[ $dest == /* ]] || usage_error "--file destination must be absolute: $dest"
    check_guest_path "$dest"
    stage_with_libraries "$root" "$src" "$dest" "$strip_debug"
  done
  for module in "${modules[@]}"; do
    stage_module "$root" "$kernel_dir" "$module"
  done
  printf '%s\n' "${guest_env[@]}" >"$root/v2-guest/env"
  if ((${#test_args[@]})); then printf '%s\n' "${test_args[@]}" >"$root/v2-guest/args"; else : >"$root/v2-guest/args"; fi
  printf 'CONTROLLERS="%s"\nPLACEMENT=%s\n' "$controllers" "$placement" >"$root/v2-guest/config"
}

# ---------------------------------------------------------------- qemu

# Streams the serial console to stdout and LOG; returns qemu's (or timeout's) status.
run_guest() { # KERNEL_DIR INITRAMFS LOG
  local statuses
  local cmdline="console=ttyS0 quiet panic=-1 cgroup_no_v1=all mitigations=off"
  log "booting $(cat "$1/release") (tcg, ${cpus} vCPUs, ${memory_mib} MiB, timeout ${timeout_secs}s)"
  set +e
  # No KVM: it does not work on our hosts. -no-reboot + panic=-1 turn a guest panic
  # into qemu exiting; /init ends with poweroff -f.
  timeout --kill-after=10 "$timeout_secs" \
    qemu-system-x86_64 -accel tcg -cpu max -smp "$cpus" -m "$memory_mib" \
    -nodefaults -display none -no-reboot -nic none \
    -serial stdio \
    -kernel "$1/vmlinuz" -initrd "$2" -append "$cmdline" \
    </dev/null 2>&1 | sed -u 's/\r$//' | tee "$3"
  statuses=("${PIPESTATUS[@]}")
  set -e
  return "${statuses[0]}"
}

# ---------------------------------------------------------------- results

# Prints the per-binary summary and the closing "N passed, N failed" line;
# returns 0, 1 (a binary failed) or 2 (results missing).
summarize() { # TESTS-FILE LOG QEMU-STATUS
  local tests=$1 guest_log=$2 qemu_status=$3
  echo
  echo "== v2-guest results"
  awk -v qemu_status="$qemu_status" -v timeout_secs="$timeout_secs" '
    FNR == NR { split($0, f, "\t"); order[++n] = f[1]; next }
    match($0, /@@BEGIN [^@]*@@/) { current = substr($0, RSTART + 8, RLENGTH - 10); next }
    match($0, /@@RESULT [^ @]+ [0-9]+@@/) {
      split(substr($0, RSTART + 9, RLENGTH - 11), r, " "); rc[r[1]] = r[2]; current = ""; next
    }
    match($0, /@@NOTE [^@]*@@/) { notes[++nn] = substr($0, RSTART + 7, RLENGTH - 9); next }
    match($0, /@@LEFTOVER [^@]*@@/) {
      split(substr($0, RSTART + 11, RLENGTH - 13), l, " ")
      notes[++nn] = l[1] " left cgroup " l[2] " behind (removed)"; next
    }
    /@@DONE@@/ { done = 1 }
    /@@GUEST-ERROR/ { notes[++nn] = $0 }
    current != "" && /^test result: / {
      # i < NF: gsub on $(NF + 1) would create that field, grow NF and never end.
      for (i = 1; i < NF; i++) {
        gsub(/;/, "", $(i + 1))
        if ($(i + 1) == "passed") passed[current] += $i
        if ($(i + 1) == "failed") failed[current] += $i
        if ($(i + 1) == "ignored") ignored[current] += $i
      }
    }
    END {
      status = 0
      for (i = 1; i <= n; i++) {
        name = order[i]
        if (!(name in rc)) { verdict = "NO RESULT"; status = 2; failed[name] += 1 }
        else if (rc[name] != 0) {
          verdict = "FAILED (exit " rc[name] ")"; if (status == 0) status = 1
          if (failed[name] == 0) failed[name] = 1   # crashed or exited before libtest summed up
        } else verdict = "ok"
        counts = sprintf("%d passed, %d failed, %d ignored", passed[name], failed[name], ignored[name])
        printf "  %-32s %-18s %s\n", name, verdict, counts
        total_passed += passed[name]; total_failed += failed[name]; total_ignored += ignored[name]
      }
      for (i = 1; i <= nn; i++) print "  note: " notes[i]
      if (!done) {
        status = 2
        if (qemu_status == 124) print "  the guest timed out after " timeout_secs " s (--timeout)"
        else print "  the guest stopped without finishing (qemu status " qemu_status "): see the log above"
      }
      printf "v2-guest: %d passed, %d failed, %d skipped\n", total_passed, total_failed, total_ignored
      exit status
    }
  ' "$tests" "$guest_log"
}

# ---------------------------------------------------------------- main

main() {
  parse_args "$@"
  local started=$SECONDS
  "$guest_dir/install-deps.sh"
  build_host_artifacts
  local kernel_dir
  kernel_dir=$("$guest_dir/kernel.sh")

  mkdir -p "$work_root"
  work=$(mktemp -d "$work_root/run.XXXXXX") # global: the EXIT trap reads it
  ((keep)) || trap 'rm -rf "$work"' EXIT
  stage_guest_root "$work/root" "$kernel_dir"
  pack_initramfs "$work/root" "$work/initramfs.cpio"
  log "initramfs $(du -h "$work/initramfs.cpio" | cut -f1) with $(wc -l <"$work/root/v2-guest/tests") test binaries, ready after $((SECONDS - started))s"

  local guest_started=$SECONDS qemu_status=0
  run_guest "$kernel_dir" "$work/initramfs.cpio" "$work/guest.log" || qemu_status=$?
  cp "$work/guest.log" "$work_root/last-run.log"
  local status=0
  summarize "$work/root/v2-guest/tests" "$work/guest.log" "$qemu_status" || status=$?
  log "guest ran $((SECONDS - guest_started))s, total $((SECONDS - started))s; log: $work_root/last-run.log"
  ((keep)) && log "work directory kept: $work"
  return "$status"
}

main "$@"
