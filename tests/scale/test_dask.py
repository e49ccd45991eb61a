"""Dask runs cell functions on a LocalCluster of worker processes whose build caches
start empty, as on workers of another machine (docs/scale.md)."""
from __future__ import annotations

import numpy as np
import pytest

import polymagic as pm

distributed = pytest.importorskip("distributed")
da = pytest.importorskip("dask.array")
pytestmark = pytest.mark.usefixtures("private_cache")


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    worker_cache = tmp_path_factory.mktemp("worker-cache")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None,
                                  env={"POLYMAGIC_CACHE_DIR": str(worker_cache)}) as cluster:
        with distributed.Client(cluster) as client:
            yield client


@pytest.fixture(scope="module")
def chunks():
    return np.array_split(np.arange(1000.0), 8)


def worker_pids(client, futures) -> set:
    return {client.who_has(future)[future.key][0] for future in futures}


def test_cpp_function_mapped_over_chunks(client, chunks):
    """A C++ function runs on both workers, each loading it from the pickle."""
    cell = pm.cpp("double sum_sq(const double* x, long n) { double s = 0;"
                  " for (long i = 0; i < n; ++i) s += x[i] * x[i]; return s; }")
    futures = client.map(lambda chunk: cell.sum_sq(chunk, len(chunk)), chunks)
    assert sum(client.gather(futures)) == float((np.arange(1000.0) ** 2).sum())
    assert len(worker_pids(client, futures)) == 2


def test_cython_function_mapped_over_chunks(client, chunks):
    """A Cython cyfunction runs on the workers."""
    cell = pm.cython("def total(double[:] a):\n    cdef double s = 0\n"
                     "    for v in a:\n        s += v\n    return s\n")
    futures = client.map(cell.total, chunks)
    assert sum(client.gather(futures)) == 499500.0


def test_r_function_mapped_over_chunks(client, chunks, R):
    """An R closure runs in each worker's own R."""
    mean_of = R.eval("local({w <- 2; function(x) mean(x) * w})")
    found = client.gather(client.map(mean_of, chunks))
    assert found == [2 * chunk.mean() for chunk in chunks]


def test_map_blocks_over_a_cpp_cell(client, tmp_path):
    """dask.array.map_blocks over a %%cpp kernel: blocks computed on the workers."""
    from IPython.testing.globalipapp import get_ipython
    shell = get_ipython()
    shell.run_line_magic("load_ext", "polymagic")
    shell.run_cell_magic("cpp", "", "#include <vector>\n"
                         "std::vector<double> scaled(const double* x, long n, double k) {"
                         " std::vector<double> out(x, x + n);"
                         " for (auto& v : out) v *= k; return out; }")
    scaled = shell.user_ns["scaled"]
    array = da.arange(100_000, chunks=10_000, dtype=float)
    result = array.map_blocks(lambda block: scaled(block, block.size, 3.0), dtype=float)
    assert np.array_equal(result.compute(), np.arange(100_000.0) * 3)
