#!/usr/bin/env bash
# TPC-C side by side: Debian's PostgreSQL 15 and a single Meridian node, each on a private
# loopback port and a fresh data directory, driven by the same `meridian workload tpcc`
# init / run / check. Prints one table with both columns and their ratio.
#
#   benches/tpcc.sh                       # 1 warehouse, 60 s, no keying/think time
#   WAREHOUSES=10 DURATION=5m WAIT=true benches/tpcc.sh
#   ONLY=postgres benches/tpcc.sh         # one side only (postgres or meridian)
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
ONLY=${ONLY:-}
PG_PORT=${PG_PORT:-55432}
MERIDIAN_PORT=${MERIDIAN_PORT:-26357} # SQL; +1 gRPC, +2 HTTP
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/meridian-target}"
BIN=${MERIDIAN_BIN:-$CARGO_TARGET_DIR/release/meridian}
WORK=${WORK:-$(mktemp -d /tmp/meridian-tpcc.XXXXXX)}
mkdir -p "$WORK"
chmod 755 "$WORK"

PG_DIR="$WORK/postgres"
MERIDIAN_PID=""

log() { printf '== %s\n' "$*" >&2; }

# Runs a command as the postgres user when we are root (PostgreSQL refuses to run as root).
as_pg() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

cleanup() {
    if [ -n "$MERIDIAN_PID" ] && kill -0 "$MERIDIAN_PID" 2>/dev/null; then
        kill "$MERIDIAN_PID" 2>/dev/null || true
        wait "$MERIDIAN_PID" 2>/dev/null || true
    fi
    if [ -n "${PG_BIN:-}" ] && [ -f "$PG_DIR/data/postmaster.pid" ]; then
        as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast stop >/dev/null 2>&1 || true
    fi
}
trap cleanup EXIT

build_meridian() {
    if [ ! -x "$BIN" ]; then
        log "building the release binary"
        cargo build --release --locked -p meridian
    fi
}

start_postgres() {
    PG_BIN=$(ls -d /usr/lib/postgresql/15/bin 2>/dev/null || true)
    if [ -z "$PG_BIN" ]; then
        log "installing PostgreSQL 15 (apt-get)"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
        PG_BIN=/usr/lib/postgresql/15/bin
    fi
    mkdir -p "$PG_DIR"
    if [ "$(id -u)" = 0 ]; then chown postgres "$PG_DIR"; fi
    log "starting PostgreSQL 15 on 127.0.0.1:$PG_PORT (data in $PG_DIR/data)"
    as_pg "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres --auth=trust >"$PG_DIR/initdb.log" 2>&1
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w start \
        -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_DIR -c max_connections=300" >/dev/null
}

start_meridian() {
    log "starting Meridian on 127.0.0.1:$MERIDIAN_PORT (data in $WORK/meridian)"
    "$BIN" start --single-node --insecure --data-dir "$WORK/meridian" \
        --sql-addr "127.0.0.1:$MERIDIAN_PORT" \
        --listen-addr "127.0.0.1:$((MERIDIAN_PORT + 1))" \
        --http-addr "127.0.0.1:$((MERIDIAN_PORT + 2))" >"$WORK/meridian.log" 2>&1 &
    MERIDIAN_PID=$!
    for _ in $(seq 1 150); do
        if command -v curl >/dev/null; then
            curl -sf "http://127.0.0.1:$((MERIDIAN_PORT + 2))/ready" >/dev/null 2>&1 && return 0
        elif (exec 3<>"/dev/tcp/127.0.0.1/$MERIDIAN_PORT") 2>/dev/null; then
            return 0
        fi
        kill -0 "$MERIDIAN_PID" 2>/dev/null || break
        sleep 0.2
    done
    log "Meridian did not become ready; see $WORK/meridian.log"
    return 1
}

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
if [ "$ONLY" != meridian ]; then
    start_postgres
    bench postgres "postgresql://postgres@127.0.0.1:$PG_PORT/postgres"
fi
if [ "$ONLY" != postgres ]; then
    if start_meridian; then
        bench meridian "postgresql://root@127.0.0.1:$MERIDIAN_PORT/defaultdb?sslmode=disable"
    else
        echo "did not start" >"$WORK/meridian.failed"
    fi
fi

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

sides = [load("postgres"), load("meridian")]

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

print(f"{'metric':<22} {'postgres':>12} {'meridian':>12} {'meridian/pg':>12}")
for k in keys:
    a, b = metric(sides[0], k), metric(sides[1], k)
    ratio = "-"
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and a:
        ratio = f"{b / a:.2f}"
    print(f"{k:<22} {fmt(a):>12} {fmt(b):>12} {ratio:>12}")
for r in sides:
    if "failed" in r:
        print(f"{r['name']}: {r['failed']}")
EOF
log "reports, plots and logs in $WORK"
