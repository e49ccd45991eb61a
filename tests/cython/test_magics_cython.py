"""%%cython through a real IPython shell: options, names, annotation, errors."""
from __future__ import annotations

import os
import sys
import textwrap

import numpy as np
import pytest

pytest.importorskip("Cython", reason="Cython is not installed (pip install polymagic[cython])")
pytest.importorskip("IPython", reason="IPython is not installed")

from IPython.core.error import UsageError  # noqa: E402

from polymagic.errors import CompileError  # noqa: E402


@pytest.fixture(scope="module")
def ip(tmp_path_factory):
    """An IPython shell with polymagic loaded and a fresh build cache."""
    previous = os.environ.get("POLYMAGIC_CACHE_DIR")
    os.environ["POLYMAGIC_CACHE_DIR"] = str(tmp_path_factory.mktemp("polymagic-cache"))
    from IPython.testing.globalipapp import get_ipython
    shell = get_ipython()  # the one test shell (start_ipython returns None twice)
    shell.run_line_magic("load_ext", "polymagic")
    yield shell
    if previous is None:
        del os.environ["POLYMAGIC_CACHE_DIR"]
    else:
        os.environ["POLYMAGIC_CACHE_DIR"] = previous


def test_cell_names_are_bound_in_user_namespace(ip):
    """Public functions of the cell become names in the user namespace."""
    ip.run_cell_magic("cython", "", "def pm_double(x):\n    return 2 * x\n")
    assert ip.user_ns["pm_double"](21) == 42


def test_private_and_dunder_names_are_not_exported(ip):
    """Names starting with an underscore stay in the module, as with Cython's magic."""
    ip.run_cell_magic("cython", "", "def _pm_hidden():\n    pass\n"
                                    "def pm_visible():\n    pass\n")
    assert "pm_visible" in ip.user_ns
    assert "_pm_hidden" not in ip.user_ns


def test_dunder_all_limits_exports(ip):
    """A cell's __all__ decides which names are exported."""
    ip.run_cell_magic("cython", "", "__all__ = ['pm_listed']\n"
                                    "def pm_listed():\n    pass\n"
                                    "def pm_unlisted():\n    pass\n")
    assert "pm_listed" in ip.user_ns
    assert "pm_unlisted" not in ip.user_ns


def test_memoryview_receives_numpy_array_without_copy(ip):
    """A typed memoryview in a %%cython function writes into the caller's array."""
    ip.run_cell_magic("cython", "", textwrap.dedent("""\
        def pm_scale(double[:] x, double factor):
            cdef Py_ssize_t i
            for i in range(x.shape[0]):
                x[i] *= factor
            return <size_t>&x[0]
        """))
    array = np.arange(4.0)
    address = ip.user_ns["pm_scale"](array, 10.0)
    assert address == array.ctypes.data
    assert array.tolist() == [0.0, 10.0, 20.0, 30.0]


def test_options_of_cythons_magic_take_effect(ip, capsys):
    """-+, -3, -c, --link-args, -n, -f and --verbose each do what Cython's magic does:
    C++ is compiled (a libcpp vector), Python 3 division, the -D macro and the linker
    flag reach the compiler, the module has the name, -f rebuilds, --verbose reports."""
    cell = textwrap.dedent("""\
        from libcpp.vector cimport vector
        cdef extern from *:
            int PM_FLAG
        def pm_options():
            cdef vector[int] v = [PM_FLAG]
            return v
        def pm_division():
            return 1 / 2
        """)
    line = "-+ -3 -c=-DPM_FLAG=3 --link-args=-Wl,-z,pm-link-marker -n pm_opts_mod -f --verbose"
    capsys.readouterr()
    ip.run_cell_magic("cython", line, cell)
    first = capsys.readouterr().err
    ip.run_cell_magic("cython", line, cell)
    second = capsys.readouterr().err
    assert ip.user_ns["pm_options"]() == [3]  # -+ (libcpp) and -c=-DPM_FLAG=3
    assert ip.user_ns["pm_division"]() == 0.5  # -3: true division (language level 2: 0)
    assert ip.user_ns["pm_options"].__module__ == "pm_opts_mod"  # -n
    assert sys.modules["pm_opts_mod"].pm_options is not None
    command = next(text for text in first.splitlines() if " -o " in text)
    compiler_call = command.split("] ", 1)[1].split()
    assert "-Wl,-z,pm-link-marker" in compiler_call  # --link-args, after the sources
    assert compiler_call[compiler_call.index("-o") + 2] == "-Wl,-z,pm-link-marker"
    assert compiler_call[compiler_call.index("-o") + 1].startswith("pm_opts_mod.")
    assert "-DPM_FLAG=3" in compiler_call and any(
        part.endswith(".cpp") for part in compiler_call)  # -+: Cython wrote C++
    for report in (first, second):  # -f: built both times, never a cache hit
        assert "pm_opts_mod from " in report and "(built," in report
    linker_said = [text for text in first.splitlines()
                   if "pm-link-marker" in text and " -o " not in text]
    assert linker_said  # --verbose printed the linker's own words about the flag


def test_language_level_2_is_python_2_division(ip):
    """-2 compiles with Python 2 semantics: 1 / 2 is integer division."""
    ip.run_cell_magic("cython", "-2", "def pm_division_2():\n    return 1 / 2\n")
    assert ip.user_ns["pm_division_2"]() == 0


def test_verbose_reports_where_the_utility_code_lives(ip, capsys):
    """--verbose says whether the cell's utility code is shared or inline, and why."""
    ip.run_cell_magic("cython", "", "def pm_view_first(double[:] x):\n    return x[0]\n")
    capsys.readouterr()  # a memoryview cell waited for the shared module: it exists now
    ip.run_cell_magic("cython", "--verbose", "def pm_verbose_cell():\n    return 4\n")
    err = capsys.readouterr().err
    assert "utility code shared (shared utility module ready)" in err
    assert ip.user_ns["pm_verbose_cell"]() == 4


def test_language_level_2(ip):
    """-2 compiles Python 2 syntax (a print statement)."""
    ip.run_cell_magic("cython", "-2", "def pm_py2():\n    print 'old'\n    return 1\n")
    assert ip.user_ns["pm_py2"]() == 1


def test_annotate_returns_html(ip):
    """-a returns Cython's annotated source as an IPython HTML object."""
    from IPython.display import HTML
    shown = ip.run_cell_magic("cython", "-a", "def pm_annotated(x):\n    return x\n")
    assert isinstance(shown, HTML)
    assert "pm_annotated" in shown.data


def test_compile_error_raises_with_cell_line(ip):
    """A Cython error raises CompileError (never prints and returns None)."""
    with pytest.raises(CompileError) as caught:
        ip.run_cell_magic("cython", "", "x = 1\ndef broken(:\n    pass\n")
    assert caught.value.lines == [2]


def test_c_compiler_error_raises_with_cell_line(ip):
    """A C compiler error raises CompileError at the cell's line."""
    with pytest.raises(CompileError) as caught:
        ip.run_cell_magic("cython", "", 'cdef extern from "pm_missing.h":\n'
                                        '    int nothing()\n')
    assert caught.value.lines == [1]


def test_unknown_option_is_a_usage_error(ip):
    """An option Cython's magic does not have raises UsageError."""
    with pytest.raises(UsageError):
        ip.run_cell_magic("cython", "--no-such-option", "x = 1\n")


def test_bad_module_name_is_a_usage_error(ip):
    """-n with a name that is not an identifier raises UsageError."""
    with pytest.raises(UsageError, match="identifier"):
        ip.run_cell_magic("cython", "-n 1bad", "x = 1\n")


def test_redefinition_rebinds_names(ip):
    """Re-running an edited cell rebinds its names to the new code."""
    ip.run_cell_magic("cython", "", "def pm_which():\n    return 'old'\n")
    ip.run_cell_magic("cython", "", "def pm_which():\n    return 'new'\n")
    assert ip.user_ns["pm_which"]() == "new"


def test_session_usable_after_errors(ip):
    """After a failed cell and a bad option, the next cell works."""
    with pytest.raises(CompileError):
        ip.run_cell_magic("cython", "", "def broken(:\n")
    with pytest.raises(UsageError):
        ip.run_cell_magic("cython", "--bogus", "x = 1\n")
    ip.run_cell_magic("cython", "", "def pm_after():\n    return 'ok'\n")
    assert ip.user_ns["pm_after"]() == "ok"
