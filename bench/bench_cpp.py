"""%%cpp against the tools it replaces, in one run.

  compile   first compile of small cells with %%cpp (a new cell each time), beside
            the anchor `g++ -O2 -shared -fPIC` of the same source (same -std), cached
            re-run in the same process and in a new process
  call      per-call time of a trivial `int add(int, int)` from %%cpp vs the same
            function through raw cffi in API mode and in ABI mode (built here by hand);
            and of a wrapped call, `double total(std::span<const double>)` on a
            4-element array, vs raw cffi API mode with ffi.from_buffer by hand
  callback  C++ -> Python per callback: %%cpp function pointer and std::function (both
            called through the C API by the module's glue) vs raw ffi.callback
  dot       dot product over 1e7 doubles: %%cpp vs the same C code compiled and
            called by hand through cffi vs numpy.dot
  overload  an overloaded `twice(double)`/`twice(int)` called with a float (the first
            overload) and an int (the second) vs one overload called alone, and vs
            pybind11 binding the same two overloads by hand (when pybind11 is installed)

polymagic's C++ runtime object and its precompiled headers (the standard prelude for
g++ and libclang, Python.h for the glue) are built once per compiler and flags (cached
like a cell); the compile rows are measured with them already built, and their
one-time cost is reported.

Usage: python bench/bench_cpp.py        Writes bench/results/bench_cpp.json.
"""
from __future__ import annotations

import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import timeit
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from anchors import build_pybind11  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "bench_cpp.json"
TARGETS = {"first_compile_s": 0.5, "std_headers_ratio_vs_gxx": 0.6,
           "cached_same_process_ms": 5.0, "cached_new_process_ms": 20.0,
           "call_ratio_vs_cffi_api": 1.3, "callback_ns": 133.0, "callback_ratio_vs_ffi_callback": 1.1,
           "dot_ratio_vs_hand": 1.1}

CELLS = {
    "scalar": "int add(int a, int b) { return a + b; }\n",
    "dot": ("double dot(const double* a, const double* b, long n) {\n"
            "    double s = 0;\n    for (long i = 0; i < n; ++i) s += a[i] * b[i];\n"
            "    return s;\n}\n"),
    "callback": ("double apply_n(double (*f)(double), long n) {\n"
                 "    double s = 0;\n    for (long i = 0; i < n; ++i) s += f(i);\n"
                 "    return s;\n}\n"),
    "vector+string": ("#include <string>\n#include <vector>\n"
                      "std::vector<double> ramp(int n) { std::vector<double> v(n); "
                      "for (int i = 0; i < n; ++i) v[i] = i; return v; }\n"
                      "std::string greet(const std::string& s) { return \"hi \" + s; }\n"),
}

NEW_PROCESS = textwrap.dedent("""
    import sys, time
    import numpy  # a notebook kernel has it loaded; polymagic's key reads its version
    from IPython.core.interactiveshell import InteractiveShell
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "polymagic")
    cell = sys.stdin.read()
    started = time.perf_counter()
    ip.run_cell_magic("cpp", "", cell)
    print(time.perf_counter() - started)
""")

RAW_C = """
int add(int a, int b) { return a + b; }
double dot(const double* a, const double* b, long n) {
    double s = 0;
    for (long i = 0; i < n; ++i) s += a[i] * b[i];
    return s;
}
double apply_n(double (*f)(double), long n) {
    double s = 0;
    for (long i = 0; i < n; ++i) s += f(i);
    return s;
}
double total(const double* xs, long n) {
    double s = 0;
    for (long i = 0; i < n; ++i) s += xs[i];
    return s;
}
"""
RAW_CDEF = """
int add(int a, int b);
double dot(const double* a, const double* b, long n);
double apply_n(double (*f)(double), long n);
double total(const double* xs, long n);
"""


def per_call(statement: str, namespace: dict, number: int = 200_000) -> float:
    """Seconds per execution of `statement`: best of 7 rounds, in this thread's CPU
    time (the machines are shared: wall time also counts other processes' turns)."""
    return min(timeit.repeat(statement, timer=time.thread_time, globals=namespace,
                             number=number, repeat=7)) / number


def shell():
    from IPython.core.interactiveshell import InteractiveShell
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "polymagic")
    return ip


def bench_compile(ip, tmp: Path) -> dict:
    from polymagic.bridges.cpp import prelude
    from polymagic.bridges.cpp.compiler import runtime_object
    from polymagic.bridges.cpp.options import CppOptions
    from polymagic.toolchain import compiler
    started = time.perf_counter()
    runtime_object(compiler("c++"))
    rows = {"runtime_once_s": time.perf_counter() - started}
    started = time.perf_counter()
    for number in range(2):  # the second build that can use them starts them
        warm = f"{CELLS['vector+string']}// {os.urandom(6).hex()}\n"
        ip.run_cell_magic("cpp", "", warm)
    prelude.wait()  # until the precompiled headers are built (in the background)
    rows["prelude_once_s"] = time.perf_counter() - started
    std = CppOptions().std
    for name, cell in CELLS.items():
        firsts, anchors = [], []
        for _ in range(5):
            fresh = f"{cell}// {os.urandom(6).hex()}\n"
            started = time.perf_counter()
            ip.run_cell_magic("cpp", "", fresh)
            firsts.append(time.perf_counter() - started)
            anchors.append(plain_gxx(fresh, std, tmp))
        same = min(timeit.repeat(lambda: ip.run_cell_magic("cpp", "", fresh), number=1,
                                 repeat=20))
        news = []
        for _ in range(5):
            out = subprocess.run([sys.executable, "-c", NEW_PROCESS], input=fresh,
                                 capture_output=True, text=True, check=True,
                                 env=user_like_environment()).stdout
            news.append(float(out.split()[-1]))
        rows[name] = {"first_compile_s": statistics.median(firsts),
                      "first_compile_min_s": min(firsts),
                      "anchor_gxx_s": statistics.median(anchors),
                      "anchor_gxx_min_s": min(anchors),
                      "ratio_vs_gxx":
                          statistics.median(firsts) / statistics.median(anchors),
                      "ratio_vs_gxx_of_minima": min(firsts) / min(anchors),
                      "cached_same_process_ms": same * 1e3,
                      "cached_new_process_ms": statistics.median(news) * 1e3}
    return rows


def plain_gxx(source: str, std: str, tmp: Path) -> float:
    """The anchor: seconds for `g++ -O2 -shared -fPIC` of `source` (same -std as the
    cell), as a user would build it by hand."""
    from polymagic.toolchain import compiler
    path = tmp / "anchor.cpp"
    path.write_text(source)
    started = time.perf_counter()
    subprocess.run([compiler("c++"), "-O2", f"-std={std}", "-shared", "-fPIC", str(path),
                    "-o", str(tmp / "anchor.so")], check=True)
    return time.perf_counter() - started


def user_like_environment() -> dict:
    """The environment for new-process timings, with Python's bytecode cache on, as
    users have it (some machines set PYTHONDONTWRITEBYTECODE, which makes every new
    process recompile polymagic's modules from source)."""
    environment = dict(os.environ)
    environment.pop("PYTHONDONTWRITEBYTECODE", None)
    return environment


def raw_cffi(tmp: Path):
    """The anchors: the same C code through cffi API mode and ABI mode, by hand."""
    import cffi
    api = cffi.FFI()
    api.cdef(RAW_CDEF)
    api.set_source("_bench_cpp_raw_api", RAW_C, extra_compile_args=["-O2"])
    library = api.compile(tmpdir=str(tmp), verbose=False)
    sys.path.insert(0, str(tmp))
    import importlib
    module = importlib.import_module("_bench_cpp_raw_api")
    so = tmp / "raw_abi.so"
    (tmp / "raw.c").write_text(RAW_C)
    subprocess.run(["cc", "-O2", "-shared", "-fPIC", str(tmp / "raw.c"), "-o", str(so)],
                   check=True)
    abi = cffi.FFI()
    abi.cdef(RAW_CDEF)
    return module, abi, abi.dlopen(str(so)), library


SPAN_CELL = ("#include <span>\n"
             "double total(std::span<const double> xs) {\n"
             "    double s = 0;\n    for (double x : xs) s += x;\n    return s;\n}\n")


def bench_calls(ip, raw_api, abi_lib) -> dict:
    ip.run_cell_magic("cpp", "", CELLS["scalar"])
    namespace = {"pm_add": ip.user_ns["add"], "api_add": raw_api.lib.add,
                 "abi_add": abi_lib.add, "empty": lambda a, b: None}
    rows = {label: per_call(f"{label}(1, 2)", namespace) * 1e9
            for label in ("pm_add", "api_add", "abi_add", "empty")}
    ip.run_cell_magic("cpp", "--std c++20", SPAN_CELL)
    namespace = {"pm_total": ip.user_ns["total"], "raw_total": raw_api.lib.total,
                 "ffi": raw_api.ffi, "x": np.arange(4.0)}
    if namespace["pm_total"](namespace["x"]) != 6.0:
        raise SystemExit("the span cell computed a wrong sum")
    rows["pm_span"] = per_call("pm_total(x)", namespace) * 1e9
    rows["api_span"] = per_call("raw_total(ffi.from_buffer('double[]', x), 4)",
                                namespace) * 1e9
    return rows


STD_FUNCTION_CELL = ("#include <functional>\n"
                     "double apply_fn(std::function<double(double)> f, long n) {\n"
                     "    double s = 0;\n    for (long i = 0; i < n; ++i) s += f(i);\n"
                     "    return s;\n}\n")


def bench_callback(ip, raw_api) -> dict:
    ip.run_cell_magic("cpp", "", CELLS["callback"])
    ip.run_cell_magic("cpp", "", STD_FUNCTION_CELL)
    n = 100_000
    function = lambda x: x  # noqa: E731
    raw_pointer = raw_api.ffi.callback("double(double)", function)
    pm_apply, pm_apply_fn = ip.user_ns["apply_n"], ip.user_ns["apply_fn"]
    if {pm_apply(function, n), pm_apply_fn(function, n)} != {n * (n - 1) / 2}:
        raise SystemExit("the callback cells computed a wrong sum")
    namespace = {"pm_apply": pm_apply, "pm_apply_fn": pm_apply_fn,
                 "raw_apply": raw_api.lib.apply_n, "raw_pointer": raw_pointer,
                 "f": function, "n": n}
    pm_time = per_call("pm_apply(f, n)", namespace, number=5) / n
    fn_time = per_call("pm_apply_fn(f, n)", namespace, number=5) / n
    raw_time = per_call("raw_apply(raw_pointer, n)", namespace, number=5) / n
    return {"pm_ns": pm_time * 1e9, "pm_std_function_ns": fn_time * 1e9,
            "raw_ffi_callback_ns": raw_time * 1e9}


def bench_dot(ip, raw_api) -> dict:
    ip.run_cell_magic("cpp", "", CELLS["dot"])
    n = 10**7
    a, b = np.random.rand(n), np.random.rand(n)
    ffi = raw_api.ffi
    namespace = {"pm_dot": ip.user_ns["dot"], "raw_dot": raw_api.lib.dot, "ffi": ffi,
                 "a": a, "b": b, "n": n, "np": np}
    pm = per_call("pm_dot(a, b, n)", namespace, number=3)
    hand = per_call("raw_dot(ffi.from_buffer('double[]', a), "
                    "ffi.from_buffer('double[]', b), n)", namespace, number=3)
    numpy_time = per_call("np.dot(a, b)", namespace, number=3)
    assert abs(namespace["pm_dot"](a, b, n) - np.dot(a, b)) < 1e-6 * n
    return {"pm_ms": pm * 1e3, "hand_ms": hand * 1e3, "numpy_ms": numpy_time * 1e3}


OVERLOAD_CELL = ("double twice(double x) { return 2 * x; }\n"
                 "int twice(int x) { return 2 * x; }\n")
OVERLOAD_BINDING = r"""
#include <pybind11/pybind11.h>
PYBIND11_MODULE(%s, m) {
    m.def("twice", static_cast<double (*)(double)>(&twice));
    m.def("twice", static_cast<int (*)(int)>(&twice));
}
"""


def pybind11_overloads(tmp: Path):
    """The same overloads bound by hand with pybind11 (None without pybind11)."""
    if importlib.util.find_spec("pybind11") is None:
        return None
    name = "_bench_cpp_pb_overloads"
    return build_pybind11(tmp, name, OVERLOAD_CELL + OVERLOAD_BINDING % name,
                          std="c++17")[0]


def bench_overloads(ip, tmp: Path) -> dict:
    ip.run_cell_magic("cpp", "", OVERLOAD_CELL)
    namespace = {"pm_twice": ip.user_ns["twice"], "pm_alone": ip.user_ns["twice__double"]}
    if (namespace["pm_twice"](3), namespace["pm_twice"](1.5)) != (6, 3.0):
        raise SystemExit("the overloaded cell chose a wrong overload")
    rows = {"pm_float_ns": per_call("pm_twice(2.5)", namespace) * 1e9,
            "pm_int_ns": per_call("pm_twice(3)", namespace) * 1e9,
            "pm_alone_ns": per_call("pm_alone(2.5)", namespace) * 1e9}
    binding = pybind11_overloads(tmp)
    if binding is not None:
        namespace["pb_twice"] = binding.twice
        rows["pybind11_float_ns"] = per_call("pb_twice(2.5)", namespace) * 1e9
        rows["pybind11_int_ns"] = per_call("pb_twice(3)", namespace) * 1e9
    return rows


def report(results: dict) -> dict:
    compile_rows = results["compile"]
    small = [compile_rows[name] for name in ("scalar", "dot", "callback")]
    summary = {
        "first_compile_s": max(row["first_compile_s"] for row in small),
        "std_headers_ratio_vs_gxx": compile_rows["vector+string"]["ratio_vs_gxx"],
        "cached_same_process_ms": max(row["cached_same_process_ms"] for row in small),
        "cached_new_process_ms": max(row["cached_new_process_ms"] for row in small),
        "call_ratio_vs_cffi_api": results["call"]["pm_add"] / results["call"]["api_add"],
        "callback_ns": results["callback"]["pm_ns"],
        "callback_ratio_vs_ffi_callback":
            results["callback"]["pm_ns"] / results["callback"]["raw_ffi_callback_ns"],
        "dot_ratio_vs_hand": results["dot"]["pm_ms"] / results["dot"]["hand_ms"],
    }
    print(f"\npolymagic C++ runtime, built once per compiler: "
          f"{compile_rows['runtime_once_s']:.2f} s")
    print(f"precompiled headers, built once per compiler and flags: "
          f"{compile_rows['prelude_once_s']:.2f} s")
    print(f"\n{'cell':16}{'first compile s':>17}{'g++ alone s':>13}{'ratio':>7}"
          f"{'(minima)':>9}{'cached ms':>12}{'new process ms':>16}")
    for name in CELLS:
        row = compile_rows[name]
        print(f"{name:16}{row['first_compile_s']:17.3f}{row['anchor_gxx_s']:13.3f}"
              f"{row['ratio_vs_gxx']:7.2f}{row['ratio_vs_gxx_of_minima']:9.2f}"
              f"{row['cached_same_process_ms']:12.2f}{row['cached_new_process_ms']:16.2f}")
    call = results["call"]
    print(f"\ncall add(1, 2): %%cpp {call['pm_add']:.0f} ns, raw cffi API "
          f"{call['api_add']:.0f} ns (x{call['pm_add'] / call['api_add']:.2f}), raw cffi "
          f"ABI {call['abi_add']:.0f} ns (x{call['pm_add'] / call['abi_add']:.2f}), "
          f"empty Python function {call['empty']:.0f} ns")
    print(f"call total(span of 4 doubles): %%cpp {call['pm_span']:.0f} ns, raw cffi API "
          f"with from_buffer {call['api_span']:.0f} ns "
          f"(x{call['pm_span'] / call['api_span']:.2f})")
    callback = results["callback"]
    print(f"callback C++ -> Python: %%cpp {callback['pm_ns']:.0f} ns (std::function "
          f"{callback['pm_std_function_ns']:.0f} ns), raw ffi.callback "
          f"{callback['raw_ffi_callback_ns']:.0f} ns "
          f"(x{callback['pm_ns'] / callback['raw_ffi_callback_ns']:.2f})")
    dot = results["dot"]
    print(f"dot 1e7 doubles: %%cpp {dot['pm_ms']:.2f} ms, by hand {dot['hand_ms']:.2f} ms "
          f"(x{dot['pm_ms'] / dot['hand_ms']:.2f}), numpy {dot['numpy_ms']:.2f} ms "
          f"(x{dot['pm_ms'] / dot['numpy_ms']:.2f})")
    overload = results["overload"]
    print(f"overloaded call twice(2.5) / twice(3): %%cpp {overload['pm_float_ns']:.0f} / "
          f"{overload['pm_int_ns']:.0f} ns, one overload alone {overload['pm_alone_ns']:.0f}"
          f" ns" + (f", pybind11 {overload['pybind11_float_ns']:.0f} / "
                    f"{overload['pybind11_int_ns']:.0f} ns (x"
                    f"{overload['pm_float_ns'] / overload['pybind11_float_ns']:.2f} / x"
                    f"{overload['pm_int_ns'] / overload['pybind11_int_ns']:.2f})"
                    if "pybind11_float_ns" in overload else ""))
    print(f"\n{'target':28}{'measured':>12}{'goal':>10}  met")
    for key, goal in TARGETS.items():
        value = summary[key]
        print(f"{key:28}{value:12.3f}{goal:10.3f}  {'yes' if value <= goal else 'NO'}")
    return summary


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("POLYMAGIC_CACHE_DIR", str(Path(tmp) / "cache"))
        ip = shell()
        results = {"compile": bench_compile(ip, Path(tmp))}
        raw_api, _abi, abi_lib, _ = raw_cffi(Path(tmp))
        results["call"] = bench_calls(ip, raw_api, abi_lib)
        results["callback"] = bench_callback(ip, raw_api)
        results["dot"] = bench_dot(ip, raw_api)
        results["overload"] = bench_overloads(ip, Path(tmp))
    results["summary"] = report(results)
    results["targets"] = TARGETS
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2))
    print(f"\nwrote {RESULTS}")


if __name__ == "__main__":
    main()
