#!/usr/bin/env bash
# The differential tester against PostgreSQL 15 (crates/sql/tests/difftest), on demand: runs
# QUERIES generated queries (default 10000) from SEED (default: a new one, printed) against an
# in-process Meridian engine and a private PostgreSQL server, and prints every mismatch shrunk
# to a self-contained reproducer. Exits non-zero on any mismatch.
#
#   ops/difftest.sh                          # 10,000 queries, a fresh seed
#   ops/difftest.sh --queries 20000 --seed 7 # replay or extend a run
#   ops/difftest.sh --verbose                # print every query and its outcome
set -euo pipefail
cd "$(dirname "$0")/.."

queries=10000
seed=$(( (RANDOM << 15) | RANDOM ))
verbose=0
while (($#)); do
    case $1 in
    --queries) queries=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    --verbose) verbose=1; shift ;;
    *) echo "usage: ops/difftest.sh [--queries N] [--seed N] [--verbose]" >&2; exit 2 ;;
    esac
done

bash ops/install-deps.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/meridian-target}"
MERIDIAN_DIFFTEST_QUERIES=$queries MERIDIAN_DIFFTEST_SEED=$seed MERIDIAN_DIFFTEST_VERBOSE=$verbose \
    cargo test --locked -p meridian-sql --test difftest
