#!/usr/bin/env bash
# A patch test program natively, then under ringlet-run on the default engine and on epoll
# (and, with --fsgsbase0, with RINGLET_FSGSBASE=0: thread-local blocks switched with
# arch_prctl instead of wrfsbase), with the blocking monitor on at 100 ms (--monitor-ms N;
# 0: off). Each patched run must end with the native run's exit code, print the native run's
# stdout exactly, and draw no report from the monitor of a fiber blocked in the kernel (what
# blocked parked) or computing for ten thresholds (a wait that spins); a shorter computing
# stretch, or a short hold in posix_spawn or fork (known, patch/README.md), is shown, not
# failed. stderr is otherwise not compared, only shown when a run
# differs.
#   compare.sh [--fsgsbase0] [--monitor-ms N] [--threads N] [--patched-env "A=1 B=2"] RINGLET_RUN PROG [ARGS...]
# --threads N: the patched runs on N carriers (`ringlet-run --threads N`, whatever
# RINGLET_THREADS the environment has); without it they inherit RINGLET_THREADS (the meson
# test setups set it: 1 by default, 2 under `--setup two_carriers`).
# Extra environment for every run (natively too) may come in COMPARE_ENV="A=1 B=2"; for the
# patched runs only in --patched-env (a check that holds only there, such as a bound on the
# process's OS threads, which natively are one per thread).
# COMPARE_NATIVE_CACHE=DIR keeps a native run that passed in DIR, under a key made of the
# program (its path, size and time), its arguments (and the size and time of those that
# name files) and COMPARE_ENV; with
# COMPARE_REUSE_NATIVE=1 a run kept there stands in for the native run (the test setup
# two_carriers sets both: its patched runs differ from the default setup's, the native one
# does not).
# Exit 0 if the native run passes (exit 0) and every patched run agrees with it; 1 otherwise.
set -uo pipefail
fsgsbase0=0 monitor_ms=100 rr_args=() patched_env=()
while (($#)); do
  case $1 in
    --fsgsbase0) fsgsbase0=1; shift ;;
    --monitor-ms) monitor_ms=$2; shift 2 ;;
    --threads) rr_args+=(--threads "$2"); shift 2 ;;
    --patched-env) read -r -a patched_env <<<"$2"; shift 2 ;;
    *) break ;;
  esac
done
(($# >= 2)) || { echo "usage: compare.sh [--fsgsbase0] [--monitor-ms N] [--threads N] [--patched-env ENV] RINGLET_RUN PROG [ARGS...]" >&2; exit 2; }
rr=$1
prog=$2
shift 2
name=$(basename "$prog")
work=$(mktemp -d "/tmp/ringlet-compare-$name-XXXXXX")
trap 'rm -rf "$work"' EXIT
read -r -a extra_env <<<"${COMPARE_ENV:-}"

# One run: stdout, stderr and exit code into $work/<label>.{out,err,rc}, and a line with its
# duration. The programs stop themselves with alarm(); timeout is the backstop.
run() {
  local label=$1
  shift
  local start end rc
  start=$(date +%s%N)
  timeout -k 10 120 env "${extra_env[@]}" "$@" >"$work/$label.out" 2>"$work/$label.err" </dev/null
  rc=$?
  end=$(date +%s%N)
  echo "$rc" >"$work/$label.rc"
  printf '%s: %-10s exit %3d  %6.2f s%s\n' "$name" "$label" "$rc" \
    "$(awk -v ns=$((end - start)) 'BEGIN { printf "%.2f", ns / 1e9 }')" \
    "$( ((rc == 124 || rc == 137)) && echo '  (timed out)')"
}

cache_key=""
if [[ -n ${COMPARE_NATIVE_CACHE:-} ]]; then
  # An argument that names a file (a script the program runs) counts with its size and time.
  files=()
  for a in "$@"; do [[ -f $a ]] && files+=("$(stat -c '%s %Y' "$a")"); done
  prog_path=$(command -v "$prog") && prog_path=$(realpath "$prog_path") &&
    cache_key=$(printf '%s\0' "$prog_path" "$(stat -c '%s %Y' "$prog_path")" "$@" "${files[@]}" \
                  "${COMPARE_ENV:-}" | sha256sum | cut -c1-32)
fi
kept=${COMPARE_NATIVE_CACHE:-}/$name-$cache_key
if [[ -n $cache_key && ${COMPARE_REUSE_NATIVE:-0} == 1 && -s $kept.rc ]]; then
  cp "$kept.out" "$work/native.out" && cp "$kept.err" "$work/native.err" && cp "$kept.rc" "$work/native.rc"
  echo "$name: native     the run kept in $kept.* ($(date -r "$kept.rc" -u +%FT%TZ)), exit $(cat "$work/native.rc")"
else
  run native env -u RINGLET_BACKEND "$prog" "$@"
  if [[ -n $cache_key && $(cat "$work/native.rc") == 0 ]] && mkdir -p "$COMPARE_NATIVE_CACHE"; then
    for f in out err rc; do cp "$work/native.$f" "$kept.$f.tmp"; done
    for f in out err; do mv "$kept.$f.tmp" "$kept.$f"; done
    mv "$kept.rc.tmp" "$kept.rc"  # last: a key with its .rc is whole
  fi
fi
patched=(default epoll)
run default env -u RINGLET_BACKEND -u RINGLET_FSGSBASE RINGLET_MAX_BLOCKING_MS=$monitor_ms "${patched_env[@]}" \
  "$rr" "${rr_args[@]}" -- "$prog" "$@"
run epoll env -u RINGLET_FSGSBASE RINGLET_BACKEND=epoll RINGLET_MAX_BLOCKING_MS=$monitor_ms "${patched_env[@]}" \
  "$rr" "${rr_args[@]}" -- "$prog" "$@"
if ((fsgsbase0)); then
  patched+=(fsgsbase0)
  run fsgsbase0 env -u RINGLET_BACKEND RINGLET_FSGSBASE=0 RINGLET_MAX_BLOCKING_MS=$monitor_ms "${patched_env[@]}" \
    "$rr" "${rr_args[@]}" -- "$prog" "$@"
fi

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
    # timeout(1) passes a signal death on as its own: the shell's 128 + the signal.
    if ((rc > 128 && rc <= 128 + 64)); then
      sig=$((rc - 128))
      echo "$name: the run '$label' was ended by signal $sig (SIG$(kill -l $sig 2>/dev/null || echo '?'))$( ((sig == $(kill -l SIGRTMAX) - 1)) && echo ", the blocking monitor's sampling signal")"
    fi
    diff -u --label native "$work/native.out" --label "$label" "$work/$label.out"
    if [[ -s $work/$label.err ]]; then
      echo "$name: stderr of '$label' (last 20 lines):"
      tail -20 "$work/$label.err"
    fi
    status=1
  fi
  # A fiber blocked in the kernel while holding its scheduler: a call that should have
  # parked. One computing is the program's own work (an interpreter's imports run 100 ms
  # at a stretch on a loaded machine), unless it lasts ten thresholds (a wait that spins).
  # So is a hold patch/README.md lists as known and brief, found by the report's frames (or
  # by the earlier report whose place it shares): posix_spawn until the child has exec'd,
  # fork while the page tables are copied; on a loaded machine the child may wait 100 ms
  # for a CPU before its exec. Ten thresholds of it fail the run too.
  if ((monitor_ms > 0)) && grep -q 'has held its scheduler' "$work/$label.err"; then
    if awk -v long=$((monitor_ms * 10)) '
         function finish() {
           if (!pending) return
           if (!(kind == "computing" || known) || ms >= long) bad = 1
           if (report != "") known_place[report] = known
           pending = 0
         }
         /has held its scheduler/ {
           finish()
           if (!match($0, /has held its scheduler for [0-9]+ ms without switching \(threshold [0-9]+ ms\), [a-z]+/)) {
             bad = 1  # a report this script cannot read counts against the run
             next
           }
           n = split(substr($0, RSTART, RLENGTH), w, " ")
           kind = w[n]; ms = w[6] + 0; pending = 1; known = 0; report = ""
           if (match($0, /report [0-9]+: /)) report = substr($0, RSTART + 7, RLENGTH - 9) + 0
           if (match($0, /Same place as report [0-9]+/)) {
             k = substr($0, RSTART + 21, RLENGTH - 21) + 0
             known = (k in known_place) && known_place[k]
           }
           next
         }
         pending && /^    #[0-9]+ / {
           if ($0 ~ /#[0-9]+ (posix_spawnp?|_Fork|__libc_fork)\+0x/) known = 1
           next
         }
         { finish() }
         /let its scheduler go after/ { split($0, w, "after "); if (w[2] + 0 >= long) bad = 1 }
         END { finish(); exit bad ? 0 : 1 }' "$work/$label.err"; then
      echo "$name: in the run '$label' the blocking monitor saw a fiber hold its scheduler:"
      grep -A4 'has held its scheduler' "$work/$label.err" | head -30
      status=1
    else
      echo "$name: in the run '$label' a fiber held its scheduler briefly, computing or in a known hold (not a wait):"
      grep 'has held its scheduler' "$work/$label.err" | head -5
    fi
  fi
done
if ((status == 0)); then
  echo "$name: all runs agree with the native one$( ((monitor_ms > 0)) && echo ', and no fiber held its scheduler'):"
  sed 's/^/  /' "$work/native.out"
fi
exit $status
