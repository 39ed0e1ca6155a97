#!/usr/bin/env bash
# CPython's own regression tests for the calls the patch replaces, run natively and under
# ringlet-run; every test case must end the same way in both runs.
#   cpython_regrtest.sh RINGLET_RUN [--min-cases N] [--min-waited N] [--min-fiber CALL=N]...
#                       [test names...]
# --min-cases N   the native run must report at least N test cases (default 100): fewer means
#                 the log was not parsed, or the test package is incomplete.
# --min-waited N  the patched run's largest process must have waited on the reactor at least
#                 N times (default 100): fewer means the calls did not go through the patch.
# --min-fiber CALL=N  the patched run's largest process must have made CALL on a fiber at
#                 least N times (pthread_create=N: its threads were fibers); repeatable.
# --known-gap NAME=WHY  the test case NAME (its method name) is known to end otherwise under
#                 ringlet-run, for the reason WHY, said in the report; it must still differ
#                 (else the list is stale and the run fails), and is left out of the
#                 comparison; repeatable. Every other case must end the same way.
# --hangs NAME=WHY  the test case NAME hangs under ringlet-run for the reason WHY: it is left
#                 out of both runs (regrtest -i), and the reason said in the report; repeatable.
# --native-cache DIR  keep the native run's log in DIR, under a key made of the interpreter,
#                 its version and these arguments; with REGRTEST_REUSE_NATIVE=1 a log kept
#                 there is compared with instead of running the native side again (the test
#                 setup two_carriers sets it: its patched run differs, the native one does not).
# REGRTEST_PYTHON the interpreter (default: python3 on PATH).
# REGRTEST_KEEP   a directory to keep the logs in (native.log, patched.log, the outcome lists
#                 native.txt and patched.txt, diff.txt) instead of a temporary one.
# Exit 0 if they agree, 1 if not, 77 (skip) if this python3 has no test package or lacks one
# of the named test modules (Debian: libpython3.11-testsuite).
set -uo pipefail
rr=$1; shift
min_cases=100 min_waited=100 min_fiber=() known_gap=() hangs=() native_cache=""
all_args=("$@")
while (($#)); do
  case $1 in
    --min-cases) min_cases=$2; shift 2 ;;
    --min-waited) min_waited=$2; shift 2 ;;
    --min-fiber) min_fiber+=("$2"); shift 2 ;;
    --known-gap) known_gap+=("$2"); shift 2 ;;
    --hangs) hangs+=("$2"); shift 2 ;;
    --native-cache) native_cache=$2; shift 2 ;;
    *) break ;;
  esac
done
tests=("$@")
((${#tests[@]})) || tests=(test_socket test_selectors test_select test_poll test_time)
py=$("${REGRTEST_PYTHON:-python3}" -c 'import sys; print(sys.executable)' 2>/dev/null) ||
  { echo "SKIP: no python3"; exit 77; }
"$py" -c 'import test.libregrtest' 2>/dev/null || { echo "SKIP: $py has no test package (regrtest)"; exit 77; }
# Debian ships test.libregrtest in libpython3.11-stdlib but the test modules separately.
missing=$("$py" -c 'import importlib.util, sys
print(" ".join(t for t in sys.argv[1:] if importlib.util.find_spec("test." + t) is None))' "${tests[@]}")
[[ -z "$missing" ]] || { echo "SKIP: $py lacks the test modules $missing"; exit 77; }
if [[ -n "${REGRTEST_KEEP:-}" ]]; then
  work=$REGRTEST_KEEP; mkdir -p "$work" || exit 1
else
  work=$(mktemp -d /tmp/ringlet-regrtest-XXXXXX)
  trap 'rm -rf "$work"' EXIT
fi
# regrtest runs as "python3 -m test", except that it first takes RINGLET_PATCH_STATS out of
# its environment: the counters are wanted from this process (and the children it forks),
# not from every python3 a test case starts, many of which must write nothing on stderr.
# VSOCK tests hang in sandboxes without a vsock transport, natively as much as patched.
boot='import os, runpy; os.environ.pop("RINGLET_PATCH_STATS", None); runpy.run_module("test", run_name="__main__", alter_sys=True)'
ignore=(-i '*VSOCK*')
for h in "${hangs[@]}"; do
  ignore+=(-i "*${h%%=*}*")
  echo "regrtest: left out of both runs, it hangs under ringlet-run: ${h%%=*}: ${h#*=}"
done
args=(-c "$boot" -v --timeout 300 "${ignore[@]}" "${tests[@]}")
# "test id outcome" lines, outcome reduced to ok/skipped/FAIL/ERROR/... A case starts with
# "name (id)" at the start of a line; its outcome follows " ... " on that line, or comes on a
# later one: after a docstring line ("Docstring ... ok"), or alone after whatever the case, or
# a child it forked (the patch's counters at its exit), printed in between.
outcomes() {
  awk '
    function outcome(s) {
      if (!match(s, /^(ok|skipped|FAIL|ERROR|expected failure|unexpected success)/)) return ""
      return substr(s, RLENGTH + 1, 1) ~ /[A-Za-z_0-9]/ ? "" : substr(s, 1, RLENGTH)
    }
    {
      line = $0
      if (match(line, /^[A-Za-z_0-9]+ \([A-Za-z_0-9.]+\)/)) {
        cur = substr(line, 1, RLENGTH); line = substr(line, RLENGTH + 1)
        if (line == "") next
      }
      if (cur == "") next
      i = index(line, " ... ")
      o = i ? outcome(substr(line, i + 5)) : outcome(line)
      if (o != "") { print cur " " o; cur = "" }
    }' "$1" | sort -u
}
key=""
if [[ -n "$native_cache" ]]; then
  key=$( { "$py" -VV; printf '%s\n' "$py" "${all_args[@]}"; } | sha256sum | cut -c1-16)
fi
if [[ -n "$key" && "${REGRTEST_REUSE_NATIVE:-0}" == 1 && -s "$native_cache/$key.log" &&
      -s "$native_cache/$key.rc" ]]; then
  cp "$native_cache/$key.log" "$work/native.log"
  native_rc=$(cat "$native_cache/$key.rc")
  echo "regrtest: ${tests[*]}: the native run kept in $native_cache/$key.log (exit $native_rc, $(date -r "$native_cache/$key.log" -u +%FT%TZ)); now under ringlet-run"
else
  echo "regrtest: ${tests[*]} natively ($py)"
  start=$SECONDS
  (cd "$work" && "$py" "${args[@]}") >"$work/native.log" 2>&1
  native_rc=$?
  echo "regrtest: native exit $native_rc after $((SECONDS - start)) s; now under ringlet-run"
  if [[ -n "$key" ]] && mkdir -p "$native_cache"; then
    cp "$work/native.log" "$native_cache/$key.log" && echo "$native_rc" >"$native_cache/$key.rc"
  fi
fi
start=$SECONDS
# The blocking monitor is off here: a CPU-heavy test case on a loaded machine runs past its
# 100 ms, and its report on stderr then splits the case's "... ok" line in the merged log,
# which reads as a missing outcome. (The monitor has its own tests.)
(cd "$work" && RINGLET_MAX_BLOCKING_MS=0 "$rr" --stats -- "$py" "${args[@]}") >"$work/patched.log" 2>&1
patched_rc=$?
echo "regrtest: patched exit $patched_rc after $((SECONDS - start)) s"
outcomes "$work/native.log" >"$work/native.txt"
outcomes "$work/patched.log" >"$work/patched.txt"
n=$(wc -l <"$work/native.txt")
echo "regrtest: $n test cases; native: $(grep -c ' ok$' "$work/native.txt") ok, $(grep -cE ' (FAIL|ERROR)$' "$work/native.txt") failed; patched: $(grep -c ' ok$' "$work/patched.txt") ok, $(grep -cE ' (FAIL|ERROR)$' "$work/patched.txt") failed"
grep -aE '^(Tests result|All [0-9]+ tests|[0-9]+ tests? (failed|skipped|OK))' "$work/native.log" | sed 's/^/  native:  /'
grep -aE '^(Tests result|All [0-9]+ tests|[0-9]+ tests? (failed|skipped|OK))' "$work/patched.log" | sed 's/^/  patched: /'
if ((n < min_cases)); then
  echo "regrtest: too few test cases parsed from the native run; log tail:"; tail -30 "$work/native.log"; exit 1
fi
# The patched run must really have gone through the reactor (the main process's counters).
waited=$(grep -a 'ringlet patch:   total' "$work/patched.log" | awk '{print $5}' | sort -n | tail -1)
echo "regrtest: patched calls that waited on the reactor (largest process): ${waited:-none}"
if [[ -z "$waited" || "$waited" -lt min_waited ]]; then
  echo "regrtest: the patched run did not go through the patch"; exit 1
fi
for req in "${min_fiber[@]}"; do
  call=${req%%=*} need=${req#*=}
  made=$(grep -a "ringlet patch:   $call " "$work/patched.log" | awk '{print $4}' | sort -n | tail -1)
  echo "regrtest: $call calls made on a fiber (largest process): ${made:-none}"
  if [[ -z "$made" || "$made" -lt need ]]; then
    echo "regrtest: the patched run made fewer than $need $call calls on a fiber"; exit 1
  fi
done
gaps_seen=0
for gap in "${known_gap[@]}"; do
  name=${gap%%=*} why=${gap#*=}
  n_line=$(grep -a "^$name (" "$work/native.txt")
  p_line=$(grep -a "^$name (" "$work/patched.txt")
  if [[ -z "$n_line" || "$n_line" == "$p_line" ]]; then
    echo "regrtest: the known gap $name no longer differs (native: '${n_line:-absent}'): take it off the list"
    exit 1
  fi
  echo "regrtest: known gap: $name (${p_line##* } under ringlet-run): $why"
  grep -av "^$name (" "$work/native.txt" >"$work/n.tmp" && mv "$work/n.tmp" "$work/native.txt"
  grep -av "^$name (" "$work/patched.txt" >"$work/p.tmp" && mv "$work/p.tmp" "$work/patched.txt"
  gaps_seen=$((gaps_seen + 1))
done
diff -u "$work/native.txt" "$work/patched.txt" >"$work/diff.txt"
same=$?
# A known gap that fails makes regrtest exit 2 (tests failed) where the native run may exit
# 0; that exit status alone is then no difference.
rc_differs=0
if [[ $native_rc -ne $patched_rc ]] && ! ((gaps_seen > 0 && patched_rc == 2 && native_rc == 0)); then rc_differs=1; fi
if [[ $rc_differs -ne 0 || $same -ne 0 ]]; then
  echo "regrtest: the runs differ (exit $native_rc vs $patched_rc):"
  head -60 "$work/diff.txt"
  grep -aE -A25 '^(FAIL|ERROR):' "$work/patched.log" | head -120
  exit 1
fi
if ((gaps_seen)); then
  echo "regrtest: every other test case ends the same way under ringlet-run"
else
  echo "regrtest: every test case ends the same way under ringlet-run"
fi
