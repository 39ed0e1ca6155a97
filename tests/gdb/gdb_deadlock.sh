#!/usr/bin/env bash
# A patched AB/BA deadlock (tests/patch/deadlock.c under ringlet-run, RINGLET_DEADLOCK=abort)
# run under gdb, which stops at the abort and writes a core file; a second gdb on the core:
# "info fibers" lists both threads (fiber threads) parked in pthread_mutex_lock, and
# "fiber bt" of each shows the mutex wait and the function that called pthread_mutex_lock
# (ab, ba). Both engines.
# RINGLET_STACK_GUARD=page: gdb's generate-core-file cannot copy stacks whose slab has
# MADV_GUARD_INSTALL guard pages (see gdb_fibers.sh); mprotect guards it skips.
#   gdb_deadlock.sh LIBDIR RINGLET_RUN PROG
set -uo pipefail
libdir=$1
rr=$2
prog=$3
command -v gdb >/dev/null || { echo "SKIP: gdb is not installed (scripts/setup.sh installs it)"; exit 77; }
work=$(mktemp -d /tmp/ringlet-gdb-deadlock-XXXXXX)
trap 'rm -rf "$work"' EXIT
fail=0
bad() { echo "FAILED: $*"; fail=1; }
gdb_cmd=(timeout -k 5 120 gdb -q -nx -batch -iex "add-auto-load-safe-path $libdir")

for engine in default epoll; do
  if [[ $engine == epoll ]]; then export RINGLET_BACKEND=epoll; else unset RINGLET_BACKEND; fi
  rm -f "$work/core"
  RINGLET_DEADLOCK=abort RINGLET_STACK_GUARD=page "${gdb_cmd[@]}" -ex run -ex "generate-core-file $work/core" -ex kill \
    --args "$rr" -- "$prog" abba >"$work/run" 2>&1
  if grep -q "ptrace: Operation not permitted\|Could not trace the inferior" "$work/run"; then
    echo "SKIP: gdb may not run a program under ptrace here"
    exit 77
  fi
  grep -q "SIGABRT" "$work/run" || bad "$engine: the program did not stop at SIGABRT under gdb"
  [[ -s $work/core ]] || { bad "$engine: no core file"; cat "$work/run"; continue; }
  "${gdb_cmd[@]}" "$prog" "$work/core" -ex 'info fibers' \
    -ex 'fiber bt takes-a-then-b' -ex 'fiber bt takes-b-then-a' >"$work/core.out" 2>&1
  for t in "takes-a-then-b|ab" "takes-b-then-a|ba"; do
    name=${t%|*}
    fn=${t#*|}
    line=$(grep -E "^  [0-9]+\.[0-9]+ +$name " "$work/core.out")
    [[ $line =~ \ parked\ .*pthread_mutex_lock ]] || bad "$engine: info fibers: '$name' not parked in pthread_mutex_lock: '$line'"
    [[ $line =~ \ $fn\ \(deadlock\.c:[0-9]+\) ]] || bad "$engine: info fibers: '$name' is not at $fn (deadlock.c): '$line'"
    sed -n "/^fiber [0-9.]* '$name', /,/^fiber [0-9.]* '/p" "$work/core.out" >"$work/bt"
    # The hook's frame itself may be gone (pthread_mutex_lock ends in a tail call to the
    # patch's lock_wait): one of the two, as a frame.
    grep -qE "^#[0-9]+ .*(pthread_mutex_lock|::lock_wait)\(" "$work/bt" || bad "$engine: fiber bt $name: no frame of the mutex wait (pthread_mutex_lock or lock_wait)"
    grep -qE "in $fn \(|^#[0-9]+ +$fn \(" "$work/bt" || bad "$engine: fiber bt $name: no frame of $fn"
  done
  grep -qE "^  [0-9]+\.[0-9]+ +[^ ]+ +[0-9]+ +parked +pthread_join" "$work/core.out" || bad "$engine: main thread not parked in pthread_join"
  if grep -q "Traceback\|Python Exception\|Error occurred in Python\|previous frame inner\|corrupt stack" "$work/core.out"; then
    bad "$engine: gdb said: $(grep -m3 "Traceback\|Python Exception\|Error occurred in Python\|previous frame inner\|corrupt stack" "$work/core.out")"
  fi
  if ((fail)); then
    echo "--- gdb run ($engine):"; cat "$work/run"
    echo "--- gdb on the core ($engine):"; cat "$work/core.out"
    break
  fi
done
((fail)) || echo "gdb_deadlock.sh: both engines: the core shows both threads in pthread_mutex_lock, called from ab and ba"
exit $fail
