"""The R engine: evaluate R code, move values in and out, call R functions from Python.

    import polymagic as pm
    pm.R["x"] = numpy_array           # a view, not a copy (see polymagic.marshal.r)
    pm.R.eval("s <- sum(x); s * 2")   # value of the last expression, converted
    f = pm.R.eval("function(n) n + 1"); f(2)

Everything runs in R's global environment. Failures raise `RError` with R's message,
the R call stack at the error and the cell line; R warnings become `RWarning`s; what R
prints goes to `sys.stdout` / `sys.stderr` as it is printed; Ctrl-C stops R.

How the error details are obtained without an R wrapper around every call: R's own
default error handling saves the stack at the error in `base::.Traceback` (with source
references), and R warnings are routed to Python through `options(warning.expression)`,
which R evaluates only for warnings no R handler took. The success path of a call is
therefore one C function of the marshal shim (r_shim_calls.c): the argument
conversions, the call evaluated as R_tryEval does, the result conversion.
"""
from __future__ import annotations

import itertools
import re
import sys
import threading
import warnings
from pathlib import Path

from ... import hub
from ...errors import ConversionError, RError, RNameError, RRecursionError, RWarning
from ...tracebacks import (ForeignFrame, entry_point, hide_plumbing, is_plumbing,
                           splice)
from ...marshal import r_shim as marshal_shim
from . import runtime as r_runtime
from .sources import CellSources
from .rpy2_compat import compatible

__all__ = ["R", "REngine", "RFunction", "CellResult"]

# The engine's static R code, in real files beside this module (package data).
_R_CODE = Path(__file__).parent


def _r_source(name: str) -> str:
    return (_R_CODE / name).read_text()


_cell_numbers = itertools.count(1)
_PARSE_POSITION = re.compile(r":(\d+):(\d+): ([^\n]*)")

# Set when the engine starts; module globals keep RFunction.__call__ lean.
_RRuntimeError = _call_r = None
_r_thread = None


class _Outcome:
    """What the shim's call returns instead of a value: R was not entered, or R failed."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name


_STACK_LEFT_TOO_SMALL = _Outcome("stack exhausted")
_R_FAILED = _Outcome("R failed")
_R_INTERRUPTED = _Outcome("R was interrupted")


def _stack_exhausted() -> RRecursionError:
    """The shim's entry guard refused to enter R: recursion through R has nearly used
    up the C stack."""
    return RRecursionError("maximum recursion depth exceeded: too little C stack is "
                           "left to enter R (recursion through R is too deep)")


class CellResult:
    """What `run_cell` produced: the last value (an rpy2 Sexp) and whether R would
    auto-print it."""

    __slots__ = ("value", "visible")

    def __init__(self, value, visible: bool):
        self.value = value
        self.visible = visible


class _Session:
    """The started engine: rinterface, helper functions, shim, console state."""

    def __init__(self):
        global _RRuntimeError, _r_thread, _call_r
        from ...marshal import r as marshal
        self.ri = r_runtime.start()
        self.marshal = marshal
        self.shim = r_runtime.shim()
        _call_r = marshal.connect_calls(
            r_runtime.hook_address("pm_sigint_enter"),
            r_runtime.hook_address("pm_sigint_leave"),
            _STACK_LEFT_TOO_SMALL, _R_FAILED, _R_INTERRUPTED)
        self.sources = CellSources()
        self.held_stderr: str | None = None
        self.python_error: BaseException | None = None
        self.warning_place: tuple[str, int] | None = None  # (cell name, line) or None
        self.helpers = self._define_helpers()
        self._route_console()
        self._route_warnings()
        self._install_hub()
        _RRuntimeError = self.ri.embedded.RRuntimeError
        _r_thread = threading.get_ident()
        # From now on RFunction.__call__ runs in C (marshal/r_shim_calls.c) when it can:
        # positional arguments, R's thread; anything else comes to _python_call.
        RFunction.__call__ = marshal_shim.shim().fast_call(
            RFunction._python_call, _Outcome, hide_plumbing, self, _r_thread)

    def _define_helpers(self):
        ri = self.ri
        env = ri.baseenv["new.env"](parent=ri.baseenv)
        ri.baseenv["eval"](ri.parse(_r_source("helpers.R")), env)
        return env

    def _route_console(self):
        from rpy2.rinterface_lib import callbacks
        callbacks.consolewrite_print = self.write_stdout
        callbacks.consolewrite_warnerror = self.write_stderr

    def _route_warnings(self):
        ri = self.ri
        # rpy2's rternalize lets the cffi handle die with a temporary Python object
        # while R still holds the pointer; keep our own external pointer alive here.
        self.warning_pointer = ri.SexpExtPtr.from_pyobject(self.emit_warning)
        self.helpers["warning_pointer"] = self.warning_pointer
        self.helpers["route_warnings"]()

    def _install_hub(self):
        """`py` in R: `py$f(x)` calls a Python function of the shared namespace."""
        ri, to_r = self.ri, self.marshal.to_r
        env = ri.baseenv["attach"](ri.NULL, name="polymagic")
        env["py_set"] = to_r(hub.assign)  # (the first to_r of a callable sets its hooks)
        env["py_names"] = to_r(lambda: sorted(n for n in hub.namespace() if n[0] != "_"))
        # py$name in C (marshal/r_shim_hub.c): looked up at each use, closures kept
        getter = marshal_shim.shim().hub_getter(hub.state(), hub.namespace,
                                                lambda name: hub.lookup(name, "R"))
        env["py_get"] = marshal_shim.adopt(getter, type(env["py_set"]))
        ri.baseenv["eval"](ri.parse(_r_source("hub.R")), env)

    # R's console output, in order, to whatever sys.stdout / sys.stderr are now.
    def write_stdout(self, text: str) -> None:
        self.release_stderr()
        sys.stdout.write(text)

    def write_stderr(self, text: str) -> None:
        self.release_stderr()
        if text.startswith("Error") and text == r_runtime.current_error_text():
            # R echoes an error it is about to raise; it reaches Python as RError, so
            # hold it back, and print it only if R turns out to carry on (try()).
            self.held_stderr = text
            return
        sys.stderr.write(text)

    def release_stderr(self) -> None:
        if self.held_stderr is not None:
            text, self.held_stderr = self.held_stderr, None
            sys.stderr.write(text)

    def emit_warning(self, where, text):
        """R -> Python: one R warning as an RWarning; TRUE when a filter raised it."""
        where, text = str(where[0]), str(text[0])
        message = f"In {where}: {text}" if where else text
        try:
            _warn_at_user_code(RWarning(message), self.warning_place)
        except BaseException as error:  # a warnings filter set to "error"
            self.python_error = error
            return self.ri.BoolSexpVector([True])
        return self.ri.BoolSexpVector([False])


_CELL_WARNING_REGISTRIES: dict[str, dict] = {}


def _warn_at_user_code(warning: Warning, place: tuple[str, int] | None = None) -> None:
    """Issue `warning` attributed to `place` (a named cell's line), else to the nearest
    frame outside polymagic and rpy2."""
    if place is not None:
        registry = _CELL_WARNING_REGISTRIES.setdefault(place[0], {})
        warnings.warn_explicit(warning, type(warning), place[0], place[1], "R", registry)
        return
    frame = sys._getframe(1)
    while frame is not None and is_plumbing(frame.f_code.co_filename):
        frame = frame.f_back
    if frame is None:
        warnings.warn(warning, stacklevel=2)
        return
    module_globals = frame.f_globals
    registry = module_globals.setdefault("__warningregistry__", {})
    # Not module_globals: through it warnings asks the module's loader for source, and
    # the loader of `python -c` code raises ImportError; the line is read from the file.
    warnings.warn_explicit(warning, type(warning), frame.f_code.co_filename,
                           frame.f_lineno, module_globals.get("__name__"), registry)


_session_lock = threading.Lock()
_SESSION: _Session | None = None


def _session() -> _Session:
    global _SESSION
    session = _SESSION
    if session is None:
        with _session_lock, r_runtime.ctrl_c_deferred():
            if _SESSION is None:
                _SESSION = _Session()
            session = _SESSION
    if threading.get_ident() != _r_thread:
        r_runtime.check_thread()
    return session


# ---------------------------------------------------------------------------------
# Errors

_INLINE_CLOSURE_CALL = re.compile(r"^Error in \(function \(.*?\)\s*: ", re.S)


def _strip_error_prefix(text: str, outer_name: str | None = None) -> str:
    """'Error in f(x) : boom\n' -> 'in f(x) : boom'; 'Error: boom' -> 'boom'.

    Calls built from Python hold the function itself, which R deparses as
    '(function (x) ...'; such a call is shown by `outer_name`, or not at all.
    """
    text = text.strip()
    inline = _INLINE_CLOSURE_CALL.match(text)
    if inline:
        rest = text[inline.end():]
        return f"in {outer_name}() : {rest}" if outer_name else rest
    if text.startswith("Error in "):
        return "in " + text[len("Error in "):]
    if text.startswith("Error: "):
        return text[len("Error: "):]
    return text


def _failure(session: _Session, interrupted: bool, *, outer_name: str,
             drop_outer: bool, cell: str | None = None, line: int | None = None,
             error_text: str | None = None) -> BaseException:
    """The exception to raise for an R evaluation that failed (R unwound to us)."""
    held, session.held_stderr = session.held_stderr, None
    python_error = session.python_error or session.marshal.take_pending_python_error()
    session.python_error = None
    stack = _take_stack(session, outer_name, drop_outer)
    frames = _traceback_frames(stack, cell, line)
    if python_error is not None:  # re-raised as itself, with the R frames it crossed
        return splice(python_error, frames)
    if interrupted:
        return KeyboardInterrupt()
    if error_text is None:
        error_text = held or r_runtime.current_error_text()
    message = _strip_error_prefix(
        error_text, None if drop_outer or outer_name.startswith("<") else outer_name)
    if not message:
        message = "R stopped without a message"
    if _C_STACK_OVERFLOW in message:
        return compatible(RRecursionError(f"{message} (recursion too deep, through R)",
                                          stack=stack))
    frame_line, frame_file = _innermost_cell_line(stack)
    if frame_file is not None and (cell is None or frame_file == cell):
        # deeper than the top-level expression, in the same cell (or, for a call
        # from Python, in whichever cell defined the function)
        cell, line = frame_file, frame_line
    source = session.sources.get(cell) if cell else None
    return splice(compatible(RError(message, stack=stack, line=line, source=source)),
                  frames)


def _take_stack(session: _Session, outer_name: str, drop_outer: bool) -> list[str]:
    ri = session.ri
    try:
        frames = session.helpers["take_traceback"](
            ri.StrSexpVector([outer_name]), ri.BoolSexpVector([drop_outer]))
    except _RRuntimeError as error:  # describing the stack must not hide the error
        return [f"(R stack unavailable: {error})"]
    return [str(frame) for frame in frames]


_C_STACK_OVERFLOW = "C stack usage"
_FRAME_PLACE = re.compile(r"  \[(.*):(\d+)\]$")
_CALLED_NAME = re.compile(r"^([\w.]+|`[^`]+`)\(")


def _traceback_frames(stack: list[str], cell: str | None, line: int | None):
    """R frames as Python traceback entries, outermost first.

    Each R stack entry is a call with the place it was made; a Python-style frame is
    a function with the line it is executing, i.e. the place of the next call. The
    top-level expression of a cell is a frame of its own. Calls made from code
    without source references (R's base functions) give no frame.
    """
    frames = [ForeignFrame("R", "<top level>", cell, line)] if cell and line else []
    for caller, callee in zip(stack, stack[1:]):
        place = _FRAME_PLACE.search(callee)
        if place:
            name = _CALLED_NAME.match(caller)
            function = name.group(1).strip("`") if name else caller.split("  [")[0]
            frames.append(ForeignFrame("R", function, place.group(1), int(place.group(2))))
    return frames


def _innermost_cell_line(stack: list[str]):
    for frame in reversed(stack):
        found = _FRAME_PLACE.search(frame)
        if found:
            return int(found.group(2)), found.group(1)
    return None, None


# ---------------------------------------------------------------------------------
# The engine

@entry_point  # errors reach the user without polymagic's frames
class REngine:
    """Embedded R, started on first use. `R.eval`, `R[name]`, `R[name] = value`."""

    def eval(self, code: str, *, copy: bool | None = None):
        """Run `code` in R's global environment; the last value, converted (None for
        empty code). Nothing is auto-printed; explicit print() output is shown."""
        __tracebackhide__ = True  # plumbing: IPython leaves it out of tracebacks
        result = self.run_cell(code, print_visible=False)
        if result.value is None:
            return None
        return _session().marshal.to_python(result.value, copy=copy)

    def run_cell(self, code: str, *, filename: str | None = None,
                 print_visible: bool = True, print_last: bool = True) -> CellResult:
        """Run `code` like R's console: each top-level expression in turn, printing
        visible values when `print_visible` (the last one only if `print_last`).
        Returns the last value (an rpy2 Sexp, None for empty code) and its
        visibility. `filename` names the cell in R's source references."""
        __tracebackhide__ = True  # plumbing: IPython leaves it out of tracebacks
        session = _session()
        named = filename is not None  # a notebook's cell: its warnings point at its lines
        # "code", not "cell": the magics name notebook cells <R cell n> after In [n]
        filename = filename or f"<R code {next(_cell_numbers)}>"
        _check_text(code, "R code")
        _check_text(filename, "a cell name")
        session.sources.add(filename, code)  # for error messages and tracebacks
        expressions = self._parse(session, code, filename)
        result = CellResult(None, False)
        srcrefs = expressions.do_slot("srcref") if len(expressions) else None
        outer_place = session.warning_place
        for index in range(len(expressions)):
            line = int(srcrefs[index][0])
            session.warning_place = (filename, line) if named else None
            try:
                value, visible = self._evaluate_top_level(session, expressions[index],
                                                          filename, line)
                last = index == len(expressions) - 1
                if visible and print_visible and (print_last or not last):
                    self._print(session, value, filename, line)
            finally:
                session.warning_place = outer_place
            result = CellResult(value, visible)
        return result

    def _parse(self, session: _Session, code: str, filename: str):
        ri = session.ri
        parsed = session.helpers["parse_cell"](ri.StrSexpVector([code]),
                                               ri.StrSexpVector([filename]))
        if "error" in _r_class(parsed):
            message = str(parsed[0][0])
            found = _PARSE_POSITION.search(message)
            line = int(found.group(1)) if found else None
            column = f", column {found.group(2)}" if found else ""
            what = found.group(3) if found else message
            raise compatible(RError(f"parse error at line {line}{column}: {what}",
                                    line=line, source=code), parsing=True)
        return parsed

    def _evaluate_top_level(self, session: _Session, expression, filename: str,
                            line: int):
        """Evaluate one parsed expression in globalenv: (value, visible)."""
        __tracebackhide__ = True  # plumbing: IPython leaves it out of tracebacks
        with_visible = _OwnCall(session.ri.baseenv["withVisible"], filename, line,
                                "withVisible")
        pair = with_visible(expression)
        return pair[0], bool(pair[1][0])

    def _print(self, session: _Session, value, filename: str, line: int) -> None:
        # boxed in a list: a call built with a language object (quote(a + b)) as its
        # argument would evaluate it
        box = session.ri.ListSexpVector([value])
        _OwnCall(session.helpers["print_value"], filename, line, "print")(box)

    def to_python(self, sexp, *, copy: bool | None = None):
        """An R value (an rpy2 Sexp, e.g. `run_cell(...).value`) as a Python object."""
        return _session().marshal.to_python(sexp, copy=copy)

    def assign(self, name: str, value, copy: bool | None = None,
               shared_writes: bool = False) -> None:
        """Bind `name` in R's global environment to `value`, converted."""
        session = _session()
        _check_name(name)
        # marshal.assign binds without rpy2's Rf_duplicate, so a view stays a view
        session.marshal.assign(name, session.marshal.to_r(
            value, copy=copy, shared_writes=shared_writes))

    def get(self, name: str, copy: bool | None = None):
        """The value of `name` seen from R's global environment, converted.
        RNameError (a KeyError) when R has no such variable."""
        value = _session().marshal.to_python(self.find(name), copy=copy)
        if isinstance(value, RFunction) and value.name is None:
            value.name = name
        return value

    def find(self, name: str):
        """The R object `name` is bound to, seen from R's global environment, not
        converted (an rpy2 Sexp). RNameError (a KeyError) when R has no such variable."""
        session = _session()
        _check_name(name)
        ri = session.ri
        get0 = _OwnCall(ri.baseenv["get0"], name="get")  # an active binding may fail
        found = get0(name, envir=ri.globalenv, inherits=True, ifnotfound=_MISSING_MARK(ri))
        if _is_missing_mark(found):
            raise RNameError(f"object '{name}' not found: R's global environment "
                             f"(and the packages it sees) has no variable by that name")
        return found

    def __getitem__(self, name: str):
        return self.get(name)

    def __setitem__(self, name: str, value) -> None:
        self.assign(name, value)

    def __contains__(self, name: str) -> bool:
        session = _session()
        _check_name(name)
        return bool(session.ri.baseenv["exists"](name, envir=session.ri.globalenv)[0])

    def __repr__(self) -> str:
        state = "running" if r_runtime.is_started() else "not started"
        return f"<polymagic R engine ({state})>"


def helper(name: str) -> RFunction:
    """A function of the engine's own R code (helpers.R), callable from Python."""
    return RFunction(_session().helpers[name], name)


def _check_name(name) -> None:
    if not isinstance(name, str) or not name:
        raise TypeError(f"R variable names are non-empty strings, not {name!r}")
    _check_text(name, "an R variable name")


def _check_text(text: str, what: str) -> None:
    """ConversionError when `text` cannot cross into R: R strings are UTF-8 and
    cannot hold NUL."""
    if "\0" in text:
        raise ConversionError(f"{what} cannot contain NUL (\"\\0\", at character "
                              f"{text.index(chr(0))}): R strings cannot hold it")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ConversionError(f"{what} is not valid text ({error}): R strings are "
                              f"UTF-8") from None


_MISSING = []


def _MISSING_MARK(ri):
    """A private R object that get0() returns for 'not found' (never a user value)."""
    if not _MISSING:
        _MISSING.append(ri.baseenv["new.env"]())
    return _MISSING[0]


def _is_missing_mark(value) -> bool:
    return bool(_MISSING) and value.rid == _MISSING[0].rid


def _r_class(sexp) -> tuple[str, ...]:
    try:
        return tuple(sexp.rclass)
    except (AttributeError, TypeError):
        return ()


# ---------------------------------------------------------------------------------
# R functions as Python callables

class RFunction:
    """An R function as a Python callable: arguments go in through polymagic.marshal.r
    (keywords become named R arguments), the result comes back the same way.

    R errors raise RError (message, R stack, cell line); an exception raised by a
    Python callback inside the call is re-raised as itself, noted with the R frames
    it crossed; Ctrl-C raises KeyboardInterrupt.
    """

    __slots__ = ("sexp", "name", "_address", "__weakref__")
    # Where a failure is placed and how the result comes back: the engine's own calls
    # itself (_OwnCall: cell steps, lookups) change these.
    _drop_outer = False
    _cell = _line = None
    _raw = False  # True: the result comes back unconverted (an rpy2 Sexp)

    def __init__(self, sexp, name: str | None = None):
        self.sexp = sexp  # keeps the closure alive (rpy2 preserves it)
        self.name = name
        self._address = marshal_shim.address_of(sexp)

    def _python_call(self, *args, **kwargs):
        """The one way into R, for every call and every cell step: the shim converts
        the arguments, builds the call and evaluates it in R's global environment in
        C (marshal/r_shim_calls.c; rpy2's closure call spends ~6 us in Python around
        the same C calls), with Ctrl-C routed to R and the C stack guarded. Kept in one
        frame: deep Python <-> R recursion pays for every frame of the round trip.
        Once R is up, __call__ is this method done in C (the shim's fast_call) for
        positional arguments from R's thread, and this method for the rest."""
        __tracebackhide__ = True  # plumbing: IPython leaves it out of tracebacks
        try:  # inline rather than @entry_point: no extra frame per call
            if threading.get_ident() != _r_thread:
                _session()  # starts R, or raises ThreadError from a foreign thread
            if kwargs:
                for key in kwargs:
                    _check_text(key, "an R argument name")
            result = _call_r(self._address, args, kwargs or None, self._raw)
            if result.__class__ is _Outcome:
                raise self._failed(result)
            if _SESSION.held_stderr is not None:
                _SESSION.release_stderr()
            return result
        except BaseException as error:
            hide_plumbing(error)  # the user sees no polymagic frame, this one included
            raise

    __call__ = _python_call

    def _failed(self, outcome: _Outcome) -> BaseException:
        if outcome is _STACK_LEFT_TOO_SMALL:
            return _stack_exhausted()
        return _failure(_SESSION, outcome is _R_INTERRUPTED,
                        outer_name=self.name or "<R function>",
                        drop_outer=self._drop_outer, cell=self._cell, line=self._line)

    def __repr__(self) -> str:
        return f"<R function {self.name or '(anonymous)'}>"

    def __reduce_ex__(self, protocol):
        """Pickled as R's serialize() of the closure (travel.py)."""
        from .travel import serialized
        data = serialized(self, _session(), protocol)
        return (_unpickled_function, (data, self.name))


def _unpickled_function(data, name):
    from .travel import TravelledFunction  # R unserialises it at its first call
    return TravelledFunction(data, name, _session, _unpickled_function)


class _OwnCall(RFunction):
    """A call polymagic makes itself (a cell's withVisible(expression) or print(value),
    a lookup): its R objects go in and come back unconverted, and an R failure leaves
    this call out of R's stack and is placed at the cell line, when there is one."""

    __slots__ = ("_cell", "_line")
    _drop_outer = True
    _raw = True

    def __init__(self, sexp, cell: str | None = None, line: int | None = None,
                 name: str | None = None):
        super().__init__(sexp, name)
        self._cell, self._line = cell, line


R = REngine()


def _forget_error_echo() -> None:
    """R printed an error inside the marshal shim; it reaches the user as a Python
    exception, so the echo held back for an RError is dropped."""
    if _SESSION is not None:
        _SESSION.held_stderr = None


marshal_shim.connect(start=r_runtime.start, lock=r_runtime.lock,
                     python_section=r_runtime.python_section, function_class=RFunction,
                     on_r_error=_forget_error_echo)
