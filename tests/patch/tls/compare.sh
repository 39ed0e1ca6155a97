#!/usr/bin/env bash
# A thread-locals test program natively, then under ringlet-run three ways: the default engine,
# RINGLET_BACKEND=epoll, and RINGLET_FSGSBASE=0 (thread-local blocks switched with
# arch_prctl instead of wrfsbase). Each patched run must end with the native run's exit code
# and print the native run's stdout exactly; stderr is not compared (ringlet-run may say
# things there), only shown when a run differs.
#   compare.sh RINGLET_RUN PROG [ARGS...]
# Exit 0 if the native run passes (exit 0) and every patched run agrees with it; 1 otherwise.
set -uo pipefail
(($# >= 2)) || { echo "usage: compare.sh RINGLET_RUN PROG [ARGS...]" >&2; exit 2; }
rr=$1
prog=$2
shift 2
name=$(basename "$prog")
work=$(mktemp -d "/tmp/ringlet-tls-$name-XXXXXX")
trap 'rm -rf "$work"' EXIT

# One run: its stdout, stderr and exit code into $work/<label>.{out,err,rc}, and a line with
# its duration. The programs stop themselves with alarm(60); timeout is the backstop.
run() {
  local label=$1
  shift
  local start end rc
  start=$(date +%s%N)
  timeout -k 10 120 "$@" >"$work/$label.out" 2>"$work/$label.err"
  rc=$?
  end=$(date +%s%N)
  echo "$rc" >"$work/$label.rc"
  printf '%s: %-10s exit %3d  %6.2f s%s\n' "$name" "$label" "$rc" \
    "$(awk -v ns=$((end - start)) 'BEGIN { printf "%.2f", ns / 1e9 }')" \
    "$( ((rc == 124 || rc == 137)) && echo '  (timed out)')"
}

run native env -u RINGLET_BACKEND "$prog" "$@"
patched=(default epoll fsgsbase0)
run default env -u RINGLET_BACKEND -u RINGLET_FSGSBASE RINGLET_MAX_BLOCKING_MS=0 \
  "$rr" -- "$prog" "$@"
run epoll env -u RINGLET_FSGSBASE RINGLET_BACKEND=epoll RINGLET_MAX_BLOCKING_MS=0 \
  "$rr" -- "$prog" "$@"
run fsgsbase0 env -u RINGLET_BACKEND RINGLET_FSGSBASE=0 RINGLET_MAX_BLOCKING_MS=0 \
  "$rr" -- "$prog" "$@"

status=0
native_rc=$(cat "$work/native.rc")
if [[ $native_rc != 0 ]]; then
  echo "$name: FAILED natively (exit $native_rc); its stdout and stderr:"
  cat "$work/native.out"
  tail -20 "$work/native.err"
  status=1
fi
for label in "${patched[@]}"; do
  rc=$(cat "$work/$label.rc")
  if [[ $rc != "$native_rc" ]] || ! cmp -s "$work/native.out" "$work/$label.out"; then
    echo "$name: the run '$label' differs from the native one (exit $rc, natively $native_rc); stdout diff:"
    diff -u --label native "$work/native.out" --label "$label" "$work/$label.out"
    if [[ -s $work/$label.err ]]; then
      echo "$name: stderr of '$label' (last 20 lines):"
      tail -20 "$work/$label.err"
    fi
    status=1
  fi
done
if ((status == 0)); then
  echo "$name: all runs agree with the native one:"
  sed 's/^/  /' "$work/native.out"
fi
exit $status
