#!/usr/bin/env bash
# The gdb commands (tools/gdb/ringlet_gdb.py, auto-loaded from libringlet.so's
# .debug_gdb_scripts section) on tests/gdb/fibers.cpp: gdb -p on the running program,
# "info fibers", "fiber apply all bt", "fiber bt NAME", "fiber NAME" + bt, "fiber off",
# "gcore" (the commands' own: generate-core-file, then what it left out filled in), then the
# same on "gdb PROG CORE". Three runs:
#   1. default stacks: live and gcore's core file in full; also gdb's bare generate-core-file:
#      with MADV_GUARD_INSTALL guard pages (Linux 6.13+) it cannot copy the stacks (it stops
#      at a slab's first guard page): every fiber listed with its state, and the note that
#      says why its stack is missing, and gcore said what it filled in; without them (older
#      kernels), the checks in full;
#   2. RINGLET_STACK_GUARD=page (mprotect guards, which generate-core-file skips): in full;
#   3. the kernel's core dump (SIGABRT) of a default run, if core_pattern writes a file here:
#      in full.
# And a run under gdb stopped inside a switch (ringlet_jump_fcontext): info fibers says so.
# gdb is run as the README says: -iex 'add-auto-load-safe-path LIBDIR'.
#   gdb_fibers.sh LIBDIR PROG THREADS ENGINE    (ENGINE: default | epoll)
# Exit 77 (skip) if gdb is missing or may not attach (ptrace).
set -uo pipefail
libdir=$1
prog=$2
threads=$3
engine=$4
command -v gdb >/dev/null || { echo "SKIP: gdb is not installed (scripts/setup.sh installs it)"; exit 77; }
if [[ $engine == epoll ]]; then export RINGLET_BACKEND=epoll; else unset RINGLET_BACKEND; fi
work=$(mktemp -d /tmp/ringlet-gdb-XXXXXX)
pid=
trap '[[ -n $pid ]] && kill -9 $pid 2>/dev/null; rm -rf "$work"' EXIT
fail=0
bad() { echo "FAILED: $*"; fail=1; }

# name state wait-pattern user-function
expect=(
  "acceptor|parked|accept, fd [0-9]+|gdbtest_park_in_accept"
  "reader|parked|read, fd [0-9]+|gdbtest_park_in_read"
  "sleeper|parked|sleep, |gdbtest_park_in_sleep"
  "locker|parked|Lock::acquire|gdbtest_park_in_lock"
  "getter|parked|Queue::get|gdbtest_park_in_queue_get"
  "joiner|parked|join, on [0-9]+\.[0-9]+ 'sleeper'|gdbtest_park_in_join"
  "busy|running|-|gdbtest_busy_spin"
)
# (No "| grep -q": with pipefail, the writer's SIGPIPE when grep stops early is a failure.)
check() {  # check WHAT FILE full|no-stacks
  local what=$1 f=$2 mode=$3 e name state wait fn line
  grep -q "^scheduler 0: core 0" "$f" || bad "$what: no scheduler 0"
  if [[ $threads == 2 ]]; then grep -q "^scheduler 1: core 1" "$f" || bad "$what: no scheduler 1 (core 1)"; fi
  for e in "${expect[@]}"; do
    IFS='|' read -r name state wait fn <<<"$e"
    line=$(grep -E "^  [0-9]+\.[0-9]+ +$name " "$f")
    [[ -n $line ]] || { bad "$what: info fibers has no fiber '$name'"; continue; }
    [[ $line =~ \ $state\  ]] || bad "$what: '$name' is not $state: $line"
    # (A parked fiber's wait is in park's frame, on its stack: not in a core without it.)
    [[ $mode == no-stacks || $line =~ $wait ]] || bad "$what: '$name' does not wait on /$wait/: $line"
    if [[ $mode == no-stacks ]]; then
      if [[ $state == parked ]]; then
        [[ $line == *"(stack not in the core file)"* ]] || bad "$what: '$name': no word of its missing stack: $line"
      fi
      continue
    fi
    [[ $line == *"$fn"* ]] || bad "$what: info fibers: '$name' is not at $fn: $line"
    # fiber apply all bt: the fiber's header, then its frames, the user function among them
    awk -v n="'$name'," '/^fiber [0-9]+\.[0-9]+ / { on = index($0, n) > 0 } on' "$f" | grep -E "[ :]$fn ?\(" >/dev/null \
      || bad "$what: fiber apply all bt: no frame of $fn in '$name''s backtrace"
  done
  if [[ $threads == 2 ]]; then
    grep -E "^  1\.[0-9]+ +(sleeper|joiner|busy) +1 " "$f" | wc -l | grep -x 3 >/dev/null || bad "$what: sleeper, joiner, busy not on core 1"
  fi
  if [[ $mode == no-stacks ]]; then
    grep -q "stack slabs hold MADV_GUARD_INSTALL guard pages. Make the core with gcore" "$f" || bad "$what: the note on missing stacks is not there"
  else
    # fiber bt reader: its header, then its frames
    sed -n "/^fiber [0-9.]* 'reader', core [0-9]*, parked, spawned from/,/^fiber /p" "$f" | grep "gdbtest_park_in_read" >/dev/null \
      || bad "$what: fiber bt reader"
    grep -q "^\[Selected fiber [0-9.]* 'getter' (parked) on thread" "$f" || bad "$what: fiber getter did not select it"
    # then bt 3: the fiber's frames (from #1: the thread's own innermost frame is hidden)
    grep -A5 "^\[Selected fiber [0-9.]* 'getter'" "$f" | grep -E "^#[0-9]+ .* in ringlet::detail::Scheduler::switch_to" >/dev/null \
      || bad "$what: bt after fiber getter does not show its switch point"
  fi
  grep -q "^#0 " "$f" || bad "$what: after fiber off, bt 1 shows no frame #0"
  if grep -q "Traceback\|Python Exception\|Error occurred in Python\|previous frame inner\|corrupt stack\|RTTI symbol" "$f"; then
    bad "$what: gdb said: $(grep -m3 "Traceback\|Python Exception\|Error occurred in Python\|previous frame inner\|corrupt stack\|RTTI symbol" "$f")"
  fi
}

gdb_cmd=(timeout -k 5 120 gdb -q -nx -batch -iex "add-auto-load-safe-path $libdir")
# -nx: no ~/.gdbinit of whoever runs the tests (the README's line has no -nx).
commands=(-ex 'info fibers' -ex 'fiber apply all bt' -ex 'fiber bt reader'
          -ex 'fiber getter' -ex 'bt 3' -ex 'fiber off' -ex 'bt 1')

start() {  # start OUTFILE: the program in $work, until it says ready
  (cd "$work" && exec "$prog" "$threads") >"$1" 2>"$1.err" &
  pid=$!
  for _ in $(seq 200); do
    grep -q ready "$1" && return 0
    kill -0 $pid 2>/dev/null || break
    sleep 0.05
  done
  echo "FAILED: the program did not get ready"; cat "$1.err"; exit 1
}

# Runs 1 and 2: gdb -p, then gcore's core file (and, default stacks, generate-core-file's).
for guard in default page; do
  if [[ $guard == page ]]; then export RINGLET_STACK_GUARD=page; else unset RINGLET_STACK_GUARD; fi
  start "$work/out.$guard"
  raw=()
  [[ $guard == default ]] && raw=(-ex "generate-core-file $work/raw.$guard")
  "${gdb_cmd[@]}" -p $pid "${commands[@]}" -ex "gcore $work/gcore.$guard" "${raw[@]}" >"$work/live.$guard" 2>&1
  if grep -q "ptrace: Operation not permitted" "$work/live.$guard"; then
    echo "SKIP: gdb may not attach here (ptrace: Operation not permitted; see /proc/sys/kernel/yama/ptrace_scope and CAP_SYS_PTRACE)"
    exit 77
  fi
  kill -0 $pid 2>/dev/null || bad "$guard: the program died while gdb was attached"
  kill -9 $pid
  wait $pid 2>/dev/null
  pid=
  check "live ($guard stacks)" "$work/live.$guard" full
  grep -q "parked times as of now (live process)" "$work/live.$guard" || bad "live: not recognised as a live process"
  [[ -s $work/gcore.$guard ]] || { bad "$guard: gcore wrote no core file"; continue; }
  "${gdb_cmd[@]}" "$prog" "$work/gcore.$guard" "${commands[@]}" >"$work/gcore.$guard.out" 2>&1
  grep -q "A core file has no clock" "$work/gcore.$guard.out" || bad "gcore ($guard): not recognised as a core file"
  check "gcore ($guard stacks)" "$work/gcore.$guard.out" full
  if [[ $guard == default ]]; then
    [[ -s $work/raw.$guard ]] || { bad "generate-core-file wrote no core file"; continue; }
    "${gdb_cmd[@]}" "$prog" "$work/raw.$guard" "${commands[@]}" >"$work/raw.$guard.out" 2>&1
    if grep -q "(stack not in the core file)" "$work/raw.$guard.out"; then
      check "generate-core-file (default stacks, guard markers)" "$work/raw.$guard.out" no-stacks
      grep -q "^ringlet: filled in [0-9]* bytes of [0-9]* mapping(s) generate-core-file left out" "$work/live.$guard" \
        || bad "gcore: generate-core-file lost the stacks, but gcore did not say what it filled in"
    else
      echo "note: generate-core-file kept the stacks here (no MADV_GUARD_INSTALL guards): gcore had nothing to fill in"
      check "generate-core-file (default stacks)" "$work/raw.$guard.out" full
    fi
  fi
done
unset RINGLET_STACK_GUARD

# A thread stopped inside a switch (a breakpoint on ringlet_jump_fcontext, x86-64's switch):
# info fibers says that its stacks may be stale there.
"${gdb_cmd[@]}" -iex 'set breakpoint pending on' -ex 'break ringlet_jump_fcontext' -ex run -ex 'continue 5' \
  -ex 'info fibers' -ex kill --args "$prog" "$threads" >"$work/switch" 2>&1
grep -q "^  (stopped inside a switch: until it ends, this thread's stack may be the fiber it leaves" "$work/switch" \
  || bad "stopped in ringlet_jump_fcontext: info fibers does not say so"
if grep -q "Traceback\|Python Exception\|Error occurred in Python" "$work/switch"; then
  bad "stopped in ringlet_jump_fcontext: gdb said: $(grep -m3 "Traceback\|Python Exception\|Error occurred in Python" "$work/switch")"
fi

# Run 3: the kernel's core dump.
pattern=$(cat /proc/sys/kernel/core_pattern 2>/dev/null)
if [[ $pattern == \|* || $pattern == */* || -z $pattern ]] || ! ulimit -c unlimited 2>/dev/null; then
  echo "note: the kernel core dump part is skipped: core_pattern '$pattern' does not write a file in the working directory, or ulimit -c cannot be raised"
else
  start "$work/out.kernel"
  kill -ABRT $pid
  wait $pid 2>/dev/null
  pid=
  kcore=$(ls "$work"/core* 2>/dev/null | head -1)
  if [[ -z $kcore ]]; then
    bad "kernel: no core file in $work (core_pattern '$pattern')"
  else
    "${gdb_cmd[@]}" "$prog" "$kcore" "${commands[@]}" >"$work/kcore.out" 2>&1
    check "kernel core dump" "$work/kcore.out" full
  fi
fi

if ((fail)); then
  for f in "$work"/live.* "$work"/gcore.*.out "$work"/raw.*.out "$work"/switch "$work"/kcore.out; do
    [[ -f $f ]] && { echo "--- $(basename "$f"):"; cat "$f"; }
  done
  exit 1
fi
echo "gdb_fibers.sh: threads=$threads engine=$engine: every check held (live, gcore, kernel core)"
