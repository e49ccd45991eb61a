"""A mistake made through R never costs the session (issue 9, R section).

Each case that ended, hung or crashed the process before runs in a child process,
which must survive (a clear Python exception instead) and keep working afterwards.
The cases that only gave a wrong answer (auto-print, memory) run here, with the R
fixture. (A damaged R shim in the build cache: tests/reliability/test_cache_faults.py.)
"""
from __future__ import annotations

import linecache
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from polymagic.errors import ConversionError, RError

pytestmark = pytest.mark.usefixtures("R")


def run_child(code: str, timeout: float = 120) -> str:
    """Run `code` in a fresh Python; it must end normally. Its stdout."""
    finished = subprocess.run([sys.executable, "-c", textwrap.dedent(code)],
                              capture_output=True, text=True, timeout=timeout)
    assert finished.returncode == 0, (
        f"child ended with status {finished.returncode}\n"
        f"stdout:\n{finished.stdout}\nstderr:\n{finished.stderr[-3000:]}")
    return finished.stdout


# ---- a str holding NUL ------------------------------------------------------------------

NUL_CHILD = """
    import polymagic as pm
    from polymagic.errors import ConversionError

    def attempt(label, action):
        try:
            action()
        except ConversionError as error:
            print(label, "ConversionError", error)
        else:
            print(label, "no error")

    identity = pm.R.eval("function(x) x")
    attempt("pushed", lambda: pm.R.__setitem__("x", "a\\0b"))
    attempt("argument", lambda: identity("a\\0b"))
    attempt("in-a-list", lambda: identity(["fine", "a\\0b"]))
    attempt("dict-key", lambda: identity({"a\\0b": 1}))
    attempt("keyword-name", lambda: identity(**{"a\\0b": 1}))
    pm.R["give_nul"] = lambda: "a\\0b"
    attempt("callback-result", lambda: pm.R.eval("give_nul()"))
    attempt("code", lambda: pm.R.eval("x <- 'a\\0b'"))
    attempt("variable-name", lambda: pm.R.__getitem__("a\\0b"))
    attempt("lone-surrogate-value", lambda: pm.R.__setitem__("x", "a\\ud800"))
    attempt("lone-surrogate-code", lambda: pm.R.eval("x <- 'a\\ud800'"))
    print("after:", pm.R.eval("paste('still', 'working')"), identity("ok"))
"""


def test_str_with_nul_is_a_conversion_error_and_r_goes_on():
    """A str holding NUL, pushed, passed, inside a list or dict, as a keyword, returned
    from a Python callback R called, as code or as a name: ConversionError naming
    NUL every time (before: R printed "embedded nul in string" and the process ended,
    or the callback hung); a lone surrogate too; R works afterwards."""
    out = run_child(NUL_CHILD, timeout=60)
    for label in ("pushed", "argument", "in-a-list", "dict-key", "keyword-name",
                  "callback-result", "code", "variable-name"):
        line = next((row for row in out.splitlines() if row.startswith(label + " ")), "")
        assert "ConversionError" in line and "NUL" in line, out
    for label in ("lone-surrogate-value", "lone-surrogate-code"):
        line = next((row for row in out.splitlines() if row.startswith(label + " ")), "")
        assert "ConversionError" in line and "not valid text" in line, out
    assert "after: still working ok" in out


# ---- R errors inside the conversion shim ------------------------------------------------

SHIM_CHILD = """
    import numpy as np
    import polymagic as pm
    from polymagic.errors import ConversionError
    from polymagic.marshal import r as marshal, r_shim

    try:  # R's translation of a "bytes" string raises an R error inside the shim
        pm.R.eval('x <- "caf\\\\xe9"; Encoding(x) <- "bytes"; x')
    except ConversionError as error:
        print("bytes string:", type(error).__name__, error)
    try:  # an allocation that fails (2**40 doubles: 8 TB)
        r_shim.shim().alloc(marshal.REALSXP, 2**40, None)
    except ConversionError as error:
        print("huge vector:", type(error).__name__, error)
    pm.R.eval("locked <- 1; lockBinding('locked', globalenv())")
    try:  # R refuses the binding: before, its error unwound through Python
        pm.R["locked"] = 2
    except pm.RError as error:
        print("locked binding:", type(error).__name__, error.message)
    pm.R.eval("makeActiveBinding('active', function() stop('no reading'), globalenv())")
    try:
        pm.R["active"]
    except pm.RError as error:
        print("active binding:", type(error).__name__, error.message)
    print("deferred strings:", pm.R.eval("as.character(1:3)"))
    print("compact sequence:", pm.R.eval("1:5").tolist())
    print("after:", pm.R.eval("1L + 1L"))
"""


def test_r_errors_inside_the_shim_are_python_exceptions():
    """An R error raised while converting (a string R refuses to translate, an
    allocation R refuses) is a ConversionError carrying R's message, and R refusing
    an assignment (a locked binding) or a lookup (an active binding that fails) is an
    RError: R's error never unwinds through Python (before, the locked binding ended
    the process). Other packages' ALTREP vectors (deferred strings, compact
    sequences), which run R code to be read, convert as before."""
    out = run_child(SHIM_CHILD)
    assert 'bytes string: ConversionError R could not read this string: ' \
           'translating strings with "bytes" encoding is not allowed' in out, out
    assert "huge vector: ConversionError R could not allocate this vector: " \
           "cannot allocate vector of size" in out, out
    assert "locked binding: RError R could not assign this variable: cannot change " \
           "value of locked binding for 'locked'" in out, out
    assert "active binding: RError no reading" in out, out
    assert "deferred strings: ['1', '2', '3']" in out
    assert "compact sequence: [1, 2, 3, 4, 5]" in out
    assert "after: 2" in out


# ---- quit() ------------------------------------------------------------------------------

QUIT_CHILD = """
    import polymagic as pm
    for code in ("quit()", "q('no', status = 3)", "f <- function() base::quit(); f()",
                 ".Internal(quit('no', 0L, FALSE))"):
        try:
            pm.R.eval(code)
        except pm.RError as error:
            print("RError:", code, "|", error.message.replace("\\n", " "))
    print("after:", pm.R.eval("40L + 2L"))
"""


def test_quit_raises_r_error_and_python_goes_on():
    """quit(), q(status = 3), a quit() deep in a function and R's internal quit raise
    an RError saying why quit() was not run (before: the process ended silently with
    R's status); the process ends normally later, and R works until then."""
    out = run_child(QUIT_CHILD)
    rows = [row for row in out.splitlines() if row.startswith("RError:")]
    assert len(rows) == 4, out
    for row in rows:
        assert "quit() was not run: R lives inside this Python process" in row, row
    assert "after: 42" in out


# ---- Ctrl-C ------------------------------------------------------------------------------

INTERRUPT_CHILD = """
    import os, sys, time, traceback
    import polymagic as pm
    how = sys.argv[1]
    sleep_in_function = pm.R.eval("function(seconds) Sys.sleep(seconds)")
    print("ready", flush=True)
    started = time.monotonic()
    try:
        if how == "eval-sleep":
            pm.R.eval("Sys.sleep(60)")
        elif how == "call-sleep":
            sleep_in_function(60)
        elif how == "busy-loop":
            pm.R.eval("repeat {}")
    except KeyboardInterrupt as error:
        frames = [frame.filename for frame in traceback.extract_tb(error.__traceback__)]
        own = [name for name in frames if os.sep + "polymagic" + os.sep in name]
        print("KeyboardInterrupt after", round(time.monotonic() - started), "s")
        print("polymagic frames:", own)
    except BaseException as error:
        print("wrong exception:", type(error).__name__, error)
    print("after:", pm.R.eval("1L + 1L"))
"""


def interrupt_child(code: str, *arguments: str) -> str:
    """Start `code`, send SIGINT once it printed "ready"; its stdout (it must end)."""
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *arguments],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready", child.stderr.read()
        # the R call starts right after "ready"; the signal comes well inside it
        time.sleep(1.0)
        os.kill(child.pid, signal.SIGINT)
        out, err = child.communicate(timeout=60)
    finally:
        child.kill()
    assert child.returncode == 0, f"status {child.returncode}\n{out}\n{err[-3000:]}"
    return out


@pytest.mark.parametrize("how", ["eval-sleep", "call-sleep", "busy-loop"])
def test_ctrl_c_in_blocking_r_raises_keyboard_interrupt_without_our_frames(how):
    """Ctrl-C during Sys.sleep() (R swaps in its own SIGINT handler there), in an R
    function called from Python, or in a busy R loop raises KeyboardInterrupt (before:
    'RError: R stopped without a message' for Sys.sleep) long before the 60 s call
    would end; no polymagic frame is in its traceback; R works afterwards."""
    out = interrupt_child(INTERRUPT_CHILD, how)
    assert "KeyboardInterrupt after" in out, out
    seconds = int(out.split("KeyboardInterrupt after")[1].split()[0])
    assert seconds < 50, out  # stopped by the signal, not by the end of the call
    assert "polymagic frames: []" in out, out
    assert "after: 2" in out


IPYTHON_INTERRUPT_CHILD = """
    from IPython.testing.globalipapp import start_ipython
    ip = start_ipython()
    ip.run_line_magic("load_ext", "polymagic")
    ip.run_cell("%R 0L")  # R is up before the signal comes
    print("ready", flush=True)
    result = ip.run_cell("%%R\\nSys.sleep(60)")
    print("error:", type(result.error_in_exec).__name__, flush=True)
    print("after:", ip.run_cell("%R 1L + 1L").result)
"""


def test_ctrl_c_in_an_r_cell_shows_a_clean_keyboard_interrupt():
    """Ctrl-C during a %%R cell's Sys.sleep(): IPython reports KeyboardInterrupt and its
    traceback shows no polymagic frame; the next cell runs."""
    pytest.importorskip("IPython")
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(IPYTHON_INTERRUPT_CHILD)],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        while not lines or lines[-1].strip() != "ready":
            line = child.stdout.readline()
            assert line, "".join(lines)
            lines.append(line)
        time.sleep(1.0)
        os.kill(child.pid, signal.SIGINT)
        out, _ = child.communicate(timeout=60)
    finally:
        child.kill()
    assert child.returncode == 0, out
    assert "error: KeyboardInterrupt" in out, out
    assert "after: [2]" in out or "after: 2" in out, out
    shown = out  # everything after "ready"
    assert os.sep + "polymagic" + os.sep not in shown, shown
    assert "R stopped without a message" not in shown


START_CHILD = """
    import os, signal, warnings
    import polymagic as pm
    from polymagic.bridges.r import engine
    install_hub = engine._Session._install_hub

    def install_hub_with_ctrl_c(session):
        install_hub(session)
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C while polymagic sets R up

    engine._Session._install_hub = install_hub_with_ctrl_c
    try:
        pm.R.eval("1L")
    except KeyboardInterrupt:
        print("KeyboardInterrupt")
    engine._Session._install_hub = install_hub
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        print("after:", pm.R.eval("2L"), pm.R.eval("function(x) x")(3))
        print("hub attached:", pm.R.eval("sum(search() == 'polymagic')"), "time(s)")
    print("warnings:", [str(warning.message) for warning in caught])
"""


def test_ctrl_c_while_r_starts_takes_effect_once_r_is_up():
    """Ctrl-C while polymagic starts R raises KeyboardInterrupt once the start is
    complete (before: the start stopped half-way, and the next call set R up again
    over the top); the next call just works, with one of everything."""
    out = run_child(START_CHILD)
    assert "KeyboardInterrupt" in out, out
    assert "after: 2 3" in out and "hub attached: 1 time(s)" in out, out
    assert "warnings: []" in out, out


# ---- the C stack when R starts in a worker thread ------------------------------------

THREAD_CHILD = """
    import threading
    import polymagic as pm

    def first_r_use_in_this_thread():
        try:
            pm.R.eval("options(expressions = 500000)\\n"
                      "deep <- function(n) deep(n + 1)\\n"
                      "deep(0)")
        except RecursionError as error:
            print("raised", type(error).__name__, "|", error.message)
        print("after:", pm.R.eval("1L + 1L"))

    worker = threading.Thread(target=first_r_use_in_this_thread)
    worker.start()
    worker.join()
"""


def test_r_started_in_a_worker_thread_keeps_its_c_stack_check():
    """R first started from a worker thread: runaway recursion in R raises
    RRecursionError (R's C stack check, measured on that thread's stack) instead of
    a segfault, and R works afterwards."""
    out = run_child(THREAD_CHILD)
    assert "raised RRecursionError | C stack usage" in out, out
    assert "after: 2" in out


RPY2_FIRST_CHILD = """
import rpy2.robjects  # R started by rpy2 itself (as rpy2's magic does): its check off
import polymagic as pm
try:
    pm.R.eval("options(expressions = 5e5); f <- function(n) f(n + 1); f(0)")
except Exception as error:
    print("raised", type(error).__name__, "|", str(error).splitlines()[0])
print("after:", int(pm.R.eval("1 + 1")))
"""


def test_r_started_by_rpy2_first_gets_its_c_stack_check_back():
    """R started through rpy2 before polymagic (rpy2 turns R's C stack check off):
    runaway recursion raises RRecursionError instead of a segfault."""
    out = run_child(RPY2_FIRST_CHILD)
    assert "raised RRecursionError | " in out and "C stack usage" in out, out
    assert "after: 2" in out


# ---- auto-print as R's console does -------------------------------------------------

def test_auto_print_dispatches_to_the_users_s3_and_s4_methods(R, capsys):
    """A cell's visible value is printed through the user's S3 print method and S4
    show method (as R's console does), and a quoted call prints as itself."""
    R.run_cell('print.pm_tagged <- function(x, ...) cat("<tagged", unclass(x), ">\\n")\n'
               'structure(7, class = "pm_tagged")')
    R.run_cell('setClass("PmPoint", representation(x = "numeric"))\n'
               'setMethod("show", "PmPoint", function(object) cat("PmPoint at ", object@x, "\\n", sep = ""))\n'
               'new("PmPoint", x = 3)')
    R.run_cell("quote(a + b)")
    assert capsys.readouterr().out.splitlines() == ["<tagged 7 >", "PmPoint at 3", "a + b"]


def test_error_in_a_print_method_is_an_r_error(R):
    """An error raised by the user's print method while auto-printing is an RError
    with the method's message and stack; R works afterwards."""
    with pytest.raises(RError, match="cannot print this") as caught:
        R.run_cell('print.pm_broken <- function(x, ...) stop("cannot print this")\n'
                   'structure(1, class = "pm_broken")')
    assert any(frame.startswith("print.pm_broken(x)") for frame in caught.value.stack)
    assert R.eval("1L") == 1


# ---- memory: what is kept for tracebacks is bounded -------------------------------------

def test_sources_kept_for_tracebacks_stay_within_the_budget(R):
    """Many evaluations of 1 MB of code keep at most the budget's worth of code
    (before: every source forever; 100 such evaluations cost hundreds of MB), forget
    the oldest from linecache too, and the newest cell is always kept so its errors
    still quote their line."""
    from polymagic.bridges.r import engine, sources
    kept = engine._session().sources
    megabyte = "x <- c(\n" + "1234567,\n" * ((1 << 20) // 9) + "1)\n"
    first_name = None
    for index in range(20):
        R.run_cell(megabyte, filename=f"<R big cell {index}>", print_visible=False)
        first_name = first_name or f"<R big cell {index}>"
    assert kept.total_bytes <= max(sources.BUDGET_BYTES, sources.cost(megabyte))
    big = [name for name in list(linecache.cache) if name.startswith("<R big cell")]
    assert 1 <= len(big) <= sources.BUDGET_BYTES // sources.cost(megabyte) + 1, big
    assert first_name not in kept and first_name not in linecache.cache
    with pytest.raises(RError) as caught:
        R.run_cell(megabyte + "stop('after the big cell')", filename="<R big cell last>")
    assert caught.value.source is not None and "stop('after the big cell')" in str(caught.value)


def test_many_small_evaluations_keep_a_bounded_number_of_cells(R):
    """More small evaluations than the cell limit keep at most that many sources;
    the oldest are forgotten from linecache too, the newest kept."""
    from polymagic.bridges.r import engine, sources
    names = [f"<R small cell {index}>" for index in range(sources.MAX_CELLS + 50)]
    for name in names:
        R.run_cell("1L", filename=name, print_visible=False)
    kept = engine._session().sources
    assert len(kept) <= sources.MAX_CELLS
    assert names[0] not in kept and names[0] not in linecache.cache
    assert names[-1] in kept and names[-1] in linecache.cache
    assert sum(name in linecache.cache for name in names) <= sources.MAX_CELLS


# ---- values that cannot cross never leave anything behind -------------------------------

def test_failed_conversion_binds_nothing(R):
    """A push that fails (a NUL inside a list) raises ConversionError and leaves the
    R variable as it was."""
    R["pm_kept"] = np.arange(3.0)
    with pytest.raises(ConversionError, match="NUL"):
        R["pm_kept"] = ["ok", "bad\0"]
    assert R["pm_kept"].tolist() == [0.0, 1.0, 2.0]
