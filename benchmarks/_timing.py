"""Timing helpers shared by the benchmark scripts: medians, because the machines are
shared and noisy."""
import statistics
import time


def timings(fn, repeat, warmup=True):
    """(median, min, max) seconds of ``repeat`` calls after one warm-up call."""
    if warmup:
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times), max(times)


def median_time(fn, repeat=3, warmup=True):
    return timings(fn, repeat, warmup)[0]


def round_robin(fns, repeat, warmup=True):
    """{name: median seconds}; each round runs every fn once, so a burst of load from
    other processes hits them all alike instead of one candidate's whole series."""
    if warmup:
        for fn in fns.values():
            fn()
    times = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(ts) for name, ts in times.items()}
