#!/usr/bin/env bash
# The patch layer's costs, side by side in one run:
#  1. an interposed call that passes through (not on a fiber) against the bare libc call:
#     median ns of alternating batches, and instructions per call counted by callgrind
#     (repeatable whatever else the machine does);
#  2. a single-threaded program's wall time natively and under ringlet-run, on the same work
#     (a pipe it never blocks on, blocking TCP round trips with a forked echo child, short
#     sleeps): medians of alternating runs and the ratio.
#   bench/patch/run.sh [--runs N]
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=5
[ "${1:-}" = "--runs" ] && runs=$2
bash scripts/build.sh build-rel --buildtype=release -Dtests=false >/dev/null
b=build-rel
lib=$PWD/$b/patch/libringlet_patch.so
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(uname -r) $(nproc) cores"
echo "## pass-through: 200000 calls x 15 batches, native process then preloaded (RINGLET_PATCH_MAIN=0: not on a fiber)"
"$b/bench/patch_passthrough" 200000 15
LD_PRELOAD=$lib RINGLET_PATCH_MAIN=0 "$b/bench/patch_passthrough" 200000 15
if command -v valgrind >/dev/null; then
  count() {  # instructions per read() call: total of a 200k-call run minus a 100k-call run
    local out=$1; shift
    "$@" valgrind --tool=callgrind --callgrind-out-file="$out" "$b/bench/patch_passthrough" "$N" 1 >/dev/null 2>&1
    callgrind_annotate "$out" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",","",$1); print $1}'
  }
  tmp=$(mktemp -d)
  N=20000; a1=$(count "$tmp/a1" env); ap1=$(count "$tmp/p1" env LD_PRELOAD=$lib RINGLET_PATCH_MAIN=0)
  N=40000; a2=$(count "$tmp/a2" env); ap2=$(count "$tmp/p2" env LD_PRELOAD=$lib RINGLET_PATCH_MAIN=0)
  # Each run makes 6 kinds x N calls (3 bare + 3 named); the preloaded run's named calls go
  # through the hook, so the extra instructions per hooked call are:
  echo "callgrind: instructions per hooked pass-through call, over the bare call: $(( ((ap2 - ap1) - (a2 - a1)) / (3 * 20000) ))"
  rm -rf "$tmp"
fi

echo "## a single-threaded program natively and under ringlet-run ($runs alternating runs, median s)"
printf '%-28s %10s %10s %8s\n' work native patched ratio
for w in "pipe 200000" "tcp 20000" "sleep 2000"; do
  nat=(); pat=()
  for ((i = 0; i < runs; i++)); do
    nat+=("$("$b/bench/patch_work" $w)")
    pat+=("$("$b/patch/ringlet-run" -- "$b/bench/patch_work" $w)")
  done
  n=$(printf '%s\n' "${nat[@]}" | median)
  p=$(printf '%s\n' "${pat[@]}" | median)
  printf '%-28s %10s %10s %8.3f\n' "$w" "$n" "$p" "$(echo "$p / $n" | bc -l)"
done
