"""polymagic's %%cython against Cython's own %%cython, in one run.

For each small cell (a typed loop without memoryviews, and one with a typed memoryview):
first compile, re-run in the same process, and re-run in a new process, each measured
in its own fresh process and with fresh cache directories for both tools (Cython's
magic caches under $XDG_CACHE_HOME/ipython/cython: pointed at a temporary directory).
polymagic builds Cython's memoryview utility code once per machine into its cache (in
the background when the first cell needs none of it), so its first compile is reported
three ways: with an empty cache, for a new cell once the utility module exists, and (for
the memoryview cell) right after a plain first cell on an empty cache, as in a notebook
whose first cell has no memoryview. The first IPython session on a cache also starts
polymagic's warm Cython server (server.py), so first_new_cell, run in a new process,
finds Cython warm, as a restarted kernel does; "first" starts from nothing (a fresh
cache has no server). `%load_ext` times are for reference. Both tools take turns within
each attempt; the minimum of the attempts is reported.

Usage: python bench/bench_cython.py [--repeat N]
Writes bench/results/bench_cython.json.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "bench_cython.json"

CELLS = {
    "plain": textwrap.dedent("""\
        def fib(int n):
            cdef long a = 0, b = 1, i
            for i in range(n):
                a, b = b, a + b
            return a
        """),
    "memoryview": textwrap.dedent("""\
        def total(double[:] x):
            cdef double s = 0
            cdef Py_ssize_t i
            for i in range(x.shape[0]):
                s += x[i]
            return s
        """),
}
TOOLS = {"polymagic": "polymagic", "cython": "cython"}  # tool -> extension to load


def worker(tool: str, cell: str, reruns: int, before: str | None = None) -> dict:
    """In this (fresh) process: %load_ext, [run `before`,] run the cell, re-run it."""
    from IPython.core.interactiveshell import InteractiveShell
    shell = InteractiveShell.instance()
    started = time.perf_counter()
    shell.run_line_magic("load_ext", TOOLS[tool])
    load_ext = time.perf_counter() - started
    if before is not None:
        shell.run_cell_magic("cython", "", before)
    started = time.perf_counter()
    shell.run_cell_magic("cython", "", cell)
    first = time.perf_counter() - started
    if not callable(shell.user_ns.get("fib") or shell.user_ns.get("total")):
        raise RuntimeError(f"{tool}: the cell's function was not bound")
    again = []
    for _ in range(reruns):
        started = time.perf_counter()
        shell.run_cell_magic("cython", "", cell)
        again.append(time.perf_counter() - started)
    return {"load_ext": load_ext, "first": first,
            "again": statistics.median(again) if again else None}


def run_worker(tool: str, cell: str, cache: Path, reruns: int = 0,
               before: str | None = None) -> dict:
    """Run `worker` in a new Python process whose caches all live under `cache`."""
    env = dict(os.environ, POLYMAGIC_CACHE_DIR=str(cache / "polymagic"),
               XDG_CACHE_HOME=str(cache / "xdg"), IPYTHONDIR=str(cache / "ipython"))
    command = [sys.executable, __file__, "--worker",
               json.dumps([tool, cell, reruns, before])]
    finished = subprocess.run(command, capture_output=True, text=True, env=env)
    if finished.returncode != 0:
        raise RuntimeError(f"{tool} worker failed:\n{finished.stderr}")
    return json.loads(finished.stdout.splitlines()[-1])


def variant(cell: str, number: int) -> str:
    """The same cell with a different comment: a new cell for both tools' caches."""
    return f"# variant {number}\n{cell}"


def measure(name: str, repeat: int) -> dict:
    """Every measure of cell `name` for both tools; the tools take turns within each
    attempt, so both see the same load on a shared machine."""
    rows = {tool: {"first": [], "first_new_cell": [], "rerun_same_process": [],
                   "rerun_new_process": [], "load_ext": []} for tool in TOOLS}
    for attempt in range(repeat):
        for tool in TOOLS:
            measure_once(tool, name, attempt, rows[tool])
    return {tool: summarise(tool_rows) for tool, tool_rows in rows.items()}


def measure_once(tool: str, name: str, attempt: int, rows: dict) -> None:
    with tempfile.TemporaryDirectory(prefix="pm-bench-") as tmp:
        cache = Path(tmp)
        cold = run_worker(tool, CELLS[name], cache, reruns=20)
        rows["first"].append(cold["first"])
        rows["rerun_same_process"].append(cold["again"])
        rows["load_ext"].append(cold["load_ext"])
        rows["rerun_new_process"].append(run_worker(tool, CELLS[name], cache)["first"])
        new_cell = variant(CELLS[name], attempt)
        rows["first_new_cell"].append(run_worker(tool, new_cell, cache)["first"])
    if name != "plain":
        with tempfile.TemporaryDirectory(prefix="pm-bench-") as tmp:
            after = run_worker(tool, CELLS[name], Path(tmp), before=CELLS["plain"])
            rows.setdefault("first_after_plain_cell", []).append(after["first"])


def summarise(rows: dict) -> dict:
    """The minimum of each measure (the least disturbed run), and the sums a notebook
    user waits for: %load_ext (which imports Cython's compiler for Cython's magic)
    plus the cell."""
    summary = {key: min(values) for key, values in rows.items()}
    summary["load_ext+first"] = min(map(sum, zip(rows["load_ext"], rows["first"])))
    summary["load_ext+first_new_cell"] = min(map(sum, zip(rows["load_ext"],
                                                          rows["first_new_cell"])))
    summary["load_ext+rerun_new_process"] = min(map(sum, zip(rows["load_ext"],
                                                             rows["rerun_new_process"])))
    return summary


def table(results: dict) -> str:
    lines = [f"{'cell':<11} {'measure':<27} {'polymagic':>11} {'Cython magic':>13} "
             f"{'ratio':>7}"]
    for name, per_tool in results.items():
        for key in ("first", "first_after_plain_cell", "first_new_cell",
                    "rerun_same_process", "rerun_new_process", "load_ext",
                    "load_ext+first", "load_ext+first_new_cell",
                    "load_ext+rerun_new_process"):
            if key not in per_tool["polymagic"]:
                continue
            ours, theirs = per_tool["polymagic"][key], per_tool["cython"][key]
            lines.append(f"{name:<11} {key:<27} {_ms(ours):>11} {_ms(theirs):>13} "
                         f"{ours / theirs:>6.2f}x")
    return "\n".join(lines)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per measure (minimum)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        tool, cell, reruns, before = json.loads(args.worker)
        print(json.dumps(worker(tool, cell, reruns, before)))
        return
    results = {name: measure(name, args.repeat) for name in CELLS}
    print(table(results))
    print("first = empty caches (polymagic builds a plain cell inline and Cython's "
          "shared utility module in the background; a memoryview cell waits for that "
          "module); first_after_plain_cell = empty caches, a plain cell run just before; "
          "first_new_cell = a new cell, caches already populated; "
          "ratio = polymagic / Cython magic; minima of", args.repeat,
          "runs, the two tools taking turns")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"repeat": args.repeat, "results": results,
                                   "python": sys.version, "cells": CELLS}, indent=2))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
