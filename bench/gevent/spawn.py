"""spawn + run + joinall of 100 000 greenlets, ns per greenlet."""
import statistics
import time

import gevent

N = 100_000


def once():
    t0 = time.perf_counter()
    gs = [gevent.spawn(lambda i: i, i) for i in range(N)]
    gevent.joinall(gs)
    assert sum(g.value for g in gs) == N * (N - 1) // 2
    return (time.perf_counter() - t0) * 1e9 / N


once()
print(f"bench=spawn gevent_ns_per_greenlet={statistics.median(once() for _ in range(5)):.0f} runs=5")
