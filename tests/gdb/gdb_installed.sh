#!/usr/bin/env bash
# After "meson install" to the prefix /usr or /usr/local, "gdb -p PID" has the fiber commands
# with no flag (gdb finds libringlet.so.VERSION-gdb.py in /usr/share/gdb/auto-load) and says
# nothing of a declined auto-load. Installed into a staging directory, then laid over the
# real paths with bind mounts in a private mount namespace (unshare -m): the machine's own
# /usr/local and /usr/share/gdb are not touched. Skipped where that namespace is refused.
#   gdb_installed.sh BUILD PROG     (PROG: tests/gdb/fibers.cpp)
set -uo pipefail
build=$1
prog=$2
command -v gdb >/dev/null || { echo "SKIP: gdb is not installed (scripts/setup.sh installs it)"; exit 77; }
opt() { meson introspect "$build" --buildoptions | python3 -c "import json,sys; print([o['value'] for o in json.load(sys.stdin) if o['name']=='$1'][0])"; }
prefix=$(opt prefix)
libdir=$(opt libdir)
autoload=$(opt gdb_auto_load_dir)
[[ $libdir == /* ]] || libdir=$prefix/$libdir
if [[ $autoload == none || ( $autoload == auto && $prefix != /usr && $prefix != /usr/local ) ]]; then
  echo "SKIP: this build installs no -gdb.py file (prefix $prefix, gdb_auto_load_dir $autoload)"
  exit 77
fi
[[ $autoload == auto ]] && autoload=/usr/share/gdb/auto-load
unshare -m true 2>/dev/null || { echo "SKIP: no private mount namespace here (unshare -m)"; exit 77; }
work=$(mktemp -d /tmp/ringlet-gdb-installed-XXXXXX)
trap 'rm -rf "$work"' EXIT
meson install -C "$build" --destdir "$work/root" --quiet >"$work/install" 2>&1 || { echo "FAILED: meson install"; cat "$work/install"; exit 1; }
lib=$(ls "$work/root$libdir"/libringlet.so.*.*.* | head -1)
script="$work/root$autoload$libdir/$(basename "$lib")-gdb.py"
[[ -f $script ]] || { echo "FAILED: no $script"; find "$work/root" -name '*-gdb.py'; exit 1; }
if readelf -S -W "$lib" | grep -q debug_gdb_scripts; then
  echo "FAILED: the installed library still carries the .debug_gdb_scripts section"; exit 1
fi
# gdb's auto-load directory as it is, plus what was installed into it.
mkdir -p "$work/auto"
[[ -d $autoload ]] || { echo "SKIP: no $autoload to mount over"; exit 77; }
cp -a "$autoload/." "$work/auto/"
cp -a "$work/root$autoload/." "$work/auto/"
cat >"$work/inside.sh" <<INSIDE
set -u
mount --bind "$work/root$prefix" "$prefix" && mount --bind "$work/auto" "$autoload" || exit 77
LD_LIBRARY_PATH="$libdir" "$prog" 1 >"$work/out" 2>&1 &
pid=\$!
for _ in \$(seq 200); do grep -q ready "$work/out" && break; sleep 0.05; done
grep -o "$libdir/libringlet.so[^ ]*" /proc/\$pid/maps | head -1 >"$work/maps"
timeout -k 5 60 gdb -q -nx -batch -p \$pid -ex 'info fibers -no-where' >"$work/gdb" 2>&1
kill -9 \$pid
INSIDE
unshare -m bash "$work/inside.sh"
rc=$?
[[ $rc == 77 ]] && { echo "SKIP: the bind mounts were refused"; exit 77; }
fail=0
[[ -s $work/maps ]] || { echo "FAILED: the program did not load the installed library"; fail=1; }
grep -q "ptrace: Operation not permitted" "$work/gdb" && { echo "SKIP: gdb may not attach here"; exit 77; }
grep -qE "^  [0-9]+\.[0-9]+ +getter +0 +parked +Queue::get" "$work/gdb" || { echo "FAILED: info fibers did not list the fibers"; fail=1; }
grep -q "declined" "$work/gdb" && { echo "FAILED: gdb said an auto-load was declined"; fail=1; }
((fail)) && { echo "--- gdb:"; cat "$work/gdb"; exit 1; }
echo "gdb_installed.sh: installed to $prefix, gdb -p had the fiber commands with no flag and no warning"
