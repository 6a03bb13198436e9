#!/usr/bin/env bash
# SQL scans and point reads side by side: Debian's PostgreSQL 15 and a single Meridian node
# (and, with SIDES, a three-node cluster), each on a fresh data directory, loaded with the same
# table of ROWS rows, then
#
#   (a) a grouped aggregate over the whole table and a filtered scan (median of REPS runs);
#   (b) point selects by primary key and by a secondary index through the full SQL path
#       (pgbench custom scripts, CLIENTS clients, DURATION s each, prepared statements).
#
# Prints one table with a column per side and each Meridian side's speed relative to
# PostgreSQL (above 1: faster).
#
#   benches/sql.sh                          # ROWS=10000000 REPS=3 CLIENTS=8 DURATION=20
#   ROWS=1000000 benches/sql.sh             # a quicker run
#   SIDES="postgres meridian cluster" benches/sql.sh
#
# PostgreSQL is installed with apt-get if missing; the Meridian binary is built in release
# mode if missing. Everything listens on 127.0.0.1 only and is stopped on exit; the data
# directories and raw outputs stay under $WORK (printed at the end).
set -euo pipefail
cd "$(dirname "$0")/.."

ROWS=${ROWS:-10000000}
KEYS=${KEYS:-1000}
BATCH=${BATCH:-100000}
REPS=${REPS:-3}
CLIENTS=${CLIENTS:-8}
THREADS=${THREADS:-2}
DURATION=${DURATION:-20}
SIDES=${SIDES:-postgres meridian}
PG_PORT=${PG_PORT:-55434}
MERIDIAN_PORT=${MERIDIAN_PORT:-26377}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/meridian-target}"
BIN=${MERIDIAN_BIN:-$CARGO_TARGET_DIR/release/meridian}
WORK=${WORK:-$(mktemp -d /tmp/meridian-sqlbench.XXXXXX)}
mkdir -p "$WORK"
chmod 755 "$WORK"
# shellcheck source=benches/lib.sh
source benches/lib.sh
trap stop_all EXIT

# The statements timed in (a); the same text on both sides.
GROUPED="SELECT k, count(*), sum(x), avg(y) FROM t GROUP BY k"
FILTERED="SELECT id, x, y FROM t WHERE x < 10 AND y > 0.5"

cat >"$WORK/pk.sql" <<EOF
\\set id random(1, $ROWS)
SELECT id, k, x, y FROM t WHERE id = :id;
EOF
cat >"$WORK/index.sql" <<EOF
\\set s random(1, $ROWS)
SELECT id, k, x, y FROM t WHERE s = :s;
EOF

# bench NAME HOST PORT USER DB: load, time (a), run (b); outputs in $WORK/NAME.*.
bench() {
    local name=$1 host=$2 port=$3 user=$4 db=$5
    local conn=(-h "$host" -p "$port" -U "$user")
    log "$name: loading $ROWS rows in batches of $BATCH"
    # k: KEYS groups; x: 0..999 spread by a multiplicative hash; y: a float in [0, 1);
    # s: a permutation of 1..ROWS (ROWS is coprime with the multiplier unless it is a multiple
    # of 7919), indexed.
    if ! python3 - "$host" "$port" "$user" "$db" "$ROWS" "$KEYS" "$BATCH" >"$WORK/$name.load" 2>&1 <<'PY'; then
import sys, time, psycopg
host, port, user, db = sys.argv[1:5]
rows, groups, batch = map(int, sys.argv[5:8])
conn = psycopg.connect(host=host, port=int(port), user=user, dbname=db, autocommit=True)
cur = conn.cursor()
cur.execute("DROP TABLE IF EXISTS t")
cur.execute("CREATE TABLE t (id BIGINT PRIMARY KEY, k INT NOT NULL, x INT NOT NULL, "
            "y DOUBLE PRECISION NOT NULL, s BIGINT NOT NULL)")
start = time.monotonic()
lo = 1
while lo <= rows:
    hi = min(rows, lo + batch - 1)
    cur.execute(
        f"INSERT INTO t SELECT g, g % {groups}, (g * 7919) % 1000, ((g * 104729) % 1000003) / 1000003.0, "
        f"(g * 7919) % {rows} + 1 FROM generate_series(CAST({lo} AS BIGINT), CAST({hi} AS BIGINT)) AS s(g)")
    lo = hi + 1
load = time.monotonic() - start
start = time.monotonic()
cur.execute("CREATE INDEX t_s ON t (s)")
index = time.monotonic() - start
# Statistics, so that both planners know the table's size.
cur.execute("ANALYZE t")
cur.execute("SELECT count(*) FROM t")
print(f"rows {cur.fetchone()[0]}")
print(f"load {load:.2f}")
print(f"index {index:.2f}")
PY
        tail -3 "$WORK/$name.load" >&2
        echo "load failed" >"$WORK/$name.failed"
        return 0
    fi
    log "$name: timing the scans, $REPS runs each"
    python3 - "$host" "$port" "$user" "$db" "$REPS" "$GROUPED" "$FILTERED" >"$WORK/$name.scans" 2>&1 <<'PY' || true
import statistics, sys, time, psycopg
host, port, user, db, reps, grouped, filtered = sys.argv[1:8]
conn = psycopg.connect(host=host, port=int(port), user=user, dbname=db, autocommit=True)
cur = conn.cursor()
for label, sql in (("grouped", grouped), ("filtered", filtered)):
    times = []
    for _ in range(int(reps)):
        start = time.monotonic()
        cur.execute(sql)
        n = len(cur.fetchall())
        times.append(time.monotonic() - start)
    print(f"{label} {statistics.median(times) * 1000:.1f} {n}")
PY
    for script in pk index; do
        log "$name: pgbench -f $script.sql -c $CLIENTS -j $THREADS -T $DURATION -M prepared"
        pgbench "${conn[@]}" -n -f "$WORK/$script.sql" -c "$CLIENTS" -j "$THREADS" \
            -T "$DURATION" -M prepared "$db" >"$WORK/$name.$script" 2>&1 || true
    done
}

build_meridian
run_sides "$PG_PORT" "$MERIDIAN_PORT"

log "SQL scans and point reads, $ROWS rows, $CLIENTS clients, $DURATION s per pgbench run ($(nproc) cores)"
python3 - "$WORK" <<'PY'
import os, re, sys
work = sys.argv[1]

def kv(name, suffix):
    p = os.path.join(work, f"{name}.{suffix}")
    out = {}
    if os.path.exists(p):
        for line in open(p):
            parts = line.split()
            if len(parts) >= 2:
                try:
                    out[parts[0]] = float(parts[1])
                except ValueError:
                    pass
    return out

def pgbench(name, script):
    p = os.path.join(work, f"{name}.{script}")
    t = open(p).read() if os.path.exists(p) else ""
    tps = re.search(r"tps = ([\d.]+) \(without", t)
    lat = re.search(r"latency average = ([\d.]+) ms", t)
    return (float(tps.group(1)) if tps else None, float(lat.group(1)) if lat else None)

names = [n for n in ["postgres", "meridian", "cluster"] if os.path.exists(os.path.join(work, n + ".load"))]
rows = []
load = {n: kv(n, "load") for n in names}
scans = {n: kv(n, "scans") for n in names}
rows.append(("load (s)", {n: load[n].get("load") for n in names}, "time"))
rows.append(("CREATE INDEX (s)", {n: load[n].get("index") for n in names}, "time"))
rows.append(("grouped aggregate (ms)", {n: scans[n].get("grouped") for n in names}, "time"))
rows.append(("filtered scan (ms)", {n: scans[n].get("filtered") for n in names}, "time"))
for script, label in (("pk", "point select by key"), ("index", "point select by index")):
    r = {n: pgbench(n, script) for n in names}
    rows.append((f"{label} tps", {n: r[n][0] for n in names}, "rate"))
    rows.append((f"{label} latency ms", {n: r[n][1] for n in names}, "time"))

def fmt(v):
    return "-" if v is None else f"{v:,.1f}"

head = f"{'metric':<32}" + "".join(f"{n:>14}" for n in names)
others = [n for n in names if n != "postgres"]
if "postgres" in names:
    # Speed relative to PostgreSQL: above 1 is faster, for times and rates alike.
    head += "".join(f"{n + ' speed':>16}" for n in others)
print(head)
for label, vals, kind in rows:
    line = f"{label:<32}" + "".join(f"{fmt(vals[n]):>14}" for n in names)
    if "postgres" in names:
        for n in others:
            a, b = vals.get("postgres"), vals.get(n)
            ratio = None
            if a and b:
                ratio = a / b if kind == "time" else b / a
            line += f"{('-' if ratio is None else f'{ratio:.2f}x'):>16}"
    print(line)
PY
log "outputs in $WORK"
