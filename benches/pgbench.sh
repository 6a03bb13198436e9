#!/usr/bin/env bash
# pgbench side by side: Debian's PostgreSQL 15, a single Meridian node, and a three-node
# Meridian cluster (three processes on 127.0.0.1-3, every write replicated to a majority),
# each loaded with `pgbench -i -s SCALE` and run with the TPC-B-like script and with -S
# (select only). Prints one table of TPS and latency with the ratios to PostgreSQL.
#
#   benches/pgbench.sh                            # scale 1, 8 clients, 30 s per run
#   SCALE=10 CLIENTS=8 DURATION=30 benches/pgbench.sh
#   SIDES="postgres meridian" benches/pgbench.sh  # a subset of postgres meridian cluster
#   MODE=prepared benches/pgbench.sh              # pgbench -M simple|extended|prepared
#   RUNS=3 benches/pgbench.sh                     # each run three times: medians reported
#
# Serialization failures (40001) are counted by pgbench as failed transactions and retried
# up to MAX_TRIES times (PostgreSQL 15's pgbench --max-tries).
set -euo pipefail
cd "$(dirname "$0")/.."

SCALE=${SCALE:-1}
CLIENTS=${CLIENTS:-8}
THREADS=${THREADS:-2}
DURATION=${DURATION:-30}
MODE=${MODE:-simple}
MAX_TRIES=${MAX_TRIES:-10}
RUNS=${RUNS:-1}
SIDES=${SIDES:-postgres meridian cluster}
PG_PORT=${PG_PORT:-55433}
MERIDIAN_PORT=${MERIDIAN_PORT:-26367}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/meridian-target}"
BIN=${MERIDIAN_BIN:-$CARGO_TARGET_DIR/release/meridian}
WORK=${WORK:-$(mktemp -d /tmp/meridian-pgbench.XXXXXX)}
mkdir -p "$WORK"
chmod 755 "$WORK"
# shellcheck source=benches/lib.sh
source benches/lib.sh
trap stop_all EXIT

# bench NAME HOST PORT USER DB: init, TPC-B-like run, select-only run; outputs in $WORK.
bench() {
    local name=$1 host=$2 port=$3 user=$4 db=$5
    local conn=(-h "$host" -p "$port" -U "$user")
    log "$name: pgbench -i -s $SCALE"
    pgbench "${conn[@]}" -i -s "$SCALE" -q "$db" >"$WORK/$name.init" 2>&1 || {
        tail -3 "$WORK/$name.init" >&2
        return 0
    }
    for script in tpcb select; do
        local extra=()
        [ "$script" = select ] && extra=(-S)
        for run in $(seq 1 "$RUNS"); do
            log "$name: pgbench ${extra[*]} -c $CLIENTS -j $THREADS -T $DURATION -M $MODE (run $run of $RUNS)"
            pgbench "${conn[@]}" "${extra[@]}" -n -c "$CLIENTS" -j "$THREADS" -T "$DURATION" \
                -M "$MODE" --max-tries "$MAX_TRIES" "$db" >"$WORK/$name.$script.$run" 2>&1 || true
        done
    done
}

build_meridian
run_sides "$PG_PORT" "$MERIDIAN_PORT"

log "pgbench, scale $SCALE, $CLIENTS clients, $DURATION s per run, median of $RUNS, -M $MODE ($(nproc) cores)"
python3 - "$WORK" <<'PY'
import glob, os, re, statistics, sys
work = sys.argv[1]

def parse(name, script):
    """The median tps and latency of the runs of `script` on `name`, failures summed."""
    runs = []
    for p in sorted(glob.glob(os.path.join(work, f"{name}.{script}.*"))):
        t = open(p).read()
        out = {}
        for key, pat in [("tps", r"tps = ([\d.]+) \(without"), ("lat", r"latency average = ([\d.]+) ms"),
                         ("failed", r"number of failed transactions: (\d+)")]:
            m = re.search(pat, t)
            if m:
                out[key] = float(m.group(1))
        runs.append(out)
    merged = {}
    for key in ("tps", "lat"):
        values = [r[key] for r in runs if key in r]
        if values:
            merged[key] = statistics.median(values)
    failed = [r["failed"] for r in runs if "failed" in r]
    if failed:
        merged["failed"] = sum(failed)
    return merged

def init_time(name):
    p = os.path.join(work, f"{name}.init")
    m = re.search(r"done in ([\d.]+) s", open(p).read()) if os.path.exists(p) else None
    return float(m.group(1)) if m else None

names = [n for n in ["postgres", "meridian", "cluster"] if os.path.exists(os.path.join(work, n + ".init"))]
rows = [("load (s)", {n: init_time(n) for n in names})]
for script, label in [("tpcb", "TPC-B-like"), ("select", "select-only (-S)")]:
    r = {n: parse(n, script) for n in names}
    rows.append((f"{label} tps", {n: r[n].get("tps") for n in names}))
    rows.append((f"{label} latency ms", {n: r[n].get("lat") for n in names}))
    rows.append((f"{label} failed txns", {n: r[n].get("failed") for n in names}))

def fmt(v):
    return "-" if v is None else f"{v:.1f}"

head = f"{'metric':<28}" + "".join(f"{n:>12}" for n in names)
others = [n for n in names if n != "postgres"]
if "postgres" in names:
    head += "".join(f"{n + '/pg':>14}" for n in others)
print(head)
for label, vals in rows:
    line = f"{label:<28}" + "".join(f"{fmt(vals[n]):>12}" for n in names)
    if "postgres" in names:
        for n in others:
            a, b = vals.get("postgres"), vals.get(n)
            line += f"{(f'{b / a:.2f}' if a and b is not None else '-'):>14}"
    print(line)
PY
log "outputs in $WORK"
