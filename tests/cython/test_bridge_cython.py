"""pm.cython / polymagic.bridges.cython: real Cython and the real C compiler."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

pytest.importorskip("Cython", reason="Cython is not installed (pip install polymagic[cython])")

from polymagic.bridges import cython as bridge  # noqa: E402
from polymagic.errors import CompileError  # noqa: E402

SUM_CELL = textwrap.dedent("""\
    def total(double[:] x):
        cdef double s = 0
        cdef Py_ssize_t i
        for i in range(x.shape[0]):
            s += x[i]
        return s
    """)


@pytest.fixture(scope="module", autouse=True)
def private_cache(tmp_path_factory):
    """Every test of this file builds into one fresh cache directory."""
    root = tmp_path_factory.mktemp("polymagic-cache")
    previous = os.environ.get("POLYMAGIC_CACHE_DIR")
    os.environ["POLYMAGIC_CACHE_DIR"] = str(root)
    yield root
    if previous is None:
        del os.environ["POLYMAGIC_CACHE_DIR"]
    else:
        os.environ["POLYMAGIC_CACHE_DIR"] = previous


def test_compile_and_call():
    """A compiled cell's function is callable and computes in C."""
    module = bridge.cython(SUM_CELL)
    assert module.total(np.arange(5.0)) == 10.0


def test_pm_cython_resolves_to_the_bridge():
    """`pm.cython` is the bridge's cython()."""
    import polymagic as pm
    assert pm.cython is bridge.cython


def test_memoryview_writes_are_seen_by_numpy():
    """A typed memoryview is the NumPy array's memory: a write in Cython shows in NumPy."""
    module = bridge.cython(textwrap.dedent("""\
        def fill(double[:] x, double value):
            cdef Py_ssize_t i
            for i in range(x.shape[0]):
                x[i] = value
        """))
    array = np.zeros(1000)
    module.fill(array, 2.5)
    assert np.all(array == 2.5)


def test_memoryview_address_is_the_array_address():
    """The memoryview's first element has the NumPy array's data address (no copy)."""
    module = bridge.cython(textwrap.dedent("""\
        def address(double[:, ::1] x):
            return <size_t>&x[0, 0]
        """))
    array = np.ones((30, 40))
    assert module.address(array) == array.ctypes.data
    view = array[5:]
    assert module.address(view) == view.ctypes.data


def test_cplus_option_compiles_cpp():
    """cplus=True compiles the cell as C++ (libcpp.vector works)."""
    module = bridge.cython(textwrap.dedent("""\
        from libcpp.vector cimport vector
        def squares(int n):
            cdef vector[int] v
            for i in range(n):
                v.push_back(i * i)
            return v
        """), cplus=True)
    assert module.squares(4) == [0, 1, 4, 9]


def test_compile_args_reach_the_compiler():
    """compile_args are passed to the C compiler (a -D macro is visible to the cell)."""
    cell = textwrap.dedent("""\
        cdef extern from *:
            int PM_ANSWER
        def answer():
            return PM_ANSWER
        """)
    assert bridge.cython(cell, compile_args=["-DPM_ANSWER=42"]).answer() == 42
    assert bridge.cython(cell, compile_args="-DPM_ANSWER=7 -O1").answer() == 7


def test_library_include_and_link_options(tmp_path):
    """include_dirs, library_dirs, libraries and link_args link a cell to a C library."""
    (tmp_path / "pmtwice.h").write_text("int pm_twice(int x);\n")
    (tmp_path / "pmtwice.c").write_text("int pm_twice(int x) { return 2 * x; }\n")
    subprocess.run(["cc", "-shared", "-fPIC", "pmtwice.c", "-o", "libpmtwice.so"],
                   cwd=tmp_path, check=True)
    module = bridge.cython(textwrap.dedent("""\
        cdef extern from "pmtwice.h":
            int pm_twice(int x)
        def twice(int x):
            return pm_twice(x)
        """), include_dirs=[str(tmp_path)], library_dirs=[str(tmp_path)],
        libraries=["pmtwice"], link_args=[f"-Wl,-rpath,{tmp_path}"])
    assert module.twice(21) == 42


def test_extra_source_is_compiled_with_the_cell(tmp_path):
    """sources= adds C files to the single compiler call."""
    helper = tmp_path / "pmhelper.c"
    helper.write_text("int pm_plus_one(int x) { return x + 1; }\n")
    module = bridge.cython("cdef extern int pm_plus_one(int)\n"
                           "def plus_one(x):\n    return pm_plus_one(x)\n",
                           sources=[str(helper)])
    assert module.plus_one(1) == 2


def test_name_option_names_the_module():
    """name= sets the module's name, and it is importable from sys.modules."""
    module = bridge.cython("def hello():\n    return 'hi'\n", name="pm_named_cell")
    assert module.__name__ == "pm_named_cell"
    assert sys.modules["pm_named_cell"] is module


def test_force_rebuilds_an_unchanged_cell():
    """force=True builds a new module even though the cell is cached."""
    cell = "def one():\n    return 1\n"
    first = bridge.build(cell)
    again = bridge.build(cell)
    forced = bridge.build(cell, force=True)
    assert again.cached and again.path == first.path
    assert not forced.cached and forced.path != first.path
    assert forced.module.one() == 1


def test_annotate_produces_html():
    """annotate=True gives Cython's annotated HTML of the cell."""
    result = bridge.build("def annotated_function(x):\n    return x + 1\n", annotate=True)
    assert "annotated_function" in result.annotation_html
    assert "<style" in result.annotation_html


def test_annotate_fullc_includes_the_c_code():
    """annotate='fullc' embeds the whole generated C code."""
    result = bridge.build("def full_c(x):\n    return x\n", annotate="fullc")
    assert "PyInit_" in result.annotation_html


def test_cython_syntax_error_names_the_cell_line():
    """A Cython syntax error raises CompileError at the cell's line."""
    with pytest.raises(CompileError) as caught:
        bridge.cython("def f(x):\n    return x\n\ndef g(:\n    pass\n")
    assert caught.value.lines == [4]
    assert "cell:4:" in str(caught.value)
    assert "Cython" in str(caught.value)


def test_cython_errors_quote_the_cell_line_first_error_first():
    """Each Cython error is followed by its cell line and a caret; the first one leads."""
    with pytest.raises(CompileError) as caught:
        bridge.cython("def f(x):\n    return x\ncdef int g():\n    return pm_nope1\n"
                      "def h():\n    cdef int y = pm_nope2\n")
    shown = caught.value.diagnostics.splitlines()
    assert shown[:3] == ["cell:4:11: error: undeclared name not builtin: pm_nope1",
                         "    4 |     return pm_nope1", "      |            ^"]
    assert shown[3:6] == ["cell:6:17: error: undeclared name not builtin: pm_nope2",
                          "    6 |     cdef int y = pm_nope2", "      |                  ^"]
    assert len(shown) == 6  # Cython's own excerpts (with `...`) are gone


def test_c_compiler_error_comes_first_with_its_cell_line():
    """A C compiler error leads the message ("In function" context after it), and
    the line the compiler quotes is numbered as the cell's, not the C file's."""
    with pytest.raises(CompileError) as caught:
        bridge.cython(textwrap.dedent('''\
            cdef extern from *:
                """
                static int bad(void) { return pm_undefined_thing; }
                """
                int bad()
            def f():
                return bad()
            '''))
    shown = caught.value.diagnostics.splitlines()
    assert shown[0].startswith("cell:3: error:") and "pm_undefined_thing" in shown[0]
    assert shown[1].startswith("    3 | ") and "pm_undefined_thing" in shown[1]
    assert "^" in shown[2]
    assert any("In function" in line for line in shown[3:])


def test_c_compiler_warnings_are_kept_and_shown_on_stdout(capsys):
    """A C compiler's note (#pragma message) about a cell line, from a build that
    succeeds, is in .warnings with its quoted cell line, and printed on stdout."""
    result = bridge.build(textwrap.dedent('''\
        cdef extern from *:
            """
            #pragma message ( "pm_c_warning" )
            static int answer = 42;
            """
            int answer
        def get():
            return answer
        '''), force=True)
    assert result.module.get() == 42
    note = next(i for i, line in enumerate(result.warnings) if "pm_c_warning" in line)
    assert result.warnings[note].startswith("cell:3: note:")
    assert result.warnings[note + 1].startswith("    3 | ")
    assert "pm_c_warning" in capsys.readouterr().out


def test_missing_header_error_names_the_extern_line():
    """A `cdef extern from` of a missing header fails at that cell line."""
    with pytest.raises(CompileError) as caught:
        bridge.cython('# comment\ncdef extern from "pm_no_such_header.h":\n'
                      '    int foo(int)\n\ndef f():\n    return foo(1)\n')
    assert caught.value.lines == [2]
    assert "pm_no_such_header.h" in str(caught.value)


def test_invalid_verbatim_c_names_its_cell_line():
    """Invalid C in a verbatim block fails at the cell line holding that C."""
    with pytest.raises(CompileError) as caught:
        bridge.cython(textwrap.dedent('''\
            cdef extern from *:
                """
                static int ok(void) { return 1; }
                static int bad(void) { return pm_undefined_thing; }
                """
                int bad()

            def f():
                return bad()
            '''))
    assert caught.value.lines == [4]
    assert "pm_undefined_thing" in str(caught.value)


def test_c_error_in_cell_code_is_mapped_through_line_directives():
    """A C compiler error in code generated for a cell line points at that line."""
    with pytest.raises(CompileError) as caught:
        bridge.cython(textwrap.dedent('''\
            cdef extern from *:
                """
                #define TWICE(x) ((x) * 2)
                """
                int TWICE(int, int)

            def f():
                return TWICE(1, 2)
            '''))
    assert 8 in caught.value.lines
    assert "cell:8: error:" in str(caught.value)


def test_session_usable_after_errors():
    """After a failed build the next build works."""
    with pytest.raises(CompileError):
        bridge.cython("def broken(:\n")
    assert bridge.cython("def fine():\n    return 5\n").fine() == 5


def test_numpy_include_added_when_numpy_is_cimported():
    """A cell that cimports numpy is compiled with NumPy's headers and works."""
    result = bridge.build(textwrap.dedent("""\
        cimport numpy as cnp
        def ndim(cnp.ndarray a):
            return a.ndim
        """))
    assert result.numpy_include
    assert result.module.ndim(np.zeros((2, 3))) == 2


def test_numpy_not_included_for_a_python_import_or_a_mention():
    """`import numpy` (not a cimport) or the word in a comment adds no NumPy headers."""
    result = bridge.build("# numpy is only mentioned here\nimport numpy\n"
                          "def make():\n    return numpy.zeros(3)\n")
    assert not result.numpy_include
    assert result.module.make().shape == (3,)


def test_redefinition_gives_a_new_module():
    """Editing a cell and building it again loads the new code."""
    old = bridge.cython("def version():\n    return 1\n")
    new = bridge.cython("def version():\n    return 2\n")
    assert (old.version(), new.version()) == (1, 2)
    assert old.__name__ != new.__name__


def test_same_process_rerun_is_a_cache_hit():
    """Building an unchanged cell again returns the same loaded module."""
    first = bridge.build(SUM_CELL)
    again = bridge.build(SUM_CELL)
    assert again.cached and again.module is first.module


def test_new_process_loads_from_cache_without_compiling(private_cache):
    """A new process finds the built cell in the cache and runs no compiler."""
    bridge.build(SUM_CELL)
    script = textwrap.dedent(f"""\
        import json, sys, numpy as np
        from polymagic.bridges import cython as bridge
        result = bridge.build({SUM_CELL!r})
        print(json.dumps([result.cached, result.module.total(np.ones(3)),
                          "Cython.Compiler.Main" in sys.modules]))
        """)
    env = dict(os.environ, POLYMAGIC_CACHE_DIR=str(private_cache))
    finished = subprocess.run([sys.executable, "-c", script], capture_output=True,
                              text=True, env=env, check=True)
    cached, value, compiler_imported = json.loads(finished.stdout.splitlines()[-1])
    assert cached and value == 3.0 and not compiler_imported


def test_cache_entry_is_private(private_cache):
    """Build entries live in the 0700 cache directory."""
    result = bridge.build(SUM_CELL)
    assert result.path.parent.parent == private_cache
    assert private_cache.stat().st_mode & 0o077 == 0


def test_bad_option_value_raises():
    """An unknown annotate mode is rejected with a message naming it."""
    with pytest.raises(ValueError, match="annotate"):
        bridge.cython("def f():\n    pass\n", annotate="everything")


def test_distutils_header_comments_are_honoured():
    """`# distutils: language = c++` in the cell compiles it as C++, as cythonize does."""
    module = bridge.cython(textwrap.dedent("""\
        # distutils: language = c++
        from libcpp.string cimport string
        def greet():
            cdef string s = b"hello"
            return s
        """))
    assert module.greet() == b"hello"


def test_redefinition_under_a_fixed_name():
    """Editing a cell built with name= loads the new code under the same module name."""
    old = bridge.cython("def which():\n    return 1\n", name="pm_fixed_name")
    new = bridge.cython("def which():\n    return 2\n", name="pm_fixed_name")
    assert (old.which(), new.which()) == (1, 2)
    assert new.__name__ == "pm_fixed_name"


def test_undefined_c_symbol_is_a_link_error_at_its_declaration():
    """A declared but undefined C function raises CompileError at its declaration line."""
    with pytest.raises(CompileError) as caught:
        bridge.cython("cdef extern int pm_nowhere()\n"
                      "def g():\n    return pm_nowhere()\n")
    assert caught.value.lines == [1]
    assert "pm_nowhere" in str(caught.value)


PLAIN_CELL = textwrap.dedent("""\
    def fib(int n):
        cdef long a = 0, b = 1, i
        for i in range(n):
            a, b = b, a + b
        return a
    """)

# Runs in a new process on the cache given by POLYMAGIC_CACHE_DIR; prints one JSON line
# per build: the recorded decision, what exists, and the cell's result.
FIRST_CELLS_SCRIPT = textwrap.dedent("""\
    import json, sys, numpy as np
    from polymagic.bridges import cython as bridge
    from polymagic.bridges.cython.toolchain import Toolchain
    from polymagic.bridges.cython.utility import utility_build
    def report(result, value):
        manifest = json.loads((result.path.parent / "build.json").read_text())
        utility = utility_build(Toolchain.for_options(bridge.make_options(), {{}}))
        print(json.dumps({{
            "utility_code": result.utility_code, "cached": result.cached,
            "utility_module": manifest["utility_module"], "value": value,
            "utility_loaded": utility.name in sys.modules,
            "utility_built": utility.path.exists(), "path": str(result.path),
            "compiler_imported": "Cython.Compiler.Main" in sys.modules}}))
    for cell in sys.argv[1:]:
        result = bridge.build({{"plain": {plain!r}, "memoryview": {memoryview!r}}}[cell])
        if cell == "plain":
            report(result, result.module.fib(10))
        else:
            report(result, result.module.total(np.arange(4.0)))
    """).format(plain=PLAIN_CELL, memoryview=SUM_CELL)


def _run_cells(cache, *cells, env=None, check=True):
    """Build `cells` ("plain"/"memoryview") in a new process; its JSON reports."""
    env = dict(os.environ, **(env or {}), POLYMAGIC_CACHE_DIR=str(cache))
    finished = subprocess.run([sys.executable, "-c", FIRST_CELLS_SCRIPT, *cells],
                              capture_output=True, text=True, env=env, check=False)
    if check and finished.returncode != 0:
        raise AssertionError(finished.stderr)
    reports = [json.loads(line) for line in finished.stdout.splitlines()
               if line.startswith("{")]
    return reports, finished


def test_first_plain_cell_is_built_inline_and_later_memoryview_cells_share(tmp_path):
    """Empty cache: a plain cell is built inline, a memoryview cell shares; both cached."""
    (plain, memoryview, plain_again, memoryview_again), _ = _run_cells(
        tmp_path, "plain", "memoryview", "plain", "memoryview")
    assert plain["utility_code"] == "inline" and plain["utility_module"] is None
    assert not plain["utility_loaded"]  # the cell did not need, so did not load, it
    assert memoryview["utility_code"] == "shared" and memoryview["utility_module"]
    assert memoryview["utility_loaded"] and memoryview["utility_built"]
    assert (plain["value"], memoryview["value"]) == (55, 6.0)
    assert plain_again["cached"] and plain_again["path"] == plain["path"]
    assert memoryview_again["cached"] and memoryview_again["path"] == memoryview["path"]
    reports, _ = _run_cells(tmp_path, "plain", "memoryview")
    assert [(r["cached"], r["path"], r["value"]) for r in reports] == \
        [(True, plain["path"], 55), (True, memoryview["path"], 6.0)]
    assert not reports[-1]["compiler_imported"]


def test_plain_cell_uses_the_shared_module_once_it_exists(tmp_path):
    """With the shared module in the cache, a new plain cell imports it (smaller C)."""
    _run_cells(tmp_path, "memoryview")
    (plain,), _ = _run_cells(tmp_path, "plain")
    assert plain["utility_code"] == "shared" and plain["utility_module"]
    assert plain["value"] == 55


def test_failed_background_build_surfaces_on_the_next_memoryview_cell(tmp_path):
    """A failed background build spares the plain cell; the next memoryview cell raises it."""
    wrapper = tmp_path / "cc-refusing-utility"
    wrapper.write_text('#!/bin/sh\ncase "$*" in *_pm_cyutility_*)\n'
                       '  echo "refusing the utility module" >&2; exit 1;;\nesac\n'
                       'exec cc "$@"\n')
    wrapper.chmod(0o755)
    script = textwrap.dedent(f"""\
        import numpy as np
        from polymagic.bridges import cython as bridge
        from polymagic.errors import CompileError
        print("plain", bridge.build({PLAIN_CELL!r}).module.fib(10))
        for attempt in range(2):
            try:
                bridge.build({SUM_CELL!r})
            except CompileError as failure:
                print("raised", failure.language, "shared utility module" in str(failure),
                      "refusing the utility module" in str(failure))
        print("plain again", bridge.build("def g():\\n    return 7\\n").module.g())
        """)
    env = dict(os.environ, POLYMAGIC_CACHE_DIR=str(tmp_path / "cache"), CC=str(wrapper))
    finished = subprocess.run([sys.executable, "-c", script], capture_output=True,
                              text=True, env=env, check=True)
    assert finished.stdout.splitlines() == [
        "plain 55",
        "raised Cython (C compiler) True True",  # the background failure, kept
        "raised Cython (C compiler) True True",  # the retry, built and failed again
        "plain again 7"]


def test_two_processes_on_an_empty_cache_at_once(tmp_path):
    """Two processes on one empty cache both succeed: one utility module, no staging left."""
    env = dict(os.environ, POLYMAGIC_CACHE_DIR=str(tmp_path))
    processes = [subprocess.Popen([sys.executable, "-c", FIRST_CELLS_SCRIPT, "plain",
                                   "memoryview"], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, env=env)
                 for _ in range(2)]
    outputs = [process.communicate(timeout=300) for process in processes]
    assert [process.returncode for process in processes] == [0, 0], outputs
    values = [[json.loads(line)["value"] for line in out.splitlines()]
              for out, _ in outputs]
    assert values == [[55, 6.0], [55, 6.0]]
    entries = sorted(path.name.split("_")[0] for path in tmp_path.iterdir())
    assert entries.count("cyutility") == 1
    assert not [path for path in tmp_path.iterdir() if path.name.startswith(".")]
