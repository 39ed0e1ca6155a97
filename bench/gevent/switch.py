"""One-way switch between two greenlets: gevent.sleep(0) ping-pong."""
import statistics
import time

import gevent

SWITCHES = 400_000


def once():
    def body():
        for _ in range(SWITCHES // 2):
            gevent.sleep(0)
    t0 = time.perf_counter()
    gevent.joinall([gevent.spawn(body), gevent.spawn(body)])
    return (time.perf_counter() - t0) * 1e9 / SWITCHES


print(f"bench=switch gevent_sleep0_ns={statistics.median(once() for _ in range(5)):.0f} runs=5")
