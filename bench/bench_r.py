"""polymagic's R conversions and calls against rpy2's, in one run.

Measured at 1e3, 1e4 ... 1e8 doubles:
  push  numpy -> R: polymagic to_r (ALTREP view) vs rpy2 numpy2ri vs rpy2 FloatVector
  pull  R -> numpy: polymagic to_python (view) vs numpy2ri vs np.asarray(rinterface vec)
and once: RSS growth while 800 MB (1e8 doubles) crosses each way, a Python -> R call
(polymagic RFunction vs rpy2 robjects and rinterface), an R -> Python callback (polymagic
vs rpy2 rternalize), and `%load_ext` time of polymagic, rpy2.ipython and cython, each
in fresh processes.

numpy2ri and FloatVector copy (numpy2ri twice): they are skipped above 1e7 (seconds and
gigabytes per call at 1e8) and the table says so.

Usage: python bench/bench_r.py [--max-exponent 8]
Writes bench/results/bench_r.json.
"""
from __future__ import annotations

import argparse
import gc
import json
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np

from timing import best_time

RESULTS = Path(__file__).resolve().parent / "results" / "bench_r.json"
COPYING_ANCHOR_LIMIT = 10**7
TARGETS = {"push_1e8_us": 20.0, "push_speedup_vs_numpy2ri_1e7": 10_000,
           "pull_us": 10.0, "rss_growth_mb": 5.0, "call_ratio_vs_rinterface": 0.3,
           "callback_ratio_vs_rternalize": 0.3, "load_ext_ms": 50.0}




def setup():
    from polymagic.bridges.r import runtime as r_runtime
    r_runtime.start()
    import rpy2.robjects as robjects
    from rpy2.robjects import numpy2ri
    from polymagic.marshal import r as marshal
    marshal.to_python(marshal.to_r(np.zeros(3)))     # builds/loads the shim once
    converter = robjects.default_converter + numpy2ri.converter
    return marshal, robjects, converter


def bench_sizes(max_exponent: int) -> list[dict]:
    marshal, robjects, converter = setup()
    import rpy2.rinterface as ri
    rows = []
    for exponent in range(3, max_exponent + 1):
        n = 10**exponent
        x = np.arange(n, dtype=np.float64)
        row = {"n": n, "push_polymagic": best_time(lambda: marshal.to_r(x))}
        r_vector = ri.evalr(f"as.numeric(seq_len({n}))")
        row["pull_polymagic"] = best_time(lambda: marshal.to_python(r_vector))
        row["pull_np_asarray"] = best_time(lambda: np.asarray(r_vector))
        if n <= COPYING_ANCHOR_LIMIT:
            with converter.context() as conversion:
                row["push_numpy2ri"] = best_time(lambda: conversion.py2rpy(x),
                                                 budget=1.0, max_number=200)
                row["pull_numpy2ri"] = best_time(lambda: conversion.rpy2py(r_vector),
                                                 budget=1.0, max_number=2000)
            row["push_floatvector"] = best_time(lambda: robjects.FloatVector(x),
                                                budget=1.0, max_number=200)
        del x, r_vector
        gc.collect()
        rows.append(row)
        print(f"  measured n=1e{exponent}", file=sys.stderr)
    return rows


def bench_rss() -> dict:
    import psutil
    marshal, robjects, _ = setup()
    import rpy2.rinterface as ri
    process = psutil.Process()
    x = np.ones(10**8)
    gc.collect()
    before = process.memory_info().rss
    pushed = marshal.to_r(x)
    total = ri.baseenv["sum"](pushed)[0]
    push_growth = process.memory_info().rss - before
    del pushed
    r_vector = ri.evalr("rep(1, 1e8)")
    gc.collect()
    before = process.memory_info().rss
    pulled = marshal.to_python(r_vector)
    pull_total = float(pulled.sum())
    pull_growth = process.memory_info().rss - before
    if total != 1e8 or pull_total != 1e8:
        raise RuntimeError("the 800 MB vectors did not hold their values")
    return {"push_rss_growth_mb": push_growth / 2**20,
            "pull_rss_growth_mb": pull_growth / 2**20}


def bench_calls() -> dict:
    marshal, robjects, _ = setup()
    import rpy2.rinterface as ri
    import polymagic as pm
    results = {}
    pm_function = pm.R.eval("function(n) n + 1")
    if pm_function(2) != 3:
        raise RuntimeError("polymagic RFunction returned a wrong value")
    ri_function = ri.evalr("function(n) n + 1")
    ri_argument = ri.IntSexpVector([2])
    ro_function = robjects.r("function(n) n + 1")
    results["call_polymagic"] = best_time(lambda: pm_function(2))
    results["call_rinterface"] = best_time(lambda: ri_function(ri_argument))
    results["call_rinterface_with_conversion"] = best_time(
        lambda: ri_function(ri.IntSexpVector([2]))[0])
    results["call_robjects"] = best_time(lambda: ro_function(2))

    def callback(value):
        return value

    loops = 2000
    marshal.assign("pm_callback", marshal.to_r(callback))
    rternalized = ri.rternalize(callback)     # rpy2 needs its proxy kept alive
    marshal.assign("rpy2_callback", rternalized)
    loop_pm = ri.parse(f"for (i in 1:{loops}) pm_callback(i)")
    loop_rpy2 = ri.parse(f"for (i in 1:{loops}) rpy2_callback(i)")
    loop_empty = ri.parse(f"for (i in 1:{loops}) identity(i)")
    evaluate = ri.baseenv["eval"]
    empty = best_time(lambda: evaluate(loop_empty), max_number=20)
    results["callback_polymagic"] = (best_time(lambda: evaluate(loop_pm),
                                               max_number=20) - empty) / loops
    results["callback_rternalize"] = (best_time(lambda: evaluate(loop_rpy2),
                                                max_number=20) - empty) / loops
    del rternalized
    return results


LOAD_EXT = """
import time
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
started = time.perf_counter()
shell.run_line_magic("load_ext", {extension!r})
print(time.perf_counter() - started)
"""


def bench_load_ext(repeat: int = 3) -> dict:
    results = {}
    for extension in ("polymagic", "rpy2.ipython", "cython"):
        times = []
        for _ in range(repeat):
            output = subprocess.run([sys.executable, "-c", LOAD_EXT.format(
                extension=extension)], capture_output=True, text=True, check=True)
            times.append(float(output.stdout.strip().splitlines()[-1]))
        results[extension] = statistics.median(times)
    return results


def run_isolated(part: str, *args) -> dict | list:
    """Run one part in a fresh interpreter so RSS and R state are its own."""
    output = subprocess.run([sys.executable, __file__, "--part", part, *map(str, args)],
                            capture_output=True, text=True)
    if output.returncode != 0:
        raise RuntimeError(f"bench part {part} failed:\n{output.stderr}")
    sys.stderr.write(output.stderr)
    return json.loads(output.stdout.strip().splitlines()[-1])


def us(seconds) -> str:
    return f"{'skipped':>15}" if seconds is None else f"{seconds * 1e6:12.1f} µs"


def ratio(slow, fast) -> str:
    return "" if slow is None or fast is None else f"{slow / fast:12,.0f}x"


def print_table(results: dict) -> None:
    print("\nnumpy -> R (push)                polymagic        numpy2ri   FloatVector"
          "   vs numpy2ri")
    for row in results["sizes"]:
        print(f"  n={row['n']:>11,}  {us(row['push_polymagic'])}  "
              f"{us(row.get('push_numpy2ri'))}  {us(row.get('push_floatvector'))}  "
              f"{ratio(row.get('push_numpy2ri'), row['push_polymagic'])}")
    print("\nR -> numpy (pull)                polymagic        numpy2ri    np.asarray"
          "   vs numpy2ri")
    for row in results["sizes"]:
        print(f"  n={row['n']:>11,}  {us(row['pull_polymagic'])}  "
              f"{us(row.get('pull_numpy2ri'))}  {us(row['pull_np_asarray'])}  "
              f"{ratio(row.get('pull_numpy2ri'), row['pull_polymagic'])}")
    print(f"  (numpy2ri and FloatVector skipped above n={COPYING_ANCHOR_LIMIT:,}: they copy,"
          f" seconds and GBs per call)")
    rss = results["rss"]
    print(f"\nRSS growth, 800 MB crossing: push {rss['push_rss_growth_mb']:.2f} MB, "
          f"pull {rss['pull_rss_growth_mb']:.2f} MB")
    calls = results["calls"]
    print(f"\nPython -> R call: polymagic {us(calls['call_polymagic'])}, rinterface "
          f"{us(calls['call_rinterface'])} (with arg conversion "
          f"{us(calls['call_rinterface_with_conversion'])}), robjects "
          f"{us(calls['call_robjects'])}; polymagic/rinterface = "
          f"{calls['call_polymagic'] / calls['call_rinterface']:.2f}")
    print(f"R -> Python callback: polymagic {us(calls['callback_polymagic'])}, "
          f"rternalize {us(calls['callback_rternalize'])}; polymagic/rternalize = "
          f"{calls['callback_polymagic'] / calls['callback_rternalize']:.2f}")
    load = results["load_ext"]
    print(f"\n%load_ext: polymagic {load['polymagic'] * 1e3:.1f} ms, rpy2.ipython "
          f"{load['rpy2.ipython'] * 1e3:.1f} ms, cython {load['cython'] * 1e3:.1f} ms")
    print("\nTargets:", json.dumps(results["targets"], indent=1))


def targets(results: dict) -> dict:
    by_n = {row["n"]: row for row in results["sizes"]}
    out = {}
    if 10**8 in by_n:
        out["push_1e8_us"] = by_n[10**8]["push_polymagic"] * 1e6
    if 10**7 in by_n:
        out["push_speedup_vs_numpy2ri_1e7"] = (by_n[10**7]["push_numpy2ri"]
                                               / by_n[10**7]["push_polymagic"])
    out["pull_us_max"] = max(row["pull_polymagic"] for row in results["sizes"]) * 1e6
    out["rss_growth_mb_max"] = max(results["rss"].values())
    out["call_ratio_vs_rinterface"] = (results["calls"]["call_polymagic"]
                                       / results["calls"]["call_rinterface"])
    out["callback_ratio_vs_rternalize"] = (results["calls"]["callback_polymagic"]
                                           / results["calls"]["callback_rternalize"])
    out["load_ext_ms"] = results["load_ext"]["polymagic"] * 1e3
    return {"measured": out, "goals": TARGETS}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--max-exponent", type=int, default=8)
    parser.add_argument("--part")
    parser.add_argument("rest", nargs="*")
    options = parser.parse_args()
    if options.part:
        value = {"sizes": lambda: bench_sizes(int(options.rest[0])), "rss": bench_rss,
                 "calls": bench_calls}[options.part]()
        print(json.dumps(value))
        return
    results = {"sizes": run_isolated("sizes", options.max_exponent),
               "rss": run_isolated("rss"), "calls": run_isolated("calls"),
               "load_ext": bench_load_ext()}
    results["targets"] = targets(results)
    print_table(results)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1))
    print(f"\nwrote {RESULTS}")


if __name__ == "__main__":
    main()
