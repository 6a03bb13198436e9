#!/usr/bin/env bash
# TPC-C side by side: Debian's PostgreSQL 15, a single Meridian node, a three-node Meridian
# cluster (three processes on 127.0.0.1-3, three replicas of every tablet) and three nodes in
# three simulated regions (`meridian demo --nodes 3 --global`: one process, 33-70 ms one way
# between the regions, clients in us-east1), each on fresh data directories, driven by the
# same `meridian workload tpcc` init / run / check. Prints one table with a column per side
# and the ratios to PostgreSQL.
#
#   benches/tpcc.sh                       # 1 warehouse, 60 s, no keying/think time
#   WAREHOUSES=10 DURATION=5m WAIT=true benches/tpcc.sh
#   SIDES="postgres meridian" benches/tpcc.sh   # a subset of postgres meridian cluster regions
#
# PostgreSQL is installed with apt-get if missing; the Meridian binary is built in release
# mode if missing. Everything listens on 127.0.0.1 only and is stopped on exit; the data
# directories and the JSON/SVG reports stay under $WORK (printed at the end).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

WAREHOUSES=${WAREHOUSES:-1}
DURATION=${DURATION:-60s}
RAMP=${RAMP:-0s}
WAIT=${WAIT:-false}
SIDES=${SIDES:-postgres meridian cluster regions}
PG_PORT=${PG_PORT:-55432}
MERIDIAN_PORT=${MERIDIAN_PORT:-26357} # SQL; +1 gRPC, +2 HTTP
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/meridian-target}"
BIN=${MERIDIAN_BIN:-$CARGO_TARGET_DIR/release/meridian}
WORK=${WORK:-$(mktemp -d /tmp/meridian-tpcc.XXXXXX)}
mkdir -p "$WORK"
chmod 755 "$WORK"

# shellcheck source=benches/lib.sh
source benches/lib.sh
trap stop_all EXIT

# init, run and check one database; results go to $WORK/NAME.*.
bench() {
    local name=$1 url=$2
    log "$name: init --warehouses $WAREHOUSES"
    if ! "$BIN" workload tpcc init --url "$url" --warehouses "$WAREHOUSES" | tee "$WORK/$name.init"; then
        echo "init failed" >"$WORK/$name.failed"
        return 0
    fi
    log "$name: run --duration $DURATION --wait $WAIT"
    if ! "$BIN" workload tpcc run --url "$url" --warehouses "$WAREHOUSES" --duration "$DURATION" \
        --ramp "$RAMP" --wait "$WAIT" --json "$WORK/$name.json" | tee "$WORK/$name.run"; then
        echo "run failed" >"$WORK/$name.failed"
        return 0
    fi
    log "$name: check"
    if "$BIN" workload tpcc check --url "$url" | tee "$WORK/$name.check"; then
        echo PASS >"$WORK/$name.consistency"
    else
        echo FAIL >"$WORK/$name.consistency"
    fi
}

build_meridian
for side in $SIDES; do
    case $side in
    postgres)
        start_postgres "$PG_PORT"
        bench postgres "postgresql://postgres@127.0.0.1:$PG_PORT/postgres"
        ;;
    meridian)
        if start_meridian "$MERIDIAN_PORT"; then
            bench meridian "postgresql://root@127.0.0.1:$MERIDIAN_PORT/defaultdb?sslmode=disable"
        else
            echo "did not start" >"$WORK/meridian.failed"
        fi
        ;;
    cluster)
        # The workload connects to the first node; the tablets' leaders spread over all three.
        if start_cluster; then
            bench cluster "postgresql://root@127.0.0.1:26257/defaultdb?sslmode=disable"
        else
            echo "did not start" >"$WORK/cluster.failed"
        fi
        ;;
    regions)
        if start_regions "$MERIDIAN_PORT"; then
            bench regions "postgresql://root@127.0.0.1:$MERIDIAN_PORT/defaultdb?sslmode=disable"
        else
            echo "did not start" >"$WORK/regions.failed"
        fi
        ;;
    esac
    stop_all
done

log "TPC-C, $WAREHOUSES warehouse(s), $DURATION measured, wait=$WAIT ($(nproc) cores)"
python3 - "$WORK" <<'EOF'
import json, os, re, sys
work = sys.argv[1]

def load(name):
    r = {"name": name}
    p = os.path.join(work, name)
    if os.path.exists(p + ".failed"):
        r["failed"] = open(p + ".failed").read().strip()
    if os.path.exists(p + ".init"):
        m = re.search(r"loaded (\d+) rows in ([\d.]+)s", open(p + ".init").read())
        if m:
            r["load_s"], r["load_rows_s"] = float(m.group(2)), int(m.group(1)) / float(m.group(2))
    if os.path.exists(p + ".json"):
        r["report"] = json.load(open(p + ".json"))
    if os.path.exists(p + ".consistency"):
        r["consistency"] = open(p + ".consistency").read().strip()
    return r

sides = [load(n) for n in ("postgres", "meridian", "cluster", "regions")
         if any(os.path.exists(os.path.join(work, n + ext)) for ext in (".init", ".failed"))]

def metric(r, key):
    rep = r.get("report")
    if key == "load time (s)":
        return r.get("load_s")
    if key == "load rows/s":
        return r.get("load_rows_s")
    if key == "consistency":
        return r.get("consistency")
    if rep is None:
        return None
    if key in ("tpmC", "efficiency %"):
        return rep["tpmc"] if key == "tpmC" else rep["efficiency_pct"]
    kind, field = key.split(" ", 1)
    t = {t["name"]: t for t in rep["txns"]}[kind]
    return t[{"count": "count", "errors": "errors", "retries": "retries", "p50 ms": "p50_ms",
              "p90 ms": "p90_ms", "p99 ms": "p99_ms"}[field]]

keys = ["load time (s)", "load rows/s", "tpmC", "efficiency %"]
for kind in ["newOrder", "payment", "orderStatus", "delivery", "stockLevel"]:
    keys += [f"{kind} count", f"{kind} p50 ms", f"{kind} p90 ms", f"{kind} p99 ms",
             f"{kind} errors", f"{kind} retries"]
keys.append("consistency")

def fmt(v):
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    return f"{v:.1f}" if isinstance(v, float) else str(v)

names = [r["name"] for r in sides]
others = [n for n in names if n != "postgres"]
pg = next((r for r in sides if r["name"] == "postgres"), None)
head = f"{'metric':<22}" + "".join(f"{n:>12}" for n in names)
if pg:
    head += "".join(f"{n + '/pg':>14}" for n in others)
print(head)
for k in keys:
    vals = {r["name"]: metric(r, k) for r in sides}
    line = f"{k:<22}" + "".join(f"{fmt(vals[n]):>12}" for n in names)
    if pg:
        a = vals["postgres"]
        for n in others:
            b = vals[n]
            ratio = "-"
            if isinstance(a, (int, float)) and isinstance(b, (int, float)) and a:
                ratio = f"{b / a:.2f}"
            line += f"{ratio:>14}"
    print(line)
for r in sides:
    if "failed" in r:
        print(f"{r['name']}: {r['failed']}")
EOF
log "reports, plots and logs in $WORK"
