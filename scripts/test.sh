#!/usr/bin/env bash
# The whole test suite: lint, format, types, then every test against the local control plane
# (built on first use, ~15 min cold; started once per run). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap.sh

step() { printf '\n==> %s\n' "$*" >&2; }
step "ruff check";   uv run ruff check src tests bench
step "ruff format";  uv run ruff format --check src tests bench
step "mypy (strict)"; uv run mypy
step "control plane binaries"; uv run modelplane cluster build
step "packaging tools (helm, kustomize, lua, hadolint)"; bash scripts/install-tools.sh
step "pytest";       uv run pytest "$@"
