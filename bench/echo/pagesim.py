#!/usr/bin/env python3
"""Echo servers under valgrind's lackey: the distinct 4 KiB pages each touches between two
system calls, per echoed message, counted, not timed.

Why pages: on a kernel with page-table isolation and no PCID (this VM's: "Mitigation: PTI",
no pcid flag), every system call empties the TLB of user pages, so each page a server touches
between two calls costs a page walk, and in a virtual machine a nested one. The C servers touch
a few; a fiber runtime touches its code, its fiber's stack and state, its engine's tables and
the pages that reach libc and libstdc++ (PLT, GOT, vDSO). This counts them, split by mapping.

Each server runs pinned to CPU 0 under lackey (--trace-mem=yes --trace-syscalls=yes, which
print every access and every call in order); a paced client on CPU 1 keeps --conns connections,
each sending 64 bytes, reading the echo and waiting --period seconds, so that the server drains
its work and parks as it does when not saturated (a saturated server under valgrind's slowdown
would find data waiting at every read and never park). After --skip sends (start-up, accepts,
first registrations) it counts --count sends: for each interval between two system calls, the
distinct code pages and data pages touched, summed and divided by the sends.

    bench/echo/pagesim.py BUILD_DIR [--base OTHER_BUILD_DIR] [--servers "ringlet epoll,epoll C"]
        [--conns 400] [--period 0.9] [--skip 4000] [--count 2000] [--top 12]

Keep --period below a second with ringlet's epoll engine: a parked wait older than one to two
seconds is re-checked with an epoll_ctl, which is not the per-message path. Two calls under
valgrind are not kernel entries natively and do not end an interval: clock_gettime (valgrind
has no vDSO) and epoll_pwait2 (valgrind 3.19 answers ENOSYS; the engine then uses epoll_wait).
With --conns 100 the server is idle between messages, and both servers make one wait, one
read and one send per message.
"""
import collections
import os
import selectors
import shutil
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import echo_common  # noqa: E402

SENDS = {1: "write", 20: "writev", 44: "sendto", 46: "sendmsg"}
# Calls valgrind makes that the native program does not make into the kernel: clock_gettime
# (the vDSO answers it natively; valgrind has no vDSO) and epoll_pwait2 (unknown to valgrind
# 3.19: ENOSYS, then the engine falls back to epoll_wait). Counted, but they do not end an
# interval.
NOT_ENTRIES = {228, 441}
NAMES = {0: "read", 1: "write", 20: "writev", 44: "sendto", 45: "recvfrom", 46: "sendmsg", 47: "recvmsg",
         228: "clock_gettime", 232: "epoll_wait", 233: "epoll_ctl", 281: "epoll_pwait", 441: "epoll_pwait2",
         426: "io_uring_enter", 55: "getsockopt", 9: "mmap", 11: "munmap", 12: "brk", 10: "mprotect"}


def client(host, port, conns, period, stop):
    """Paced ping-pong until stop is set: each connection sends 64 B, reads the echo, waits."""
    sel = selectors.DefaultSelector()
    socks = []
    for i in range(conns):
        s = socket.create_connection((host, port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
        socks.append(s)
        sel.register(s, selectors.EVENT_READ, i)
    msg = b"x" * 64
    got = [0] * conns
    due = collections.deque()  # (time, conn), in time order: every wait is the same period
    start = time.monotonic()
    for i in range(conns):
        due.append((start + period * i / conns, i))
    while not stop.is_set():
        now = time.monotonic()
        while due and due[0][0] <= now:
            _, i = due.popleft()
            try:
                socks[i].send(msg)
            except OSError:
                return
        timeout = min(0.05, max(0.0, due[0][0] - now)) if due else 0.05
        for key, _ in sel.select(timeout):
            i = key.data
            try:
                data = key.fileobj.recv(4096)
            except BlockingIOError:
                continue
            except OSError:
                return
            if not data:
                return
            got[i] += len(data)
            while got[i] >= 64:
                got[i] -= 64
                due.append((time.monotonic() + period, i))
    for s in socks:
        s.close()


def read_maps(pid):
    maps = []
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            p = line.split()
            lo, hi = (int(x, 16) for x in p[0].split("-"))
            name = os.path.basename(p[5]) if len(p) > 5 else "[anon]"
            maps.append((lo, hi, f"{name} {p[1]}"))
    return maps


def region(maps, page):
    for lo, hi, name in maps:
        if lo <= page < hi:
            return name
    return "?"


def parse(log, srv, args, out):
    """Reads lackey's log until --count sends are counted (or it ends); fills `out`."""
    code, data = set(), set()
    sends = counted = intervals = code_sum = data_sum = 0
    calls = collections.Counter()
    by_region = collections.Counter()
    maps = None
    for raw in log:
        if raw[:2] == b"I ":
            code.add(int(raw[3:raw.index(b",")], 16) >> 12)
            continue
        if raw[:1] == b" " and raw[1:2] in (b"L", b"S", b"M"):
            data.add(int(raw[3:raw.index(b",")], 16) >> 12)
            continue
        i = raw.find(b"SYSCALL[")
        if i < 0:
            continue
        j = raw.find(b"(", i)
        k = raw.find(b")", j)
        try:
            nr = int(raw[j + 1:k])
        except ValueError:
            continue
        if nr in NOT_ENTRIES:
            if sends >= args.skip:
                calls[nr] += 1
            continue
        if sends >= args.skip:
            if maps is None:
                maps = read_maps(srv.pid)
            intervals += 1
            code_sum += len(code)
            data_sum += len(data)
            calls[nr] += 1
            for p in code:
                by_region["code " + region(maps, p << 12)] += 1
            for p in data:
                by_region["data " + region(maps, p << 12)] += 1
        code.clear()
        data.clear()
        if nr in SENDS:
            sends += 1
            if sends > args.skip:
                counted += 1
                if counted >= args.count:
                    break
    out.update(sends=sends, counted=counted, intervals=intervals, code=code_sum, data=data_sum,
               calls=calls, regions=by_region)
    for _ in log:  # until the server ends: it must never block on a full pipe
        pass


def measure(cmd, port, args):
    """One server under lackey: a dict of per-message figures, or None with a reason."""
    cmd, env = echo_common.split_env(cmd)  # valgrind must run the program itself
    env["RINGLET_MAX_BLOCKING_MS"] = "0"  # no monitor thread
    rfd, wfd = os.pipe()
    vg = ["valgrind", "--tool=lackey", "--trace-mem=yes", "--trace-syscalls=yes", f"--log-fd={wfd}"]
    srv = subprocess.Popen(["taskset", "-c", "0"] + vg + [a.replace("{port}", str(port)) for a in cmd],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True,
                           pass_fds=(wfd,))
    os.close(wfd)
    log = os.fdopen(rfd, "rb", buffering=1 << 20)
    out = {}
    # The log is read from the start (a full pipe would stop the server), on CPU 1 with the
    # client: CPU 0 is the server's.
    reader = threading.Thread(target=parse, args=(log, srv, args, out), daemon=True)
    reader.start()
    stop = threading.Event()
    cl = None
    try:
        line = srv.stdout.readline()
        if "listening" not in line:
            return None, f"did not start under valgrind: {line.strip() or 'no word'}"
        cl = threading.Thread(target=client, args=("127.0.0.1", port, args.conns, args.period, stop), daemon=True)
        cl.start()
        deadline = time.monotonic() + args.timeout
        while not out and time.monotonic() < deadline and srv.poll() is None:
            time.sleep(0.2)
    finally:
        stop.set()
        echo_common.stop_server(srv)
        reader.join(timeout=30)
        log.close()
        if cl:
            cl.join(timeout=5)
    counted = out.get("counted", 0)
    if counted < args.count:
        return None, (f"only {counted} of {args.count} sends counted in {args.timeout:g} s "
                      f"({out.get('sends', 0)} seen): raise --timeout, or lower --skip/--count")
    return {
        "sends": counted,
        "intervals": out["intervals"] / counted,
        "code": out["code"] / counted,
        "data": out["data"] / counted,
        "calls": {NAMES.get(nr, f"#{nr}"): n / counted for nr, n in out["calls"].most_common()},
        "regions": [(r, n / counted) for r, n in out["regions"].most_common(args.top)],
    }, None


def main():
    ap = echo_common.valgrind_parser(__doc__)
    ap.add_argument("--conns", type=int, default=400)
    ap.add_argument("--period", type=float, default=0.9, help="seconds each connection waits between messages")
    ap.add_argument("--skip", type=int, default=4000, help="sends left uncounted at the start")
    ap.add_argument("--count", type=int, default=2000, help="sends counted")
    ap.add_argument("--top", type=int, default=12, help="mappings listed per server")
    ap.add_argument("--timeout", type=float, default=180.0, help="seconds per server at most")
    args = ap.parse_args()
    try:
        os.sched_setaffinity(0, {1})  # this process (its reader and client threads): CPU 1
    except OSError:
        pass
    for tool in ("valgrind", "taskset"):
        if not shutil.which(tool):
            sys.exit(f"pagesim.py: {tool} not found (apt-get install valgrind util-linux)")
    if (os.cpu_count() or 1) < 2:
        sys.exit("pagesim.py: needs two CPUs (the server on CPU 0, the client on CPU 1)")
    if args.conns < 1 or args.period <= 0 or args.skip < 0 or args.count < 1 or args.timeout <= 0:
        sys.exit("pagesim.py: --conns and --count must be above 0, --period and --timeout above 0, --skip 0 or more")
    table, names = echo_common.valgrind_servers(args, "pagesim.py")
    for n in names:
        if n not in table or n in ("Go", "gevent") or "io_uring" in n or n == "ringlet":
            sys.exit(f"pagesim.py: cannot count {n!r} (epoll servers only: valgrind 3.19 does not know io_uring)")
        prog = next(a for a in table[n] if "/" in a)
        if not os.access(prog, os.X_OK):
            sys.exit(f"pagesim.py: {prog} not found: build it first")
    print(f"# echo under lackey: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {args.conns} connections, "
          f"64 B every {args.period:g} s each; {args.count} sends counted after {args.skip}\n")
    print("| server | system calls / msg | intervals / msg | code pages / msg | data pages / msg | pages / msg |")
    print("|---|---|---:|---:|---:|---:|")
    failed = 0
    port = 7950
    details = []
    for n in names:
        port += 1
        r, why = measure(table[n], port, args)
        if r is None:
            print(f"| {n} | failed: {why} | | | | |")
            failed += 1
            continue
        calls = ", ".join(f"{k} {v:.2f}" for k, v in r["calls"].items() if v >= 0.01)
        print(f"| {n} | {calls} | {r['intervals']:.2f} | {r['code']:.2f} | {r['data']:.2f} | {r['code'] + r['data']:.2f} |")
        details.append((n, r))
        sys.stdout.flush()
    for n, r in details:
        print(f"\n{n}: pages per message by mapping")
        for reg, v in r["regions"]:
            print(f"  {v:6.2f}  {reg}")
    if failed:
        sys.exit(f"pagesim.py: {failed} measurement(s) failed (see the table)")


if __name__ == "__main__":
    main()
