#!/usr/bin/env python3
"""The crawler benchmark: ringlet's examples/crawler against a Go net/http crawler and a gevent
crawler, in one run, on the same generated sites.

  run.py [--build build-rel] [--pages 2000] [--runs 3] [--conc 50] [--words 30,450]
         [--slow-conc 50,500] [--delay-ms 200] [--skip-fast] [--skip-slow]
         [--baseline CRAWLER] [--only NAME,...]

--baseline: another build of examples/crawler (e.g. one from before a change) run as
"ringlet baseline, 1 thread" beside the others. --only: the crawlers whose names contain one
of these words (e.g. --only "1 thread,x/net" for ringlet's single-thread rows and Go's).
The fast runs go round-robin over the crawlers (run 1 of each, then run 2 ...), so that a
load from elsewhere on the machine falls on all of them alike.

Fast server: nginx (one worker) serving a 2000-page site with several link levels, once per
page size (--words of text: 30 is ~0.7 KB a page, 450 ~3.3 KB); each crawler fetches every
page at --conc; reported: pages per second (wall) and crawler CPU (user + sys, from wait4)
per page, medians of --runs. ringlet runs with --threads 1 and with its default (one
scheduler per CPU, pages parsed on every core).
Slow server: examples/http_server --delay 200 ms on a flat site (the index links to every
page); wall time at each concurrency C against the ideal: one delay for the index, then
ceil((N-1)/C) delays for the rest (and against the plain ceil(N/C) d).
robots.txt is off for ringlet (the baselines do not fetch it).
"""
import argparse
import math
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, limit=10):
    until = time.time() + limit
    while time.time() < until:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"crawl bench: nothing listens on port {port}")


def timed(cmd):
    """Run cmd; return (wall s, cpu s, stderr)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    err = p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        sys.exit(f"crawl bench: {cmd[0]} failed ({p.returncode}): {err}")
    return wall, ru.ru_utime + ru.ru_stime, err


def pages_of(err):
    m = re.search(r"(?:crawled|crawler:) (\d+) pages", err)
    return int(m.group(1)) if m else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build-rel"))
    ap.add_argument("--pages", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--conc", type=int, default=50)
    ap.add_argument("--words", default="30,450")
    ap.add_argument("--slow-conc", default="50,500")
    ap.add_argument("--delay-ms", type=int, default=200)
    ap.add_argument("--skip-fast", action="store_true")
    ap.add_argument("--skip-slow", action="store_true")
    ap.add_argument("--baseline", help="another crawler binary, run as 'ringlet baseline, 1 thread'")
    ap.add_argument("--only", help="comma-separated words: keep the crawlers whose names contain one")
    a = ap.parse_args()

    crawler = os.path.join(a.build, "examples", "crawler")
    http_server = os.path.join(a.build, "examples", "http_server")
    for p in (crawler, http_server):
        if not os.path.exists(p):
            sys.exit(f"crawl bench: {p} missing; build first (bash bench/run.sh builds build-rel)")
    work = tempfile.mkdtemp(prefix="ringlet-crawl-")
    try:
        gobin = os.path.join(work, "go-crawler")
        env = dict(os.environ, GOCACHE=os.path.join(work, "gocache"), GO111MODULE="off", GOPATH="/usr/share/gocode")
        subprocess.run(["go", "build", "-o", gobin, os.path.join(HERE, "crawler.go")], check=True, env=env)

        def commands(url, c):
            ours = [crawler, url, "--no-robots", "-q", "--concurrency", str(c), "--per-host", str(c),
                    "--max-pages", str(a.pages), "--depth", "1000", "--timeout", "60", "--output", "/dev/null"]
            cmds = {
                "ringlet, 1 thread": ours + ["--threads", "1"],
                "ringlet, 2 threads": ours + ["--threads", "2"],
                "Go net/http + x/net/html": [gobin, "-c", str(c), "-max", str(a.pages), url],
                "Go net/http + regexp": [gobin, "-regex", "-c", str(c), "-max", str(a.pages), url],
                "gevent": ["/usr/bin/python3", os.path.join(HERE, "crawler_gevent.py"), url, "-c", str(c), "--max", str(a.pages)],
            }
            if a.baseline:
                cmds["ringlet baseline, 1 thread"] = [os.path.abspath(a.baseline)] + ours[1:] + ["--threads", "1"]
            if a.only:
                words = [w.strip() for w in a.only.split(",") if w.strip()]
                cmds = {k: v for k, v in cmds.items() if k == "ringlet, 1 thread" or any(w in k for w in words)}
            return cmds

        for words in ([] if a.skip_fast else [int(w) for w in a.words.split(",")]):
            site = os.path.join(work, f"site{words}")
            subprocess.run([sys.executable, os.path.join(HERE, "gen_site.py"), site, "--pages", str(a.pages),
                            "--words", str(words)], check=True)
            size = os.path.getsize(os.path.join(site, "p1.html"))
            port = free_port()
            conf = os.path.join(work, "nginx.conf")
            with open(conf, "w") as f:
                f.write(f"""daemon off; worker_processes 1; pid {work}/nginx.pid; error_log {work}/nginx-error.log;
user root;
events {{ worker_connections 4096; }}
http {{ access_log off; include /etc/nginx/mime.types; keepalive_requests 1000000;
  client_body_temp_path {work}/tmp; proxy_temp_path {work}/tmp; fastcgi_temp_path {work}/tmp;
  uwsgi_temp_path {work}/tmp; scgi_temp_path {work}/tmp;
  server {{ listen 127.0.0.1:{port}; root {site}; }} }}
""")
            nginx = subprocess.Popen(["nginx", "-c", conf], stderr=subprocess.DEVNULL)
            try:
                wait_port(port)
                url = f"http://127.0.0.1:{port}/"
                print(f"\n## Fast server: nginx, one worker; {a.pages} pages of ~{size} B, concurrency {a.conc}, "
                      f"medians of {a.runs}\n")
                print("| crawler | pages | pages/s | CPU per page | CPU vs ringlet (1 thread) |")
                print("|---|---|---|---|---|")
                rows = {}
                cmds = commands(url, a.conc)
                got = {name: ([], [], [0]) for name in cmds}
                for _ in range(a.runs):
                    for name, cmd in cmds.items():
                        wall, cpu, err = timed(cmd)
                        got[name][2][0] = pages_of(err)
                        got[name][0].append(wall)
                        got[name][1].append(cpu)
                for name, (walls, cpus, (pages,)) in got.items():
                    w, c = statistics.median(walls), statistics.median(cpus)
                    rows[name] = (pages, pages / w, c / max(pages, 1) * 1e6)
                base = rows["ringlet, 1 thread"][2]
                for name, (pages, pps, us) in rows.items():
                    print(f"| {name} | {pages} | {pps:,.0f} | {us:.0f} µs | {us / base:.2f}× |")
                sys.stdout.flush()
            finally:
                nginx.send_signal(signal.SIGQUIT)
                nginx.wait()

        if not a.skip_slow:
            flat = os.path.join(work, "flat")
            subprocess.run([sys.executable, os.path.join(HERE, "gen_site.py"), flat, "--pages", str(a.pages), "--flat",
                            "--words", "30"], check=True)
            port = free_port()
            srv = subprocess.Popen([http_server, flat, "--listen", f"127.0.0.1:{port}", "--delay", str(a.delay_ms)],
                                   stdout=subprocess.DEVNULL)
            try:
                wait_port(port)
                url = f"http://127.0.0.1:{port}/"
                d = a.delay_ms / 1000
                print(f"\n## Slow server: http_server --delay {a.delay_ms}; {a.pages} pages (flat), medians of {a.runs}\n")
                print("| crawler | C | wall | ideal d·(1+ceil((N-1)/C)) | ratio | ceil(N/C)·d | ratio |")
                print("|---|---|---|---|---|---|---|")
                for c in [int(x) for x in a.slow_conc.split(",")]:
                    ideal = d * (1 + math.ceil((a.pages - 1) / c))
                    plain = d * math.ceil(a.pages / c)
                    for name, cmd in commands(url, c).items():
                        walls = []
                        for _ in range(a.runs):
                            wall, _, err = timed(cmd)
                            if pages_of(err) != a.pages:
                                print(f"  ({name}: {pages_of(err)} pages: {err.strip()})")
                            walls.append(wall)
                        w = statistics.median(walls)
                        print(f"| {name} | {c} | {w:.2f} s | {ideal:.1f} s | {w / ideal:.2f}× | {plain:.1f} s | {w / plain:.2f}× |")
                        sys.stdout.flush()
            finally:
                srv.send_signal(signal.SIGTERM)
                srv.wait()
    finally:
        shutil.rmtree(work, ignore_errors=True)


main()
