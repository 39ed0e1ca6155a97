#!/usr/bin/env bash
# Threads that deadlock under ringlet-run (issue 22): the report once on stderr, naming each
# thread and its wait; the process then stays alive and idle, as natively (where it just
# hangs); with RINGLET_DEADLOCK=abort it aborts. Threads that all wait for a signal
# handler's sem_post are no deadlock: no report, the program ends as natively.
#   deadlock.sh RINGLET_RUN PROG   (PROG: tests/patch/deadlock.c)
set -uo pipefail
rr=$1
prog=$2
work=$(mktemp -d /tmp/ringlet-deadlock-XXXXXX)
trap 'kill -9 $pid 2>/dev/null; rm -rf "$work"' EXIT
fail=0
bad() { echo "FAILED: $*"; fail=1; }

for engine in default epoll; do
  if [[ $engine == epoll ]]; then export RINGLET_BACKEND=epoll; else unset RINGLET_BACKEND; fi
  # 1. AB/BA: alive and idle after 1.5 s, one report naming both threads' waits.
  "$rr" -- "$prog" abba >"$work/out" 2>"$work/err" &
  pid=$!
  sleep 1.5
  if ! kill -0 $pid 2>/dev/null; then
    bad "$engine: the deadlocked program ended (status of wait: $(wait $pid; echo $?))"
  else
    t0=$(awk '{print $14 + $15}' /proc/$pid/stat)
    sleep 1
    t1=$(awk '{print $14 + $15}' /proc/$pid/stat)
    (( t1 - t0 <= 5 )) || bad "$engine: the deadlocked program used $((t1 - t0)) ticks of CPU in 1 s"
    kill -9 $pid
    wait $pid 2>/dev/null
  fi
  n=$(grep -c "ringlet: deadlock: every thread waits" "$work/err")
  [[ $n == 1 ]] || bad "$engine: $n deadlock reports, not 1"
  grep -q "fiber 'takes-a-then-b' (#[0-9]*) waits in pthread_mutex_lock" "$work/err" || bad "$engine: thread takes-a-then-b not named"
  grep -q "fiber 'takes-b-then-a' (#[0-9]*) waits in pthread_mutex_lock" "$work/err" || bad "$engine: thread takes-b-then-a not named"
  grep -q "waits in pthread_join" "$work/err" || bad "$engine: main's join not named"
  grep -q "terminate called\|GreenletExit\|DeadlockError" "$work/err" && bad "$engine: an exception escaped"
  [[ $(cat "$work/out") == started ]] || bad "$engine: stdout '$(cat "$work/out")'"
  # 2. RINGLET_DEADLOCK=abort: SIGABRT, after one report.
  RINGLET_DEADLOCK=abort timeout -k 5 20 "$rr" -- "$prog" abba >"$work/out" 2>"$work/err"
  rc=$?
  [[ $rc == 134 ]] || bad "$engine: RINGLET_DEADLOCK=abort ended with $rc, not 134 (SIGABRT)"
  n=$(grep -c "ringlet: deadlock: every thread waits" "$work/err")
  [[ $n == 1 ]] || bad "$engine: abort: $n deadlock reports, not 1"
  # 3. Waiting for a signal handler's sem_post: no report, exit 0.
  timeout -k 5 20 "$rr" -- "$prog" sem >"$work/out" 2>"$work/err"
  rc=$?
  [[ $rc == 0 ]] || bad "$engine: sem: exit $rc"
  [[ $(cat "$work/out") == "both waiters ended" ]] || bad "$engine: sem: stdout '$(cat "$work/out")'"
  grep -q "deadlock" "$work/err" && bad "$engine: sem: a deadlock was reported"
  if ((fail)); then echo "--- stderr ($engine):"; cat "$work/err"; fi
done
# Natively the sem case ends the same way.
[[ $("$prog" sem) == "both waiters ended" ]] || bad "natively: sem case"
((fail)) || echo "deadlock.sh: all checks held on both engines"
exit $fail
