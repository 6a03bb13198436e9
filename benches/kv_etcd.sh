#!/usr/bin/env bash
# Replicated-write throughput and latency, side by side: a three-member etcd 3.4 cluster
# (Debian's etcd-server, installed with apt-get if missing) and a three-node Meridian cluster
# (ops/cluster.sh), both on 127.0.0.1-3, each taking the same single-key puts from
# `meridian workload kv` (same keys, value size and concurrency; workers spread over the three
# members). etcd gets etcd's Put; Meridian gets an upsert of one row over the PostgreSQL wire
# protocol, the way its users write. Prints puts/s and latency percentiles with the ratios.
#
#   benches/kv_etcd.sh                      # 16 workers, 256-byte values, 30 s each
#   CONCURRENCY=64 VALUE_SIZE=1024 DURATION=60s benches/kv_etcd.sh
set -euo pipefail
cd "$(dirname "$0")/.."

CONCURRENCY=${CONCURRENCY:-16}
VALUE_SIZE=${VALUE_SIZE:-256}
DURATION=${DURATION:-30s}
KEYS=${KEYS:-100000}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/meridian-target}"
BIN=${MERIDIAN_BIN:-$CARGO_TARGET_DIR/release/meridian}
WORK=${WORK:-$(mktemp -d /tmp/meridian-kv.XXXXXX)}
mkdir -p "$WORK"
source benches/lib.sh

ETCD_PIDS=()
stop_etcd() {
    for p in "${ETCD_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${ETCD_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    ETCD_PIDS=()
}
trap 'stop_etcd; stop_all' EXIT
build_meridian

if ! command -v etcd >/dev/null; then
    log "installing etcd 3.4 (apt-get)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server etcd-client >/dev/null
fi

workload() {
    "$BIN" workload kv --duration "$DURATION" --concurrency "$CONCURRENCY" \
        --value-size "$VALUE_SIZE" --keys "$KEYS" --json "$WORK/$1.json" --target "$2"
}

cluster=m1=http://127.0.0.1:2380,m2=http://127.0.0.2:2380,m3=http://127.0.0.3:2380
log "starting a three-member etcd cluster (data in $WORK/etcd)"
for i in 1 2 3; do
    etcd --name "m$i" --data-dir "$WORK/etcd/m$i" \
        --listen-client-urls "http://127.0.0.$i:2379" --advertise-client-urls "http://127.0.0.$i:2379" \
        --listen-peer-urls "http://127.0.0.$i:2380" --initial-advertise-peer-urls "http://127.0.0.$i:2380" \
        --initial-cluster "$cluster" --initial-cluster-state new --initial-cluster-token bench \
        >"$WORK/etcd-m$i.log" 2>&1 &
    ETCD_PIDS+=($!)
done
for _ in $(seq 1 100); do
    ETCDCTL_API=3 etcdctl --endpoints=127.0.0.1:2379 endpoint health >/dev/null 2>&1 && break
    sleep 0.2
done
etcd_version=$(etcd --version | awk '/etcd Version/ { print $3 }')
log "etcd $etcd_version: puts for $DURATION"
workload etcd "etcd://127.0.0.1:2379,etcd://127.0.0.2:2379,etcd://127.0.0.3:2379" | tee "$WORK/etcd.txt"
stop_etcd

start_cluster
urls=""
for i in 1 2 3; do
    urls="$urls${urls:+,}postgresql://root@127.0.0.$i:26257/defaultdb?sslmode=disable"
done
log "Meridian: puts for $DURATION"
workload meridian "$urls" | tee "$WORK/meridian.txt"
stop_all

field() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$WORK/$1.json" "$2"; }
printf '\n%-12s %12s %10s %10s %10s %10s\n' "" "puts/s" "p50 ms" "p90 ms" "p99 ms" "errors"
for side in etcd meridian; do
    printf '%-12s %12.0f %10.2f %10.2f %10.2f %10s\n' "$side" "$(field $side ops_per_sec)" \
        "$(field $side p50_ms)" "$(field $side p90_ms)" "$(field $side p99_ms)" "$(field $side errors)"
done
python3 - "$WORK" <<'PY'
import json, sys
e = json.load(open(f"{sys.argv[1]}/etcd.json"))
m = json.load(open(f"{sys.argv[1]}/meridian.json"))
print(f"\nMeridian / etcd: throughput {m['ops_per_sec'] / e['ops_per_sec']:.2f}x, "
      f"p99 latency {m['p99_ms'] / e['p99_ms']:.2f}x")
PY
log "reports in $WORK"
