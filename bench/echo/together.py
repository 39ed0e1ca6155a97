#!/usr/bin/env python3
"""Two echo servers measured at the same time: both pinned to CPU 0, each driven by its own
bench/echo/loadgen.c on CPU 1, started together and measured over the same seconds. Each
round gives the CPU per message of both (utime+stime over the measured window) and their
ratio; the pair's order alternates from round to round.

Why: on a shared host, servers measured one after the other (run.py) see different
neighbours, and single runs of one server move by 10-30 %; per-run ratios of run.py still
spread 0.95-1.35 in a busy hour. Run at the same time on the same core, two servers see the
same host: two copies of one server read 0.99-1.00 (bench/RESULTS.md). The price is that each
shares its core and caches with the other: the figures are those of two servers on one core,
not of one alone, so the ratios are the statistic, not the absolute CPU per message.

    bench/echo/together.py BUILD_DIR [--go GO_BINARY] [--rounds N] [--seconds S]
        [--scenarios 1000x64,50x64] [--pairs "ringlet/io_uring C multishot,..."]
        [--base OTHER_BUILD_DIR]

--pairs: SERVER/REFERENCE, names as in run.py ("ringlet", "ringlet epoll", "io_uring C
multishot", "io_uring C", "epoll C", "Go", "gevent"); Go needs --go. --base adds the name
"ringlet@base" (and "ringlet epoll@base"), the same server from another build: a before/after
of a change, e.g. --pairs "ringlet/ringlet@base".
"""
import argparse
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import echo_common  # noqa: E402

DEFAULT_PAIRS = ("ringlet/io_uring C multishot,ringlet/io_uring C,ringlet epoll/epoll C,"
                 "Go/io_uring C multishot,Go/epoll C")


def pair_list(text):
    out = []
    for item in text.split(","):
        parts = [p.strip() for p in item.split("/")]
        if len(parts) != 2 or not all(parts):
            raise argparse.ArgumentTypeError(f"{item!r} is not SERVER/REFERENCE")
        out.append(tuple(parts))
    return out


ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("build")
ap.add_argument("--go", default="", help="Go echo server binary (bench/echo/cores.sh builds one)")
ap.add_argument("--rounds", type=int, default=7)
ap.add_argument("--seconds", type=float, default=3.0)
ap.add_argument("--scenarios", type=echo_common.scenarios, default="1000x64,50x64",
                help="comma-separated CONNSxBYTES (default: %(default)s)")
ap.add_argument("--pairs", type=pair_list, default=None, help=f"default: {DEFAULT_PAIRS} (Go pairs only with --go)")
ap.add_argument("--base", default="", help="another build directory: adds ringlet@base, ringlet epoll@base")
ap.add_argument("--bound", type=float, default=1.05, help="count the rounds at or under this ratio")
args = ap.parse_args()

servers = echo_common.servers(args.build, args.go or "/nonexistent-go")
if args.base:
    for name, cmd in echo_common.servers(args.base, "/nonexistent-go").items():
        if name.startswith("ringlet"):
            servers[name + "@base"] = cmd
pairs = args.pairs or [p for p in pair_list(DEFAULT_PAIRS) if args.go or "Go" not in p]
for a, b in pairs:
    for n in (a, b):
        if n not in servers:
            sys.exit(f"unknown server {n!r}; known: {', '.join(servers)}")
        if n == "Go" and not args.go:
            sys.exit("a pair with Go needs --go GO_BINARY")
loadgen = f"{args.build}/bench/loadgen"
if not os.access(loadgen, os.X_OK):
    sys.exit(f"{loadgen} is missing: build {args.build} first (meson compile -C {args.build})")
port = 31000
skipped = {}


def start(name):
    """Start `name` on CPU 0; (process, port), or (None, port) if it printed skip: or failed."""
    global port
    port += 1
    p, said = echo_common.start_server(servers[name], port)
    if p is None:
        skipped[name] = said
    return p, port


def round_of(a, b, conns, size):
    """Both servers at once; {name: parsed loadgen line} or None if either failed."""
    procs = {}
    try:
        for n in (a, b):
            p, prt = start(n)
            if p is None:
                return None
            procs[n] = (p, prt)
        gens = {n: subprocess.Popen(["taskset", "-c", "1", loadgen, "127.0.0.1", str(prt), str(conns), str(size),
                                     str(args.seconds), "0.5", str(p.pid)],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for n, (p, prt) in procs.items()}
        out = {}
        for n, g in gens.items():
            try:
                so, se = g.communicate(timeout=args.seconds + 60)
            except subprocess.TimeoutExpired:
                g.kill()
                so, se = g.communicate()
            m = echo_common.parse(subprocess.CompletedProcess(g.args, g.returncode, so, se))
            if m is None:
                print(f"  {n} {conns}x{size}: FAILED {so}{se}", file=sys.stderr)
                return None
            out[n] = m
        return out
    finally:
        for p, _ in procs.values():
            echo_common.stop_server(p)


ratios = {}  # (scenario, pair) -> [ratio per round]
cpu = {}     # (scenario, pair, name) -> [cpu per round]
for r in range(args.rounds):
    for conns, size in args.scenarios:
        for a, b in pairs:
            if a in skipped or b in skipped:
                continue
            order = (a, b) if r % 2 == 0 else (b, a)
            got = round_of(*order, conns, size)
            if got is None:
                continue
            ra = got[a]["cpu_us_per_msg"] / got[b]["cpu_us_per_msg"]
            ratios.setdefault(((conns, size), (a, b)), []).append(ra)
            for n in (a, b):
                cpu.setdefault(((conns, size), (a, b), n), []).append(got[n]["cpu_us_per_msg"])
            print(f"  round {r + 1}: {conns:5d} x {size:5d} B  {a} {got[a]['cpu_us_per_msg']:.3f}  "
                  f"{b} {got[b]['cpu_us_per_msg']:.3f}  ratio {ra:.3f}", file=sys.stderr)

print(f"# echo, two servers at a time: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
      f"{os.uname().release}, {os.cpu_count()} cores; both servers on CPU 0, a loadgen each on CPU 1; "
      f"{args.seconds:g} s per round, {args.rounds} rounds")
print()
for name, why in skipped.items():
    print(f"Left out: {name}: {why}")
    print()
print(f"| scenario | server / reference | CPU µs/msg (medians, sharing the core) | ratio: median | quartiles "
      f"| range | rounds | rounds ≤ {args.bound:g}× |")
print("|---|---|---:|---:|---:|---:|---:|---:|")
for scen in args.scenarios:
    for a, b in pairs:
        rs = sorted(ratios.get((scen, (a, b)), []))
        if not rs:
            continue
        q1, med, q3 = echo_common.quartiles(rs)
        ca = sorted(cpu[(scen, (a, b), a)])
        cb = sorted(cpu[(scen, (a, b), b)])
        print(f"| {scen[0]} conns × {scen[1]} B | {a} / {b} | {echo_common.quartiles(ca)[1]:.2f} / "
              f"{echo_common.quartiles(cb)[1]:.2f} | **{med:.3f}** | {q1:.3f}–{q3:.3f} | {rs[0]:.2f}–{rs[-1]:.2f} | "
              f"{len(rs)} | {sum(x <= args.bound for x in rs)} of {len(rs)} |")
if not ratios:
    sys.exit("no round completed")
