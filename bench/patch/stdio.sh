#!/usr/bin/env bash
# stdio under the patch (issue 20), natively and under ringlet-run, alternating runs:
#  1. fgets line echo over loopback TCP, 50 connections x 2000 lines, thread per connection
#     (both ends in one process): CPU time per echoed line and wall time, median of the runs;
#  2. fputs of a 32-byte line to a regular file: median ns per call (each run: the median of
#     9 batches of 2 000 000), native against ringlet-run (main on a fiber, every fputs
#     through the hook) and plain LD_PRELOAD off a fiber (RINGLET_PATCH_MAIN=0);
#  3. fopen + fclose of a regular file: ns per pair, native, ringlet-run, and ringlet-run with
#     RINGLET_STDIO=native (the fopen hook's stat of the path is the difference).
#   bench/patch/stdio.sh [--runs N]
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=5
[ "${1:-}" = "--runs" ] && runs=$2
bash scripts/build.sh build-rel --buildtype=release -Dtests=false >/dev/null
b=build-rel
lib=$PWD/$b/patch/libringlet_patch.so
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cc -O2 -pthread -o "$tmp/stdio_echo" bench/patch/stdio_echo.c
# -fno-builtin-fputs: gcc would make fputs of a literal an fwrite
cc -O2 -fno-builtin-fputs -o "$tmp/stdio_fputs" bench/patch/stdio_fputs.c
cc -O2 -o "$tmp/stdio_fopen" bench/patch/stdio_fopen.c
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(uname -r) $(nproc) cores, $runs alternating runs"
echo "## fgets echo, 50 connections x 2000 lines: CPU us per line, wall s (median)"
nc=(); nw=(); pc=(); pw=()
for ((i = 0; i < runs; i++)); do
  read -r c w < <("$tmp/stdio_echo" 50 2000); nc+=("$c"); nw+=("$w")
  read -r c w < <("$b/patch/ringlet-run" -- "$tmp/stdio_echo" 50 2000); pc+=("$c"); pw+=("$w")
done
echo "native:      every run cpu ${nc[*]}"
echo "ringlet-run: every run cpu ${pc[*]}"
printf '%-12s cpu/line %8s us  wall %6s s\n' native "$(printf '%s\n' "${nc[@]}" | median)" "$(printf '%s\n' "${nw[@]}" | median)"
printf '%-12s cpu/line %8s us  wall %6s s\n' ringlet-run "$(printf '%s\n' "${pc[@]}" | median)" "$(printf '%s\n' "${pw[@]}" | median)"

echo "## fputs to a regular file: ns per call (median)"
n=(); p=(); l=()
for ((i = 0; i < runs; i++)); do
  n+=("$("$tmp/stdio_fputs")")
  p+=("$(RINGLET_MAX_BLOCKING_MS=0 "$b/patch/ringlet-run" -- "$tmp/stdio_fputs")")
  l+=("$(LD_PRELOAD=$lib RINGLET_PATCH_MAIN=0 "$tmp/stdio_fputs")")
done
echo "native:                 ${n[*]}"
echo "ringlet-run (on fiber): ${p[*]}"
echo "LD_PRELOAD, off fiber:  ${l[*]}"
printf 'median native %s  ringlet-run %s  preload-off-fiber %s\n' "$(printf '%s\n' "${n[@]}" | median)" \
  "$(printf '%s\n' "${p[@]}" | median)" "$(printf '%s\n' "${l[@]}" | median)"

echo "## fopen + fclose of a regular file: ns per pair (median)"
n=(); p=(); o=()
for ((i = 0; i < runs; i++)); do
  n+=("$("$tmp/stdio_fopen")")
  p+=("$(RINGLET_MAX_BLOCKING_MS=0 "$b/patch/ringlet-run" -- "$tmp/stdio_fopen")")
  o+=("$(RINGLET_STDIO=native RINGLET_MAX_BLOCKING_MS=0 "$b/patch/ringlet-run" -- "$tmp/stdio_fopen")")
done
echo "native:                       ${n[*]}"
echo "ringlet-run:                  ${p[*]}"
echo "ringlet-run, RINGLET_STDIO=native: ${o[*]}"
printf 'median native %s  ringlet-run %s  stdio native %s\n' "$(printf '%s\n' "${n[@]}" | median)" \
  "$(printf '%s\n' "${p[@]}" | median)" "$(printf '%s\n' "${o[@]}" | median)"
