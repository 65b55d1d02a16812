#!/usr/bin/env bash
# Installs pymesos 0.3.15 for the client-compatibility tests (recipe A of
# ../shared/reference/mesos-protocol.md §10.1). Idempotent.
#
# `pip install pymesos==0.3.15` fails on Python >= 3.11: its dependency
# http-parser 0.9.0 ships a Cython-generated C file that includes
# longintrepr.h, which Python 3.11 removed. pymesos also works with the
# pure-Python parser of that package (http_parser.pyparser), so we install
# pymesos and its other dependencies without deps, and copy only the
# package's *.py files from the http-parser sdist.
#
# PYTHON selects the interpreter (default: python3), e.g. a venv's python.
set -euo pipefail

PYTHON="${PYTHON:-python3}"

if "$PYTHON" -c 'import pymesos, http_parser.pyparser' 2>/dev/null; then
  echo "pymesos already importable by $PYTHON"
  exit 0
fi

"$PYTHON" -m pip install --quiet --no-deps 'pymesos==0.3.15' six addict kazoo

site_packages="$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

"$PYTHON" -m pip download --quiet --no-binary :all: --no-deps 'http-parser==0.9.0' -d "$work"
tar -xzf "$work"/http-parser-0.9.0.tar.gz -C "$work"
mkdir -p "$site_packages/http_parser"
cp "$work"/http-parser-0.9.0/http_parser/*.py "$site_packages/http_parser/"

"$PYTHON" -c 'import pymesos, http_parser.pyparser; print("pymesos", pymesos.__version__ if hasattr(pymesos, "__version__") else "0.3.15", "installed")'
