#!/usr/bin/env bash
# A fiber thread's switch with and without thread-locals of its own (issue 18): two threads
# ping-pong with sched_yield(), each reading and writing a __thread counter every iteration
# (bench/patch/tls_switch.c), under ringlet-run in three modes and natively:
#   shared      RINGLET_THREAD_TLS=shared: the fiber threads share their OS thread's TLS
#   per-thread  the default: each has its own TLS block, its thread pointer loaded at every
#               switch (wrfsbase where AT_HWCAP2 offers FSGSBASE, arch_prctl otherwise)
#   arch_prctl  RINGLET_FSGSBASE=0: own TLS blocks, the thread pointer set by the system call
#   native      two OS threads calling sched_yield: reference only (on more than one core
#               that is not a switch, and the two threads may run side by side)
# First one short run per mode with RINGLET_VERBOSE=1 to show the mode line ringlet-run
# prints on stderr (`ringlet patch: thread-locals: ...`) and what the program itself saw
# (its two counters at one address or two); then K rounds, each running every mode once in
# turn (alternating), SECONDS each. Prints ns per switch: median, min, max, and against
# shared: the ratio of the medians and the median of the per-round ratios.
# RINGLET_MAX_BLOCKING_MS=0 for every patched run (the blocking monitor off).
# Exits 1 if a mode line is missing or not the one expected, or the program saw other
# thread-locals than the mode promises (the figures are printed all the same).
#   bench/patch/tls_switch.sh [--runs K] [--seconds S] [RINGLET_RUN]
#   RINGLET_RUN defaults to this tree's build-rel/patch/ringlet-run (built if missing).
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=5
seconds=1
rr=
while [ $# -gt 0 ]; do
  case $1 in
    --runs) runs=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    -*) echo "tls_switch.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) rr=$1; shift ;;
  esac
done
if [ -z "$rr" ]; then
  bash scripts/build.sh build-rel --buildtype=release -Dtests=false >/dev/null
  rr=$PWD/build-rel/patch/ringlet-run
fi
[ -x "$rr" ] || { echo "tls_switch.sh: $rr is not an executable" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
gcc -O2 -pthread -o "$tmp/tls_switch" bench/patch/tls_switch.c
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
field() { awk -v k="$1" '{for (i = 1; i < NF; i++) if ($i == k) print $(i + 1)}'; }

hwcap2=$(LD_SHOW_AUXV=1 /bin/true | awk '$1 == "AT_HWCAP2:" {print $2}')
if [ $(( ${hwcap2:-0} & 2 )) -ne 0 ]; then method=wrfsbase; else method=arch_prctl; fi
modes=(shared per-thread arch_prctl native)
# run MODE ARGS... : the program under MODE's environment
run() {
  local m=$1; shift
  case $m in
    shared) RINGLET_MAX_BLOCKING_MS=0 RINGLET_THREAD_TLS=shared "$rr" -- "$tmp/tls_switch" "$@" ;;
    per-thread) RINGLET_MAX_BLOCKING_MS=0 "$rr" -- "$tmp/tls_switch" "$@" ;;
    arch_prctl) RINGLET_MAX_BLOCKING_MS=0 RINGLET_FSGSBASE=0 "$rr" -- "$tmp/tls_switch" "$@" ;;
    native) "$tmp/tls_switch" "$@" ;;
  esac
}
declare -A want_line=(
  [shared]="ringlet patch: thread-locals: shared between the fiber threads of an OS thread: asked for (RINGLET_THREAD_TLS=shared)"
  [per-thread]="ringlet patch: thread-locals: per thread ($method)"
  [arch_prctl]="ringlet patch: thread-locals: per thread (arch_prctl)"
)
declare -A want_saw=([shared]=shared [per-thread]=per-thread [arch_prctl]=per-thread [native]=per-thread)

echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(uname -r) $(nproc) cores, AT_HWCAP2=${hwcap2:-?} (FSGSBASE: $([ $method = wrfsbase ] && echo yes || echo no)), $runs alternating rounds of ${seconds} s"
echo "# ringlet-run: $rr"
echo "## mode lines (RINGLET_VERBOSE=1, one 0.2 s run per mode)"
bad=0
for m in "${modes[@]}"; do
  out=$(RINGLET_VERBOSE=1 run "$m" 0.2 2>"$tmp/err") || true
  saw=$(echo "$out" | field tls)
  if [ "$m" = native ]; then
    line="(native: no ringlet-run)"
  else
    line=$(grep 'thread-locals:' "$tmp/err" || true)
    if [ -z "$line" ]; then
      line="MISSING (stderr: $(tr '\n' ' ' <"$tmp/err"))"; bad=1
    elif [ "$line" != "${want_line[$m]}" ]; then
      line="$line   <-- UNEXPECTED, wanted: ${want_line[$m]}"; bad=1
    fi
  fi
  if [ "$saw" != "${want_saw[$m]}" ]; then saw="$saw   <-- UNEXPECTED, wanted: ${want_saw[$m]}"; bad=1; fi
  printf '%-10s %s\n%-10s program saw: %s\n' "$m" "$line" "" "$saw"
done

for r in $(seq "$runs"); do
  for m in "${modes[@]}"; do
    out=$(run "$m" "$seconds") || true
    echo "$out" | field ns_per_switch >>"$tmp/$m"
    echo "$out" | field tls >>"$tmp/$m.saw"
  done
done

echo "## ns per switch, $runs alternating rounds (order: ${modes[*]})"
printf '| mode | median | min | max | vs shared (medians) | vs shared (median of per-round ratios) | program saw |\n|---|---:|---:|---:|---:|---:|---|\n'
sm=$(median <"$tmp/shared")
for m in "${modes[@]}"; do
  med=$(median <"$tmp/$m")
  min=$(sort -g "$tmp/$m" | head -1)
  max=$(sort -g "$tmp/$m" | tail -1)
  pr=$(paste "$tmp/$m" "$tmp/shared" | awk '{print $1 / $2}' | median)
  saw=$(sort -u "$tmp/$m.saw" | tr '\n' ' ')
  printf '| %s | %s | %s | %s | %.3f | %.3f | %s|\n' "$m" "$med" "$min" "$max" \
    "$(awk -v a="$med" -v b="$sm" 'BEGIN {print a / b}')" "$pr" "$saw"
done
echo "## every run, ns per switch, in round order"
for m in "${modes[@]}"; do printf '%-10s %s\n' "$m" "$(tr '\n' ' ' <"$tmp/$m")"; done
exit $bad
