# Shared by the side-by-side benchmark scripts (source it): start Debian's PostgreSQL 15, a
# single Meridian node, a three-process Meridian cluster on loopback or three nodes in
# simulated regions, and stop them on exit.
#
# Expects WORK (a scratch directory) and BIN (the meridian binary) to be set; sets PG_BIN.

log() { printf '== %s\n' "$*" >&2; }

# Runs a command as the postgres user when we are root (PostgreSQL refuses to run as root).
as_pg() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

MERIDIAN_PID=""
CLUSTER_DIR=""

stop_all() {
    if [ -n "$MERIDIAN_PID" ] && kill -0 "$MERIDIAN_PID" 2>/dev/null; then
        kill "$MERIDIAN_PID" 2>/dev/null || true
        wait "$MERIDIAN_PID" 2>/dev/null || true
    fi
    MERIDIAN_PID=""
    if [ -n "$CLUSTER_DIR" ]; then
        MERIDIAN_CLUSTER_DIR="$CLUSTER_DIR" MERIDIAN_BIN="$BIN" bash ops/cluster.sh stop >/dev/null 2>&1 || true
        CLUSTER_DIR=""
    fi
    if [ -n "${PG_BIN:-}" ] && [ -f "$WORK/postgres/data/postmaster.pid" ]; then
        as_pg "$PG_BIN/pg_ctl" -D "$WORK/postgres/data" -m fast stop >/dev/null 2>&1 || true
    fi
}

build_meridian() {
    if [ ! -x "$BIN" ]; then
        log "building the release binary"
        cargo build --release --locked -p meridian
    fi
}

# start_postgres PORT: a fresh PostgreSQL 15 on 127.0.0.1:PORT, data under $WORK/postgres.
start_postgres() {
    local port=$1
    PG_BIN=$(ls -d /usr/lib/postgresql/15/bin 2>/dev/null || true)
    if [ -z "$PG_BIN" ]; then
        log "installing PostgreSQL 15 (apt-get)"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
        PG_BIN=/usr/lib/postgresql/15/bin
    fi
    mkdir -p "$WORK/postgres"
    if [ "$(id -u)" = 0 ]; then chown postgres "$WORK/postgres"; fi
    log "starting PostgreSQL 15 on 127.0.0.1:$port (data in $WORK/postgres/data)"
    as_pg "$PG_BIN/initdb" -D "$WORK/postgres/data" -U postgres --auth=trust >"$WORK/postgres/initdb.log" 2>&1
    as_pg "$PG_BIN/pg_ctl" -D "$WORK/postgres/data" -l "$WORK/postgres/server.log" -w start \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $WORK/postgres -c max_connections=300" >/dev/null
}

# start_meridian PORT [FLAG...]: one node, SQL on 127.0.0.1:PORT (gRPC PORT+1, HTTP PORT+2),
# with any further `meridian start` flags.
start_meridian() {
    local port=$1
    shift
    log "starting Meridian on 127.0.0.1:$port (data in $WORK/meridian) $*"
    "$BIN" start --single-node --insecure --data-dir "$WORK/meridian" \
        --sql-addr "127.0.0.1:$port" \
        --listen-addr "127.0.0.1:$((port + 1))" \
        --http-addr "127.0.0.1:$((port + 2))" "$@" >"$WORK/meridian.log" 2>&1 &
    MERIDIAN_PID=$!
    wait_for_sql 127.0.0.1 "$port" || {
        log "Meridian did not become ready; see $WORK/meridian.log"
        return 1
    }
}

# start_cluster: three processes on 127.0.0.1-3 (ops/cluster.sh), SQL on port 26257 of each.
start_cluster() {
    CLUSTER_DIR="$WORK/cluster"
    log "starting a three-node Meridian cluster (data in $CLUSTER_DIR)"
    MERIDIAN_CLUSTER_DIR="$CLUSTER_DIR" MERIDIAN_BIN="$BIN" bash ops/cluster.sh start >&2
    wait_for_sql 127.0.0.1 26257
}

# start_regions PORT: three nodes in one process in three simulated regions (`meridian demo
# --nodes 3 --global`), node 1 (us-east1) taking SQL on 127.0.0.1:PORT.
start_regions() {
    local port=$1
    log "starting three Meridian nodes in three simulated regions (data in $WORK/regions)"
    "$BIN" demo --nodes 3 --global --no-shell --data-dir "$WORK/regions" \
        --sql-addr "127.0.0.1:$port" >"$WORK/regions.log" 2>&1 &
    MERIDIAN_PID=$!
    wait_for_sql 127.0.0.1 "$port" || {
        log "the regions demo did not become ready; see $WORK/regions.log"
        return 1
    }
}

# wait_for_sql HOST PORT: until a SQL query answers (30 s at most).
wait_for_sql() {
    for _ in $(seq 1 150); do
        psql -X -q -h "$1" -p "$2" -U root -d defaultdb -c 'SELECT 1' >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    return 1
}

# run_sides PG_PORT MERIDIAN_PORT: for each side named in $SIDES (postgres, meridian, cluster),
# starts it fresh, calls the script's `bench NAME HOST PORT USER DATABASE`, and stops it.
run_sides() {
    local side
    for side in $SIDES; do
        case $side in
        postgres)
            start_postgres "$1"
            bench postgres 127.0.0.1 "$1" postgres postgres
            ;;
        meridian)
            start_meridian "$2" && bench meridian 127.0.0.1 "$2" root defaultdb
            ;;
        cluster)
            start_cluster && bench cluster 127.0.0.1 26257 root defaultdb
            ;;
        *)
            log "unknown side $side (postgres, meridian, cluster)"
            ;;
        esac
        stop_all
    done
}
