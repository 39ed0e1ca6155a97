#!/usr/bin/env bash
# Run every benchmark with its baselines, side by side in one run on this machine.
# Installs the baselines (Boost.Fiber, Go, gevent) from Debian's packages if missing.
#   bench/run.sh [--quick]     --quick: 200 000 instead of a million parked fibers
set -euo pipefail
cd "$(dirname "$0")/.."
million=1000000
[ "${1:-}" = "--quick" ] && million=200000
bash scripts/setup.sh libboost-fiber-dev golang-go python3-gevent
bash scripts/build.sh build-rel --buildtype=release -Dtests=false
gobin=$(mktemp -d)
trap 'rm -rf "$gobin"' EXIT
export GOCACHE="$gobin/cache" GOPATH="$gobin/path" GOFLAGS=-mod=mod GO111MODULE=off
for p in switch spawn million sync cross; do go build -o "$gobin/$p" "bench/go/$p.go"; done

echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(uname -r) $(nproc) cores, $(go version | cut -d' ' -f3), $(/usr/bin/python3 -c 'import gevent; print("gevent", gevent.__version__)')"
./build-rel/bench/bench_switch
"$gobin/switch"
/usr/bin/python3 bench/gevent/switch.py
./build-rel/bench/bench_spawn
"$gobin/spawn" 1
"$gobin/spawn" "$(nproc)"
/usr/bin/python3 bench/gevent/spawn.py
./build-rel/bench/bench_page_floor "$million"
./build-rel/bench/bench_million "$million"
"$gobin/million" "$million"
/usr/bin/python3 bench/gevent/million.py 100000
./build-rel/bench/bench_idle
./build-rel/bench/bench_dump 100000
./build-rel/bench/bench_sync
"$gobin/sync"
./build-rel/bench/bench_cross
"$gobin/cross"
