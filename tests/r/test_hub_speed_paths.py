"""R's `py$name` on its fast paths (marshal/r_shim_hub.c): the closure kept per name is
handed out again only while the name holds the same callable; every other `py$`
behaviour (rebinding, missing names, values, mappings, R functions) stays as it was.
Ctrl-C in Python code R calls back, and in R code that code calls, with the runtime
shim's handler answering for Python there without a system call (bridges/r/signals.c)."""
import collections
import gc
import subprocess
import sys
import textwrap
import weakref

import pytest

import polymagic as pm
from polymagic import hub


def test_rebinding_a_function_is_seen_by_a_closure_that_already_looked_it_up(space):
    """An R function that used `py$f` calls the new `f` after Python rebinds it."""
    call_f = pm.R.eval("function() py$f()")
    space["f"] = lambda: "first"
    assert [call_f(), call_f()] == ["first", "first"]
    space["f"] = lambda: "second"
    assert call_f() == "second"


def test_rebinding_a_builtin_callable_is_seen_too(space):
    """Callables that are not plain functions (a builtin, an instance with __call__)
    are kept and rebound the same way."""
    class Doubler:
        def __call__(self, x):
            return 2 * x
    call_f = pm.R.eval("function(x) py$f(x)")
    space["f"] = abs
    assert call_f(-3) == 3
    space["f"] = Doubler()
    assert call_f(-3) == -6
    space["f"] = Doubler()   # another instance: a new closure over it
    assert call_f(5) == 10


def test_the_same_callable_gives_the_same_r_closure(space):
    """While the name holds the same callable, `py$f` is one R closure, not a new one."""
    space["f"] = lambda x: x
    assert pm.R.eval("identical(py$f, py$f)") is True
    assert pm.R.eval("g <- py$f; space_f <- py$f; identical(g, space_f)") is True


def test_changing_the_closure_in_r_does_not_change_what_py_gives(space):
    """R copies the kept closure before changing it: an attribute set on one copy is
    not seen on the next `py$f`."""
    space["f"] = lambda x: x + 1
    assert pm.R.eval("g <- py$f; attr(g, 'tag') <- 'mine'; attr(g, 'tag')") == "mine"
    assert pm.R.eval("is.null(attr(py$f, 'tag'))") is True
    assert pm.R.eval("py$f(1)") == 2


def test_a_name_rebound_to_a_value_gives_the_value_and_releases_the_function(space):
    """Rebinding the name to a number gives R the number, and the function R no longer
    holds is released."""
    def f():
        return 1
    alive = weakref.ref(f)
    space["f"] = f
    assert pm.R.eval("py$f()") == 1
    del f
    space["f"] = 2.5
    assert pm.R.eval("py$f") == 2.5
    pm.R.eval("invisible(gc())")
    gc.collect()
    assert alive() is None


def test_missing_name_names_it_and_the_asking_language(space):
    """An unknown name raises HubNameError with the hub's message; R works afterwards,
    and the name works once it is bound."""
    with pytest.raises(hub.HubNameError) as caught:
        pm.R.eval("py$nowhere(1)")
    assert "R asked the shared Python namespace for 'nowhere'" in str(caught.value)
    space["nowhere"] = lambda x: x * 10
    assert pm.R.eval("py$nowhere(1)") == 10


def test_double_bracket_takes_a_name_and_refuses_anything_else(space):
    """`py[["f"]]` is `py$f`; `py[[1]]` is an R error saying a name is needed."""
    space["f"] = lambda: "via brackets"
    assert pm.R.eval('py[["f"]]()') == "via brackets"
    with pytest.raises(pm.RError, match="takes one name, a string"):
        pm.R.eval("py[[1]]")
    assert pm.R.eval("1 + 1") == 2


def test_a_name_r_has_no_symbol_for_is_still_looked_up(space):
    """An empty name (R has no symbol for it) is looked up like any other: missing, it
    is the hub's error; bound, its value."""
    with pytest.raises(hub.HubNameError, match="for ''"):
        pm.R.eval('py[[""]]')
    space[""] = lambda: "unnamed"
    assert pm.R.eval('py[[""]]()') == "unnamed"
    assert pm.R.eval('py[[""]]()') == "unnamed"


def test_a_non_ascii_name_is_found(space):
    """Names are looked up as UTF-8 text."""
    space["café"] = lambda: "crème"
    assert pm.R.eval("py$`café`()") == "crème"


def test_an_r_function_in_the_namespace_comes_back_as_itself(space):
    """A name holding an R function gives R that very function."""
    space["r_twice"] = pm.R.eval("r_twice <- function(x) 2 * x")
    assert pm.R.eval("identical(py$r_twice, r_twice)") is True
    assert pm.R.eval("py$r_twice(4)") == 8


def test_the_namespace_is_read_as_a_mapping(space):
    """The namespace's own lookup rules apply (a defaultdict answers every name), and
    an exception its lookup raises reaches Python as itself."""
    hub.use_namespace(collections.defaultdict(lambda: 7.0))
    assert pm.R.eval("py$anything") == 7.0

    class Refusing(dict):
        def __missing__(self, key):
            raise LookupError(f"no {key} here")
    hub.use_namespace(Refusing())
    with pytest.raises(LookupError, match="no thing here"):
        pm.R.eval("py$thing")


def test_values_are_converted_at_each_lookup(space):
    """Non-callable values are converted afresh at every lookup."""
    space["x"] = 1
    assert pm.R.eval("py$x") == 1
    space["x"] = "text"
    assert pm.R.eval("py$x") == "text"
    space["x"] = None
    assert pm.R.eval("is.null(py$x)") is True


CTRL_C_CHILD = textwrap.dedent("""
    import os, signal, threading, time
    import polymagic as pm
    space = {}
    pm.use_namespace(space)
    spin_r = pm.R.eval("function() repeat {}")
    space["sleep_py"] = lambda: time.sleep(30)
    space["spin_r_from_py"] = lambda: spin_r()
    space["plain_py"] = lambda: 5
    cases = {
        "python callback": pm.R.eval("function() py$sleep_py()"),
        "r under a python callback": pm.R.eval("function() py$spin_r_from_py()"),
        "r after a python callback": pm.R.eval("function() { py$plain_py(); repeat {} }"),
    }
    for name, function in cases.items():
        threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT)).start()
        started = time.monotonic()
        try:
            function()
            print(name, "returned")
        except KeyboardInterrupt:
            print(name, "KeyboardInterrupt", round(time.monotonic() - started))
    print("after:", pm.R.eval("py$plain_py() + 1"))
    threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT)).start()
    try:
        time.sleep(30)
    except KeyboardInterrupt:
        print("python alone: KeyboardInterrupt")
""")


def test_ctrl_c_stops_python_called_back_from_r_and_r_called_from_there():
    """Ctrl-C raises KeyboardInterrupt in a long Python callback R made, in an R loop
    that callback called, and in R code running after a callback returned; R works
    afterwards, and so does Ctrl-C in plain Python (child process)."""
    result = subprocess.run([sys.executable, "-c", CTRL_C_CHILD], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    stopped = [line.rsplit(" ", 2) for line in lines[:3]]
    assert [name for name, _, _ in stopped] == [
        "python callback", "r under a python callback", "r after a python callback"]
    assert all(what == "KeyboardInterrupt" for _, what, _ in stopped), result.stdout
    # stopped by the signal, long before the 30 s sleep (or the endless loops) would end
    assert all(int(seconds) < 15 for _, _, seconds in stopped), result.stdout
    assert lines[3:] == ["after: 6.0", "python alone: KeyboardInterrupt"], result.stdout
