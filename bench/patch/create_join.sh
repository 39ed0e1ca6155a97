#!/usr/bin/env bash
# Short-lived threads made one at a time (bench/patch/create_join.c: a loop of pthread_create
# + pthread_join of a thread that returns at once): microseconds per create + join natively,
# and under each given ringlet-run with --threads 1 and --threads 2, rounds alternating between
# all the modes (the order rotated each round), medians. Give one ringlet-run, or two (a
# before and an after build, labelled A and B) to compare them in the same run.
#   bench/patch/create_join.sh [--runs N] [--pairs P] [--batch B] [--helper MS] [RINGLET_RUN [RINGLET_RUN_B]]
#     --runs N    rounds (default 5; at least 3)
#     --pairs P   create + join pairs per run (default 20000)
#     --batch B   threads made before joining them (default 1; e.g. 8: 8 creates, 8 joins)
#     --helper MS instead: main makes one thread and both compute MS ms without a call, then
#                 main joins it (10 times a run); wall ms per round (MS: in parallel)
#     RINGLET_RUN defaults to this checkout's build-rel/patch/ringlet-run (built if missing)
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=5
pairs=20000
batch=1
helper=""
while [ $# -gt 0 ]; do
  case $1 in
    --runs) runs=$2; shift 2 ;;
    --pairs) pairs=$2; shift 2 ;;
    --batch) batch=$2; shift 2 ;;
    --helper) helper=$2; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    -*) echo "create_join.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) break ;;
  esac
done
[ "$runs" -ge 3 ] 2>/dev/null || { echo "create_join.sh: --runs must be at least 3 (medians)" >&2; exit 2; }
if [ $# -eq 0 ]; then
  bash scripts/build.sh build-rel --buildtype=release -Dtests=false >/dev/null
  set -- "$PWD/build-rel/patch/ringlet-run"
fi
[ $# -le 2 ] || { echo "create_join.sh: at most two ringlet-run builds" >&2; exit 2; }
for rr in "$@"; do [ -x "$rr" ] || { echo "create_join.sh: $rr is not an executable ringlet-run" >&2; exit 2; }; done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
gcc -O2 -o "$tmp/create_join" bench/patch/create_join.c -lpthread
args=("$pairs" "$batch")
key=create_join_us
[ -n "$helper" ] && args=(--helper "$helper" 10) && key=helper_ms
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

modes=(native)
labels=(A B)
for i in $(seq 0 $(($# - 1))); do
  modes+=("${labels[$i]}:1" "${labels[$i]}:2")
done
rr_of() { [ "${1%%:*}" = A ] && echo "$A" || echo "$B"; }
A=$1
B=${2:-}
nm=${#modes[@]}
for r in $(seq "$runs"); do
  line="round $r:"
  for k in $(seq 0 $((nm - 1))); do
    m=${modes[$(((k + r) % nm))]}
    if [ "$m" = native ]; then
      out=$("$tmp/create_join" "${args[@]}" 2>"$tmp/err")
    else
      out=$(RINGLET_MAX_BLOCKING_MS=0 "$(rr_of "$m")" --threads "${m#*:}" -- "$tmp/create_join" "${args[@]}" 2>"$tmp/err")
    fi
    us=$(echo "$out" | awk -v k="$key" '$1 == k {print $2}')
    [ -n "$us" ] || { echo "create_join.sh: $m failed: $(cat "$tmp/err")" >&2; exit 1; }
    echo "$us" >>"$tmp/${m/:/_}"
    line="$line $m=$us"
    grep -oE "ran on [0-9]+ OS thread\(s\), [0-9]+ on main.s|ran on main.s OS thread in [0-9]+ of [0-9]+ rounds, at the same time as main in [0-9]+" "$tmp/err" >"$tmp/${m/:/_}.where" || true
  done
  echo "$line"
done
if [ -n "$helper" ]; then
  printf '\nms per round (main and one thread computing %s ms each), medians of %s runs:\n' "$helper" "$runs"
else
  printf '\nmicroseconds per create + join, medians of %s rounds (%s pairs, batch %s):\n' "$runs" "$pairs" "$batch"
fi
printf '| mode | median | where the threads ran (last run) |\n|---|---:|---|\n'
for m in "${modes[@]}"; do
  f=$tmp/${m/:/_}
  name=$m
  [ "$m" = native ] || name="${m%%:*} --threads ${m#*:}"
  printf '| %s | %s | %s |\n' "$name" "$(median <"$f")" "$(cat "$f.where")"
done
[ -n "$B" ] && echo "(A: $A; B: $B)"
exit 0
