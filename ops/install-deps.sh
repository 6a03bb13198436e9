#!/usr/bin/env bash
# Installs what building and testing Meridian needs beyond a Rust toolchain. Idempotent.
# protoc is not needed: the build uses the one vendored by the protoc-bin-vendored crate.
set -euo pipefail

need=()
command -v psql >/dev/null 2>&1 || need+=(postgresql-client)
# The server, for the differential tester (crates/sql/tests/difftest), which starts a private
# PostgreSQL 15 from these binaries.
[[ -x /usr/lib/postgresql/15/bin/initdb ]] || need+=(postgresql)
command -v cc >/dev/null 2>&1 || need+=(build-essential)
command -v python3 >/dev/null 2>&1 || need+=(python3 python3-pip)

if ((${#need[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        echo "install-deps: missing ${need[*]}; run as root or install them with apt-get" >&2
        exit 1
    fi
    echo "install-deps: installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

# psycopg 3 (with its own libpq) for the Python driver test (crates/server/tests/psycopg.rs).
if ! python3 -c 'import psycopg' >/dev/null 2>&1; then
    echo "install-deps: installing psycopg (pip)"
    python3 -m pip install --quiet --disable-pip-version-check 'psycopg[binary]==3.3.9'
fi

if ! command -v cargo >/dev/null 2>&1; then
    echo "install-deps: cargo not found; install Rust (https://rustup.rs) first" >&2
    exit 1
fi
