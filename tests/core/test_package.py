"""The top package is light and lazy; the diagnostics command works."""
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import polymagic

HEAVY = ("IPython", "rpy2", "juliacall", "Cython", "cffi", "clang")


def _modules_after(code: str) -> set:
    script = f"import sys\n{code}\nprint(' '.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True).stdout.split()
    return {name.split(".")[0] for name in out}


def test_import_is_light():
    """`import polymagic` imports none of IPython, rpy2, juliacall, Cython, cffi."""
    loaded = _modules_after("import polymagic")
    assert not loaded & set(HEAVY), loaded & set(HEAVY)


def test_load_ext_starts_no_runtime():
    """`%load_ext polymagic` registers the magics but imports no runtime."""
    code = ("from IPython.core.interactiveshell import InteractiveShell\n"
            "ip = InteractiveShell.instance()\n"
            "ip.run_line_magic('load_ext', 'polymagic')\n"
            "assert 'R' in ip.magics_manager.magics['cell'], 'no %%R'\n")
    loaded = _modules_after(code)
    assert not loaded & {"rpy2", "juliacall", "Cython", "cffi", "clang"}


def test_dir_lists_lazy_engines():
    """dir(polymagic) names the lazy engines, and unknown names raise AttributeError."""
    assert {"R", "julia", "cpp", "cython"} <= set(dir(polymagic))
    with pytest.raises(AttributeError, match="no_such_thing"):
        polymagic.no_such_thing  # noqa: B018


def _situation() -> dict:
    """`python -m polymagic situation`, as {label: value}; each line must be one row."""
    out = subprocess.run([sys.executable, "-m", "polymagic", "situation"],
                         capture_output=True, text=True, check=True).stdout
    rows = [re.split(r"\s{2,}", line.strip(), maxsplit=1) for line in out.splitlines()]
    assert all(len(row) == 2 for row in rows), f"not one 'label  value' row a line:\n{out}"
    return dict(rows)


def test_situation_reports_runtimes(required):
    """`python -m polymagic situation` prints R, compilers, Julia and the cache dir, and
    finds what this machine has: R wherever `R` runs (R home holds bin/R), and each
    runtime POLYMAGIC_REQUIRE names (`make test`: R, a C++ compiler with cffi and
    libclang, Cython with a C compiler)."""
    rows = _situation()
    for label in ("R home", "R version", "julia", "cache dir", "package rpy2"):
        assert label in rows, rows
    if "r" in required or shutil.which("R"):
        assert (Path(rows["R home"]) / "bin" / "R").is_file(), rows["R home"]
        assert rows["R version"].startswith("R version "), rows["R version"]
    if "r" in required:
        assert rows["package rpy2"] != "not installed"
    compilers = {label: rows[label] for label in ("C++ compiler", "C compiler")}
    if {"cpp", "cython"} & required:
        assert not any(value.startswith("not found") for value in compilers.values()), \
            compilers
    if "cpp" in required:
        assert "not installed" not in (rows["package cffi"], rows["package libclang"]), rows
    if "cython" in required:
        assert rows["package Cython"] != "not installed"
    if "julia" in required:
        assert not rows["julia"].startswith("not found"), rows["julia"]
