#!/usr/bin/env bash
# Starts, inspects and stops a local three-node Meridian cluster, one process per node on
# 127.0.0.1, 127.0.0.2 and 127.0.0.3 (all loopback), with data under $MERIDIAN_CLUSTER_DIR
# (default /tmp/meridian-cluster). Node 1 is the time master the others synchronise with.
#
#   ops/cluster.sh start    build if needed, start three nodes, initialise the cluster
#   ops/cluster.sh status   show each node's replicas
#   ops/cluster.sh stop     stop the nodes gracefully (SIGTERM)
#   ops/cluster.sh kill N   SIGKILL node N (1-3), to try failover
#   ops/cluster.sh restart N  start node N again on its data
#   ops/cluster.sh add N    start a new node N (4, 5, ...) on 127.0.0.N: it joins the running
#                           cluster by itself and the placement driver moves replicas onto it
#
# SQL: psql -h 127.0.0.1 -p 26257 -U root defaultdb   (node 2: 127.0.0.2, node 3: 127.0.0.3)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${MERIDIAN_CLUSTER_DIR:-/tmp/meridian-cluster}
target=${CARGO_TARGET_DIR:-target}
bin=${MERIDIAN_BIN:-$target/release/meridian}
join=127.0.0.1:26258,127.0.0.2:26258,127.0.0.3:26258

# The node numbers that have a data directory.
nodes() {
    for d in "$dir"/node[0-9]*/; do
        [[ -d $d ]] && basename "$d" | sed 's/^node//'
    done | sort -n
}

start_node() {
    local n=$1 host=127.0.0.$1
    mkdir -p "$dir/node$n"
    "$bin" start --insecure --data-dir "$dir/node$n" \
        --sql-addr "$host:26257" --listen-addr "$host:26258" --http-addr "$host:8080" \
        --join "$join" --time-masters 127.0.0.1:26258 --region local --zone "zone-$n" \
        >>"$dir/node$n.log" 2>&1 &
    echo $! >"$dir/node$n.pid"
    echo "node $n: pid $(cat "$dir/node$n.pid"), sql $host:26257, log $dir/node$n.log"
}

case "${1:-}" in
start)
    [[ -x $bin ]] || cargo build --release -p meridian
    for n in 1 2 3; do start_node "$n"; done
    for _ in $(seq 100); do
        "$bin" init --insecure --host 127.0.0.1:26258 2>/dev/null && exit 0
        sleep 0.2
    done
    echo "cluster.sh: init failed; see $dir/node*.log" >&2
    exit 1
    ;;
status)
    for n in $(nodes); do "$bin" node status --insecure --host "127.0.0.$n:26258" || true; done
    ;;
stop)
    for n in $(nodes); do
        [[ -f $dir/node$n.pid ]] && kill -TERM "$(cat "$dir/node$n.pid")" 2>/dev/null || true
        rm -f "$dir/node$n.pid"
    done
    ;;
kill)
    n=${2:?node number}
    kill -KILL "$(cat "$dir/node$n.pid")"
    rm -f "$dir/node$n.pid"
    ;;
restart)
    start_node "${2:?node number}"
    ;;
add)
    n=${2:?node number}
    [[ $n =~ ^[0-9]+$ && $n -ge 4 && $n -le 254 ]] || { echo "cluster.sh: add takes a node number from 4 to 254" >&2; exit 2; }
    [[ -d $dir/node$n ]] && { echo "cluster.sh: node $n exists; use restart" >&2; exit 2; }
    start_node "$n"
    ;;
*)
    sed -n '2,16p' "$0"
    exit 2
    ;;
esac
