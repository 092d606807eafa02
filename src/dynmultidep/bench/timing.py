"""Timing and memory probes shared by the benchmarks."""

from __future__ import annotations

import os
import statistics
import threading
import time
from collections.abc import Callable

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def median_time(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``repeats`` calls of ``fn``, in seconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def resident_bytes() -> int:
    """This process's resident memory now (Linux ``/proc``)."""
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * _PAGE


def peak_extra_memory(fn: Callable[[], object], interval_s: float = 0.0005) -> int:
    """Highest resident memory while ``fn`` runs, above the resident memory before it, in
    bytes (sampled every ``interval_s`` by a thread; CPU allocations only)."""
    before = resident_bytes()
    peak = before
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, resident_bytes())
            time.sleep(interval_s)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        fn()
    finally:
        done.set()
        sampler.join()
    return max(peak, resident_bytes()) - before
