#!/usr/bin/env bash
# What per-thread CPU clocks (issue 19) cost, before and after, in one run: two release
# builds of ringlet, BEFORE (e.g. the commit before the change) and AFTER (this tree), in
# K rounds that each run every case once per build, alternating:
#   bench_switch     bench/bench_switch.cpp: ringlet::yield between two fibers of a plain
#                    ringlet program (accounting off: the cost of the flag test at a switch);
#                    each run prints the median of its own 7 runs
#   tls per-thread   bench/patch/tls_switch.c under ringlet-run: a switch between two fiber
#                    threads with TLS blocks of their own (accounting on), 1 s
#   tls shared       the same with RINGLET_THREAD_TLS=shared (no thread pointer load)
#   monotonic        bench/patch/clock_gettime.c: clock_gettime(CLOCK_MONOTONIC) per call
#                    on a thread: natively, under BEFORE's ringlet-run (no hook) and AFTER's
#   thread           the same for CLOCK_THREAD_CPUTIME_ID (natively a system call)
# Prints per case and build: median, min, max (ns), and AFTER/BEFORE of the medians.
# RINGLET_MAX_BLOCKING_MS=0 for every patched run.
#   bench/patch/cpu_clock.sh [--runs K] BEFORE_BUILD_DIR [AFTER_BUILD_DIR]
#   AFTER_BUILD_DIR defaults to this tree's build-rel (built if missing, release, no tests).
# A BEFORE build: git worktree or `git archive BASE | tar -x -C DIR`, then in DIR
#   meson setup build-rel --buildtype=release -Dtests=false && ninja -C build-rel
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=5
while [ $# -gt 0 ]; do
  case $1 in
    --runs) runs=$2; shift 2 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    -*) echo "cpu_clock.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) break ;;
  esac
done
[ $# -ge 1 ] || { echo "usage: cpu_clock.sh [--runs K] BEFORE_BUILD_DIR [AFTER_BUILD_DIR]" >&2; exit 2; }
before=$1
after=${2:-}
if [ -z "$after" ]; then
  bash scripts/build.sh build-rel --buildtype=release -Dtests=false >/dev/null
  after=$PWD/build-rel
fi
for d in "$before" "$after"; do
  [ -x "$d/patch/ringlet-run" ] && [ -x "$d/bench/bench_switch" ] ||
    { echo "cpu_clock.sh: $d has no patch/ringlet-run or bench/bench_switch" >&2; exit 2; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
gcc -O2 -pthread -o "$tmp/tls_switch" bench/patch/tls_switch.c
gcc -O2 -pthread -o "$tmp/clock_gettime" bench/patch/clock_gettime.c
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
field() { awk -v k="$1" '{for (i = 1; i < NF; i++) if ($i == k) print $(i + 1)}'; }
patched() { local d=$1; shift; RINGLET_MAX_BLOCKING_MS=0 "$d/patch/ringlet-run" -- "$@"; }

echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(uname -r) $(nproc) cores, clocksource $(cat /sys/devices/system/clocksource/clocksource0/current_clocksource 2>/dev/null || echo ?), $runs alternating rounds"
echo "# before: $before"
echo "# after:  $after"
for r in $(seq "$runs"); do
  for b in before after; do
    d=${!b}
    "$d/bench/bench_switch" | tr " " "\n" | sed -n "s/^ringlet_yield_ns=//p" >>"$tmp/switch.$b"
    patched "$d" "$tmp/tls_switch" 1 | field ns_per_switch >>"$tmp/tls.$b"
    RINGLET_THREAD_TLS=shared patched "$d" "$tmp/tls_switch" 1 2>/dev/null | field ns_per_switch >>"$tmp/tls_shared.$b"
    patched "$d" "$tmp/clock_gettime" monotonic | field ns_per_call >>"$tmp/mono.$b"
    patched "$d" "$tmp/clock_gettime" thread | field ns_per_call >>"$tmp/thread.$b"
  done
  "$tmp/clock_gettime" monotonic | field ns_per_call >>"$tmp/mono.native"
  "$tmp/clock_gettime" thread | field ns_per_call >>"$tmp/thread.native"
done
printf '| case | build | median | min | max | after / before |\n|---|---|---:|---:|---:|---:|\n'
for c in switch tls tls_shared mono thread; do
  for b in native before after; do
    [ -f "$tmp/$c.$b" ] || continue
    med=$(median <"$tmp/$c.$b")
    ratio=
    [ $b = after ] && ratio=$(awk -v a="$med" -v b="$(median <"$tmp/$c.before")" 'BEGIN {printf "%.3f", a / b}')
    printf '| %s | %s | %s | %s | %s | %s |\n' "$c" "$b" "$med" "$(sort -g "$tmp/$c.$b" | head -1)" \
      "$(sort -g "$tmp/$c.$b" | tail -1)" "$ratio"
  done
done
echo "## every run, in round order"
for f in "$tmp"/*.*; do
  case $f in *tls_switch|*clock_gettime) continue ;; esac
  printf '%-18s %s\n' "$(basename "$f")" "$(tr '\n' ' ' <"$f")"
done
