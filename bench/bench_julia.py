"""polymagic's Julia bridge against raw juliacall, in one run.

1. numpy -> Julia: `pm.julia["x"] = a` (a read-only PyArray on the numpy buffer, made in
   Julia) and `pm.julia.assign("x", a, shared_writes=True)` (a Julia Array on the
   buffer) against juliacall's own conversion of the argument (`identity(a)`,
   PythonCall's PyArray) and against the copy juliacall users write
   (`convert(Vector{Float64}, a)`).
2. Julia -> numpy: `pm.julia["x"]` (np.asarray of the ArrayValue) against juliacall's
   `Main.x` then `np.array(..)` (copy).
3. Call overhead: a Julia `f(x) = x + 1` called through polymagic's JuliaFunction (its
   arguments and errors go through PolymagicBridge.jl's `call_function`) against the
   same function called through juliacall directly.

Sizes 1e3 ... 1e8 doubles (1e8 = 800 MB; skipped when less than 4 GB RAM is free).
With no Julia runtime it prints why and exits 0.
Usage: python bench/bench_julia.py [--repeat N]; writes bench/results/bench_julia.json.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results" / "bench_julia.json"
SIZES = [10 ** k for k in range(3, 9)]


def median_seconds(function, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def free_memory_bytes() -> int:
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return 0


def crossing_rows(julia, main, repeat: int) -> list[dict]:
    julia_identity = main.seval("identity")
    julia_copy = main.seval("a -> convert(Vector{Float64}, a)")
    rows = []
    for size in SIZES:
        if size * 8 * 3 > free_memory_bytes():
            print(f"skipping n={size:.0e}: not enough free memory", file=sys.stderr)
            continue
        array = np.random.default_rng(0).random(size)
        push = median_seconds(lambda: julia.assign("bench_x", array), repeat)
        push_shared = median_seconds(
            lambda: julia.assign("bench_x", array, shared_writes=True), repeat)
        raw_wrap = median_seconds(lambda: julia_identity(array), repeat)
        raw_copy = median_seconds(lambda: julia_copy(array), repeat)
        main.seval(f"bench_y = rand({size}); nothing")
        pull = median_seconds(lambda: julia.get("bench_y"), repeat)
        raw_pull = median_seconds(lambda: np.array(main.bench_y), repeat)
        rows.append({"n": size, "push_s": push, "push_shared_s": push_shared,
                     "juliacall_pyarray_s": raw_wrap,
                     "juliacall_copy_s": raw_copy, "pull_s": pull,
                     "juliacall_pull_copy_s": raw_pull})
    return rows


def call_rows(julia, main, repeat: int) -> dict:
    raw = main.seval("bench_inc(x) = x + 1")
    wrapped = julia.eval("bench_inc")
    calls = 10_000
    polymagic = median_seconds(lambda: [wrapped(1.0) for _ in range(calls)], repeat) / calls
    juliacall = median_seconds(lambda: [raw(1.0) for _ in range(calls)], repeat) / calls
    return {"polymagic_call_s": polymagic, "juliacall_call_s": juliacall}


def print_table(rows: list[dict], calls: dict) -> None:
    print(f"{'n':>10} {'pm push':>10} {'pm shared':>10} {'jc PyArray':>11} {'jc copy':>10} "
          f"{'pm pull':>10} {'jc pull+copy':>13} {'copy/push':>10} {'copy/pull':>10}")
    for row in rows:
        print(f"{row['n']:>10.0e} {row['push_s']*1e6:>8.1f}us {row['push_shared_s']*1e6:>8.1f}us"
              f" {row['juliacall_pyarray_s']*1e6:>9.1f}us"
              f" {row['juliacall_copy_s']*1e6:>8.1f}us {row['pull_s']*1e6:>8.1f}us"
              f" {row['juliacall_pull_copy_s']*1e6:>11.1f}us"
              f" {row['juliacall_copy_s']/row['push_s']:>10.1f}"
              f" {row['juliacall_pull_copy_s']/row['pull_s']:>10.1f}")
    ratio = calls["polymagic_call_s"] / calls["juliacall_call_s"]
    print(f"call f(1.0): polymagic {calls['polymagic_call_s']*1e6:.2f} us, juliacall "
          f"{calls['juliacall_call_s']*1e6:.2f} us, ratio {ratio:.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    options = parser.parse_args()
    from polymagic.bridges.julia.locate import find_julia
    if find_julia() is None:
        print("bench_julia skipped: no Julia runtime found (set PYTHON_JULIAPKG_EXE or put "
              "julia on PATH)")
        return 0
    from polymagic.bridges.julia import julia
    main_module = julia.start()
    rows = crossing_rows(julia, main_module, options.repeat)
    calls = call_rows(julia, main_module, options.repeat)
    print_table(rows, calls)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"crossing": rows, "calls": calls,
                                   "julia": julia.install.path if julia.install else None},
                                  indent=2))
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
