"""The top package is light and lazy; the diagnostics command works."""
import subprocess
import sys

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


def test_situation_reports_runtimes():
    """`python -m polymagic situation` prints R, compilers, Julia and the cache dir."""
    out = subprocess.run([sys.executable, "-m", "polymagic", "situation"],
                         capture_output=True, text=True, check=True).stdout
    for label in ("R home", "R version", "julia", "cache dir", "package rpy2"):
        assert label in out, out
