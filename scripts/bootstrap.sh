#!/usr/bin/env bash
# Installs what the project needs on a fresh machine, or stops with a message naming what is
# missing. Sourced by the test and demo scripts; safe to run again (everything is cached).
set -euo pipefail

UV_VERSION=0.13.8

need() { command -v "$1" >/dev/null 2>&1; }
fail() { printf 'error: %s\n' "$*" >&2; exit 1; }

need python3 || fail "Python >= 3.11 is required (apt-get install python3)"
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || fail "Python >= 3.11 is required, found $(python3 --version)"
need go || fail "Go >= 1.25 is required to build the local control plane: https://go.dev/dl"
need curl || { need apt-get && apt-get install -y -q curl >/dev/null; } || fail "curl is required"

if ! need uv || [ "$(uv --version | awk '{print $2}')" != "$UV_VERSION" ]; then
  echo "installing uv $UV_VERSION" >&2
  python3 -m pip install -q "uv==$UV_VERSION" || fail "could not install uv $UV_VERSION from PyPI"
fi

# The locked environment: exactly what uv.lock says, or a failure if it is out of date.
uv sync --frozen --quiet
