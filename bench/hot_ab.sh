#!/usr/bin/env bash
# Two release builds side by side on the runtime's hot paths, alternating runs in one go:
# one-way yield (bench_switch), spawn+run+join (bench_spawn), and examples/echo_server's CPU
# per message (50 connections x 64 B ping-pong, bench/echo/loadgen.c, server on CPU 0, load
# on CPU 1). Medians and the ratio after/before. For a change that touches a hot path:
#   bench/hot_ab.sh [--runs N] [--seconds S] BEFORE_BUILD_DIR AFTER_BUILD_DIR
set -euo pipefail
cd "$(dirname "$0")/.."
runs=5
seconds=3
while [ $# -gt 0 ]; do
  case $1 in
    --runs) runs=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
    -*) echo "hot_ab.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) break ;;
  esac
done
[ $# -eq 2 ] || { echo "usage: hot_ab.sh [--runs N] [--seconds S] BEFORE_BUILD_DIR AFTER_BUILD_DIR" >&2; exit 2; }
for b in "$1" "$2"; do
  for p in bench/bench_switch bench/bench_spawn examples/echo_server; do
    [ -x "$b/$p" ] || { echo "hot_ab.sh: $b/$p is missing (build with -Dbench=true)" >&2; exit 2; }
  done
done
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT
gcc -O2 -o "$tmp/loadgen" bench/echo/loadgen.c
field() { tr ' ' '\n' | awk -F= -v k="$1" '$1 == k {print $2}'; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
port=7700
for r in $(seq "$runs"); do
  for v in before after; do
    b=$([ $v = before ] && echo "$1" || echo "$2")
    sw=$(taskset -c 0 "$b/bench/bench_switch")
    echo "$sw" | field ringlet_yield_ns >>"$tmp/$v.yield"
    echo "$sw" | field raw_fcontext_ns >>"$tmp/$v.raw"
    sp=$(taskset -c 0 "$b/bench/bench_spawn")
    echo "$sp" | field ringlet_ns_per_fiber >>"$tmp/$v.spawn"
    port=$((port + 1))
    : >"$tmp/srv.out"
    RINGLET_MAX_BLOCKING_MS=0 taskset -c 0 "$b/examples/echo_server" --listen "127.0.0.1:$port" >"$tmp/srv.out" 2>/dev/null &
    srv=$!
    for _ in $(seq 100); do grep -q "listening" "$tmp/srv.out" && break; sleep 0.05; done
    out=$(taskset -c 1 "$tmp/loadgen" 127.0.0.1 "$port" 50 64 "$seconds" 1 "$srv")
    kill "$srv"; wait "$srv" 2>/dev/null || true
    echo "$out" | field cpu_us_per_msg >>"$tmp/$v.cpu"
    echo "run $r $v: yield $(tail -1 "$tmp/$v.yield") ns (raw $(tail -1 "$tmp/$v.raw")), spawn $(tail -1 "$tmp/$v.spawn") ns, echo $(tail -1 "$tmp/$v.cpu") us CPU/msg"
  done
done
row() {  # label file-stem
  local b a
  b=$(median <"$tmp/before.$2"); a=$(median <"$tmp/after.$2")
  printf '| %s | %s | %s | %.3f |\n' "$1" "$b" "$a" "$(awk -v a="$a" -v b="$b" 'BEGIN { print a / b }')"
}
printf '| medians of %s | before | after | after/before |\n|---|---:|---:|---:|\n' "$runs"
row "raw jump_fcontext, ns" raw
row "yield(), ns" yield
row "spawn+run+join, ns per fiber" spawn
row "echo server CPU per message, us" cpu
