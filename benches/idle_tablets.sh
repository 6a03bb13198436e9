#!/usr/bin/env bash
# CPU use of an idle node holding thousands of tablets: a single Meridian node gets a table
# split into TABLETS tablets (ALTER TABLE ... SPLIT AT), is left alone until its Raft groups
# settle, and its process CPU time (/proc/PID/stat, user + system) is measured over MEASURE
# seconds. Runs twice, with idle groups quiescing (the default) and with every group ticking
# (--raft-quiesce=false), and prints both as a share of one core.
#
#   benches/idle_tablets.sh                       # 5,000 tablets, 30 s measured
#   TABLETS=10000 MEASURE=60 benches/idle_tablets.sh
set -euo pipefail
cd "$(dirname "$0")/.."

TABLETS=${TABLETS:-5000}
MEASURE=${MEASURE:-30}
SETTLE=${SETTLE:-10}
MODES=${MODES:-true false}
PORT=${PORT:-26467}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/meridian-target}"
BIN=${MERIDIAN_BIN:-$CARGO_TARGET_DIR/release/meridian}
WORK=${WORK:-$(mktemp -d /tmp/meridian-idle.XXXXXX)}
mkdir -p "$WORK"
source benches/lib.sh
trap stop_all EXIT
build_meridian

# cpu_ticks PID: user + system CPU time of the process so far, in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

hz=$(getconf CLK_TCK)
results=()
for quiesce in $MODES; do
    rm -rf "$WORK/meridian"
    start_meridian "$PORT" --raft-quiesce="$quiesce"
    psql -X -q -h 127.0.0.1 -p "$PORT" -U root -d defaultdb \
        -c "CREATE TABLE t (k INT PRIMARY KEY)" >/dev/null
    # The root tablet holds everything at first; each split point adds one tablet.
    points=$(seq 1 $((TABLETS - 1)) | sed 's/.*/(&)/' | paste -sd,)
    log "splitting into $TABLETS tablets (quiesce=$quiesce)"
    start=$(date +%s)
    psql -X -q -h 127.0.0.1 -p "$PORT" -U root -d defaultdb \
        -c "ALTER TABLE t SPLIT AT VALUES $points" >/dev/null
    log "split in $(( $(date +%s) - start )) s; settling for $SETTLE s"
    sleep "$SETTLE"
    replicas=$(curl -s "http://127.0.0.1:$((PORT + 2))/metrics" | awk '$1 == "meridian_replicas" { print $2 }')
    before=$(cpu_ticks "$MERIDIAN_PID")
    sleep "$MEASURE"
    after=$(cpu_ticks "$MERIDIAN_PID")
    share=$(awk -v d=$((after - before)) -v hz="$hz" -v s="$MEASURE" 'BEGIN { printf "%.2f", 100 * d / hz / s }')
    results+=("$quiesce $replicas $share")
    stop_all
done

printf '\n%-14s %10s %22s\n' "quiescence" "tablets" "CPU (% of one core)"
for r in "${results[@]}"; do
    set -- $r
    printf '%-14s %10s %22s\n' "$1" "$2" "$3"
done
