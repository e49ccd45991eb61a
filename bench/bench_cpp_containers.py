"""Standard containers through %%cpp against pybind11's stl.h (issue 14), one run.

* calls: the same C++ functions (vector<double> and map<string, double> parameters,
  map and vector<string> results), bound by %%cpp and by a hand-written pybind11
  module with <pybind11/stl.h> (pybind11 from PyPI, the test extra), each converting
  a copy; and a std::span<const double> parameter (the zero-copy view) beside the
  std::vector<double> one, to show what the copy costs;
* build: the same cell with a std::span parameter and with a std::vector one (what
  the container code adds to a first build).

Usage: python bench/bench_cpp_containers.py   Writes bench/results/bench_cpp_containers.json.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from anchors import build_pybind11  # noqa: E402
from timing import best_time  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "bench_cpp_containers.json"

FUNCTIONS = r"""
#include <map>
#include <span>
#include <string>
#include <vector>
double total(const std::vector<double>& xs) { double s = 0; for (double x : xs) s += x; return s; }
double span_total(std::span<const double> xs) { double s = 0; for (double x : xs) s += x; return s; }
double map_total(const std::map<std::string, double>& m) { double s = 0; for (auto& [k, v] : m) s += v; return s; }
std::map<std::string, double> make_map(int n) {
    std::map<std::string, double> m; for (int i = 0; i < n; ++i) m[std::to_string(i)] = i; return m; }
std::vector<std::string> words(int n) { return std::vector<std::string>(n, "word"); }
"""
BINDING = r"""
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
PYBIND11_MODULE(%s, m) {
    m.def("total", &total);
    m.def("map_total", &map_total);
    m.def("make_map", &make_map);
    m.def("words", &words);
}
"""
BUILD_CELLS = {
    "span_param": "#include <span>\n#include <vector>\n"
                  "double f(std::span<const double> xs) { return xs.size(); }\n",
    "vector_param": "#include <span>\n#include <vector>\n"
                    "double f(const std::vector<double>& xs) { return xs.size(); }\n",
}


def calls(module) -> dict:
    small, large = np.arange(4.0), np.arange(1e6)
    large_list, prices = large.tolist(), {str(i): float(i) for i in range(10**5)}
    return {"vector_param_array_4_us": best_time(lambda: module.total(small)) * 1e6,
            "vector_param_list_4_us": best_time(lambda: module.total([1.0, 2.0, 3.0, 4.0])) * 1e6,
            "vector_param_array_1e6_ms": best_time(lambda: module.total(large), 1.0) * 1e3,
            "vector_param_list_1e6_ms": best_time(lambda: module.total(large_list), 1.0) * 1e3,
            "map_param_dict_1e5_ms": best_time(lambda: module.map_total(prices), 1.0) * 1e3,
            "map_result_1e5_ms": best_time(lambda: module.make_map(10**5), 1.0) * 1e3,
            "vector_of_strings_result_1e5_ms": best_time(lambda: module.words(10**5), 1.0) * 1e3}


def build_seconds(pm) -> dict:
    seconds = {}
    for name, source in BUILD_CELLS.items():
        rounds = []
        for _ in range(3):
            started = time.perf_counter()
            pm.cpp(source, force=True)
            rounds.append(time.perf_counter() - started)
        seconds[name] = min(rounds)
    return seconds


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        os.environ["POLYMAGIC_CACHE_DIR"] = str(Path(scratch) / "cache")
        import polymagic as pm
        module = pm.cpp(FUNCTIONS)
        name = f"pb_containers_{os.getpid()}"
        anchor = build_pybind11(Path(scratch), name, FUNCTIONS + BINDING % name)[0]
        ours, theirs = calls(module), calls(anchor)
        large = np.arange(1e6)
        span = {"span_param_array_4_us": best_time(lambda: module.span_total(large[:4])) * 1e6,
                "span_param_array_1e6_ms": best_time(lambda: module.span_total(large), 1.0) * 1e3}
        builds = build_seconds(pm)
    print(f"{'call':34}{'%%cpp':>10}{'pybind11':>10}{'ratio':>8}")
    for key in ours:
        print(f"{key:34}{ours[key]:10.2f}{theirs[key]:10.2f}{ours[key] / theirs[key]:8.2f}")
    for key, value in span.items():
        print(f"{key:34}{value:10.2f}")
    print(f"first build, std::span param {builds['span_param']:.2f} s, std::vector param "
          f"{builds['vector_param']:.2f} s")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"calls": {"polymagic": ours, "pybind11": theirs},
                                   "span": span, "build_s": builds}, indent=2))


if __name__ == "__main__":
    main()
