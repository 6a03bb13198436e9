#!/usr/bin/env bash
# Runs every test of the workspace: unit and property tests, the SQL logic tests under sql/,
# the in-process replication tests, and the process-level crash and restart tests. Ends with
# one line adding up every test binary's result.
set -euo pipefail
cd "$(dirname "$0")/.."
bash ops/install-deps.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/meridian-target}"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
cargo test --workspace --locked --no-fail-fast "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
awk '/^test result:/ { passed += $4; failed += $6 }
     END { printf "tests: %d passed, %d failed\n", passed, failed }' "$log"
exit "$status"
