#!/usr/bin/env bash
# A chain of execs under ringlet-run with the blocking monitor at 1 ms, on both engines and
# on one and two carriers, 3 runs each: every run must end as natively (exit 0, the same
# line). The monitor samples a thread that holds its scheduler inside execve; a signal of
# its left pending there would outlive the exec and end the new image (SIGRTMAX-1, exit
# 191). Before the exec hooks (patch/exec.cpp), 4 runs of this program in 6 ended so, and
# this script failed 3 of its 12.
#   exec_sampled.sh RINGLET_RUN PROG
set -uo pipefail
(($# == 2)) || { echo "usage: exec_sampled.sh RINGLET_RUN PROG" >&2; exit 2; }
rr=$1 prog=$2
want=$("$prog") || { echo "FAILED natively (exit $?)"; exit 1; }
echo "natively: $want"
status=0
for engine in default epoll; do
  for threads in 1 2; do
    for run in 1 2 3; do
      env=(RINGLET_MAX_BLOCKING_MS=1 RINGLET_MONITOR_FILE=/dev/null)
      [[ $engine == epoll ]] && env+=(RINGLET_BACKEND=epoll)
      got=$(env -u RINGLET_BACKEND "${env[@]}" timeout -k 5 60 "$rr" --threads "$threads" -- "$prog" 2>/dev/null)
      rc=$?
      if ((rc != 0)) || [[ $got != "$want" ]]; then
        sig=""
        ((rc > 128 && rc <= 192)) && sig=" (signal $((rc - 128)), SIG$(kill -l $((rc - 128)) 2>/dev/null))"
        echo "FAILED: $engine engine, $threads carrier(s), run $run: exit $rc$sig, printed '$got'"
        status=1
      fi
    done
  done
done
((status == 0)) && echo "12 patched runs, each as natively"
exit $status
