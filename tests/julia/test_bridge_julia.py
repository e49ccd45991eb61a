"""The Julia bridge: finding Julia, the no-Julia path, the array decisions, and (where a
Julia runtime exists) eval, views both ways, calls both ways, errors and threads.

Tests marked `needs_julia` use a real embedded Julia and skip, with the reason printed by
`-ra`, on machines without one. No test fakes Julia.
"""
import gc
import json
import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

from polymagic.bridges.julia import locate as julia_locate
from polymagic.bridges.julia import JuliaBridge
from polymagic.errors import ConfigError
from polymagic.errors import (BridgeUnavailable, ConversionError, CopyRequired,
                              JuliaError, ThreadError)
from polymagic.marshal import julia as marshal

NO_JULIA_REASON = "no Julia runtime found (set PYTHON_JULIAPKG_EXE)"
needs_julia = pytest.mark.skipif(julia_locate.find_julia() is None, reason=NO_JULIA_REASON)


@pytest.fixture
def no_julia_env(tmp_path, monkeypatch):
    """An environment where no Julia can be found: empty PATH, HOME, depots, project."""
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    for variable in ("PYTHON_JULIAPKG_EXE", "PYTHON_JULIACALL_EXE",
                     "POLYMAGIC_JULIA_AUTOINSTALL", "JULIA_DEPOT_PATH"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("PATH", str(empty_bin))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("JULIAUP_DEPOT_PATH", str(tmp_path / "juliaup-depot"))
    monkeypatch.setenv("PYTHON_JULIAPKG_PROJECT", str(tmp_path / "julia_env"))
    return tmp_path


# -- finding Julia (no Julia needed) -------------------------------------------------

def test_find_julia_returns_none_when_nothing_is_installed(no_julia_env):
    """With no configured, juliapkg, juliaup or PATH Julia, find_julia() is None."""
    assert julia_locate.find_julia() is None


def test_nonexistent_configured_julia_is_a_clear_error(no_julia_env, monkeypatch):
    """PYTHON_JULIAPKG_EXE pointing nowhere: BridgeUnavailable naming the variable and path."""
    missing = str(no_julia_env / "nowhere" / "julia")
    monkeypatch.setenv("PYTHON_JULIAPKG_EXE", missing)
    with pytest.raises(BridgeUnavailable) as info:
        julia_locate.locate_julia()
    assert "PYTHON_JULIAPKG_EXE" in str(info.value) and missing in str(info.value)
    assert "no such file" in str(info.value)
    assert julia_locate.find_julia() is None


def test_non_julia_executable_is_a_clear_error(no_julia_env, monkeypatch):
    """PYTHON_JULIAPKG_EXE pointing at another program: 'is not a Julia executable'."""
    monkeypatch.setenv("PYTHON_JULIAPKG_EXE", sys.executable)
    with pytest.raises(BridgeUnavailable) as info:
        JuliaBridge().start()
    assert "is not a Julia executable" in str(info.value)
    assert sys.executable in str(info.value)


def test_juliaup_versions_are_tried_newest_first(no_julia_env):
    """juliaup.json entries are ordered by version number (1.10 after 1.9), for this arch."""
    juliaup_dir = no_julia_env / "juliaup-depot" / "juliaup"
    juliaup_dir.mkdir(parents=True)
    arch = "aarch64" if "arm" in os.uname().machine or "aarch" in os.uname().machine \
        else "x64"
    installed = {f"1.9.4+0.{arch}.linux.gnu": {"Path": "julia-1.9.4"},
                 f"1.10.2+0.{arch}.linux.gnu": {"Path": "julia-1.10.2"}}
    (juliaup_dir / "juliaup.json").write_text(json.dumps({"InstalledVersions": installed}))
    paths = [path for path, _ in julia_locate._juliaup_candidates()]
    assert [os.path.basename(os.path.dirname(os.path.dirname(p))) for p in paths] == \
        ["julia-1.10.2", "julia-1.9.4"]


def test_no_julia_is_fast_and_touches_neither_juliacall_nor_the_network(no_julia_env):
    """With no Julia, starting fails in < 1 s, imports no juliacall/juliapkg, opens no
    socket and creates no julia_env folder (checked in a fresh interpreter)."""
    script = textwrap.dedent("""
        import socket, sys, time
        attempts = []
        def refuse(self, address):
            attempts.append(address)
            raise OSError("network attempt during the no-Julia path")
        socket.socket.connect = refuse
        socket.socket.connect_ex = refuse
        import polymagic as pm
        start = time.perf_counter()
        try:
            pm.julia.eval("1 + 1")
        except pm.BridgeUnavailable as error:
            message = str(error)
        else:
            raise SystemExit("no BridgeUnavailable")
        elapsed = time.perf_counter() - start
        print(repr((elapsed, attempts, "juliacall" in sys.modules,
                    "juliapkg" in sys.modules, message)))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True,
                            text=True, env=os.environ.copy(), timeout=60)
    assert result.returncode == 0, result.stderr
    elapsed, attempts, juliacall_imported, juliapkg_imported, message = eval(
        result.stdout.strip().splitlines()[-1])
    assert elapsed < 1.0
    assert attempts == []
    assert not juliacall_imported and not juliapkg_imported
    assert "juliaup" in message and "PYTHON_JULIAPKG_EXE" in message
    assert "POLYMAGIC_JULIA_AUTOINSTALL" in message
    assert not (no_julia_env / "julia_env").exists()


def test_bridge_stays_unavailable_and_consistent_after_the_error(no_julia_env):
    """A second call after BridgeUnavailable fails the same way (no half-started state)."""
    bridge = JuliaBridge()
    for _ in range(2):
        with pytest.raises(BridgeUnavailable):
            bridge.eval("1")
    assert not bridge.is_started()


def test_bad_autoinstall_switch_names_the_variable(no_julia_env, monkeypatch):
    """POLYMAGIC_JULIA_AUTOINSTALL=maybe is a ConfigError naming the variable."""
    monkeypatch.setenv("POLYMAGIC_JULIA_AUTOINSTALL", "maybe")
    with pytest.raises(ConfigError, match="POLYMAGIC_JULIA_AUTOINSTALL"):
        JuliaBridge().start()


# -- array decisions (pure Python, no Julia needed) ------------------------------------

@pytest.mark.parametrize("array", [
    np.arange(6.0),
    np.asfortranarray(np.arange(12.0).reshape(3, 4)),
    np.array(3.5),
    np.arange(4, dtype=np.int32),
    np.ones(3, dtype=bool),
    np.arange(3) + 1j,
], ids=["1-D", "F-ordered 2-D", "0-d", "int32", "bool", "complex128"])
def test_shareable_arrays_are_planned_as_views(array):
    """1-D, F-ordered and 0-d arrays of supported dtypes cross as views of their memory:
    read-only for Julia by default, writable Julia Arrays with shared_writes."""
    plan = marshal.plan_push(array, copy=False)
    assert plan.kind == marshal.READONLY_VIEW and plan.array is array
    shared = marshal.plan_push(array, copy=False, shared_writes=True)
    assert shared.kind == marshal.VIEW and shared.array is array


def test_c_ordered_matrix_is_copied_column_major():
    """A C-ordered 2-D array is copied into an F-ordered array with the same values."""
    array = np.arange(12.0).reshape(3, 4)
    plan = marshal.plan_push(array)
    assert plan.kind == marshal.COPY and "column-major" in plan.reason
    assert plan.array.flags.f_contiguous and np.array_equal(plan.array, array)
    assert not np.shares_memory(plan.array, array)


def test_c_ordered_matrix_with_copy_false_raises_copy_required():
    """copy=False on a C-ordered 2-D array raises CopyRequired explaining why."""
    with pytest.raises(CopyRequired, match="column-major"):
        marshal.plan_push(np.zeros((2, 3)), copy=False)


@pytest.mark.parametrize("array, why", [
    (np.arange(10.0)[::2], "strided"),
    (np.arange(4.0).astype(">f8"), "byte order"),
], ids=["strided", "byte-swapped"])
def test_unshareable_layouts_are_copied(array, why):
    """Strided and byte-swapped arrays are copied (to native, F-ordered), with the reason."""
    plan = marshal.plan_push(array)
    assert plan.kind == marshal.COPY and why in plan.reason
    assert plan.array.dtype.isnative and np.array_equal(plan.array, array)


def test_copy_true_always_copies():
    """copy=True gives an independent copy even when a view was possible."""
    array = np.arange(5.0)
    plan = marshal.plan_push(array, copy=True)
    assert plan.kind == marshal.COPY and not np.shares_memory(plan.array, array)


def test_read_only_arrays_become_read_only_views():
    """A read-only numpy array crosses as a read-only view, never a writable Julia Array."""
    array = np.arange(3.0)
    array.flags.writeable = False
    assert marshal.plan_push(array).kind == marshal.READONLY_VIEW
    with pytest.raises(ConversionError, match="read-only"):
        marshal.plan_push(array, shared_writes=True)


@pytest.mark.parametrize("array", [np.array(["a", "b"]), np.array([object()]),
                                   np.zeros(2, dtype=[("a", "f8")])],
                         ids=["str", "object", "structured"])
def test_unsupported_dtypes_are_a_conversion_error(array):
    """dtypes with no Julia element type raise ConversionError naming the dtype."""
    with pytest.raises(ConversionError) as info:
        marshal.plan_push(array)
    assert str(array.dtype) in str(info.value)


# -- real Julia ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def julia():
    """The process's Julia session (skips with the reason when there is no Julia)."""
    if julia_locate.find_julia() is None:
        pytest.skip(NO_JULIA_REASON)
    from polymagic.bridges.julia import julia as engine
    engine.start()
    return engine


@needs_julia
def test_eval_returns_the_last_value(julia):
    """eval returns the cell's last value as a Python object."""
    assert julia.eval("x = 20\nx + 22") == 42
    assert julia.eval('"a" * "b"') == "ab"


@needs_julia
def test_assign_and_get_round_trip(julia):
    """julia['name'] = value then julia['name'] gives the value back; unknown names KeyError."""
    julia["answer"] = 42
    assert julia["answer"] == 42 and julia.eval("answer isa Int") is True
    with pytest.raises(KeyError, match="no_such_global"):
        julia["no_such_global"]


@needs_julia
def test_numpy_vector_is_a_read_only_view_by_default(julia):
    """By default Julia sees the numpy memory (Python's writes show) but cannot write it."""
    x = np.arange(5.0)
    julia["xd"] = x
    x[0] = 11.0
    assert julia.eval("xd[1]") == 11.0
    with pytest.raises(JuliaError):
        julia.eval("xd[1] = 1.0")
    assert x[0] == 11.0 and julia.eval("1 + 1") == 2


@needs_julia
def test_numpy_vector_is_a_julia_array_view(julia):
    """With shared_writes, a 1-D numpy array is a Julia Vector{Float64} at the same
    address, and Julia's writes are shared."""
    x = np.arange(5.0)
    julia.assign("xv", x, shared_writes=True)
    assert julia.eval("xv isa Vector{Float64}") is True
    assert julia.eval("UInt(pointer(xv))") == x.ctypes.data
    julia.eval("xv[1] = 42.0")
    assert x[0] == 42.0


@needs_julia
def test_fortran_matrix_is_a_julia_matrix_view(julia):
    """An F-ordered matrix is a Julia Matrix at the same address, indexed the same way."""
    m = np.asfortranarray(np.arange(12.0).reshape(3, 4))
    julia.assign("mf", m, shared_writes=True)
    assert julia.eval("size(mf)") == (3, 4)
    assert julia.eval("mf[2, 3]") == m[1, 2]
    assert julia.eval("UInt(pointer(mf))") == m.ctypes.data


@needs_julia
def test_c_ordered_matrix_is_copied_or_refused(julia):
    """A C-ordered matrix arrives as an equal copy; with copy=False it raises, and the
    session still works."""
    m = np.arange(6.0).reshape(2, 3)
    julia["mc"] = m
    assert julia.eval("mc[2, 3]") == m[1, 2]
    assert julia.eval("UInt(pointer(mc))") != m.ctypes.data
    with pytest.raises(CopyRequired):
        julia.assign("mc2", m, copy=False)
    assert julia.eval("1 + 1") == 2


@needs_julia
def test_read_only_array_is_a_view_julia_cannot_write(julia):
    """A read-only array is seen by Julia (changes to its base show) but Julia cannot write."""
    base = np.arange(3.0)
    readonly = base.view()
    readonly.flags.writeable = False
    julia["ro"] = readonly
    base[0] = 7.0
    assert julia.eval("ro[1]") == 7.0
    with pytest.raises(JuliaError):
        julia.eval("ro[1] = 1.0")
    assert base[0] == 7.0


@needs_julia
def test_julia_array_is_a_numpy_view(julia):
    """A Julia Vector comes back as a numpy array at Julia's address; writes are shared."""
    v = julia.eval("jv = collect(1.0:5.0)")
    assert isinstance(v, np.ndarray)
    assert v.ctypes.data == julia.eval("UInt(pointer(jv))")
    v[0] = 99.0
    assert julia.eval("jv[1]") == 99.0


@needs_julia
def test_julia_matrix_is_an_f_ordered_numpy_view(julia):
    """A Julia Matrix comes back with the same shape, F-ordered, same element order."""
    m = julia.eval("jm = reshape(collect(1.0:6.0), 2, 3)")
    assert m.shape == (2, 3) and m.flags.f_contiguous
    assert m[1, 2] == 6.0
    assert m.ctypes.data == julia.eval("UInt(pointer(jm))")


@needs_julia
def test_round_trip_shares_memory(julia):
    """numpy -> Julia -> numpy gives back a view of the original buffer."""
    x = np.arange(4.0)
    julia["rt"] = x
    assert np.shares_memory(julia["rt"], x)


@needs_julia
def test_owners_are_kept_alive(julia):
    """Arrays survive the other side dropping its references and collecting garbage."""
    julia["temporary"] = np.arange(1_000_000.0)  # Python keeps no reference
    gc.collect()
    assert julia.eval("GC.gc(); sum(temporary)") == sum(range(1_000_000))
    view = julia.eval("let a = collect(1.0:1000.0); a end")
    julia.eval("GC.gc(); GC.gc()")
    gc.collect()
    assert view.sum() == 500500.0


@needs_julia
def test_non_numeric_julia_arrays_are_copied_or_refused(julia):
    """Vector{String} comes back as a list; with copy=False it raises CopyRequired."""
    julia.eval('words = ["a", "b"]')
    assert julia["words"] == ["a", "b"]
    with pytest.raises(CopyRequired):
        julia.get("words", copy=False)


@needs_julia
def test_julia_functions_are_python_callables(julia):
    """A Julia function is callable from Python, with arrays crossing as views."""
    double = julia.eval("double(x) = 2 .* x")
    assert double(21) == 42
    assert np.array_equal(double(np.arange(3.0)), [0.0, 2.0, 4.0])
    total = julia.eval("total(v::Vector{Float64}) = sum(v)")
    assert total(np.arange(4.0)) == 6.0


@needs_julia
def test_python_callables_are_julia_functions_with_views(julia):
    """A Python callable is callable from Julia and receives Julia arrays as numpy views."""
    julia["py_add"] = lambda a, b: a + b
    assert julia.eval("py_add(2, 3)") == 5
    seen = {}

    def inspect(array):
        seen["address"] = array.ctypes.data
        return float(array.sum())

    julia["inspect"] = inspect
    assert julia.eval("w = [1.0, 2.0]; inspect(w)") == 3.0
    assert seen["address"] == julia.eval("UInt(pointer(w))")


@needs_julia
def test_calls_recurse_between_python_and_julia(julia):
    """Python -> Julia -> Python -> ... recursion works to depth 8."""
    def python_factorial(n):
        return 1 if n <= 1 else n * julia_factorial(n - 1)

    julia["python_factorial"] = python_factorial
    julia_factorial = julia.eval("julia_factorial(n) = n <= 1 ? 1 : n * python_factorial(n - 1)")
    assert python_factorial(8) == 40320


@needs_julia
def test_julia_error_has_message_stack_and_line(julia):
    """An error names Julia, its message, the cell line and the stack; Julia stays usable."""
    with pytest.raises(JuliaError) as info:
        julia.eval('a = 1\nb = 2\nerror("boom")')
    error = info.value
    assert "boom" in error.message and error.line == 3
    assert error.stack and "Julia error (cell line 3)" in str(error)
    assert julia.eval("1 + 1") == 2


@needs_julia
def test_error_inside_a_cell_function_points_at_its_line(julia):
    """An error in a function defined in the cell reports the line inside the function."""
    with pytest.raises(JuliaError) as info:
        julia.eval('inner() = error("deep")\n\ninner()')
    assert info.value.line == 1
    assert any("inner" in frame for frame in info.value.stack)


@needs_julia
def test_parse_error_is_a_julia_error(julia):
    """Unparseable code raises JuliaError; the next eval works."""
    with pytest.raises(JuliaError):
        julia.eval("x = (1 +")
    assert julia.eval("2 + 2") == 4


@needs_julia
def test_python_exception_in_a_callback_is_the_same_object(julia):
    """A Python exception raised in a callback called from Julia comes back unchanged."""
    original = LookupError("from python")

    def fail():
        raise original

    julia["fail"] = fail
    with pytest.raises(LookupError) as info:
        julia.eval("fail()")
    assert info.value is original


@needs_julia
def test_julia_function_error_is_a_julia_error(julia):
    """An error thrown by a Julia function called from Python raises JuliaError."""
    broken = julia.eval('broken(x) = error("bad input $x")')
    with pytest.raises(JuliaError, match="bad input 1"):
        broken(1)


@needs_julia
def test_julia_output_is_printed(julia, capsys):
    """What Julia prints goes to Python's stdout; output before an error is kept."""
    julia.eval('println("hello from julia")')
    assert "hello from julia" in capsys.readouterr().out
    with pytest.raises(JuliaError) as info:
        julia.eval('println("before"); error("after")')
    assert "before" in info.value.output


@needs_julia
def test_other_threads_are_refused(julia):
    """A call from another thread raises ThreadError instead of crashing Julia."""
    errors = []
    worker = threading.Thread(target=lambda: _record(errors, lambda: julia.eval("1")))
    worker.start()
    worker.join()
    assert len(errors) == 1 and isinstance(errors[0], ThreadError)
    assert julia.eval("1") == 1


def _record(errors, function):
    try:
        function()
    except Exception as error:  # collected for the assertion in the main thread
        errors.append(error)


def test_julia_stack_lines_become_traceback_frames():
    """Julia's `f(args) at file:line` stack lines become traceback frames (function,
    cell, line); other lines are skipped."""
    from polymagic.bridges.julia.engine import julia_traceback_frames
    frames = julia_traceback_frames(["top-level scope at In[7]:5",
                                     "fib(n::Int64) at cell-3:2",
                                     "macro expansion at ./boot.jl",
                                     "  g(x::Vector{Float64}, y::Int64) at cell-3:9"])
    assert [(f.function, f.filename, f.line) for f in frames] == [
        ("top-level scope", "In[7]", 5), ("fib", "cell-3", 2), ("g", "cell-3", 9)]


@needs_julia
def test_julia_error_traceback_lists_julia_frames(julia):
    """A Julia error's Python traceback carries the Julia function and cell line."""
    import traceback
    from polymagic.tracebacks import foreign_frames
    with pytest.raises(JuliaError) as caught:
        julia.eval("inner_fail(x) = error(\"deep \", x)\nouter_ok(x) = inner_fail(x + 1)\n"
                   "outer_ok(1)", filename="cell-tb")
    frames = foreign_frames(caught.value)
    assert any(frame.startswith("Julia:inner_fail:1") for frame in frames), frames
    assert "cell-tb" in "".join(traceback.format_exception(caught.value))
