"""C++ classes from %%cpp against pybind11 binding the same class by hand (issue 14).

One run, both sides on this machine:
* first build: `pm.cpp(cell)` on an empty cache (libclang, trampolines, glue, compile,
  link) against `g++ -O2 -shared -fPIC` of the same class plus its hand-written
  pybind11 module (pybind11 from PyPI, installed by `make bench`' test extra);
* calls: a method with a double argument, a field read, a field write and a method
  returning a vector, on one object each.

Usage: python bench/bench_cpp_classes.py     Writes bench/results/bench_cpp_classes.json.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from anchors import build_pybind11  # noqa: E402
from timing import best_time  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "bench_cpp_classes.json"
TARGETS = {"method_call_ratio_vs_pybind11": 1.0, "first_build_ratio_vs_pybind11": 0.5}

CLASS = r"""
#include <vector>
struct Particle {
    double x = 0, v = 1;
    void step(double dt) { x += v * dt; }
    std::vector<double> state() const { return {x, v}; }
};
"""
BINDING = r"""
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
PYBIND11_MODULE(%s, m) {
    pybind11::class_<Particle>(m, "Particle")
        .def(pybind11::init<>())
        .def("step", &Particle::step)
        .def("state", &Particle::state)
        .def_readwrite("x", &Particle::x)
        .def_readwrite("v", &Particle::v);
}
"""


def build_polymagic():
    import polymagic as pm
    started = time.perf_counter()
    module = pm.cpp(CLASS)
    return module, time.perf_counter() - started


def calls(particle) -> dict:
    return {"step_ns": best_time(lambda: particle.step(0.1)) * 1e9,
            "field_read_ns": best_time(lambda: particle.x) * 1e9,
            "field_write_ns": best_time(lambda: setattr(particle, "v", 1.0)) * 1e9,
            "vector_result_ns": best_time(lambda: particle.state()) * 1e9}


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        os.environ["POLYMAGIC_CACHE_DIR"] = str(Path(scratch) / "cache")
        import polymagic as pm
        pm.cpp("int warm_up_runtime() { return 1; }")  # the shared runtime, built once
        pm_module, pm_build = build_polymagic()
        name = f"pb_particle_{os.getpid()}"
        pb_module, pb_build = build_pybind11(Path(scratch), name, CLASS + BINDING % name)
        pm_calls, pb_calls = calls(pm_module.Particle()), calls(pb_module.Particle())
    results = {"first_build_s": {"polymagic": pm_build, "pybind11": pb_build},
               "calls_ns": {"polymagic": pm_calls, "pybind11": pb_calls}}
    summary = {"first_build_ratio_vs_pybind11": pm_build / pb_build,
               "method_call_ratio_vs_pybind11": pm_calls["step_ns"] / pb_calls["step_ns"]}
    print(f"first build: %%cpp {pm_build:.2f} s, pybind11 by hand {pb_build:.2f} s "
          f"(x{summary['first_build_ratio_vs_pybind11']:.2f})")
    print(f"\n{'call':18}{'%%cpp ns':>10}{'pybind11 ns':>13}{'ratio':>8}")
    for key in pm_calls:
        print(f"{key:18}{pm_calls[key]:10.0f}{pb_calls[key]:13.0f}"
              f"{pm_calls[key] / pb_calls[key]:8.2f}")
    print(f"\n{'target':32}{'measured':>10}{'goal':>8}  met")
    for key, goal in TARGETS.items():
        print(f"{key:32}{summary[key]:10.3f}{goal:8.2f}  "
              f"{'yes' if summary[key] <= goal else 'NO'}")
    results.update(summary=summary, targets=TARGETS)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
