"""What bench/echo/run.py and cores.py share: reading loadgen's line and the median table."""
import re
import statistics

KEYS = ("msgs_per_s", "p50_us", "p99_us", "cpu_us_per_msg")


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
                  f"{cpu:.2f} | {cpu / ref:.2f}× |")
