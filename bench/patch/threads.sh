#!/usr/bin/env bash
# Threads become fibers: an unmodified thread-per-connection echo server (the test suite's
# tests/patch/thread_echo.c) natively and under ringlet-run, side by side in one run, and the
# pthread handoffs themselves.
#  1. 50 connections ping-ponging 64 B for SECONDS: msgs/s and the server's CPU per message
#     (medians of alternating runs, ratio patched/native);
#  2. 10 000 connections: RSS and OS threads while all are open (each echoed once, checked),
#     then msgs/s with all 10 000 ping-ponging;
#  3. mutex and condition-variable handoff between two threads (bench/patch/handoff.c).
#   bench/patch/threads.sh [--runs N] [--seconds S]
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=3
seconds=3
while [ $# -gt 0 ]; do
  case $1 in
    --runs) runs=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "threads.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
bash scripts/build.sh build-rel --buildtype=release -Dtests=false >/dev/null
rr=$PWD/build-rel/patch/ringlet-run
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT
gcc -O2 -o "$tmp/thread_echo" tests/patch/thread_echo.c -lpthread
gcc -O2 -o "$tmp/echo_client" tests/patch/echo_client.c
gcc -O2 -o "$tmp/loadgen" bench/echo/loadgen.c
gcc -O2 -o "$tmp/handoff" bench/patch/handoff.c -lpthread
ulimit -n "$(ulimit -Hn)"
div() { awk -v a="$1" -v b="$2" 'BEGIN { print a / b }'; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
port=7400

# start_server native|patched -> sets $srv (the server's pid: ringlet-run execs the program)
start_server() {
  port=$((port + 1))
  # The files are emptied here, not by the redirections below: those run in the background
  # child, and the loop could read the previous server's "listening" before it does.
  : >"$tmp/srv.out"
  : >"$tmp/srv.err"
  if [ "$1" = patched ]; then "$rr" -- "$tmp/thread_echo" "$port" >"$tmp/srv.out" 2>"$tmp/srv.err" &
  else "$tmp/thread_echo" "$port" >"$tmp/srv.out" 2>"$tmp/srv.err" & fi
  srv=$!
  for _ in $(seq 100); do grep -q "^listening on $port\$" "$tmp/srv.out" && return; sleep 0.05; done
  echo "threads.sh: the $1 server did not start: $(cat "$tmp/srv.err")" >&2; exit 1
}
stop_server() { kill "$srv" 2>/dev/null; wait "$srv" 2>/dev/null || true; }
field() { tr ' ' '\n' | awk -F= -v k="$1" '$1 == k {print $2}'; }
status() { awk -v k="$2" '$1 == k":" {print $2}' "/proc/$1/status"; }

echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(uname -r) $(nproc) cores, $runs alternating runs"
echo "## 50 connections, 64 B ping-pong, ${seconds} s each"
for r in $(seq "$runs"); do
  for mode in native patched; do
    start_server $mode
    out=$("$tmp/loadgen" 127.0.0.1 "$port" 50 64 "$seconds" 1 "$srv")
    stop_server
    echo "$out" | field msgs_per_s >>"$tmp/$mode.mps"
    echo "$out" | field cpu_us_per_msg >>"$tmp/$mode.cpu"
  done
done
nm=$(median <"$tmp/native.mps"); pm=$(median <"$tmp/patched.mps")
nc=$(median <"$tmp/native.cpu"); pc=$(median <"$tmp/patched.cpu")
printf '| | native (thread per connection) | ringlet-run (fiber per connection) | ratio |\n|---|---:|---:|---:|\n'
printf '| msgs/s | %s | %s | %.2fx |\n' "$nm" "$pm" "$(div "$pm" "$nm")"
printf '| server CPU per message, us | %s | %s | %.2fx |\n' "$nc" "$pc" "$(div "$pc" "$nc")"

echo "## 10 000 connections"
printf '| | threads | RSS MiB | kernel stacks MiB (KernelStack delta) | msgs/s, all 10 000 ping-ponging %s s |\n|---|---:|---:|---:|---:|\n' "$seconds"
for mode in native patched; do
  ks0=$(awk '/^KernelStack:/ {print $2}' /proc/meminfo)
  start_server $mode
  : >"$tmp/client.out"  # as for srv.out: the native run's "open" must not be read here
  "$tmp/echo_client" "$port" 10000 3 >"$tmp/client.out" 2>&1 &
  client=$!
  for _ in $(seq 600); do grep -q "^open" "$tmp/client.out" && break; sleep 0.1; done
  th=$(status "$srv" Threads); rss=$(status "$srv" VmRSS)
  ks1=$(awk '/^KernelStack:/ {print $2}' /proc/meminfo)
  wait "$client" || {
    echo "threads.sh: echo_client failed: $(cat "$tmp/client.out"); the $mode server is $(kill -0 "$srv" 2>/dev/null && echo running || echo gone), its stderr: $(cat "$tmp/srv.err")" >&2
    exit 1
  }
  mps=$("$tmp/loadgen" 127.0.0.1 "$port" 10000 64 "$seconds" 1 | field msgs_per_s)
  stop_server
  printf '| %s | %s | %.1f | %.1f | %s |\n' "$mode" "$th" "$(div "$rss" 1024)" "$(div "$((ks1 - ks0))" 1024)" "$mps"
done

echo "## pthread handoff between two threads (bench/patch/handoff.c, ns, median)"
for r in $(seq "$runs"); do
  "$tmp/handoff" 100000 >>"$tmp/h.native"
  "$rr" -- "$tmp/handoff" 100000 >>"$tmp/h.patched"
done
printf '| | native threads | fibers under ringlet-run | ratio |\n|---|---:|---:|---:|\n'
for k in lock_unlock_ns cond_pingpong_ns mutex_handoff_ns; do
  n=$(awk -v k="$k" '{for (i = 1; i < NF; i++) if ($i == k) print $(i + 1)}' "$tmp/h.native" | median)
  p=$(awk -v k="$k" '{for (i = 1; i < NF; i++) if ($i == k) print $(i + 1)}' "$tmp/h.patched" | median)
  printf '| %s | %s | %s | %.2fx |\n' "$k" "$n" "$p" "$(div "$p" "$n")"
done
