"""The R engine (polymagic.bridges.r) with the real embedded R: values, calls both ways,
errors, warnings, output, interrupts, threads."""
import os
import signal
import threading
import warnings

import numpy as np
import pytest

pytest.importorskip("rpy2", reason="rpy2 is not installed (pip install 'polymagic[r]')")

import polymagic as pm  # noqa: E402
from polymagic.errors import RError, RWarning, ThreadError  # noqa: E402



def _interrupt_after(seconds):
    timer = threading.Timer(seconds, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    return timer


def test_eval_returns_last_value(R):
    """eval runs every expression and returns the last one, converted."""
    assert R.eval("a <- 20; b <- 22\na + b") == 42


def test_eval_of_empty_code_is_none(R):
    """Code with no expressions (only a comment) returns None."""
    assert R.eval("# nothing here") is None


def test_assign_and_get_round_trip(R):
    """R[name] = value binds in globalenv; R[name] reads it back."""
    R["greeting"] = "hello"
    assert R.eval("paste(greeting, 'R')") == "hello R"
    assert R["greeting"] == "hello"
    assert "greeting" in R


def test_array_pushed_and_pulled_is_a_view(R):
    """A float64 array crosses to R and back as the same memory."""
    data = np.arange(1e5)
    R["shared"] = data
    assert R.eval("sum(shared)") == data.sum()
    back = R["shared"]
    assert np.shares_memory(back, data)
    data[0] = 1e9
    assert R.eval("shared[1]") == 1e9


def test_unknown_name_is_a_key_error(R):
    """Reading a name R does not know raises RNameError, a KeyError naming it."""
    with pytest.raises(KeyError, match="no_such_variable"):
        R["no_such_variable"]
    assert R.eval("1 + 1") == 2


def test_r_function_called_from_python(R):
    """An R function is a Python callable; positional and keyword args convert."""
    power = R.eval("function(x, p = 2) x ^ p")
    assert power(3) == 9
    assert power(2, p=10) == 1024
    assert isinstance(power, pm.bridges.r.RFunction)


def test_python_function_called_from_r(R):
    """A Python callable assigned into R is an R function R code can call."""
    R["py_add"] = lambda a, b: a + b
    assert R.eval("py_add(40, 2)") == 42


CROSSING_VALUES = [0, -7, 2**31 - 1, 2**40, 2.5, True, False, None, "text", "ünï", 3j,
                   float("inf")]


@pytest.mark.parametrize("value", CROSSING_VALUES, ids=repr)
def test_scalars_cross_an_r_call_and_a_callback_unchanged(R, value):
    """The calls' own C conversions (r_shim_calls.c, r_shim_closures.c) give what
    to_r/to_python give: each value goes Python -> R -> Python callback -> R -> Python
    with its type and value (an int past R's integer range becomes a float)."""
    R["py_echo"] = lambda x: (x, type(x).__name__)
    echo = R.eval("function(x) { back <- py_echo(x); list(x, back[[1]], back[[2]]) }")
    first, second, seen_type = echo(value)
    expected = float(value) if value == 2**40 else value
    assert first == expected and type(first) is type(expected)
    assert second == expected and seen_type == type(expected).__name__


def test_r_call_keywords_and_other_types_cross(R):
    """Keywords become named arguments; lists, arrays and R functions go through the
    registry; a str that R cannot hold is a ConversionError and R stays usable."""
    named = R.eval("function(...) names(list(...))")
    assert named(1, b=2, c=None) == ["", "b", "c"]
    total = R.eval("function(x, f) f(sum(unlist(x)))")
    assert total(np.arange(4.0), R.eval("function(v) v * 10")) == 60.0
    with pytest.raises(pm.ConversionError, match="NUL"):
        total("a\0b", None)
    assert total([1, 2], R.eval("identity")) == 3


def test_python_function_returned_to_r_is_a_working_r_function(R):
    """A plain Python function a callback returns is an R function that calls it (the
    hub's py$f path), and it is released when R lets go of it."""
    import gc
    import weakref

    def make():
        def triple(v):
            return v * 3
        held.append(weakref.ref(triple))
        return triple
    held = []
    R["py_make"] = make
    assert R.eval("py_make()(14)") == 42
    R.eval("invisible(gc())")
    gc.collect()
    assert held[0]() is None


def test_r_error_has_message_stack_and_cell_line(R):
    """An R error raises RError with R's message, the R stack and the failing line."""
    code = "inner <- function(x) stop('too big: ', x)\nouter <- function(x) inner(x)\nouter(7)"
    with pytest.raises(RError) as caught:
        R.eval(code)
    error = caught.value
    assert "too big: 7" in error.message
    assert any(frame.startswith("outer(7)") for frame in error.stack)
    assert any(frame.startswith("inner(x)") for frame in error.stack)
    assert error.line == 1  # stop() is on line 1 of this cell, inside inner()
    assert "cell line 1" in str(error)
    assert R.eval("2 + 2") == 4


def test_top_level_error_names_its_line(R):
    """An error at top level reports the line of the failing expression."""
    with pytest.raises(RError) as caught:
        R.eval("ok <- 1\nok + 1\nlog('a')")
    assert caught.value.line == 3
    assert "non-numeric argument" in caught.value.message


def test_parse_error_names_line_and_column(R):
    """A syntax error raises RError naming the line and column; R still works."""
    with pytest.raises(RError, match=r"line 2, column 3") as caught:
        R.eval("x <- 1\ny y\n")
    assert caught.value.line == 2
    assert R.eval("3") == 3


def test_error_from_r_function_call(R):
    """An R error inside an R function called from Python raises RError with its stack."""
    fails = R.eval("function(n) {\n  if (n > 1) stop('n must be 1')\n  n\n}")
    with pytest.raises(RError, match="n must be 1") as caught:
        fails(5)
    assert caught.value.stack and caught.value.line == 2
    assert fails(1) == 1


def test_error_is_not_echoed_on_stderr(R, capfd):
    """R's own 'Error in ...' echo is not printed: the RError carries it."""
    with pytest.raises(RError):
        R.eval("stop('quiet please')")
    assert "quiet please" not in capfd.readouterr().err


def test_try_still_prints_its_message(R, capsys):
    """try() in R code prints its error message as R does (only raised errors are held)."""
    R.eval("invisible(try(stop('shown by try')))")
    assert "shown by try" in capsys.readouterr().err


def test_geterrmessage_keeps_the_last_error_across_evaluations(R):
    """geterrmessage() reads the last error, as in R's console: from the same
    expression, a later line of the cell, or a later cell."""
    assert R.eval("invisible(try(stop('kept'), silent = TRUE))\ngeterrmessage()") \
        == "Error in try(stop(\"kept\"), silent = TRUE) : kept\n"
    assert R.eval("geterrmessage()").endswith(": kept\n")


def test_python_exception_in_callback_is_reraised_with_r_frames(R):
    """A Python exception raised in a callback inside R comes back as itself, its
    traceback showing the R frames it crossed."""
    class Custom(Exception):
        pass

    def explode(x):
        raise Custom("from python")

    R["explode"] = explode
    with pytest.raises(Custom, match="from python") as caught:
        R.eval("via_r <- function(v) explode(v)\nvia_r(1)")
    from polymagic.tracebacks import foreign_frames
    frames = foreign_frames(caught.value)
    assert frames[0] == "R:<top level>:2" and frames[1].startswith("R:via_r:1"), frames
    assert R.eval("5") == 5


def test_warnings_become_python_warnings_in_order(R):
    """R warnings are re-issued as RWarning, in the order R raised them."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        R.eval("warning('first'); as.integer('x'); warning('third'); 1")
    messages = [str(w.message) for w in caught if issubclass(w.category, RWarning)]
    assert len(messages) == 3
    assert "first" in messages[0] and "coercion" in messages[1] and "third" in messages[2]


def test_warning_from_r_function_call(R):
    """A warning inside an R function called from Python is an RWarning too."""
    warns = R.eval("function() { warning('careful'); 1 }")
    with pytest.warns(RWarning, match="careful"):
        assert warns() == 1


def test_suppressed_warnings_stay_suppressed(R):
    """suppressWarnings() in R code still silences the warning."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        R.eval("suppressWarnings(warning('hidden'))")
    assert not [w for w in caught if issubclass(w.category, RWarning)]


def test_printed_output_goes_to_sys_stdout_in_order(R, capsys):
    """print()/cat() output reaches sys.stdout in the order R printed it."""
    R.eval("cat('one\\n'); print('two'); cat('three\\n')")
    out = capsys.readouterr().out
    assert out.index("one") < out.index("two") < out.index("three")


def test_message_goes_to_stderr(R, capsys):
    """message() output reaches sys.stderr."""
    R.eval("message('to stderr')")
    assert "to stderr" in capsys.readouterr().err


def test_run_cell_prints_visible_values_like_the_console(R, capsys):
    """run_cell auto-prints each visible top-level value, not invisible ones."""
    result = R.run_cell("v <- 5\nv * 2\ninvisible(99)\nv + 1")
    out = capsys.readouterr().out
    assert "[1] 10" in out and "[1] 6" in out and "99" not in out
    assert result.visible and R.to_python(result.value) == 6


def test_interrupt_stops_a_long_r_loop(R):
    """SIGINT during `while (TRUE) {}` raises KeyboardInterrupt; R works afterwards."""
    handler_before = signal.getsignal(signal.SIGINT)
    timer = _interrupt_after(0.3)
    with pytest.raises(KeyboardInterrupt):
        R.eval("while (TRUE) {}")
    timer.join()
    assert R.eval("1 + 1") == 2
    assert signal.getsignal(signal.SIGINT) is handler_before


def test_interrupt_stops_a_long_r_function_call(R):
    """SIGINT during an R function called from Python raises KeyboardInterrupt."""
    spin = R.eval("function() repeat {}")
    timer = _interrupt_after(0.3)
    with pytest.raises(KeyboardInterrupt):
        spin()
    timer.join()
    assert R.eval("3") == 3


def test_python_sigint_works_again_after_r(R):
    """After R returns, SIGINT interrupts Python code as usual."""
    R.eval("1")
    timer = _interrupt_after(0.1)
    with pytest.raises(KeyboardInterrupt):
        threading.Event().wait(5)
    timer.join()


def test_other_thread_is_refused(R):
    """Calling R from another Python thread raises ThreadError instead of crashing."""
    errors = []
    square = R.eval("function(x) x * x")

    def from_other_thread():
        for attempt in (lambda: R.eval("1"), lambda: square(2), lambda: R["pi"]):
            try:
                attempt()
            except ThreadError as error:
                errors.append(error)

    worker = threading.Thread(target=from_other_thread)
    worker.start()
    worker.join()
    assert len(errors) == 3
    assert square(3) == 9


def test_r_to_python_to_r_recursion(R):
    """Calls recurse across the boundary: R calls Python which calls R again."""
    r_double = R.eval("function(x) x * 2")
    R["py_then_r"] = lambda x: r_double(x) + 1
    assert R.eval("py_then_r(20)") == 41


def test_missing_r_is_bridge_unavailable_with_the_fix():
    """With no R on PATH and no R_HOME, the first R use raises BridgeUnavailable saying
    how to install R, quickly, and Python carries on."""
    import os
    import subprocess
    import sys
    code = ("import time, polymagic as pm\n"
            "started = time.perf_counter()\n"
            "try:\n"
            "    pm.R.eval('1')\n"
            "except pm.BridgeUnavailable as error:\n"
            "    print('unavailable in', round(time.perf_counter() - started, 2), 's:', error)\n"
            "print('python goes on:', 1 + 1)\n")
    environment = {key: value for key, value in os.environ.items() if key != "R_HOME"}
    environment["PATH"] = os.path.dirname(sys.executable)  # python, but no R
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=environment, timeout=60)
    assert "R is not available: no R found" in result.stdout, result.stdout + result.stderr
    assert "apt-get install -y r-base-core r-base-dev" in result.stdout
    assert "python goes on: 2" in result.stdout


def test_starting_r_leaves_child_pythons_working(R):
    """After R starts, LD_LIBRARY_PATH is as before, so a child Python loads its own
    libpython (rpy2 puts R's library folders there; `import ssl` then failed)."""
    import os
    import subprocess
    import sys
    assert "/usr/lib/R/lib" not in os.environ.get("LD_LIBRARY_PATH", "")
    child = subprocess.run([sys.executable, "-c", "import ssl; print('ok')"],
                           capture_output=True, text=True, timeout=60)
    assert child.stdout.strip() == "ok", child.stderr


def test_r_warning_in_a_python_c_script_is_a_warning():
    """An R warning from `python -c` code is shown as a warning and the script goes on
    (the warning machinery once asked `-c`'s loader for source and raised ImportError)."""
    import subprocess
    import sys
    code = "import polymagic as pm\npm.R.eval('warning(\"careful\")')\nprint('went on')"
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           timeout=120)
    assert child.stdout.strip() == "went on", child.stderr
    assert "RWarning: careful" in child.stderr


def test_library_code_is_named_apart_from_notebook_cells(R):
    """pm.R.eval code is `<R code k>`, never `<R cell n>` (the magics' name for In [n]),
    so it cannot replace a notebook cell's source in tracebacks."""
    import re
    import traceback
    with pytest.raises(RError) as failure:
        R.eval("stop('named')")
    shown = "".join(traceback.format_exception(failure.value))
    assert re.search(r'File "<R code \d+>", line 1, in <top level>', shown), shown
    assert "<R cell" not in shown
