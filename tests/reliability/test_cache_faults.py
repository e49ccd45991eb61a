"""A damaged build cache costs a rebuild and a warning, never the process.

Each test builds a cell (or R's shims) in a child process, damages a file of the cache
entry as a full disk, a killed copy or a bad sector would, and runs a new child: it must
find the damage before loading anything, warn (DamagedCacheEntry, naming the file),
rebuild, and give the right answer. Before the cache kept integrity records, a truncated
module crashed every later process with SIGBUS (exit status 135 / -7).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(
    shutil.which("cc") is None and shutil.which("gcc") is None,
    reason="no C compiler on PATH")

# argv[1] says what to build and load; each prints 15 when it works.
CHILD = textwrap.dedent("""
    import sys
    import polymagic as pm
    kind = sys.argv[1]
    if kind == "cpp":
        print(pm.cpp("int triple(int x) { return 3 * x; }\\n").triple(5))
    elif kind == "cython":
        print(pm.cython("def triple(int x):\\n    return 3 * x\\n").triple(5))
    elif kind == "cython-memoryview":
        import numpy as np
        total = pm.cython("def total(double[:] x):\\n"
                          "    cdef double s = 0\\n"
                          "    for i in range(x.shape[0]):\\n"
                          "        s += x[i]\\n"
                          "    return s\\n").total
        print(int(total(np.full(3, 5.0))))
    elif kind == "r":
        print(pm.R.eval("3L * 5L"))
""")


def run_child(cache: Path, kind: str) -> subprocess.CompletedProcess:
    """Run CHILD on `cache`; it must survive and print 15."""
    env = dict(os.environ, POLYMAGIC_CACHE_DIR=str(cache), PYTHONWARNINGS="always")
    finished = subprocess.run([sys.executable, "-c", CHILD, kind], env=env, text=True,
                              capture_output=True, timeout=300)
    assert finished.returncode == 0, \
        f"child ended with status {finished.returncode}:\n{finished.stderr}"
    assert finished.stdout.split()[-1:] == ["15"], finished.stdout + finished.stderr
    return finished


def files_of(cache: Path, entry_prefix: str, pattern: str) -> list[Path]:
    found = sorted(path for entry in cache.glob(f"{entry_prefix}_*")
                   for path in entry.glob(pattern))
    assert found, f"no {pattern} in {entry_prefix}_* entries of {sorted(os.listdir(cache))}"
    return found


def truncate(path: Path) -> str:
    """Cut the file to half its size (as a full disk or a killed copy leaves it)."""
    size = path.stat().st_size
    os.truncate(path, size // 2)
    return f"{path.name} has {size // 2} bytes, {size} were published"


def flip_a_byte(path: Path) -> str:
    """Change one byte in the middle, keeping size and mtime (a bad sector)."""
    before = path.stat()
    with open(path, "r+b") as stream:
        stream.seek(before.st_size // 2)
        byte = stream.read(1)
        stream.seek(before.st_size // 2)
        stream.write(bytes([byte[0] ^ 0xFF]))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    return f"{path.name} differs from the file published (SHA-256)"


def delete(path: Path) -> str:
    path.unlink()
    return f"{path.name} is missing"


CASES = {
    "C++ module truncated": ("cpp", "cpp", "module.so", truncate),
    "C++ module, one byte changed": ("cpp", "cpp", "module.so", flip_a_byte),
    "C++ plan truncated": ("cpp", "cpp", "plan.json", truncate),
    "C++ plan deleted": ("cpp", "cpp", "plan.json", delete),
    "Cython module truncated": ("cython", "cython", "*.so", truncate),
    "Cython manifest truncated": ("cython", "cython", "build.json", truncate),
    "Cython shared utility module truncated": (
        "cython-memoryview", "cyutility", "*.so", truncate),
}


@pytest.fixture(scope="module")
def built_cache(tmp_path_factory):
    """A copy of a cache where CHILD built `kind` once (built once per kind)."""
    caches: dict[str, Path] = {}

    def copy_of(kind: str, destination: Path) -> Path:
        if kind not in caches:
            caches[kind] = tmp_path_factory.mktemp(f"built-{kind}")
            first = run_child(caches[kind], kind)
            assert "DamagedCacheEntry" not in first.stderr
        shutil.copytree(caches[kind], destination / "cache")
        return destination / "cache"
    return copy_of


@pytest.mark.parametrize("case", CASES)
def test_damaged_artefact_is_rebuilt_with_a_warning(tmp_path, built_cache, case):
    """The next process finds the damage before loading, warns naming the file and
    what is wrong, rebuilds, and works; the process after it finds a healed cache."""
    kind, entry_prefix, pattern, damage = CASES[case]
    tmp_path = built_cache(kind, tmp_path)
    problems = [damage(path) for path in files_of(tmp_path, entry_prefix, pattern)]
    second = run_child(tmp_path, kind)
    assert "DamagedCacheEntry" in second.stderr
    for problem in problems:
        assert problem in second.stderr
    third = run_child(tmp_path, kind)
    assert "DamagedCacheEntry" not in third.stderr
    assert not [name for name in os.listdir(tmp_path) if "-damaged-" in name]


def test_damaged_r_shims_are_rebuilt_and_r_starts(tmp_path, R):
    """R's C shims truncated in the cache: the next process rebuilds them with a
    warning and R starts (before, R could not start anywhere until the cache was
    cleaned by hand)."""
    run_child(tmp_path, "r")
    problems = [truncate(path) for path in files_of(tmp_path, "r", "*.so")]
    second = run_child(tmp_path, "r")
    for problem in problems:
        assert problem in second.stderr
    assert "DamagedCacheEntry" not in run_child(tmp_path, "r").stderr
