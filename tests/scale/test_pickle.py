"""Cell functions pickle (polymagic/travel.py and each room's travel.py): C++, Cython
and R functions, and the modules pm.cpp / pm.cython return, load in other processes,
also with an empty build cache; concurrent.futures (spawn) and joblib run them."""
from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

import polymagic as pm
from polymagic import travel
from polymagic.errors import ConversionError

pytestmark = pytest.mark.usefixtures("private_cache")

CPP = """
#include <vector>
int add(int a, int b) { return a + b; }
std::vector<double> squares(const double* x, long n) {
    std::vector<double> out(x, x + n);
    for (auto& v : out) v *= v;
    return out;
}
"""
CYTHON = """
def twice(double x):
    return 2 * x
def total(double[:] a):
    cdef double s = 0
    for v in a:
        s += v
    return s
"""


@pytest.fixture(scope="module")
def cpp_cell():
    return pm.cpp(CPP)


@pytest.fixture(scope="module")
def cython_cell():
    return pm.cython(CYTHON)


def run_fresh(data: bytes, code: str, tmp_path) -> str:
    """Unpickle `data` as `functions` in a new Python whose build cache is empty, run
    `code` there and return what it prints."""
    cache = tmp_path / "empty-cache"
    script = ("import pickle, sys\nimport numpy as np\n"
              "functions = pickle.loads(sys.stdin.buffer.read())\n" + code)
    env = dict(os.environ, POLYMAGIC_CACHE_DIR=str(cache))
    done = subprocess.run([sys.executable, "-c", script], input=data, env=env,
                          capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode()


def test_cpp_functions_load_in_a_process_with_an_empty_cache(cpp_cell, tmp_path):
    """A cffi builtin and a wrapped C++ function run in a fresh process, from the
    artefact the pickle carries: that process's cache then holds the cell's entry."""
    data = pickle.dumps((cpp_cell.add, cpp_cell.squares), protocol=5)
    printed = run_fresh(data, "add, squares = functions\n"
                        "print(add(2, 3), squares(np.arange(4.0), 4).tolist())\n"
                        "import os; print(sorted(os.listdir(os.environ['POLYMAGIC_CACHE_DIR'])))",
                        tmp_path)
    lines = printed.splitlines()
    assert lines[0] == "5 [0.0, 1.0, 4.0, 9.0]"
    key = cpp_cell.__pm_payload__.key
    assert key in lines[1] and "cpp-faults_" in lines[1]


def test_functions_of_one_module_share_one_payload(cpp_cell):
    """Pickled together, two functions and their module carry the artefact once, out
    of band (protocol 5) when the pickler takes buffers."""
    buffers = []
    data = pickle.dumps((cpp_cell.add, cpp_cell.squares, cpp_cell), protocol=5,
                        buffer_callback=buffers.append)
    raws = [bytes(buffer.raw()) for buffer in buffers]
    elf = [raw for raw in raws if raw[:4] == b"\x7fELF"]
    assert len(elf) == 2  # the cell's module.so and the fault library, once each
    assert len(data) < 4096  # the artefact is not in the stream
    add, squares, module = pickle.loads(data, buffers=buffers)
    assert (add, squares, module) == (cpp_cell.add, cpp_cell.squares, cpp_cell)


def test_arrays_travel_out_of_band(cpp_cell):
    """NumPy arguments and results travel as protocol-5 buffers: the unpickled array
    is a view of the buffer handed over, not a copy."""
    result = cpp_cell.squares(np.arange(1000.0), 1000)
    buffers = []
    data = pickle.dumps(result, protocol=5, buffer_callback=buffers.append)
    assert len(buffers) == 1 and len(data) < 300
    back = pickle.loads(data, buffers=buffers)
    assert np.shares_memory(back, np.frombuffer(buffers[0], dtype=float))


def test_wrapped_function_keeps_its_name_and_doc(cpp_cell):
    """A wrapped C++ function is a CellFunction named after the C++ function, with its
    signature as its doc; a direct one stays cffi's builtin."""
    assert isinstance(cpp_cell.squares, travel.CellFunction)
    assert cpp_cell.squares.__name__ == "squares"
    assert "squares(const double* x, long n)" in cpp_cell.squares.__doc__
    assert type(cpp_cell.add).__name__ == "builtin_function_or_method"


def test_another_platform_rebuilds_from_the_source(cpp_cell, tmp_path):
    """A payload built for another platform is not loaded: the receiver builds the
    cell from its source and options (here with a compiler, into an empty cache)."""
    payload = cpp_cell.__pm_payload__
    foreign = travel.Payload(payload.language, payload.key, payload.entries,
                             payload.recipe, payload.loader, platform=["elsewhere"])
    module = travel.TravellingModule("stand-in")
    module.__pm_payload__ = foreign
    data = pickle.dumps(module, protocol=5)
    printed = run_fresh(data, "print(functions.add(4, 5))\nimport os\n"
                        "print(os.listdir(os.environ['POLYMAGIC_CACHE_DIR']))", tmp_path)
    assert printed.splitlines()[0] == "9"
    assert any(name.startswith("cpp_") for name in eval(printed.splitlines()[1]))


def test_cython_functions_load_in_a_process_with_an_empty_cache(cython_cell, tmp_path):
    """Cython's cyfunctions (not wrapped) and the cell module run in a fresh process,
    with the shared utility module the cell imports."""
    assert type(cython_cell.twice).__name__ == "cython_function_or_method"
    data = pickle.dumps((cython_cell.twice, cython_cell.total, cython_cell), protocol=5)
    printed = run_fresh(data, "twice, total, module = functions\n"
                        "print(twice(2.5), total(np.arange(5.0)), module.twice is twice)",
                        tmp_path)
    assert printed.strip() == "5.0 10.0 True"


def test_r_function_travels_with_its_environment(R, tmp_path):
    """An R closure pickles with its environment (R's serialize()) and runs in a fresh
    process, which starts its own R."""
    scale = R.eval("local({k <- 3; function(x) x * k})")
    printed = run_fresh(pickle.dumps(scale), "print(functions(np.arange(3.0)).tolist())",
                        tmp_path)
    assert printed.strip() == "[0.0, 3.0, 6.0]"


def test_r_function_holding_an_external_pointer_does_not_pickle(R):
    """A closure reaching an external pointer raises ConversionError naming where it
    is; the session goes on."""
    holder = R.eval("local({handle <- methods::new('externalptr'); function() handle})")
    with pytest.raises(ConversionError, match=r"environment\(f\)\$handle is an external "
                                              r"pointer"):
        pickle.dumps(holder)
    assert R.eval("1 + 1") == 2


def _sum_of_squares(function, chunk):
    return float(function(chunk, len(chunk)).sum())


def test_process_pool_with_spawn(cpp_cell):
    """concurrent.futures with spawned processes maps a C++ function over chunks."""
    chunks = np.array_split(np.arange(100.0), 4)
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=context) as pool:
        found = list(pool.map(_sum_of_squares, [cpp_cell.squares] * 4, chunks))
    assert sum(found) == float((np.arange(100.0) ** 2).sum())


def test_joblib(cython_cell):
    """joblib (loky worker processes) maps a Cython function over chunks."""
    joblib = pytest.importorskip("joblib")
    chunks = np.array_split(np.arange(100.0), 4)
    found = joblib.Parallel(n_jobs=2)(joblib.delayed(cython_cell.total)(c) for c in chunks)
    assert sum(found) == 4950.0
