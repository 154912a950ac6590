#!/usr/bin/env bash
# Fleet service benchmark, one run:
#  1. import rate (findings per second) and p50/p99 API latency, SQLite vs PostgreSQL: for each
#     backend `iotcop serve --workers 0 --no-tls` on a loopback address, 100 distinct reports
#     (100 000 findings) POSTed to /api/v1/reports with an API token, then, with them all stored,
#     GET /api/v1/findings?limit=100, a filtered findings query and GET /api/v1/devices, with one
#     client and with 8 concurrent clients; prints both backends and the PostgreSQL/SQLite ratios;
#  2. worker scaling on PostgreSQL: one sharded default-credentials scan of 1000 virtual lab
#     cameras worked by 1, 2 and 3 `iotcop worker` processes (a fresh database each run); prints
#     each time and the speed-up over one worker.
# Flags (passed to bench/servebench): -quick (smaller sizes, a smoke run), -only import|workers,
# -keep (keep the work folder with the server and worker logs).
# Needs root: the throw-away PostgreSQL (internal/pgtest, apt-get install postgresql when missing)
# runs as the postgres user, and the lab opens 1000 listeners. Loopback only; every server, worker
# and the lab are stopped on exit, Ctrl-C included.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "run as root: the PostgreSQL server drops to the postgres user, the lab opens 1000 listeners" >&2; exit 2; }
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 ||
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
go build -o "$tmp/iotcop" ./cmd/iotcop
go build -o "$tmp/servebench" ./bench/servebench
# servebench stops its servers, workers and lab itself on exit and on SIGINT/SIGTERM/SIGHUP.
"$tmp/servebench" -iotcop "$tmp/iotcop" "$@" &
pid=$!
rc=0
wait "$pid" || rc=$?
pid=
exit "$rc"
