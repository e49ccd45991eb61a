"""The Julia engine (bridges/julia/engine.py, PolymagicBridge.jl, marshal/julia.jl).

Without Julia: the engine's refusal and its state afterwards. With a real embedded Julia
(tests marked `needs_julia`, skipped with the reason printed by `-ra` where none is
found, failed where POLYMAGIC_REQUIRE names julia): eval, views both ways, calls both
ways, errors, output and threads. Each docstring states what a real Julia does.

The contract for numpy arrays, as with R: Julia reads the numpy memory and never writes
into it unless shared writes were asked for (`shared_writes=True`, `--shared-writes`).
By default an array is a read-only PyArray (an AbstractArray, not an Array); a write is
a MethodError. No test fakes Julia.
"""
import gc
import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

from polymagic.bridges.julia import JuliaBridge
from polymagic.bridges.julia import locate as julia_locate
from polymagic.errors import (BridgeUnavailable, ConfigError, CopyRequired, JuliaError,
                              JuliaNameError, ThreadError)

NO_JULIA_REASON = "no Julia runtime found (set PYTHON_JULIAPKG_EXE)"
needs_julia = pytest.mark.skipif(julia_locate.find_julia() is None, reason=NO_JULIA_REASON)


# -- without Julia ---------------------------------------------------------------------

def test_bridge_stays_unavailable_and_consistent_after_the_error(no_julia_env):
    """A second call after BridgeUnavailable fails the same way (no half-started state)."""
    bridge = JuliaBridge()
    for _ in range(2):
        with pytest.raises(BridgeUnavailable):
            bridge.eval("1")
    assert not bridge.is_started() and not bridge.available()


def test_bad_autoinstall_switch_names_the_variable(no_julia_env, monkeypatch):
    """POLYMAGIC_JULIA_AUTOINSTALL=maybe is a ConfigError naming the variable."""
    monkeypatch.setenv("POLYMAGIC_JULIA_AUTOINSTALL", "maybe")
    with pytest.raises(ConfigError, match="POLYMAGIC_JULIA_AUTOINSTALL"):
        JuliaBridge().start()


# -- real Julia ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def julia(required):
    """The process's Julia session."""
    if julia_locate.find_julia() is None:
        if "julia" in required:
            pytest.fail(f"{NO_JULIA_REASON}, but POLYMAGIC_REQUIRE names julia")
        pytest.skip(NO_JULIA_REASON)
    from polymagic.bridges.julia import julia as engine
    engine.start()
    return engine


def julia_error(call) -> JuliaError:
    with pytest.raises(JuliaError) as info:
        call()
    return info.value


@needs_julia
def test_eval_returns_the_last_value(julia):
    """eval returns the cell's last value as a Python object."""
    assert julia.eval("x = 20\nx + 22") == 42
    assert julia.eval('"a" * "b"') == "ab"


@needs_julia
def test_assign_and_get_round_trip(julia):
    """julia['name'] = value then julia['name'] gives the value back; an unknown name is
    a JuliaNameError, which is a KeyError naming it."""
    julia["answer"] = 42
    assert julia["answer"] == 42 and julia.eval("answer isa Int") is True
    with pytest.raises(JuliaNameError, match="no_such_global") as info:
        julia["no_such_global"]
    assert isinstance(info.value, KeyError)


@needs_julia
def test_numpy_vector_is_a_read_only_view_by_default(julia):
    """By default a numpy vector is a read-only PyArray at the numpy address: Julia sees
    Python's writes, and its own write is a MethodError (setindex!) that leaves the
    numpy array unchanged and says how to get a writable array."""
    x = np.arange(5.0)
    julia["xd"] = x
    assert julia.eval("xd isa PyArray && !(xd isa Array)") is True
    assert julia.eval("UInt(pointer(xd))") == x.ctypes.data
    x[0] = 11.0
    assert julia.eval("xd[1]") == 11.0
    error = julia_error(lambda: julia.eval("xd[1] = 1.0"))
    assert error.julia_type == "MethodError" and "setindex!" in error.message
    assert "shared_writes=True" in error.message
    assert x[0] == 11.0 and julia.eval("1 + 1") == 2


@needs_julia
def test_read_only_survives_trips_through_python(julia):
    """The view stays read-only when it comes back to Python and goes in again, when it
    is the argument of a Julia function called from Python, and when a Python callback
    returns it: PythonCall hands a PyArray to Python as the numpy array itself, and the
    wrapper is made read-only again in Julia every time."""
    x = np.arange(3.0)
    julia["ro1"] = x
    julia["ro2"] = julia["ro1"]
    assert julia["ro1"] is x
    assert julia.eval("ro2 isa PyArray && !(ro2 isa Array)") is True
    set_first = julia.eval("set_first!(v) = (v[1] = -1.0; v)")
    assert julia_error(lambda: set_first(x)).julia_type == "MethodError"
    julia["make_array"] = lambda: x
    assert julia.eval("try; make_array()[1] = -1.0; false; catch e; e isa MethodError; end")
    assert x[0] == 0.0


@needs_julia
def test_shared_writes_give_a_julia_array_on_the_same_memory(julia):
    """With shared_writes a 1-D numpy array is a Julia Vector{Float64} at the same
    address, and Julia's writes are Python's."""
    x = np.arange(5.0)
    julia.assign("xv", x, shared_writes=True)
    assert julia.eval("xv isa Vector{Float64}") is True
    assert julia.eval("UInt(pointer(xv))") == x.ctypes.data
    julia.eval("xv[1] = 42.0")
    assert x[0] == 42.0


@needs_julia
def test_fortran_matrix_is_a_julia_matrix_view(julia):
    """An F-ordered matrix with shared_writes is a Julia Matrix at the same address,
    indexed the same way."""
    m = np.asfortranarray(np.arange(12.0).reshape(3, 4))
    julia.assign("mf", m, shared_writes=True)
    assert julia.eval("size(mf)") == (3, 4)
    assert julia.eval("mf[2, 3]") == m[1, 2]
    assert julia.eval("UInt(pointer(mf))") == m.ctypes.data


@needs_julia
def test_c_ordered_matrix_is_copied_or_refused(julia):
    """A C-ordered matrix arrives as an equal copy (a Julia Matrix elsewhere in memory);
    with copy=False it raises CopyRequired, and the session still works."""
    m = np.arange(6.0).reshape(2, 3)
    julia["mc"] = m
    assert julia.eval("mc isa Matrix{Float64}") is True
    assert julia.eval("mc[2, 3]") == m[1, 2]
    assert julia.eval("UInt(pointer(mc))") != m.ctypes.data
    with pytest.raises(CopyRequired):
        julia.assign("mc2", m, copy=False)
    assert julia.eval("1 + 1") == 2


@needs_julia
def test_read_only_numpy_array_is_a_view_julia_cannot_write(julia):
    """A read-only numpy array is seen by Julia (changes to its base show) but a write
    from Julia is a MethodError."""
    base = np.arange(3.0)
    readonly = base.view()
    readonly.flags.writeable = False
    julia["ro"] = readonly
    base[0] = 7.0
    assert julia.eval("ro[1]") == 7.0
    assert julia_error(lambda: julia.eval("ro[1] = 1.0")).julia_type == "MethodError"
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
def test_round_trip_shares_memory_and_copy_true_copies(julia):
    """numpy -> Julia -> numpy gives back the original array; get(copy=True) gives a
    copy of it instead."""
    x = np.arange(4.0)
    julia["rt"] = x
    assert np.shares_memory(julia["rt"], x)
    copied = julia.get("rt", copy=True)
    assert np.array_equal(copied, x) and not np.shares_memory(copied, x)


@needs_julia
def test_copy_true_copies_python_containers(julia):
    """A list assigned with copy=True is a Julia Vector that Python's later changes do
    not reach; without it, a live PyList that sees them."""
    items = [1, 2, 3]
    julia.assign("owned", items, copy=True)
    julia.assign("live", items)
    items.append(4)
    assert julia.eval("owned isa Vector{Int64} && length(owned) == 3") is True
    assert julia.eval("live isa PyList && length(live) == 4") is True


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
    """A Julia function is callable from Python; a numpy argument is a read-only view,
    which a method typed AbstractVector accepts."""
    double = julia.eval("double(x) = 2 .* x")
    assert double(21) == 42
    assert np.array_equal(double(np.arange(3.0)), [0.0, 2.0, 4.0])
    total = julia.eval("total(v::AbstractVector{Float64}) = sum(v)")
    assert total(np.arange(4.0)) == 6.0


@needs_julia
def test_methods_typed_vector_need_a_julia_array(julia):
    """A method typed ::Vector{Float64} does not match the read-only view: a JuliaError
    (MethodError) that says how to pass an Array, and not juliacall's TypeError.
    julia_array(x) passes a copy; julia_array(x, shared_writes=True) the same memory,
    which the method may write."""
    strict = julia.eval("strict_fill!(v::Vector{Float64}) = (v .= 7.0; sum(v))")
    x = np.zeros(3)
    error = julia_error(lambda: strict(x))
    assert error.julia_type == "MethodError" and "AbstractVector" in error.message
    assert "julia_array" in error.message and not isinstance(error, TypeError)
    assert strict(julia.julia_array(x)) == 21.0 and x[0] == 0.0
    assert strict(julia.julia_array(x, shared_writes=True)) == 21.0 and x[0] == 7.0


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
def test_callable_objects_keep_their_attributes(julia):
    """A callable object is callable from Julia and its attributes read as properties
    (scaler.factor); it comes back to Python as the same object."""
    class Scaler:
        factor = 3

        def __call__(self, value):
            return value * self.factor

    scaler = Scaler()
    julia["scaler"] = scaler
    assert julia.eval("scaler(2)") == 6
    assert julia.eval("pyconvert(Int, scaler.factor)") == 3
    assert julia["scaler"] is scaler


@needs_julia
def test_calls_recurse_between_python_and_julia(julia):
    """Python -> Julia -> Python -> ... recursion works to depth 8."""
    def python_factorial(n):
        return 1 if n <= 1 else n * julia_factorial(n - 1)

    julia["python_factorial"] = python_factorial
    julia_factorial = julia.eval("julia_factorial(n) = n <= 1 ? 1 : n * python_factorial(n - 1)")
    assert python_factorial(8) == 40320


@needs_julia
def test_julia_error_has_message_stack_type_and_line(julia):
    """An error names Julia, its message, its type, the cell line and the stack; Julia
    stays usable."""
    error = julia_error(lambda: julia.eval('a = 1\nb = 2\nerror("boom")'))
    assert error.message == "boom" and error.line == 3
    assert error.julia_type == "ErrorException"
    assert error.stack and "Julia error (cell line 3)" in str(error)
    assert julia.eval("1 + 1") == 2


@needs_julia
def test_error_inside_a_cell_function_points_at_its_line(julia):
    """An error in a function defined in the cell reports the line inside the function."""
    error = julia_error(lambda: julia.eval('inner() = error("deep")\n\ninner()'))
    assert error.line == 1
    assert any(frame.startswith("inner()") for frame in error.stack)


@needs_julia
def test_parse_error_is_a_julia_error(julia):
    """Unparseable code raises JuliaError (a ParseError); the next eval works."""
    error = julia_error(lambda: julia.eval("x = (1 +"))
    assert "ParseError" in error.julia_type
    assert julia.eval("2 + 2") == 4


@needs_julia
def test_python_exception_in_a_callback_is_the_same_object(julia):
    """A Python exception raised in a callback comes back unchanged, from a cell and from
    a Julia function called from Python."""
    original = LookupError("from python")

    def fail():
        raise original

    julia["fail"] = fail
    with pytest.raises(LookupError) as info:
        julia.eval("fail()")
    assert info.value is original
    call_fail = julia.eval("call_fail() = fail()")
    with pytest.raises(LookupError) as info:
        call_fail()
    assert info.value is original


@needs_julia
def test_julia_function_errors_are_julia_errors(julia):
    """Errors thrown by a Julia function called from Python are JuliaErrors with Julia's
    type: error() an ErrorException, a bad index a BoundsError (juliacall alone would
    raise IndexError), a wrong argument count a MethodError (juliacall: TypeError)."""
    broken = julia.eval('broken(x) = error("bad input $x")')
    assert julia_error(lambda: broken(1)).message == "bad input 1"
    tenth = julia.eval("tenth(v) = v[10]")
    assert julia_error(lambda: tenth(np.arange(3.0))).julia_type == "BoundsError"
    assert julia_error(lambda: broken()).julia_type == "MethodError"


@needs_julia
def test_julia_output_is_printed(julia, capsys):
    """What Julia prints goes to Python's stdout; output before an error is kept."""
    julia.eval('println("hello from julia")')
    assert "hello from julia" in capsys.readouterr().out
    error = julia_error(lambda: julia.eval('println("before"); error("after")'))
    assert "before" in error.output


CHILD_PRINTS_FROM_A_CALLBACK = """
import os, polymagic as pm
def shout():
    os.write(1, b"x" * 1_000_000 + b"\\n")  # far more than a pipe's buffer, on fd 1
    return 1
pm.julia["shout"] = shout
print("julia returned", pm.julia.eval('println("julia output"); shout()'), flush=True)
"""


@needs_julia
def test_python_writing_to_fd1_during_a_cell_does_not_block():
    """A Python callback writing 1 MB to file descriptor 1 inside a Julia cell finishes:
    Julia captures only its own stdout, so nothing fills a pipe that no one drains (a
    child process, with a timeout)."""
    done = subprocess.run([sys.executable, "-c", CHILD_PRINTS_FROM_A_CALLBACK],
                          capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert b"x" * 1_000_000 in done.stdout
    assert b"julia output" in done.stdout and b"julia returned 1" in done.stdout


CHILD_SCRIPT_CALLS_PY_F = """
import polymagic as pm
def f(x):
    return x + 1
print("py.f from Julia:", pm.julia.eval("py.f(1)"))
call_py = pm.julia.eval("call_py() = py.f(41)")
print("through a call:", call_py())
"""


@needs_julia
def test_py_f_works_from_a_plain_script(tmp_path):
    """In a plain script (no IPython, no use_namespace) Julia's `py.f` finds the script's
    own f, also when Julia was called through juliacall's wrapper methods."""
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(CHILD_SCRIPT_CALLS_PY_F))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "py.f from Julia: 2" in done.stdout and "through a call: 42" in done.stdout


@needs_julia
def test_julia_started_by_the_user_is_used(tmp_path):
    """When the user imported juliacall first, polymagic uses that Julia (it does not
    look for another, and juliacall does not start twice)."""
    done = subprocess.run([sys.executable, "-c", "import juliacall, polymagic as pm; "
                           "print('sum:', pm.julia.eval('1 + 1'), pm.julia.install)"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "sum: 2 None" in done.stdout


@needs_julia
def test_other_threads_are_refused(julia):
    """A call from another thread raises ThreadError naming the reason (signal handling
    off, juliacall's multi-threading caveats); the main thread still works."""
    errors = []
    worker = threading.Thread(target=lambda: _record(errors, lambda: julia.eval("1")))
    worker.start()
    worker.join()
    assert len(errors) == 1 and isinstance(errors[0], ThreadError)
    assert "PYTHON_JULIACALL_HANDLE_SIGNALS" in str(errors[0])
    assert julia.eval("1") == 1


def _record(errors, function):
    try:
        function()
    except Exception as error:  # collected for the assertion in the main thread
        errors.append(error)


@needs_julia
def test_julia_error_traceback_lists_julia_frames(julia):
    """A Julia error's Python traceback carries the Julia functions and cell lines."""
    import traceback
    from polymagic.tracebacks import foreign_frames
    error = julia_error(lambda: julia.eval(
        "inner_fail(x) = error(\"deep \", x)\nouter_ok(x) = inner_fail(x + 1)\n"
        "outer_ok(1)", filename="cell-tb"))
    frames = foreign_frames(error)
    assert any(frame.startswith("Julia:inner_fail:1") for frame in frames), frames
    assert any(frame.startswith("Julia:outer_ok:2") for frame in frames), frames
    assert "cell-tb" in "".join(traceback.format_exception(error))

