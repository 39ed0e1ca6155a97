#!/usr/bin/env bash
# The gdb commands with a libringlet.so that has no debug info (a release build without -g,
# imitated by a copy of the library stripped of it but for the script's section): every
# command says so in one line, naming the builds that work; no Python traceback.
#   gdb_nodebug.sh LIBDIR PROG     (PROG: tests/gdb/fibers.cpp)
set -uo pipefail
libdir=$1
prog=$2
command -v gdb >/dev/null || { echo "SKIP: gdb is not installed (scripts/setup.sh installs it)"; exit 77; }
command -v objcopy >/dev/null || { echo "SKIP: no objcopy to strip the library with"; exit 77; }
work=$(mktemp -d /tmp/ringlet-gdb-nodebug-XXXXXX)
pid=
trap '[[ -n $pid ]] && kill -9 $pid 2>/dev/null; rm -rf "$work"' EXIT
lib=$(readlink -f "$libdir/libringlet.so.0")
objcopy --strip-debug --keep-section=.debug_gdb_scripts "$lib" "$work/libringlet.so.0"
LD_LIBRARY_PATH=$work "$prog" 1 >"$work/out" 2>"$work/err" &
pid=$!
for _ in $(seq 200); do
  grep -q ready "$work/out" && break
  kill -0 $pid 2>/dev/null || break
  sleep 0.05
done
grep -q ready "$work/out" || { echo "FAILED: the program did not get ready"; cat "$work/err"; exit 1; }
grep -q "$work/libringlet.so.0" /proc/$pid/maps || { echo "FAILED: the stripped copy is not the one loaded"; exit 1; }
timeout -k 5 60 gdb -q -nx -batch -iex "add-auto-load-safe-path $work" -p $pid \
  -ex 'info fibers' -ex 'fiber bt 1' -ex 'fiber apply all bt' -ex 'fiber 1' >"$work/gdb" 2>&1
if grep -q "ptrace: Operation not permitted" "$work/gdb"; then
  echo "SKIP: gdb may not attach here (ptrace: Operation not permitted)"
  exit 77
fi
fail=0
n=$(grep -c "^ringlet: libringlet is here but has no debug info: the fiber commands need a build with -g" "$work/gdb")
[[ $n == 4 ]] || { echo "FAILED: $n of 4 commands said that the library has no debug info"; fail=1; }
if grep -q "Traceback\|Python Exception\|Error occurred in Python\|Undefined command" "$work/gdb"; then
  echo "FAILED: gdb said: $(grep -m3 "Traceback\|Python Exception\|Error occurred in Python\|Undefined command" "$work/gdb")"
  fail=1
fi
((fail)) && { echo "--- gdb:"; cat "$work/gdb"; exit 1; }
echo "gdb_nodebug.sh: each command said in one line that the library has no debug info"
