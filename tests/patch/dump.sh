#!/usr/bin/env bash
# The fiber dump of a patched program (issue 22): a thread-per-connection C server
# (tests/patch/thread_echo.c, each thread named "conn") under `ringlet-run --dump-signal QUIT`
# holding 20 clients; kill -QUIT writes the dump on its stderr, which lists the 20 fiber
# threads as one entry by their pthread name, parked in read inside the program's own serve();
# the server keeps answering every client afterwards; its stderr had nothing before (the
# monitor is off by default under ringlet-run). Without --dump-signal, SIGQUIT ends it as it
# ends the native program (status 131).
#   dump.sh RINGLET_RUN THREAD_ECHO
set -uo pipefail
rr=$1
prog=$2
work=$(mktemp -d /tmp/ringlet-dump-XXXXXX)
pid=
native=
trap '[[ -n $pid ]] && kill -9 $pid 2>/dev/null; [[ -n $native ]] && kill -9 $native 2>/dev/null; rm -rf "$work"' EXIT
fail=0
bad() { echo "FAILED: $*"; fail=1; }

# Holds N clients; echoes once on each, says "held", waits for a line on stdin, echoes again.
cat >"$work/clients.py" <<'PY'
import socket, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
conns = [socket.create_connection(("127.0.0.1", port), timeout=20) for _ in range(n)]
def echo_all(tag):
    for i, c in enumerate(conns):
        msg = f"{tag}-{i}".encode()
        c.sendall(msg)
        got = b""
        while len(got) < len(msg):
            part = c.recv(len(msg) - len(got))
            if not part:
                sys.exit(f"connection {i} closed during {tag}")
            got += part
        if got != msg:
            sys.exit(f"connection {i}: {got!r} for {msg!r}")
echo_all("before")
print("held", flush=True)
sys.stdin.readline()
echo_all("after")
print("answered", flush=True)
PY

start_server() {  # port, extra ringlet-run options...
  local port=$1; shift
  : >"$work/out"; : >"$work/err"
  # (A shell starts a background command with SIGQUIT ignored: give it the default back.)
  env --default-signal=QUIT "$rr" "$@" -- "$prog" "$port" >"$work/out" 2>"$work/err" &
  pid=$!
  for _ in $(seq 100); do grep -q "^listening on $port\$" "$work/out" && return 0; sleep 0.05; done
  bad "the server did not start: $(cat "$work/err")"
  return 1
}

# The carriers ringlet-run gives the server: RINGLET_THREADS (the meson test setups set it, 1
# by default, 2 under two_carriers); unset or 0, one per CPU. Only 1 and 2 are expected here.
carriers=${RINGLET_THREADS:-0}
((carriers == 0)) && carriers=$(nproc)
((carriers <= 2)) || { echo "dump.sh: expects 1 or 2 carriers, not $carriers (set RINGLET_THREADS)"; exit 1; }
# Below the ephemeral range (32768-60999 here), where a client socket of another test may hold a port.
port=$((20000 + RANDOM % 12000))
for engine in default epoll; do
  if [[ $engine == epoll ]]; then export RINGLET_BACKEND=epoll; else unset RINGLET_BACKEND; fi
  port=$((port + 1))
  start_server $port --dump-signal QUIT || continue
  coproc CLIENTS { timeout -k 5 60 python3 "$work/clients.py" $port 20; }
  read -r -t 30 line <&"${CLIENTS[0]}" || line=
  [[ $line == held ]] || bad "$engine: the clients were not all answered before the dump ('$line')"
  [[ -s $work/err ]] && bad "$engine: stderr before the dump signal: $(cat "$work/err")"
  sleep 0.3  # every thread back in its read
  kill -QUIT $pid
  for _ in $(seq 100); do grep -q "end of the fiber dump" "$work/err" && break; sleep 0.05; done
  grep -q "^ringlet fiber dump: process " "$work/err" || bad "$engine: no dump header"
  # One entry: on one carrier "[core 0]"; on two (main counts on carrier 0: the threads
  # alternate, 1, 0, 1...) the entry spans both, "[core 0-1]".
  where="core 0"
  ((carriers == 2)) && where="core 0-1"
  grep -qF "×20 fibers [$where]: parked in read (patched) (fds " "$work/err" ||
    bad "$engine: the 20 threads are not one entry [$where] parked in read"
  grep -q "'conn'" "$work/err" || bad "$engine: the threads' pthread name 'conn' is not shown"
  grep -q " serve+0x[0-9a-f]* (" "$work/err" || bad "$engine: the program's serve() is not in the threads' stack"
  grep -q "parked in accept" "$work/err" || bad "$engine: main's accept is not shown"
  echo go >&"${CLIENTS[1]}"
  read -r -t 30 line <&"${CLIENTS[0]}" || line=
  [[ $line == answered ]] || bad "$engine: the server stopped answering after the dump ('$line')"
  wait $CLIENTS_PID 2>/dev/null
  kill -0 $pid 2>/dev/null || bad "$engine: the server ended after the dump"
  kill -TERM $pid; wait $pid 2>/dev/null; pid=
  if ((fail)); then echo "--- stderr ($engine):"; cat "$work/err"; fi

  # Without --dump-signal the program owns SIGQUIT: it ends it, as natively.
  port=$((port + 1))
  start_server $port || continue
  kill -QUIT $pid; wait $pid; rc=$?; pid=
  [[ $rc == 131 ]] || bad "$engine: without --dump-signal, SIGQUIT ended the program with $rc, not 131"
  grep -q "fiber dump" "$work/err" && bad "$engine: a dump without --dump-signal"
done
port=$((port + 1))
env --default-signal=QUIT "$prog" $port >"$work/out" 2>&1 &
native=$!
for _ in $(seq 100); do grep -q "^listening on $port\$" "$work/out" && break; sleep 0.05; done
kill -QUIT $native; wait $native; rc=$?
native=
[[ $rc == 131 ]] || bad "natively, SIGQUIT ended the program with $rc, not 131"
# A RINGLET_DUMP_SIGNAL that names no signal: said once, the program runs as natively.
native_out=$(/bin/echo hi); native_rc=$?
patched_out=$(RINGLET_DUMP_SIGNAL=NOPE "$rr" -- /bin/echo hi 2>"$work/err"); patched_rc=$?
[[ $patched_out == "$native_out" && $patched_rc == "$native_rc" ]] ||
  bad "RINGLET_DUMP_SIGNAL=NOPE: '$patched_out' exit $patched_rc, natively '$native_out' exit $native_rc"
grep -q "RINGLET_DUMP_SIGNAL='NOPE' names no signal" "$work/err" || bad "RINGLET_DUMP_SIGNAL=NOPE was not said: $(cat "$work/err")"
((fail)) || echo "dump.sh: all checks held on both engines"
exit $fail
