#!/usr/bin/env bash
# The end-to-end demo on the local control plane (built on first use, then cached).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap.sh
exec uv run python -m modelplane.demo "$@"
