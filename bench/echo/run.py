#!/usr/bin/env python3
"""Echo servers side by side: ringlet's examples/echo_server (on io_uring, and as "ringlet epoll"
on its epoll engine) against two hand-written io_uring C
servers (bench/echo/uring_ms_echo.c: multishot accept and receive with a provided-buffer
ring, the baseline, 2 % under the simple one at 50 connections and 7 % at 1000, see
bench/RESULTS.md; bench/echo/uring_echo.c: one recv and one send in flight per connection), an
epoll C server, Go (goroutine per connection, GOMAXPROCS=1) and gevent. A server that prints
"skip: REASON" instead of "listening" (a kernel without the feature it needs) is left out,
and the reason printed.

Each server runs pinned to CPU 0, the load generator (bench/echo/loadgen.c, plain epoll C) to
CPU 1. Scenarios: 64-byte ping-pong at 1, 50 and 1000 connections, 4 KiB at 50. Per run the
load generator reports round trips/s, p50/p99 latency and the server's CPU time (utime+stime)
per round trip over the measured window. Each (scenario, server) is run --runs times,
interleaved; medians are reported, with CPU per message as a ratio to the multishot io_uring
C server (to the simple one where the kernel lacks multishot); then each run's own ratios
(ringlet on io_uring over the multishot server and over the simple one, ringlet on epoll over
the epoll C server, Go over both), their median and quartiles: issue 24's bound is 1.05.
Then each server holds 10 000 idle connections and its RSS is read.

    bench/echo/run.py BUILD_DIR GO_BINARY [--runs N] [--seconds S] [--idle N] [--only A,B]
                      [--scenarios 50x64,1000x64]
--idle 0 leaves out the idle connections' RSS.
"""
import argparse
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import echo_common  # noqa: E402

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("build")
ap.add_argument("go_binary")
ap.add_argument("--runs", type=int, default=3)
ap.add_argument("--seconds", type=float, default=3.0)
ap.add_argument("--idle", type=int, default=10000)
ap.add_argument("--only", default="", help="comma-separated server names")
ap.add_argument("--scenarios", type=echo_common.scenarios, default="1x64,50x64,1000x64,50x4096",
                help="comma-separated CONNSxBYTES (default: %(default)s)")
args = ap.parse_args()

servers = echo_common.servers(args.build, args.go_binary)
if args.only:
    servers = {k: v for k, v in servers.items() if k in args.only.split(",")}
scenarios = args.scenarios
loadgen = f"{args.build}/bench/loadgen"
port = 19000


def start(name):
    global port
    port += 1
    p, said = echo_common.start_server(servers[name], port)
    if p is None and "skip:" in said:
        skipped[name] = said
        print(f"  {said}: left out", file=sys.stderr)
    elif p is None:
        sys.exit(f"{name} did not start: {said}")
    return p, port


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


skipped = {}  # server -> its skip line
results = {}  # (scenario, server) -> list of dicts
for rep in range(args.runs):
    for conns, size in scenarios:
        for name in servers:
            if name in skipped:
                continue
            p, prt = start(name)
            if p is None:
                continue
            try:
                out = subprocess.run(["taskset", "-c", "1", loadgen, "127.0.0.1", str(prt), str(conns), str(size),
                                      str(args.seconds), "0.5", str(p.pid)],
                                     capture_output=True, text=True, timeout=args.seconds + 60)
            finally:
                echo_common.stop_server(p)
            m = echo_common.parse(out)
            if m is None:
                print(f"  {name} {conns}x{size}: FAILED {out.stdout}{out.stderr}", file=sys.stderr)
                continue
            m["run"] = rep
            results.setdefault((conns, size), {}).setdefault(name, []).append(m)
            print(f"  run {rep + 1}: {name:10s} {conns:5d} conns x {size:5d} B: {out.stdout.strip()}", file=sys.stderr)


print(f"# echo: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.uname().release}, {os.cpu_count()} cores; "
      f"server on CPU 0, loadgen on CPU 1; {args.seconds:g} s per run, median of {args.runs} runs")
print()
for line in skipped.values():
    print(f"Left out: {line}")
    print()
names = [n for n in servers if n not in skipped]
echo_common.print_table(results, scenarios, names,
                        "io_uring C multishot" if "io_uring C multishot" in names else "io_uring C")
uring_ref = "io_uring C multishot" if "io_uring C multishot" in names else "io_uring C"
candidates = [("ringlet", uring_ref), ("ringlet", "io_uring C"), ("ringlet epoll", "epoll C"), ("Go", uring_ref),
              ("Go", "epoll C")]
pairs = [p for i, p in enumerate(candidates) if p[0] in names and p[1] in names and p not in candidates[:i]]
if pairs and args.runs > 1:
    print()
    echo_common.print_pairs(results, scenarios, pairs, bound=1.05)

if args.idle <= 0:
    sys.exit(0)
print()
print(f"| server | RSS idle | RSS with {args.idle} idle connections | per connection |")
print("|---|---:|---:|---:|")
for name in names:
    p, prt = start(name)
    if p is None:
        continue
    try:
        time.sleep(0.3)
        before = rss_kib(p.pid)
        lg = subprocess.Popen(["taskset", "-c", "1", loadgen, "127.0.0.1", str(prt), str(args.idle), "64", "idle", "3"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = lg.stdout.readline()
        if "connections open" not in line:
            lg.wait()
            print(f"| {name} | {before / 1024:.1f} MiB | failed: {line.strip()} {lg.stderr.read().strip()} | |")
            continue
        time.sleep(1.0)
        during = rss_kib(p.pid)
        lg.wait()
        print(f"| {name} | {before / 1024:.1f} MiB | {during / 1024:.1f} MiB | "
              f"{(during - before) / args.idle:.2f} KiB |")
    finally:
        echo_common.stop_server(p)
