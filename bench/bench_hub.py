"""Cross-language hops through polymagic's hub against the raw bridge calls, in one run.

One hop = a call into another language whose function immediately calls back into
Python (an identity function), so the time is the round trip Python -> X -> Python:

  Python -> R -> Python     polymagic RFunction + py$f      vs rpy2: rinterface closure
                                                               calling an rternalized f
  Python -> C++ -> Python   %%cpp function + PM_PYTHON f    vs raw cffi: API-mode function
                                                               calling an ffi.callback
  Python -> Cython -> Python  %%cython + polymagic.py.f     vs Cython calling f from its
                                                               module globals
  R -> C++ (via the hub)    R calling py$cpp_fn               vs rpy2: R calling an
                                                               rternalized cffi function
and fib(16) alternating Python and R (polymagic RFunction + py$f vs rpy2 rinterface +
rternalize, each with the least conversion it needs), and fib(20) split across Python,
R, C++ and Cython against fib(20) in pure Python, with the cost of each kind of hop
fib(20) makes (one direction each: a call into the language, or its way back to Python).

Usage: python bench/bench_hub.py      Writes bench/results/bench_hub.json.
"""
from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from timing import best_time

RESULTS = Path(__file__).resolve().parent / "results" / "bench_hub.json"




def identity(x):
    return x


def r_hops(namespace):
    import polymagic as pm
    import rpy2.rinterface as ri
    namespace["identity"] = identity
    hop = pm.R.eval("function(x) py$identity(x)")
    raw_identity = ri.rternalize(lambda x: x)
    keep = [raw_identity]  # rternalize's handle must outlive its R function
    raw_hop = ri.evalr("function(f, x) f(x)")
    argument = ri.FloatSexpVector([1.0])
    return [("Python -> R -> Python", lambda: hop(1.0), "rpy2 rinterface + rternalize",
             lambda: raw_hop(raw_identity, argument), keep)]


def cpp_hops(namespace, cache):
    import polymagic as pm
    namespace["identity"] = identity
    module = pm.cpp("#include <polymagic.hpp>\nPM_PYTHON double identity(double x);\n"
                    "double hop(double x) { return identity(x); }\n"
                    "double plain(double x) { return x; }\n")
    raw = raw_cffi_hop(cache)
    callback = raw.ffi.callback("double(double)", identity)
    rows = [("Python -> C++ -> Python", lambda: module.hop(1.0),
             "raw cffi API + ffi.callback", lambda: raw.lib.raw_hop(callback, 1.0),
             [callback])]
    return module, rows


def raw_cffi_hop(cache: Path):
    """The anchor, by hand: a C function calling a function pointer, cffi API mode."""
    import importlib
    import sys
    import cffi
    builder = cffi.FFI()
    builder.cdef("double raw_hop(double (*f)(double), double x);")
    builder.set_source("_bench_hub_raw", "double raw_hop(double (*f)(double), double x)"
                       " { return f(x); }", extra_compile_args=["-O2"])
    builder.compile(tmpdir=str(cache), verbose=False)
    sys.path.insert(0, str(cache))
    return importlib.import_module("_bench_hub_raw")


def cython_hops(namespace):
    import polymagic as pm
    namespace["identity"] = identity
    module = pm.cython("from polymagic import py\n"
                       "def hop(x):\n    return py.identity(x)\n"
                       "def raw_hop(f, x):\n    return f(x)\n")
    return [("Python -> Cython -> Python", lambda: module.hop(1.0),
             "Cython calling a Python function", lambda: module.raw_hop(identity, 1.0), [])]


def r_to_cpp_hops(namespace, cpp_module):
    import polymagic as pm
    import rpy2.rinterface as ri
    namespace["plain_cpp"] = cpp_module.plain
    via_hub = pm.R.eval("function(x) py$plain_cpp(x)")
    raw_plain = ri.rternalize(lambda x: ri.FloatSexpVector([cpp_module.plain(x[0])]))
    raw = ri.evalr("function(f, x) f(x)")
    argument = ri.FloatSexpVector([1.0])
    return [("R -> C++ (hub)", lambda: via_hub(1.0), "rpy2 rternalize around the C++ fn",
             lambda: raw(raw_plain, argument), [raw_plain])]


def fib_split(namespace):
    import polymagic as pm
    fib_r = pm.R.eval("function(n) if (n < 2L) n else py$fib_cpp(n - 1L) + py$fib_cy(n - 2L)")
    namespace["fib_r"] = fib_r

    def fib_py(n):
        return n if n < 2 else fib_r(n - 1) + namespace["fib_cpp"](n - 2)
    namespace["fib_py"] = fib_py
    namespace["fib_cpp"] = pm.cpp(
        "#include <polymagic.hpp>\nPM_PYTHON long fib_py(long n);\n"
        "PM_PYTHON long fib_r(long n);\n"
        "long fib_cpp(long n) { return n < 2 ? n : fib_py(n - 1) + fib_r(n - 2); }\n").fib_cpp
    namespace["fib_cy"] = pm.cython(
        "from polymagic import py\n"
        "def fib_cy(long n):\n    return n if n < 2 else py.fib_py(n - 1) + py.fib_r(n - 2)\n"
    ).fib_cy

    def fib_pure(n):
        return n if n < 2 else fib_pure(n - 1) + fib_pure(n - 2)
    started = time.perf_counter()
    split = fib_py(20)
    first_seconds = time.perf_counter() - started
    if split != 6765:
        raise SystemExit(f"fib(20) split across languages gave {split}, not 6765")
    runs = []  # (wall, CPU time of this thread) per run
    for _ in range(FIB20_RUNS):
        started, started_cpu = time.perf_counter(), time.thread_time()
        fib_py(20)
        runs.append((time.perf_counter() - started, time.thread_time() - started_cpu))
    pure_seconds = best_time(lambda: fib_pure(20), budget=1.0, max_number=20)
    return first_seconds, min(runs), pure_seconds


# fib(20) is timed as the best of this many runs (after a first run, which also pays for
# R compiling fib_r and the first py$ lookups): one run on a machine shared with other
# work is mostly a measure of that work.
FIB20_RUNS = 10


def min_time(function, repeat: int = 200) -> float:
    """Seconds per call of a short function: the least of many samples (on a shared,
    noisy machine the least is the cost of the work itself)."""
    function()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        samples.append(time.perf_counter() - started)
    return min(samples)


def hop_costs(namespace, samples: int = 200, loop: int = 200) -> dict:
    """Microseconds per hop of each kind fib(20) makes, one direction at a time: a call
    into R, C++ or Cython from Python, and the way back from each (the time of a call
    that comes back, less the time of the same call that does not)."""
    import polymagic as pm
    namespace["identity"] = identity
    namespace["identity_long"] = identity

    def per_call(function, *args):
        return min_time(lambda: [function(*args) for _ in range(loop)], samples) / loop

    def r_loop(body):
        looped = pm.R.eval(f"function(n) {{ for (i in seq_len(n)) {body}; NULL }}")
        return min_time(lambda: looped(loop), samples) / loop

    r_plain = pm.R.eval("function(n) n")
    cpp = pm.cpp("#include <polymagic.hpp>\nPM_PYTHON long identity_long(long n);\n"
                 "long plain(long n) { return n; }\n"
                 "long hop(long n) { return identity_long(n); }\n")
    cython = pm.cython("from polymagic import py\ndef plain(long n):\n    return n\n"
                       "def hop(long n):\n    return py.identity(n)\n")
    pm.R.eval("fetched_identity <- py$identity")
    r_baseline = r_loop("NULL")
    costs = {
        "Python -> R (RFunction call)": per_call(r_plain, 1),
        "R -> Python: py$f lookup": r_loop("py$identity") - r_baseline,
        "R -> Python: calling it": r_loop("fetched_identity(1L)") - r_baseline,
        "Python -> C++": per_call(cpp.plain, 1),
        "C++ -> Python (PM_PYTHON)": per_call(cpp.hop, 1) - per_call(cpp.plain, 1),
        "Python -> Cython": per_call(cython.plain, 1),
        "Cython -> Python (py.f)": per_call(cython.hop, 1) - per_call(cython.plain, 1),
    }
    return {name: seconds * 1e6 for name, seconds in costs.items()}


def fib_python_r(namespace):
    """fib(16) alternating Python and R (1,973 calls, each a language hop): seconds
    with polymagic, seconds with rpy2's rinterface + rternalize."""
    import polymagic as pm
    import rpy2.rinterface as ri
    fib_r = pm.R.eval("function(n) if (n < 2L) n else py$fib_alt_py(n - 1L) + "
                      "py$fib_alt_py(n - 2L)")

    def fib_alt_py(n):
        return n if n < 2 else fib_r(n - 1) + fib_r(n - 2)
    namespace["fib_alt_py"] = fib_alt_py

    raw_fib_r = ri.evalr("function(n, f) if (n < 2L) n else f(n - 1L) + f(n - 2L)")

    def raw_fib_py(n):
        n = n[0]
        if n < 2:
            return ri.IntSexpVector([n])
        return ri.IntSexpVector([raw_fib_r(ri.IntSexpVector([n - 1]), raw_callback)[0] +
                                 raw_fib_r(ri.IntSexpVector([n - 2]), raw_callback)[0]])
    raw_callback = ri.rternalize(raw_fib_py)  # kept alive for the whole run
    sixteen = ri.IntSexpVector([16])
    if fib_alt_py(16) != 987 or raw_fib_py(sixteen)[0] != 987:
        raise SystemExit("fib(16) alternating Python and R did not give 987")
    ours = best_time(lambda: fib_alt_py(16), budget=1.0, max_number=50)
    anchor = best_time(lambda: raw_fib_py(sixteen), budget=1.0, max_number=50)
    return ours, anchor


def main() -> None:
    import polymagic as pm
    namespace = {}
    pm.use_namespace(namespace)
    cache = Path(tempfile.mkdtemp(prefix="bench-hub-"))
    cpp_module, cpp_rows = cpp_hops(namespace, cache)
    rows = r_hops(namespace) + cpp_rows + cython_hops(namespace) + \
        r_to_cpp_hops(namespace, cpp_module)
    results = {"hops": []}
    print(f"{'hop':28} {'polymagic':>11} {'anchor':>11} {'ratio':>7}  anchor")
    for name, ours, anchor_name, anchor, _keep in rows:
        ours_s, anchor_s = best_time(ours), best_time(anchor)
        print(f"{name:28} {ours_s * 1e6:9.2f}us {anchor_s * 1e6:9.2f}us "
              f"{ours_s / anchor_s:6.2f}x  {anchor_name}")
        results["hops"].append({"hop": name, "polymagic_us": ours_s * 1e6,
                                "anchor": anchor_name, "anchor_us": anchor_s * 1e6,
                                "ratio": ours_s / anchor_s})
    ours_s, anchor_s = fib_python_r(namespace)
    print(f"\nfib(16) alternating Python and R: {ours_s * 1e3:.2f} ms; rpy2 rinterface + "
          f"rternalize: {anchor_s * 1e3:.2f} ms; ratio {ours_s / anchor_s:.2f}x")
    results["fib16_python_r"] = {"polymagic_ms": ours_s * 1e3,
                                 "anchor_ms": anchor_s * 1e3,
                                 "anchor": "rpy2 rinterface + rternalize",
                                 "ratio": ours_s / anchor_s}
    first_s, (split_s, split_cpu_s), pure_s = fib_split(namespace)
    print(f"\nfib(20) split across Python, R, C++, Cython: {split_s * 1e3:.1f} ms "
          f"(best of {FIB20_RUNS} runs; its CPU time {split_cpu_s * 1e3:.1f} ms; the first "
          f"run {first_s * 1e3:.1f} ms); pure Python: {pure_s * 1e3:.2f} ms; ratio "
          f"{split_s / pure_s:.0f}x (21,890 calls, each a language hop)")
    results["fib20"] = {"split_ms": split_s * 1e3, "split_cpu_ms": split_cpu_s * 1e3,
                        "first_run_ms": first_s * 1e3, "runs": FIB20_RUNS,
                        "pure_python_ms": pure_s * 1e3, "ratio": split_s / pure_s}
    costs = hop_costs(namespace)
    print("\nfib(20)'s hops, each kind alone (least of many samples):")
    for name, micros in costs.items():
        print(f"  {name:34} {micros:7.3f}us")
    results["fib20"]["hops_us"] = costs
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2))
    print(f"\nwrote {RESULTS}")


if __name__ == "__main__":
    main()
