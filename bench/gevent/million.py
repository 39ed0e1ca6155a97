"""Greenlets parked in gevent.sleep: creation time and RSS per parked greenlet."""
import sys
import time

import gevent


def rss_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
rss0 = rss_kib()
t0 = time.perf_counter()
gs = [gevent.spawn(gevent.sleep, 5) for _ in range(n)]
gevent.sleep(0)  # each runs once and parks
created = time.perf_counter() - t0
rss = rss_kib() - rss0
gevent.killall(gs)
print(f"bench=million gevent_greenlets={n} gevent_create_s={created:.2f} "
      f"gevent_rss_kib_per_greenlet={rss / n:.2f}")
