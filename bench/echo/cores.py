#!/usr/bin/env python3
"""The echo server on one and on two scheduler threads: CPU per message must not grow from
1 to 2 (linear scaling in CPU terms). 64-byte ping-pong at 1000 connections (and 50), with
bench/echo/loadgen.c (one thread, plain epoll C) as the client. On a 2-core machine the load
generator shares the cores with the server, so the server's CPU time per message (utime +
stime of all its threads over the measured window) is the figure that counts; throughput is
reported too. Go's echo server with GOMAXPROCS=1 and 2 runs alongside. Nothing is pinned.
Runs are interleaved; medians of --runs, then each run's own 1 -> 2 ratios (the 2-thread
figure over the 1-thread figure of the same run), their median and quartiles: issue 24 asks
ringlet's to be no worse than Go's.

    bench/echo/cores.py BUILD_DIR GO_BINARY [--runs N] [--seconds S] [--scenarios 1000x64,50x64]
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
ap.add_argument("--runs", type=int, default=5)
ap.add_argument("--seconds", type=float, default=3.0)
ap.add_argument("--scenarios", type=echo_common.scenarios, default="1000x64,50x64", help="comma-separated CONNSxBYTES (default: %(default)s)")
args = ap.parse_args()

b = args.build
echo = f"{b}/examples/echo_server"
servers = {
    "ringlet 1 thread": ([echo, "--listen", "127.0.0.1:{port}"], {}),
    "ringlet 2 threads, reuseport": ([echo, "--listen", "127.0.0.1:{port}", "--threads", "2", "--spread", "reuseport"], {}),
    "ringlet 2 threads, handoff": ([echo, "--listen", "127.0.0.1:{port}", "--threads", "2", "--spread", "handoff"], {}),
    "Go GOMAXPROCS=1": ([args.go_binary, "{port}"], {"GOMAXPROCS": "1"}),
    "Go GOMAXPROCS=2": ([args.go_binary, "{port}"], {"GOMAXPROCS": "2"}),
}
scenarios = args.scenarios
loadgen = f"{b}/bench/loadgen"
port = 19500

results = {}
for rep in range(args.runs):
    for conns, size in scenarios:
        for name, (cmd, env) in servers.items():
            port += 1
            p = subprocess.Popen([a.replace("{port}", str(port)) for a in cmd], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True, env=dict(os.environ, **env))
            line = p.stdout.readline()
            if "listening" not in line:
                p.kill()
                sys.exit(f"{name} did not start: {line}{p.stderr.read()}")
            try:
                out = subprocess.run([loadgen, "127.0.0.1", str(port), str(conns), str(size), str(args.seconds), "0.5",
                                      str(p.pid)], capture_output=True, text=True, timeout=args.seconds + 60)
            finally:
                echo_common.stop_server(p)
            m = echo_common.parse(out)
            if m is None:
                print(f"  {name} {conns}x{size}: FAILED {out.stdout}{out.stderr}", file=sys.stderr)
                continue
            m["run"] = rep
            results.setdefault((conns, size), {}).setdefault(name, []).append(m)
            print(f"  run {rep + 1}: {name:30s} {conns:5d} conns: {out.stdout.strip()}", file=sys.stderr)


print(f"# echo on 1 and 2 scheduler threads: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
      f"{os.uname().release}, {os.cpu_count()} cores, nothing pinned; {args.seconds:g} s per run, median of {args.runs}")
print()
echo_common.print_table(results, scenarios, servers, "ringlet 1 thread")
if args.runs > 1:
    print()
    echo_common.print_pairs(results, scenarios, [("ringlet 2 threads, reuseport", "ringlet 1 thread"),
                                                 ("ringlet 2 threads, handoff", "ringlet 1 thread"),
                                                 ("Go GOMAXPROCS=2", "Go GOMAXPROCS=1")])
