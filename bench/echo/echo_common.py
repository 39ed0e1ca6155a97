"""What bench/echo/run.py, together.py and cores.py share: the single-core servers, reading
loadgen's line, the median table and the per-run ratios; and what the valgrind counters
(cachesim.py, pagesim.py) share: their first arguments and the servers they name."""
import argparse
import os
import re
import statistics
import subprocess
import sys

KEYS = ("msgs_per_s", "p50_us", "p99_us", "cpu_us_per_msg")


def scenarios(text):
    """--scenarios: comma-separated CONNSxBYTES, e.g. 50x64,1000x64 (an argparse type)."""
    out = []
    for item in text.split(","):
        m = re.fullmatch(r"\s*(\d+)x(\d+)\s*", item)
        if not m or int(m[1]) == 0 or int(m[2]) == 0:
            raise argparse.ArgumentTypeError(f"{item!r} is not CONNSxBYTES with both above 0 (e.g. 50x64)")
        out.append((int(m[1]), int(m[2])))
    return out


def servers(b, go_binary):
    """The single-core servers of build directory b by name: each one's command, with "{port}"
    to fill in."""
    here = os.path.dirname(os.path.abspath(__file__))
    return {
        "ringlet": [f"{b}/examples/echo_server", "--listen", "127.0.0.1:{port}"],
        "ringlet epoll": ["env", "RINGLET_BACKEND=epoll", f"{b}/examples/echo_server", "--listen", "127.0.0.1:{port}"],
        "io_uring C multishot": [f"{b}/bench/uring_ms_echo", "{port}"],
        "io_uring C": [f"{b}/bench/uring_echo", "{port}"],
        "epoll C": [f"{b}/bench/epoll_echo", "{port}"],
        "Go": [go_binary, "{port}"],
        "gevent": ["/usr/bin/python3", f"{here}/echo_gevent.py", "{port}"],
    }


def valgrind_parser(doc):
    """The argument parser of a valgrind counter (doc: its module docstring), with the
    arguments they all take: the build directory, --base and --servers."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=doc)
    ap.add_argument("build")
    ap.add_argument("--base", help="another build directory: adds 'ringlet epoll@base'")
    ap.add_argument("--servers", default="ringlet epoll,epoll C")
    return ap


def valgrind_servers(args, tool):
    """(table, names) for a valgrind counter's parsed args: the servers of args.build, the
    names in --servers, and 'ringlet epoll@base' from --base (whose echo_server must be
    built; else exit with one line naming `tool`)."""
    table = servers(args.build, "")
    names = [n.strip() for n in args.servers.split(",") if n.strip()]
    if args.base:
        if not os.access(os.path.join(args.base, "examples", "echo_server"), os.X_OK):
            sys.exit(f"{tool}: {args.base}/examples/echo_server not found: build {args.base} first")
        table["ringlet epoll@base"] = servers(args.base, "")["ringlet epoll"]
        names.append("ringlet epoll@base")
    return table, names


def split_env(cmd):
    """("env NAME=VALUE... PROGRAM ARGS" or "PROGRAM ARGS") -> (PROGRAM ARGS, os.environ with
    the NAME=VALUE set): for a wrapper such as valgrind that must run PROGRAM itself."""
    env = dict(os.environ)
    if cmd[0] == "env":
        cmd = cmd[1:]
        while "=" in cmd[0]:
            k, v = cmd[0].split("=", 1)
            env[k] = v
            cmd = cmd[1:]
    return cmd, env


def start_server(cmd, port):
    """Start cmd ("{port}" filled in) pinned to CPU 0, Go with GOMAXPROCS=1. Returns (process,
    None) once it says "listening"; else it is stopped and (None, what it said): a line with
    "skip:" is a kernel without the server's feature, anything else a failure."""
    p = subprocess.Popen(["taskset", "-c", "0"] + [a.replace("{port}", str(port)) for a in cmd],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ, GOMAXPROCS="1"),
                         text=True)
    line = p.stdout.readline()
    if "listening" in line:
        return p, None
    if "skip:" not in line:
        p.kill()
    p.wait()
    return None, line.strip() or p.stderr.read().strip() or "exited without a word"


def stop_server(p):
    """Terminate a server process, killing it if it has not gone within 5 s."""
    p.terminate()
    try:
        p.wait(timeout=5)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def parse(proc):
    """loadgen's key=value line as floats, or None if it failed."""
    m = dict(re.findall(r"(\w+)=([\d.\-]+)", proc.stdout))
    if proc.returncode != 0 or "msgs_per_s" not in m:
        return None
    return {k: float(m[k]) for k in KEYS}


def median(results, name, scen, key):
    runs = results.get(scen, {}).get(name, [])
    return statistics.median(r[key] for r in runs) if runs else float("nan")


def print_table(results, scenarios, names, base):
    """One row per (scenario, server): medians, and CPU per message as a ratio to `base`."""
    print(f"| scenario | server | msgs/s | p50 µs | p99 µs | server CPU µs/msg | CPU vs {base} |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for scen in scenarios:
        ref = median(results, base, scen, "cpu_us_per_msg")
        for name in names:
            cpu = median(results, name, scen, "cpu_us_per_msg")
            print(f"| {scen[0]} conns × {scen[1]} B | {name} | {median(results, name, scen, 'msgs_per_s'):.0f} | "
                  f"{median(results, name, scen, 'p50_us'):.0f} | {median(results, name, scen, 'p99_us'):.0f} | "
                  f"{cpu:.2f} | " + ("–" if ref != ref or ref == 0 else f"{cpu / ref:.2f}×") + " |")


def quartiles(xs):
    """(first quartile, median, third quartile) of xs, linearly interpolated."""
    q = statistics.quantiles(xs, n=4, method="inclusive") if len(xs) > 1 else [xs[0]] * 3
    return q[0], q[1], q[2]


def print_pairs(results, scenarios, pairs, bound=None):
    """Each run's CPU per message of a server over its reference in the same run (the two run
    next to each other, so the host's drift between runs cancels), then the median and
    quartiles of those ratios; `bound` adds how many runs are at or under it."""
    more = f" | runs ≤ {bound:g}×" if bound else ""
    print(f"| scenario | server / reference | per-run ratio: median | quartiles | range | runs{more} |")
    print("|---|---|---:|---:|---:|---:" + ("|---:|" if bound else "|"))
    for scen in scenarios:
        by = results.get(scen, {})
        for name, ref in pairs:
            a = {r["run"]: r["cpu_us_per_msg"] for r in by.get(name, [])}
            b = {r["run"]: r["cpu_us_per_msg"] for r in by.get(ref, [])}
            rs = sorted(a[k] / b[k] for k in a if k in b and b[k] > 0)
            if not rs:
                continue
            q1, med, q3 = quartiles(rs)
            under = f" | {sum(r <= bound for r in rs)} of {len(rs)}" if bound else ""
            print(f"| {scen[0]} conns × {scen[1]} B | {name} / {ref} | **{med:.3f}** | {q1:.3f}–{q3:.3f} | "
                  f"{rs[0]:.2f}–{rs[-1]:.2f} | {len(rs)}{under} |")
