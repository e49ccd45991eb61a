"""Timing shared by the benchmarks: no assertions, just the best of several rounds."""
from __future__ import annotations

import time


def best_time(function, budget: float = 0.3, max_number: int = 20_000) -> float:
    """Seconds per call: the best of 5 rounds, each long enough to be measurable."""
    function()
    started = time.perf_counter()
    function()
    once = max(time.perf_counter() - started, 1e-7)
    number = int(min(max_number, max(1, budget / 5 / once)))
    rounds = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(number):
            function()
        rounds.append((time.perf_counter() - started) / number)
    return min(rounds)
