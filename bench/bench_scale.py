"""Cell functions scaling out (docs/scale.md): what pickling costs per call, what a
second worker buys, and the first call on a fresh worker with an empty cache.

1. Call overhead: a C++ function with a generated wrapper, called through the
   picklable CellFunction (a partial, called through C) against the bare wrapper it
   wraps (the function before this change). Functions cffi calls directly are not
   wrapped at all (the same builtin as before).
2. The same C++ kernel over 8 chunks on a LocalCluster of 2 worker processes against
   1 (one thread each). Goal: >= 1.7x on this 2-core machine.
3. The first call on a fresh process whose build cache is empty: pickle.loads (the
   artefact travels in the pickle: published into the cache, loaded) + one call, with
   polymagic and NumPy already imported as on a Dask worker. Goal: <= 100 ms.

Writes bench/results/bench_scale.json.
"""
from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import best_time  # noqa: E402

import polymagic as pm  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "bench_scale.json"
KERNEL = """
#include <cmath>
#include <vector>
std::vector<double> heavy(const double* x, long n, int rounds) {
    std::vector<double> out(n);
    for (long i = 0; i < n; ++i) {
        double v = x[i];
        for (int r = 0; r < rounds; ++r) v = std::sin(v) + std::cos(v);
        out[i] = v;
    }
    return out;
}
double plus(double a, double b) { return a + b; }
"""
FIRST_CALL = """
import pickle, sys, time
import numpy as np, polymagic
data = sys.stdin.buffer.read()
started = time.perf_counter()
heavy = pickle.loads(data)
heavy(np.ones(4), 4, 1)
print(time.perf_counter() - started)
"""


def call_overhead(cell) -> dict:
    x = np.ones(8)
    wrapped, bare = cell.heavy, cell.heavy.__wrapped__
    after = best_time(lambda: wrapped(x, 8, 1))
    before = best_time(lambda: bare(x, 8, 1))
    return {"wrapper_us": before * 1e6, "cell_function_us": after * 1e6,
            "ratio": after / before}


def scaling(cell, rounds: int = 400) -> dict:
    from distributed import Client, LocalCluster
    chunks = np.array_split(np.linspace(0, 1, 400_000), 8)
    times = {}
    for workers in (1, 2):
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster, Client(cluster) as client:
            client.gather(client.map(cell.heavy, chunks[:workers], [10] * workers,
                                     [1] * workers))  # functions loaded on every worker
            started = time.perf_counter()
            client.gather(client.map(cell.heavy, chunks, [len(c) for c in chunks],
                                     [rounds] * len(chunks), pure=False))
            times[workers] = time.perf_counter() - started
    return {"one_worker_s": times[1], "two_workers_s": times[2],
            "speedup": times[1] / times[2], "cpus": os.cpu_count(),
            "load_average": os.getloadavg()[0]}


def first_call(cell, repeat: int = 5) -> dict:
    data = pickle.dumps(cell.heavy, protocol=5)
    found = []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as cache:
            env = dict(os.environ, POLYMAGIC_CACHE_DIR=cache)
            done = subprocess.run([sys.executable, "-c", FIRST_CALL], input=data,
                                  env=env, capture_output=True, check=True)
            found.append(float(done.stdout))
    return {"pickle_bytes": len(data), "best_ms": min(found) * 1e3,
            "median_ms": sorted(found)[len(found) // 2] * 1e3}


def main() -> None:
    cell = pm.cpp(KERNEL, std="c++17")
    results = {"call_overhead": call_overhead(cell), "first_call": first_call(cell),
               "scaling": scaling(cell)}
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2))
    overhead, first, scale = (results[k] for k in ("call_overhead", "first_call", "scaling"))
    print(f"call: bare wrapper {overhead['wrapper_us']:.2f} us, CellFunction "
          f"{overhead['cell_function_us']:.2f} us (x{overhead['ratio']:.3f})")
    print(f"first call, fresh process, empty cache: best {first['best_ms']:.1f} ms, "
          f"median {first['median_ms']:.1f} ms (pickle {first['pickle_bytes']} bytes)")
    print(f"8 chunks: 1 worker {scale['one_worker_s']:.2f} s, 2 workers "
          f"{scale['two_workers_s']:.2f} s: x{scale['speedup']:.2f} "
          f"({scale['cpus']} CPUs, load average {scale['load_average']:.1f})")


if __name__ == "__main__":
    main()
