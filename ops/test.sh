#!/usr/bin/env bash
# Runs every test of the workspace: unit and property tests, the SQL logic tests under sql/,
# the in-process replication tests, and the process-level crash and restart tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash ops/install-deps.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/meridian-target}"
cargo test --workspace --locked --no-fail-fast "$@"
