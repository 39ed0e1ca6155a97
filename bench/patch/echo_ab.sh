#!/usr/bin/env bash
# Two ringlet-run builds side by side on the patch's hot path: the test suite's
# thread-per-connection echo server (tests/patch/thread_echo.c) under each, 50 connections
# ping-ponging 64 B (bench/echo/loadgen.c), alternating runs; msgs/s and the server's CPU per
# message, medians, the ratio after/before and the median of each round's ratio. For a change
# to the hooks or the switch:
#   bench/patch/echo_ab.sh [--runs N] [--seconds S] [--conns C] [--threads T] BEFORE_RINGLET_RUN AFTER_RINGLET_RUN
#     --conns C    connections (default 50; 1000 is patch_cores.sh's pure echo)
#     --threads T  ringlet-run --threads T (default: the launcher's, one carrier per CPU)
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=5
seconds=3
conns=50
threads=()
while [ $# -gt 0 ]; do
  case $1 in
    --runs) runs=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --conns) conns=$2; shift 2 ;;
    --threads) threads=(--threads "$2"); shift 2 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    -*) echo "echo_ab.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) break ;;
  esac
done
[ $# -eq 2 ] || { echo "usage: echo_ab.sh [--runs N] [--seconds S] [--conns C] [--threads T] BEFORE_RINGLET_RUN AFTER_RINGLET_RUN" >&2; exit 2; }
for rr in "$1" "$2"; do [ -x "$rr" ] || { echo "echo_ab.sh: $rr is not an executable ringlet-run" >&2; exit 2; }; done
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT
gcc -O2 -o "$tmp/thread_echo" tests/patch/thread_echo.c -lpthread
gcc -O2 -o "$tmp/loadgen" bench/echo/loadgen.c
field() { tr ' ' '\n' | awk -F= -v k="$1" '$1 == k {print $2}'; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ulimit -n "$(ulimit -Hn)"
port=7600
for r in $(seq "$runs"); do
  for v in before after; do
    rr=$([ $v = before ] && echo "$1" || echo "$2")
    port=$((port + 1))
    : >"$tmp/srv.out"
    RINGLET_MAX_BLOCKING_MS=0 "$rr" "${threads[@]}" -- "$tmp/thread_echo" "$port" >"$tmp/srv.out" 2>/dev/null &
    srv=$!
    for _ in $(seq 100); do grep -q "^listening on $port\$" "$tmp/srv.out" && break; sleep 0.05; done
    out=$("$tmp/loadgen" 127.0.0.1 "$port" "$conns" 64 "$seconds" 1 "$srv")
    kill "$srv"; wait "$srv" 2>/dev/null || true
    echo "$out" | field msgs_per_s >>"$tmp/$v.mps"
    echo "$out" | field cpu_us_per_msg >>"$tmp/$v.cpu"
    echo "run $r $v: $(tail -1 "$tmp/$v.mps") msgs/s, $(tail -1 "$tmp/$v.cpu") us CPU per message"
  done
done
bm=$(median <"$tmp/before.mps"); am=$(median <"$tmp/after.mps")
bc=$(median <"$tmp/before.cpu"); ac=$(median <"$tmp/after.cpu")
printf '| | before | after | after/before |\n|---|---:|---:|---:|\n'
printf '| msgs/s | %s | %s | %.3f |\n' "$bm" "$am" "$(awk -v a="$am" -v b="$bm" 'BEGIN { print a / b }')"
printf '| server CPU per message, us | %s | %s | %.3f |\n' "$bc" "$ac" "$(awk -v a="$ac" -v b="$bc" 'BEGIN { print a / b }')"
# Runs next to each other see the same machine: each round's after/before, then their median.
echo "CPU per message, after/before by round (median): $(paste "$tmp/after.cpu" "$tmp/before.cpu" | awk '{ printf "%.3f\n", $1 / $2 }' | median)"
