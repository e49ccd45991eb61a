"""Julia embedded in the process through juliacall (PythonCall.jl): `pm.julia`.

Julia starts on first use, once, in the calling thread, and only after locate.py found
a Julia executable: importing juliacall without one makes juliapkg download Julia, which
polymagic does only when POLYMAGIC_JULIA_AUTOINSTALL=yes (startup.py). Julia is entered
only from the thread that started it, under a reentrant lock because calls come back in
(Python -> Julia -> Python -> Julia ...). The Julia side of this engine is
PolymagicBridge.jl; the Julia side of the conversions is marshal/julia.jl.

    from polymagic.bridges.julia import julia
    julia.eval("f(x) = 2x")          # evaluates in Main, returns the last value
    julia["x"] = numpy_array          # a read-only PyArray view of the same memory
    julia["x"]                        # a numpy array (a view of Julia's memory)
    julia["f"](3)                     # Julia functions are Python callables
"""
from __future__ import annotations

import itertools
import sys
import threading
from pathlib import Path
from typing import NamedTuple

from ...errors import BridgeUnavailable, JuliaError, JuliaNameError, ThreadError
from ...hub import NamespaceProxy
from ...marshal.julia import JULIA_SOURCE_FILE, JuliaConverter
from ...tracebacks import ForeignFrame, entry_point, register_source, splice
from .frames import julia_traceback_frames
from .startup import (ensure_juliacall_installed, import_juliacall, interrupted_start,
                      prepare_environment)

BRIDGE_SOURCE_FILE = Path(__file__).with_name("PolymagicBridge.jl")

THREAD_REFUSAL = (
    "Julia is entered only from the thread that started it. juliacall (0.9.22 and later) "
    "accepts calls from other Python threads, but with PYTHON_JULIACALL_HANDLE_SIGNALS=no "
    "(its default, which polymagic keeps so that Ctrl-C works) Julia's garbage collector "
    "can end the process once a second thread runs Julia code, and Julia code that "
    "yields to its scheduler can hang (juliacall's documentation, 'Multi-threading'). "
    "Call it from the thread that started it (in a notebook, the kernel's main thread).")


class JuliaOutcome(NamedTuple):
    """What PolymagicBridge.jl returns for work that may fail (`succeeded`/`failed`)."""

    ok: bool
    value: object
    output: str
    message: str
    stack: str
    julia_type: str
    line: int
    python_error: BaseException | None
    interrupted: bool


@entry_point  # errors reach the user without polymagic's frames
class JuliaBridge:
    """The embedded Julia session: eval, get/set globals in Main, calls both ways."""

    def __init__(self):
        self._lock = threading.RLock()
        self._thread: int | None = None
        self._juliacall = None
        self._helpers = None
        self._converter = None
        self._boot_error: BaseException | None = None
        self._cells = itertools.count(1)
        self.install = None  # the JuliaInstall found (None: juliapkg chose), once started

    # -- lifecycle -------------------------------------------------------------------
    def start(self):
        """Start Julia (once) and return juliacall's Main; cheap after the first call."""
        if self._juliacall is None:
            with self._lock:
                if self._juliacall is None:
                    self._boot()
        self.check_thread()
        return self._juliacall.Main

    def is_started(self) -> bool:
        return self._juliacall is not None

    def available(self) -> bool:
        """Whether Julia runs here or can start (a Julia runtime was found); starts
        nothing, imports no juliacall."""
        if self._juliacall is not None:
            return True
        from .locate import find_julia
        return self._boot_error is None and find_julia() is not None

    def check_thread(self) -> None:
        """Raise ThreadError unless called from the thread Julia was started in."""
        if threading.get_ident() != self._thread:
            raise ThreadError(THREAD_REFUSAL)

    def _boot(self) -> None:
        if self._boot_error is not None:  # juliacall cannot start Julia twice
            raise self._boot_error.with_traceback(None)
        self.install = prepare_environment()
        ensure_juliacall_installed()
        try:
            self._attach(import_juliacall(self.install))
        except BaseException as error:
            self._boot_error = error if isinstance(error, Exception) else interrupted_start()
            raise

    def _attach(self, juliacall) -> None:
        """Load polymagic's Julia code into the Julia that juliacall started."""
        conversions = _include(juliacall, JULIA_SOURCE_FILE)
        helpers = _include(juliacall, BRIDGE_SOURCE_FILE)
        # `py` in Julia: the shared Python namespace (polymagic.hub), e.g. py.f(3)
        self._finish(helpers.assign_global("py", NamespaceProxy("Julia"), False))
        self._helpers = helpers
        self._converter = JuliaConverter(juliacall, conversions, self.call)
        self._thread = threading.get_ident()
        self._juliacall = juliacall  # last: from here on the bridge counts as started

    # -- evaluation ------------------------------------------------------------------
    def eval(self, code: str, *, filename: str | None = None, copy: bool | None = None):
        """Evaluate Julia `code` in Main (as a file named `filename`, default 'cell-N'),
        print what it printed, return its last value converted."""
        self.start()
        with self._lock:
            filename = filename or f"cell-{next(self._cells)}"
            register_source(filename, code)  # tracebacks show the Julia lines
            value = self._finish(self._helpers.eval_cell(code, filename),
                                 source=code, filename=filename)
            return self._converter.to_python(value, copy)

    def _finish(self, result, *, source: str | None = None, filename: str | None = None):
        """The value of a JuliaOutcome; what Julia printed goes to sys.stdout, a
        failure is raised (JuliaError, the callback's own Python exception, or
        KeyboardInterrupt)."""
        outcome = JuliaOutcome(*result)
        if outcome.output:
            sys.stdout.write(outcome.output)
            sys.stdout.flush()
        if not outcome.ok:
            raise _failure(outcome, source, filename)
        return outcome.value

    # -- globals ---------------------------------------------------------------------
    def __getitem__(self, name: str):
        return self.get(name)

    def __setitem__(self, name: str, value) -> None:
        self.assign(name, value)

    def __contains__(self, name: str) -> bool:
        self.start()
        with self._lock:
            return bool(self._helper(self._helpers.has_global, name))

    def get(self, name: str, copy: bool | None = None):
        """The value of Main.`name`, converted (arrays as numpy views); JuliaNameError
        (a KeyError) if Main has no such global."""
        self.start()
        with self._lock:
            if not self._helper(self._helpers.has_global, name):
                raise JuliaNameError(f"{name!r} is not defined: Julia's Main module has "
                                     f"no global of that name")
            value = self._helper(self._helpers.get_global, name)
            return self._converter.to_python(value, copy)

    def assign(self, name: str, value, copy: bool | None = None,
               shared_writes: bool = False) -> None:
        """Main.`name` = `value`, converted: a numpy array as a read-only view, a
        Julia `Array` sharing writes when `shared_writes`, or a copy (copy=True also
        copies lists, dicts and sets, which otherwise stay live Python wrappers)."""
        self.start()
        with self._lock:
            julia_value = self._converter.to_julia(value, copy, shared_writes)
            self._finish(self._helpers.assign_global(name, julia_value, copy is True))

    def julia_array(self, array, shared_writes: bool = False):
        """A Julia `Array` for numpy `array`, for methods typed `::Vector{T}`/`::Array`
        (a plain numpy argument arrives as a read-only PyArray view): a copy, or with
        shared_writes=True the same memory, which Julia may then write."""
        self.start()
        with self._lock:
            return self._converter.array_to_julia(
                array, copy=None if shared_writes else True, shared_writes=shared_writes)

    # -- calls -----------------------------------------------------------------------
    def call(self, function, *args, **kwargs):
        """Call a Julia function (a JuliaFunction or juliacall value) with converted
        arguments, inside Julia's error handling; returns the converted result."""
        self.start()
        target = getattr(function, "julia_function", function)
        with self._lock:
            to_julia = self._converter.to_julia
            args = [to_julia(arg) for arg in args]
            kwargs = {key: to_julia(arg) for key, arg in kwargs.items()}
            value = self._finish(self._helpers.call_function(target, *args, **kwargs))
            return self._converter.to_python(value)

    def _helper(self, function, *args):
        """Call one of polymagic's own Julia helpers that cannot fail on user input; if
        one fails anyway, juliacall's JuliaError becomes polymagic's JuliaError."""
        try:
            return function(*args)
        except self._juliacall.JuliaError as error:
            message, stack, julia_type, _ = self._helpers.describe_error(
                error.exception, error.backtrace)
            raise _julia_error(message, stack, julia_type) from error

    # -- IPython ---------------------------------------------------------------------
    def enable_ipython_display(self) -> None:
        """Make Julia's `display(x)` show rich output (plots, HTML) in IPython."""
        self.start()
        with self._lock:
            self._helper(self._helpers.push_ipython_display)

    @property
    def main(self):
        """juliacall's Main module, for anything this API does not cover."""
        return self.start()


def _include(juliacall, path: Path):
    """Base.include(Main, path): the module that file defines."""
    try:
        return juliacall.Base.include(juliacall.Main, str(path))
    except juliacall.JuliaError as error:
        raise BridgeUnavailable(
            "Julia", f"polymagic's Julia code ({path.name}) did not load: {error}",
            "This is a polymagic bug for this Julia / PythonCall version: please report "
            "it with the output of `python -m polymagic situation`.") from error


def _failure(outcome: JuliaOutcome, source: str | None, filename: str | None):
    """The exception for a failed JuliaOutcome, with Julia's frames spliced in."""
    if outcome.python_error is not None:  # a Python callback raised: the same object
        error, line = outcome.python_error, outcome.line
        if hasattr(error, "add_note"):  # Python >= 3.11
            where = f", cell line {line}" if line else ""
            error.add_note(f"(raised in Python code called from Julia{where})")
        frames = [ForeignFrame("Julia", "top-level scope", filename, line)] \
            if line and filename else []
        return splice(error, frames)
    if outcome.interrupted:
        return KeyboardInterrupt("Julia was interrupted")
    return _julia_error(outcome.message, outcome.stack, outcome.julia_type,
                        line=outcome.line or None, source=source, output=outcome.output)


def _julia_error(message: str, stack: str, julia_type: str, **details) -> JuliaError:
    stack_lines = stack.splitlines() if stack else []
    error = JuliaError(message, stack_lines, **details)
    error.julia_type = julia_type
    return splice(error, julia_traceback_frames(stack_lines))


julia = JuliaBridge()
