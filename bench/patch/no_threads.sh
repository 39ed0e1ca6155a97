#!/usr/bin/env bash
# A program that creates no threads (bench/echo/epoll_echo.c, one epoll loop) under
# ringlet-run with 1 and 2 carriers (RINGLET_THREADS): 50 connections x 64 B for 3 s,
# alternating, 5 rounds; msgs/s, the server's CPU per message (/proc/PID/stat, 10 ms ticks)
# and its OS threads. Issue 21: such a program must perform as on one carrier.
# Needs build-rel (bash scripts/build.sh build-rel --buildtype=release -Dtests=false).
#   bench/patch/no_threads.sh
set -u
case ${1:-} in -h|--help) sed -n '2,7p' "$0"; exit 0 ;; esac
cd "$(dirname "$0")/../.."
[ -x build-rel/patch/ringlet-run ] || { echo "no_threads.sh: build build-rel first (see --help)" >&2; exit 2; }
tmp=$(mktemp -d)
gcc -O2 -o $tmp/epoll_echo bench/echo/epoll_echo.c
gcc -O2 -o $tmp/loadgen bench/echo/loadgen.c
port=7700
for r in 1 2 3 4 5; do
  for t in 1 2; do
    port=$((port+1))
    RINGLET_THREADS=$t build-rel/patch/ringlet-run -- $tmp/epoll_echo $port >/dev/null 2>&1 &
    pid=$!
    sleep 0.3
    c0=$(awk '{print $14+$15}' /proc/$pid/stat)
    out=$(timeout 20 $tmp/loadgen 127.0.0.1 $port 50 64 3)
    c1=$(awk '{print $14+$15}' /proc/$pid/stat)
    th=$(awk '/Threads/{print $2}' /proc/$pid/status)
    kill $pid; wait $pid 2>/dev/null
    msgs=$(echo "$out" | tr ' ' '\n' | awk -F= '$1=="msgs_per_s"{print $2}')
    trips=$(echo "$out" | tr ' ' '\n' | awk -F= '$1=="trips"{print $2}')
    echo "round $r threads $t msgs_per_s=$msgs cpu_us_per_msg=$(awk -v a=$c0 -v b=$c1 -v n=$trips 'BEGIN{printf "%.3f", (b-a)*10000/n}') os_threads=$th"
  done
done
rm -rf $tmp
