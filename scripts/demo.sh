#!/usr/bin/env bash
# Set up, build and run the demo: the echo server, one OS thread with a fiber per connection,
# driven by the echo client's 500 concurrent connections (the seed's 500 threads), then
# stopped with SIGINT so it prints what it served; then the same server with a scheduler on
# each of two cores (--threads 2).
#   scripts/demo.sh                  the demo on 127.0.0.1:8080 (another port: --listen ADDR)
#   scripts/demo.sh --serve [ARGS]   just the server, in the foreground (Ctrl-C stops it);
#                                    ARGS go to echo_server (--listen, --threads, --upper,
#                                    --max-conns; --help lists them)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh build-rel --buildtype=release -Dtests=false
if [ "${1:-}" = "--serve" ]; then
  shift
  exec ./build-rel/examples/echo_server "$@"
fi
listen=127.0.0.1:8080
[ "${1:-}" = "--listen" ] && listen=$2
start_server() {
  ./build-rel/examples/echo_server --listen "$listen" "$@" &
  server=$!
  trap 'kill $server 2>/dev/null || true' EXIT
  for _ in $(seq 50); do  # until it listens
    ./build-rel/examples/echo_client --connect "$listen" --conns 1 --rounds 1 >/dev/null 2>&1 && break
    sleep 0.1
  done
}
start_server
echo "--- 500 connections at once, 200 messages of 64 bytes each, every reply checked:"
./build-rel/examples/echo_client --connect "$listen" --conns 500 --rounds 200 --size 64
echo "--- 50 connections, 20 messages of 1 MiB each:"
./build-rel/examples/echo_client --connect "$listen" --conns 50 --rounds 20 --size 1048576
echo "--- the server process now: $(grep -E '^(Threads|VmRSS)' /proc/$server/status | tr -s '\t ' ' ' | paste -sd, -)"
echo "--- Ctrl-C (SIGINT) to the server:"
kill -INT $server
wait $server
trap - EXIT
echo
echo "=== the same server with a scheduler per core: echo_server --threads 2"
start_server --threads 2
echo "--- 1000 connections at once, 100 messages of 64 bytes each:"
./build-rel/examples/echo_client --connect "$listen" --conns 1000 --rounds 100 --size 64
echo "--- the server process now: $(grep -E '^(Threads|VmRSS)' /proc/$server/status | tr -s '\t ' ' ' | paste -sd, -)"
kill -INT $server
wait $server
trap - EXIT
