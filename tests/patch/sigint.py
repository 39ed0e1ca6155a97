# Ctrl-C must interrupt a blocking time.sleep and a blocking recv, patched or not.
import socket, sys, time
for what in ("sleep", "recv", "select"):
    a, b = socket.socketpair()
    print("ready", what, flush=True)
    t = time.monotonic()
    try:
        if what == "sleep":
            time.sleep(20)
        elif what == "recv":
            a.recv(10)
        else:
            import select
            select.select([a], [], [], 20)
        print("not interrupted", what)
    except KeyboardInterrupt:
        print("interrupted", what, "ok" if time.monotonic() - t < 10 else "late", flush=True)
sys.exit(3)
