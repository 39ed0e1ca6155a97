#!/usr/bin/env python3
"""Echo servers under valgrind's callgrind: user-space instructions and simulated cache misses
per echoed message, counted, not timed.

Timed figures on this shared host move by 10-30 % from run to run (bench/RESULTS.md), which
hides differences of a few per cent; the counts here come out the same run after run (to
within 0.1 %). Each server runs pinned to CPU 0 under callgrind with a simulated 32 KiB L1
and a last level of --ll bytes (default 512 KiB: what spills past a core's own L2), driven by
build/bench/loadgen on CPU 1. Counting starts after --warmup seconds and stops --window
seconds later (callgrind_control), so start-up and accepts are left out; the messages are the
calls of the server's one send per message in that window.

What it cannot see: the kernel's own instructions and misses (both servers make the same
system calls per message: bench/RESULTS.md), and timing (a miss counts one whatever it
costs). io_uring servers do not run under valgrind 3.19, so the engines compared are epoll.

    bench/echo/cachesim.py BUILD_DIR [--base OTHER_BUILD_DIR] [--servers "ringlet epoll,epoll C"]
        [--conns 1000,50] [--warmup 8] [--window 10] [--ll 524288] [--keep DIR]

--keep DIR keeps each window's dump as DIR/<server>-<conns>.callgrind, to see where the misses
are: callgrind_annotate --show=DLmr,DLmw,D1mr,D1mw,Ir --sort=DLmr FILE (build with
-Ddebug=true for source lines; the code is the same).

--base adds "ringlet epoll@base", the same server from another build (a change's before and
after). Prints one row per (connections, server), with the ratios to the epoll C server.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import echo_common  # noqa: E402

# The function each server calls once per echoed message (callgrind's name).
SEND = {
    "ringlet epoll": "ringlet::net::TcpStream::write_all(ringlet::net::ConstBuffer, ringlet::Deadline)",
    "epoll C": "send",
}
EVENTS = ("Ir", "Dr", "Dw", "I1mr", "D1mr", "D1mw", "ILmr", "DLmr", "DLmw")


def read_profile(path, send_fn):
    """(totals by event, calls of send_fn) from a callgrind dump."""
    names, calls, cfn, totals = {}, 0, None, None
    with open(path, errors="replace") as f:
        for line in f:
            m = re.match(r"(c?fn)=\((\d+)\)(?: (.*))?", line)
            if m:
                if m[3]:
                    names[m[2]] = m[3]
                if m[1] == "cfn":
                    cfn = m[2]
                continue
            m = re.match(r"calls=(\d+)", line)
            if m and cfn is not None and names.get(cfn) == send_fn:
                calls += int(m[1])
            elif line.startswith("totals:"):
                totals = dict(zip(EVENTS, map(int, line.split()[1:])))
    return totals, calls


def measure(cmd, send_fn, port, conns, args, loadgen, keep_as=None):
    """One server under callgrind: per-message counts, or None with a reason."""
    cmd, env = echo_common.split_env(cmd)  # valgrind must run the program itself
    env["RINGLET_MAX_BLOCKING_MS"] = "0"  # no monitor thread: one thread to simulate
    workdir = tempfile.mkdtemp(prefix="cachesim.", dir=args.tmp)
    out = os.path.join(workdir, "callgrind.out")  # the window's dump is out + ".1"
    vg = ["valgrind", "--tool=callgrind", "--cache-sim=yes", "--D1=32768,8,64", f"--LL={args.ll},8,64",
          "--instr-atstart=no", f"--callgrind-out-file={out}"]
    srv = subprocess.Popen(["taskset", "-c", "0"] + vg + [a.replace("{port}", str(port)) for a in cmd],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True)
    line = srv.stdout.readline()
    if "listening" not in line:
        srv.kill()
        srv.wait()
        shutil.rmtree(workdir, ignore_errors=True)
        return None, f"did not start under valgrind: {line.strip() or 'no word'}"
    total = args.warmup + args.window + 3
    lg = subprocess.Popen(["taskset", "-c", "1", loadgen, "127.0.0.1", str(port), str(conns), "64", str(total), "0"],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        time.sleep(args.warmup)
        ctl = ["callgrind_control"]
        subprocess.run(ctl + ["-i", "on", str(srv.pid)], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(args.window)
        subprocess.run(ctl + ["-i", "off", str(srv.pid)], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        subprocess.run(ctl + ["-d", str(srv.pid)], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        lg_out, _ = lg.communicate(timeout=total + 30)
    finally:
        if lg.poll() is None:
            lg.kill()
        echo_common.stop_server(srv)
    dump = f"{out}.1"
    found = os.path.exists(dump)
    totals, msgs = read_profile(dump, send_fn) if found else (None, 0)
    if found and keep_as:
        shutil.copyfile(dump, keep_as)
    shutil.rmtree(workdir, ignore_errors=True)
    if not found:
        return None, "callgrind wrote no dump for the window"
    if "errors=0" not in lg_out:
        return None, f"loadgen: {lg_out.strip()}"
    if not totals or msgs == 0:
        return None, f"no calls of {send_fn} in the window"
    return {
        "msgs": msgs,
        "ir": totals["Ir"] / msgs,
        "d1": (totals["D1mr"] + totals["D1mw"]) / msgs,
        "ll": (totals["DLmr"] + totals["DLmw"]) / msgs,
    }, None


def main():
    ap = echo_common.valgrind_parser(__doc__)
    ap.add_argument("--conns", default="1000,50", help="comma-separated connection counts")
    ap.add_argument("--warmup", type=float, default=8.0, help="seconds of load before counting")
    ap.add_argument("--window", type=float, default=10.0, help="seconds counted")
    ap.add_argument("--ll", type=int, default=524288, help="simulated last-level cache, bytes (8-way)")
    ap.add_argument("--tmp", default=tempfile.gettempdir())
    ap.add_argument("--keep", metavar="DIR", help="keep each window's callgrind dump in DIR")
    args = ap.parse_args()
    if args.keep:
        try:
            os.makedirs(args.keep, exist_ok=True)
        except OSError as e:
            sys.exit(f"cachesim.py: --keep {args.keep}: {e.strerror}")
    for tool in ("valgrind", "callgrind_control", "taskset"):
        if not shutil.which(tool):
            sys.exit(f"cachesim.py: {tool} not found (apt-get install valgrind util-linux)")
    loadgen = os.path.join(args.build, "bench", "loadgen")
    if not os.access(loadgen, os.X_OK):
        sys.exit(f"cachesim.py: {loadgen} not found: build {args.build} first")
    table, names = echo_common.valgrind_servers(args, "cachesim.py")
    if args.base:
        SEND["ringlet epoll@base"] = SEND["ringlet epoll"]
    for n in names:
        if n not in SEND:
            sys.exit(f"cachesim.py: no send function known for {n!r} (known: {', '.join(SEND)}; "
                     "io_uring servers do not run under valgrind 3.19)")
    try:
        conns = [int(c) for c in args.conns.split(",")]
    except ValueError:
        conns = []
    if not conns or min(conns) < 1:
        sys.exit(f"cachesim.py: --conns {args.conns!r} is not a comma-separated list of counts above 0")
    if args.warmup < 0 or args.window <= 0 or args.ll < 4096:
        sys.exit("cachesim.py: --warmup must be 0 or more, --window above 0, --ll at least 4096 bytes")
    failed = 0
    print(f"# echo under callgrind: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; 64 B ping-pong; "
          f"L1d 32 KiB, last level {args.ll // 1024} KiB; {args.window:g} s counted after {args.warmup:g} s\n")
    print("| connections | server | messages counted | instructions / msg | L1d misses / msg | "
          "last-level misses / msg | over epoll C: instr., L1d, LL |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    port = 7900
    for c in conns:
        rows = {}
        for n in names:
            port += 1
            keep_as = os.path.join(args.keep, f"{n.replace(' ', '_')}-{c}.callgrind") if args.keep else None
            r, why = measure(table[n], SEND[n], port, c, args, loadgen, keep_as)
            if r is None:
                print(f"| {c} | {n} | failed: {why} | | | | |")
                failed += 1
                continue
            rows[n] = r
        ref = rows.get("epoll C")
        for n, r in rows.items():
            vs = f"+{r['ir'] - ref['ir']:.0f}, +{r['d1'] - ref['d1']:.2f}, +{r['ll'] - ref['ll']:.2f}" if ref else ""
            print(f"| {c} | {n} | {r['msgs']} | {r['ir']:.0f} | {r['d1']:.2f} | {r['ll']:.2f} | {vs} |")
        sys.stdout.flush()
    if failed:
        sys.exit(f"cachesim.py: {failed} measurement(s) failed (see the table)")


if __name__ == "__main__":
    main()
