"""The shared namespace: R and Python reach each other's functions, recursion works to
depth, deep recursion raises RecursionError, and errors carry every layer's frames."""
import json
import subprocess
import sys
import textwrap
import traceback

import numpy as np
import pytest

import polymagic as pm
from polymagic import hub
from polymagic.tracebacks import foreign_frames



def test_r_calls_python_function_and_reads_arrays_as_views(space):
    """`py$f(x)` in R calls the Python function; `py$x` is the NumPy buffer, not a copy."""
    space["triple"] = lambda v: 3 * v
    space["data"] = np.arange(5.0)
    assert pm.R.eval("py$triple(14)") == 42
    pm.R.eval("seen <- py$data")
    assert np.shares_memory(pm.R["seen"], space["data"])


def test_r_assigns_into_the_namespace(space):
    """`py$name <- value` in R binds the converted value in the Python namespace."""
    pm.R.eval("py$from_r <- c(1.5, 2.5)")
    assert list(space["from_r"]) == [1.5, 2.5]


def test_missing_name_is_a_clear_error_and_r_still_works(space):
    """An unknown `py$` name raises HubNameError naming it; R works afterwards."""
    with pytest.raises(hub.HubNameError, match="'nowhere'"):
        pm.R.eval("py$nowhere(1)")
    assert pm.R.eval("2 + 2") == 4


def test_redefinition_is_seen_at_the_next_call(space):
    """Names are looked up at call time: rebinding a Python function changes what R calls."""
    space["g"] = lambda: "first"
    assert pm.R.eval("py$g()") == "first"
    space["g"] = lambda: "second"
    assert pm.R.eval("py$g()") == "second"


def test_caller_globals_are_the_default_namespace(monkeypatch):
    """Without use_namespace or IPython, the caller's module globals are shared."""
    monkeypatch.setitem(hub._state, "explicit", None)
    monkeypatch.setitem(hub._state, "ipython", None)  # another test may have loaded it
    globals()["_hub_default_probe"] = lambda: 7
    try:
        assert pm.R.eval("py$`_hub_default_probe`()") == 7
    finally:
        del globals()["_hub_default_probe"]


def test_fib_split_between_python_and_r(space):
    """fib(20) with Python and R calling each other gives 6765."""
    space["fib_r"] = pm.R.eval(
        "function(n) if (n < 2L) n else py$fib_py(n - 1L) + py$fib_py(n - 2L)")

    def fib_py(n):
        return n if n < 2 else space["fib_r"](n - 1) + space["fib_r"](n - 2)
    space["fib_py"] = fib_py
    assert fib_py(20) == 6765


def test_mutual_recursion_reaches_depth_300(space):
    """Python -> R -> Python ... to depth 300 returns the right count."""
    space["down_r"] = pm.R.eval("function(n) if (n == 0L) 0L else py$down_py(n - 1L) + 1L")
    space["down_py"] = lambda n: 0 if n == 0 else space["down_r"](n - 1) + 1
    assert space["down_py"](300) == 300


def test_error_at_the_bottom_shows_every_layer(space):
    """An R stop() under Python -> R -> Python -> R arrives as one RError whose
    traceback lists the R frames of both R layers in call order."""
    pm.R.eval("outer_r <- function(x) py$middle_py(x)\n"
              "inner_r <- function(x) {\n  stop('bottom reached: ', x)\n}")
    space["middle_py"] = lambda x: pm.R["inner_r"](x)
    outer = pm.R["outer_r"]
    with pytest.raises(pm.RError, match="bottom reached: 3") as caught:
        outer(3)
    frames = foreign_frames(caught.value)
    assert [f.split(":")[1] for f in frames] == ["outer_r", "inner_r"], frames
    text = "".join(traceback.format_exception(caught.value))
    assert text.index("outer_r") < text.index("<lambda>") < text.index("inner_r"), text
    assert "stop('bottom reached: ', x)" in text  # the R source line itself


DEEP = textwrap.dedent("""
    import json, sys
    import polymagic as pm
    sys.setrecursionlimit({limit})
    down_r = pm.R.eval("function(n) if (n == 0) 0 else py$down_py(n - 1) + 1")
    def down_py(n):
        return 0 if n == 0 else down_r(n - 1) + 1
    try:
        down_py(10 ** 6)
    except RecursionError as error:
        kind = type(error).__module__ + "." + type(error).__qualname__
        print(json.dumps({{"class": kind, "message": str(error)}}))
    print("after:", down_py(10))
""")
# What stops each run: Python's own limit, or, with the limit raised, polymagic's guard
# for entering R (bridges/r/signals.c), before R's own C stack check would.
PYTHON_LIMIT = ("builtins.RecursionError", "maximum recursion depth exceeded")
R_ENTRY_GUARD = ("polymagic.errors.RRecursionError",
                 "R error: maximum recursion depth exceeded: too little C stack is left "
                 "to enter R (recursion through R is too deep)")


@pytest.mark.parametrize("limit, expected", [(1000, PYTHON_LIMIT), (10 ** 6, R_ENTRY_GUARD)],
                         ids=["default-limit", "raised-limit"])
def test_too_deep_recursion_raises_recursion_error_not_a_crash(limit, expected):
    """Python <-> R recursion past the stack raises RecursionError: Python's own at
    its default limit; with the limit raised, polymagic's guard for entering R
    (RRecursionError with its message, not R's "C stack usage" error). The process survives and R works."""
    result = subprocess.run([sys.executable, "-c", DEEP.format(limit=limit)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    caught, after = result.stdout.splitlines()[-2:]
    caught = json.loads(caught)
    # Python names where its limit struck ("... exceeded in comparison"): a prefix
    assert (caught["class"], caught["message"][:len(expected[1])]) == expected, caught
    assert after == "after: 10.0", result.stdout


def test_recursion_through_python_r_cpp_and_cython_reaches_depth_300(space):
    """A cycle Python -> R -> C++ -> Cython -> Python ... is correct at depth 300 (with
    Python's default recursion limit); far deeper, it raises RecursionError."""
    space["down_r"] = pm.R.eval(
        "function(n) if (n <= 0L) 0L else py$down_cpp(n - 1L) + 1L")
    space["down_cpp"] = pm.cpp(
        "#include <polymagic.hpp>\nPM_PYTHON long down_cy(long n);\n"
        "long down_cpp(long n) { return n <= 0 ? 0 : down_cy(n - 1) + 1; }\n").down_cpp
    space["down_cy"] = pm.cython(
        "from polymagic import py\n"
        "def down_cy(long n):\n    return 0 if n <= 0 else py.down_py(n - 1) + 1\n").down_cy
    space["down_py"] = lambda n: 0 if n <= 0 else space["down_r"](n - 1) + 1
    assert space["down_py"](300) == 300
    with pytest.raises(RecursionError):
        space["down_py"](5000)
    assert space["down_py"](8) == 8
