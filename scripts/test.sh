#!/usr/bin/env bash
# Runs the whole test suite. Installs what the tests need first (idempotent),
# so it works on a fresh Debian 12 machine with only Rust, Python 3.11 and gcc.
# Real-kernel tests (cgroups, namespaces) need root; as non-root they skip and say so.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-test-deps.sh
cargo test --workspace --no-fail-fast "$@"
