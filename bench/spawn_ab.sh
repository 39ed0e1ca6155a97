#!/usr/bin/env bash
# spawn+run+join (bench_spawn's ringlet part) of two builds in ONE process, their rounds
# alternating on one CPU (bench/spawn_ab/host.cpp): per-process noise (where the stacks land
# in physical memory, the other CPU's load on the shared cache) is shared by both, which
# separate processes alternating do not manage (their medians vary by +-10 % run to run).
# Both load orders (a library loaded second measured a few % apart in some sessions); the
# result is the geometric mean of the two orders' medians of per-run after/before ratios.
#   bench/spawn_ab.sh [--runs N] [--rounds R] [--cpu C] BEFORE_BUILD_DIR AFTER_BUILD_DIR
# Run pinned at real-time priority (chrt -f 10, as root) so that nothing preempts a round.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=20
rounds=5
cpu=1
while [ $# -gt 0 ]; do
  case $1 in
    --runs) runs=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --cpu) cpu=$2; shift 2 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    -*) echo "spawn_ab.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) break ;;
  esac
done
[ $# -eq 2 ] || { echo "usage: spawn_ab.sh [--runs N] [--rounds R] [--cpu C] BEFORE_BUILD_DIR AFTER_BUILD_DIR" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
i=0
for b in "$1" "$2"; do
  b=$(cd "$b" && pwd)
  src=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["directories"]["source"])' "$b/meson-info/meson-info.json")
  [ -e "$b/libringlet.so" ] || { echo "spawn_ab.sh: $b/libringlet.so is missing" >&2; exit 2; }
  g++ -O2 -std=c++20 -fPIC -shared -I"$src/runtime/include" -I"$b/runtime" bench/spawn_ab/driver.cpp \
    -o "$tmp/driver$i.so" -L"$b" -Wl,-rpath,"$b" -lringlet
  i=$((i + 1))
done
g++ -O2 -std=c++20 -o "$tmp/host" bench/spawn_ab/host.cpp -ldl -pthread
prio=()
if chrt -f 10 true 2>/dev/null; then prio=(chrt -f 10); fi
one=$(taskset -c "$cpu" "${prio[@]}" "$tmp/host" "$runs" "$rounds" "$tmp/driver0.so" "$tmp/driver1.so" | tail -1)
two=$(taskset -c "$cpu" "${prio[@]}" "$tmp/host" "$runs" "$rounds" "$tmp/driver0.so" "$tmp/driver1.so" after-first | tail -1)
field() { tr ' ' '\n' | awk -F= -v k="$1" '$1 == k {print $2}'; }
r1=$(echo "$one" | field run_ratio); r2=$(echo "$two" | field run_ratio)
echo "before loaded first:  $one"
echo "after loaded first:   $two"
awk -v a="$r1" -v b="$r2" -v n="$runs" -v k="$rounds" 'BEGIN {
  printf "spawn+run+join after/before: %.3f (before loaded first %.3f, after loaded first %.3f; %d runs x %d rounds each)\n", sqrt(a * b), a, b, n, k }'
