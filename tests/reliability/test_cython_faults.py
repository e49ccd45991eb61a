"""%%cython and pm.cython() given bad input: a clear error naming the cause, and the
session goes on. Cases that could end the process run in a child process."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

pytest.importorskip("Cython", reason="Cython is not installed (pip install polymagic[cython])")
pytest.importorskip("IPython", reason="IPython is not installed")

from IPython.core.error import UsageError  # noqa: E402

import polymagic as pm  # noqa: E402
from polymagic.errors import CompileError, CythonOptionError  # noqa: E402

pytestmark = pytest.mark.usefixtures("private_cache")

CELL = "def pm_fault_probe():\n    return 7\n"


@pytest.fixture(scope="module")
def ip(private_cache):
    """An IPython shell with polymagic loaded (building into the module's cache)."""
    from IPython.testing.globalipapp import get_ipython
    shell = get_ipython()
    shell.run_line_magic("load_ext", "polymagic")
    return shell


def still_works(ip) -> None:
    """The session goes on: a new cell builds and runs."""
    ip.user_ns.pop("pm_fault_probe", None)
    ip.run_cell_magic("cython", "", CELL)
    assert ip.user_ns["pm_fault_probe"]() == 7


@pytest.mark.parametrize("line, says", [
    ('-c="-O3', "No closing quotation"),
    ("--link-args='-lm", "No closing quotation"),
    ('-I "unclosed', "No closing quotation"),
    ("-n 'unclosed", "No closing quotation"),
    ("-c=-O3\\", "No escaped character"),
    ("-n", "expected one argument"),
    ("-c", "expected one argument"),
    ("--annotate=yes", "ignored explicit argument"),
    ("-3 stray words", "unrecognized arguments"),
])
def test_malformed_option_line_is_a_usage_error(ip, line, says):
    """Every malformed option line, unbalanced quotes included, raises UsageError
    saying what is wrong; the next cell works."""
    with pytest.raises(UsageError, match=says):
        ip.run_cell_magic("cython", line, CELL)
    still_works(ip)


@pytest.mark.parametrize("name, says", [
    ("numpy", "would replace the module 'numpy' that is already imported"),
    ("sys", "would replace the module 'sys'"),
    ("tabnanny", "would shadow the importable module 'tabnanny'"),
    ("__builtins__", "dunder names belong to Python"),
    ("__main__", "dunder names belong to Python"),
    ("class", "is not a Python identifier"),
    ("1bad", "is not a Python identifier"),
    ("a.b", "is not a Python identifier"),
])
def test_module_name_that_would_shadow_a_module_is_refused(ip, name, says):
    """-n takes identifiers only, and never a name that would replace an imported or
    importable module (numpy keeps working), nor Python's dunder names."""
    numpy_before = sys.modules["numpy"]
    with pytest.raises(UsageError, match=says) as caught:
        ip.run_cell_magic("cython", f"-n {name}", CELL)
    assert isinstance(caught.value, CythonOptionError)
    assert str(caught.value).startswith("%%cython: ")
    assert sys.modules["numpy"] is numpy_before and np.ones(2).sum() == 2.0
    assert "tabnanny" not in sys.modules  # looked up, never imported
    still_works(ip)


def test_library_refuses_a_shadowing_name_with_cython_option_error():
    """pm.cython(name="numpy") raises CythonOptionError (a ValueError), numpy intact."""
    with pytest.raises(CythonOptionError, match="already imported"):
        pm.cython(CELL, name="numpy")
    assert sys.modules["numpy"] is np


def test_a_cell_name_can_be_used_again_for_an_edited_cell(ip):
    """A name one of this session's cells holds is free for that cell's next version."""
    ip.run_cell_magic("cython", "-n pm_named_fault_cell", "def pm_v():\n    return 1\n")
    ip.run_cell_magic("cython", "-n pm_named_fault_cell", "def pm_v():\n    return 2\n")
    assert ip.user_ns["pm_v"]() == 2


def test_lone_surrogate_in_cell_is_a_usage_error_naming_the_magic(ip):
    """A cell holding a lone surrogate raises UsageError naming %%cython and where the
    character is."""
    with pytest.raises(UsageError) as caught:
        ip.run_cell_magic("cython", "", "x = 1\ndef f():\n    return '\udcff'\n")
    message = str(caught.value)
    assert message.startswith("%%cython: the cell holds '\\udcff' at line 3, column 13")
    assert "UTF-8" in message
    still_works(ip)


def test_lone_surrogate_in_option_line_is_a_usage_error(ip):
    """A lone surrogate in the option line raises UsageError naming %%cython."""
    with pytest.raises(UsageError, match="%%cython: the option line holds"):
        ip.run_cell_magic("cython", "-c=-DX=\ud800", CELL)
    still_works(ip)


def test_library_lone_surrogate_is_a_compile_error_at_its_line():
    """pm.cython() of such a source raises CompileError at the cell line."""
    with pytest.raises(CompileError) as caught:
        pm.cython("def f():\n    return '\udcff'\n")
    assert caught.value.lines == [2]
    assert "cell:2:13: error:" in str(caught.value)
    with pytest.raises(CythonOptionError, match="compile_args"):
        pm.cython(CELL, compile_args=["-DX=\udcff"])


@pytest.mark.parametrize("flag, wrote", [
    ("-E", "as text (no ELF file) instead of a shared library"),
    ("-S", "as text (no ELF file) instead of a shared library"),
    ("-c", "as an object file instead of a shared library"),
])
def test_flags_that_stop_before_linking_are_compile_errors(ip, private_cache, flag, wrote):
    """-c=-E (or -S, -c) makes the compiler write something that is not a module: a
    CompileError says so, and nothing is cached (before, -E published text as .so)."""
    from polymagic.build import cache_dir
    entries = set(os.listdir(cache_dir()))
    with pytest.raises(CompileError, match=re.escape(wrote)) as caught:
        ip.run_cell_magic("cython", f"-c={flag}", "def pm_stops_early():\n    return 1\n")
    assert caught.value.language == "Cython (C compiler)"
    assert set(os.listdir(cache_dir())) == entries
    still_works(ip)


def test_flag_the_compiler_rejects_is_a_compile_error(ip):
    """A flag the compiler does not know raises CompileError with its message."""
    with pytest.raises(CompileError, match="pm-no-such-flag"):
        ip.run_cell_magic("cython", "-c=--pm-no-such-flag", CELL)
    still_works(ip)


# Runs in a child: the cell is built with the flags given as arguments; prints what was
# raised (or "built"), then whether a plain cell still works afterwards.
SANITIZER_CHILD = textwrap.dedent("""
    import json, sys
    from IPython.core.error import UsageError
    import polymagic as pm
    try:
        pm.cython("def f():\\n    return 1\\n", compile_args=sys.argv[1:2],
                  link_args=sys.argv[2:])
        outcome = ["built"]
    except Exception as error:
        outcome = [type(error).__name__, getattr(error, "language", None), str(error)]
    after = pm.cython("def g():\\n    return 5\\n").g()
    print(json.dumps([outcome, after]))
""")


@pytest.mark.parametrize("compile_flag, link_flags", [
    ("-fsanitize=address", []), ("-fsanitize=undefined,address", []), ("-O2", ["-lasan"])])
def test_address_sanitizer_is_refused_before_it_ends_the_process(tmp_path, compile_flag,
                                                                 link_flags):
    """A module built with -fsanitize=address would end the process when loaded (ASan's
    runtime must come first): it is refused with CythonOptionError saying how to use
    it (LD_PRELOAD), and the process goes on."""
    env = dict(os.environ, POLYMAGIC_CACHE_DIR=str(tmp_path))
    finished = subprocess.run([sys.executable, "-c", SANITIZER_CHILD, compile_flag,
                               *link_flags], env=env, capture_output=True, text=True,
                              timeout=300)
    assert finished.returncode == 0, finished.stderr
    (name, _, message), after = json.loads(finished.stdout.splitlines()[-1])
    assert name == "CythonOptionError" and "LD_PRELOAD" in message and after == 5


def test_module_the_loader_refuses_is_a_compile_error(tmp_path):
    """-fsanitize=thread builds a module this process cannot load (static TLS): a
    CompileError from the loader, not an ImportError of the cell; the process goes on."""
    env = dict(os.environ, POLYMAGIC_CACHE_DIR=str(tmp_path))
    finished = subprocess.run([sys.executable, "-c", SANITIZER_CHILD,
                               "-fsanitize=thread"], env=env, capture_output=True,
                              text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr
    (name, language, message), after = json.loads(finished.stdout.splitlines()[-1])
    assert name == "CompileError" and after == 5
    # Loaded and refused, or (without libtsan installed) not even linked.
    assert language in ("Cython (loader)", "Cython (C compiler)"), message
