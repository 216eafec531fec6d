"""Timing helpers shared by the benchmark scripts: medians, because the machines are
shared and noisy."""
import statistics
import time


def timings(fn, repeat, warmup=True, sync=None):
    """(median, min, max) seconds of ``repeat`` calls after one warm-up call;
    ``sync`` (e.g. a GPU stream synchronize) runs inside each timed call."""
    return round_robin_stats({"fn": fn}, repeat, warmup, sync)["fn"]


def median_time(fn, repeat=3, warmup=True, sync=None):
    return timings(fn, repeat, warmup, sync)[0]


def round_robin_stats(fns, repeat, warmup=True, sync=None):
    """{name: (median, min, max) seconds}; each round runs every fn once, so a burst of
    load from other processes hits them all alike instead of one candidate's series."""
    if warmup:
        for fn in fns.values():
            fn()
        if sync:
            sync()
    times = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            if sync:
                sync()
            times[name].append(time.perf_counter() - t0)
    return {name: (statistics.median(ts), min(ts), max(ts)) for name, ts in times.items()}


def round_robin(fns, repeat, warmup=True):
    """{name: median seconds} of ``round_robin_stats``."""
    return {name: t[0] for name, t in round_robin_stats(fns, repeat, warmup).items()}
