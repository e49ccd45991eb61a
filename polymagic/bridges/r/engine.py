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
therefore rpy2's bare `R_tryEval` plus the argument and result conversions.
"""
from __future__ import annotations

import itertools
import re
import sys
import threading
import warnings

from ... import hub
from ...errors import RError, RNameError, RRecursionError, RWarning
from ...tracebacks import ForeignFrame, is_plumbing, register_source, splice
from ...marshal import r_altrep as marshal_shim
from . import runtime as r_runtime

__all__ = ["R", "REngine", "RFunction", "CellResult"]

# R code run once when the engine starts; its functions live in a private environment.
_HELPERS_R = r"""
parse_cell <- function(text, filename) {
    lines <- strsplit(text, "\n", fixed = TRUE)[[1L]]
    tryCatch(parse(text = text, srcfile = srcfilecopy(filename, lines),
                   keep.source = TRUE),
             error = function(e) e)
}

# The R call stack saved by R's default error handler, outermost first, as text:
# "call  [file:line]". Big values in calls (rpy2 puts argument values, not names,
# in the calls it builds) are shown by class, not deparsed.
take_traceback <- function(outer_name, drop_outer)
    tryCatch(describe_traceback(outer_name, drop_outer),
             error = function(e) paste("(R stack unavailable:", conditionMessage(e), ")"))

describe_traceback <- function(outer_name, drop_outer) {
    calls <- get0(".Traceback", envir = baseenv(), inherits = FALSE)
    assign(".Traceback", NULL, envir = baseenv())
    if (is.null(calls)) return(character())
    calls <- rev(calls)
    if (drop_outer && length(calls)) calls <- calls[-1L]
    vapply(seq_along(calls), function(i) {
        describe_call(calls[[i]], if (i == 1L) outer_name else "<R function>")
    }, "")
}

describe_call <- function(call, closure_name) {
    srcref <- attr(call, "srcref")
    if (is.language(call)) {
        if (is.function(call[[1L]])) call[[1L]] <- as.name(closure_name)
        if (length(call) > 1L) {
            parts <- as.list(call)
            parts[-1L] <- lapply(parts[-1L], shorten_value)
            call <- as.call(parts)
        }
        text <- deparse(call, nlines = 1L, width.cutoff = 120L)[1L]
    } else {
        text <- as.character(call)[1L]
    }
    if (!is.null(srcref)) {
        file <- attr(srcref, "srcfile")$filename
        text <- paste0(text, "  [", file, ":", srcref[1L], "]")
    }
    text
}

shorten_value <- function(value) {
    if (is.language(value) || missing(value)) return(value)
    if (is.atomic(value) && length(value) <= 3L && is.null(attributes(value)))
        return(value)
    as.name(paste0("<", class(value)[1L], "[", length(value), "]>"))
}

# options(warning.expression) runs this for every warning no R handler took. The
# message and call are read from the frame of R's warning machinery that called us.
forward_warning <- function() {
    level <- getOption("warn", 0)
    if (level < 0) return(invisible())
    found <- FALSE
    for (i in rev(seq_len(sys.nframe()))) {
        fun <- sys.function(i)
        if (identical(fun, base::.signalSimpleWarning)) {
            frame <- sys.frame(i); text <- frame$msg; call <- frame$call
            found <- TRUE; break
        }
        if (identical(fun, base::warning)) {
            frame <- sys.frame(i); text <- frame$message; call <- frame$call
            found <- TRUE; break
        }
    }
    if (!found) { text <- "(R did not say which)"; call <- NULL }
    if (level >= 2)
        stop("(converted from warning) ", text, call. = FALSE)
    # calls built by rpy2 hold the function itself, not its name: no useful text
    where <- if (is.language(call) && !is.function(call[[1L]]))
        deparse(call, nlines = 1L)[1L] else ""
    if (isTRUE(emit_warning(where, text)))
        stop("a Python warning filter turned this R warning into an error: ", text,
             call. = FALSE)
    invisible()
}

print_value <- function(value) print(value)

# deparse() reads this lazily loaded base variable; forced now, so that a C stack
# overflow can never interrupt its first evaluation and break deparse() for good.
invisible(base::..deparseOpts)

emit_warning <- function(where, text) .External(".Python", warning_pointer, where, text)
"""

# `py`, the shared Python namespace as seen from R (polymagic.hub), attached to R's
# search path as "polymagic" so every R function can see it.
_HUB_R = r"""
py <- structure(new.env(), class = "polymagic_namespace")
# S3 lookup does not search attached environments, so the methods are registered.
local({
    methods <- list(
        `$` = function(x, name) py_get(name),
        `[[` = function(x, i, ...) py_get(i),
        `$<-` = function(x, name, value) { py_set(name, value); x },
        `[[<-` = function(x, i, value) { py_set(i, value); x },
        names = function(x) unlist(py_names()),
        print = function(x, ...) {
            cat("<the shared Python namespace:", length(names(x)), "names>\n")
            invisible(x)
        })
    for (generic in names(methods))
        registerS3method(generic, "polymagic_namespace", methods[[generic]])
    registerS3method(".DollarNames", "polymagic_namespace",
                     function(x, pattern = "") grep(pattern, names(x), value = TRUE),
                     envir = asNamespace("utils"))
})
"""

_cell_numbers = itertools.count(1)
_PARSE_POSITION = re.compile(r":(\d+):(\d+): ([^\n]*)")
_ERROR_PREFIX = re.compile(r"^Error(?: in )?", re.S)

# Set when the engine starts; module globals keep RFunction.__call__ lean.
_to_r = _to_python = _enter = _leave = _RRuntimeError = None
_rlib = _wrap_sexp = _ERROR_FLAG = None
_LANG: tuple = ()
_r_thread = None


_STACK_EXHAUSTED = 2  # pm_sigint_enter's answer when too little C stack is left


def _enter_r() -> None:
    """Install R's Ctrl-C handler for an R evaluation; RecursionError, entering
    nothing, when recursion through R has nearly used up the C stack."""
    if _enter() == _STACK_EXHAUSTED:
        raise RecursionError("maximum recursion depth exceeded: too little C stack is "
                             "left to enter R (recursion through R is too deep)")


def _guarded(session, evaluate, outer_name: str, filename: str, line: int):
    """`evaluate()` (an R evaluation at a cell's top level) with Ctrl-C routed to R;
    an R failure becomes RError (or KeyboardInterrupt) placed at the cell line."""
    __tracebackhide__ = True  # plumbing: IPython leaves it out of tracebacks
    _enter_r()
    try:
        result = evaluate()
    except _RRuntimeError:
        interrupted = session.shim.pm_sigint_leave()
        failure = _failure(session, interrupted, outer_name=outer_name,
                           drop_outer=True, cell=filename, line=line)
    except BaseException:
        session.shim.pm_sigint_leave()
        raise
    else:
        interrupted = session.shim.pm_sigint_leave()
        session.release_stderr()
        if interrupted:
            raise KeyboardInterrupt
        return result
    raise failure


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
        global _to_r, _to_python, _enter, _leave, _RRuntimeError, _r_thread
        global _rlib, _wrap_sexp, _ERROR_FLAG, _LANG
        from rpy2.rinterface_lib import _rinterface_capi, conversion, openrlib
        from ...marshal import r as marshal
        self.ri = r_runtime.start()
        self.marshal = marshal
        self.shim = r_runtime.signals()
        self.sources: dict[str, str] = {}
        self.held_stderr: str | None = None
        self.python_error: BaseException | None = None
        self.helpers = self._define_helpers()
        self._route_console()
        self._route_warnings()
        self._install_hub()
        _to_r, _to_python = marshal.to_r, marshal.to_python
        _enter, _leave = self.shim.pm_sigint_enter, self.shim.pm_sigint_leave
        _RRuntimeError = self.ri.embedded.RRuntimeError
        _rlib, _wrap_sexp = openrlib.rlib, conversion._cdata_to_rinterface
        _ERROR_FLAG = _rinterface_capi.ffi.new("int *")
        _LANG = (_rlib.Rf_lang1, _rlib.Rf_lang2, _rlib.Rf_lang3, _rlib.Rf_lang4,
                 _rlib.Rf_lang5, _rlib.Rf_lang6)
        _r_thread = threading.get_ident()

    def _define_helpers(self):
        ri = self.ri
        env = ri.baseenv["new.env"](parent=ri.baseenv)
        ri.baseenv["eval"](ri.parse(_HELPERS_R), env)
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
        # The hook is a call whose function is the helper itself, so it resolves
        # wherever R evaluates it (the frame of the code that warned).
        ri.baseenv["eval"](ri.parse(
            "options(warning.expression = as.call(list(forward_warning)))"),
            self.helpers)

    def _install_hub(self):
        """`py` in R: `py$f(x)` calls a Python function of the shared namespace."""
        ri, to_r = self.ri, self.marshal.to_r
        env = ri.baseenv["attach"](ri.NULL, name="polymagic")
        env["py_get"] = to_r(lambda name: hub.lookup(str(name), "R"))
        env["py_set"] = to_r(hub.assign)
        env["py_names"] = to_r(lambda: sorted(n for n in hub.namespace() if n[0] != "_"))
        ri.baseenv["eval"](ri.parse(_HUB_R), env)

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
            _warn_at_user_code(RWarning(message))
        except BaseException as error:  # a warnings filter set to "error"
            self.python_error = error
            return self.ri.BoolSexpVector([True])
        return self.ri.BoolSexpVector([False])


def _warn_at_user_code(warning: Warning) -> None:
    """Issue `warning` attributed to the nearest frame outside polymagic and rpy2."""
    frame = sys._getframe(1)
    while frame is not None and is_plumbing(frame.f_code.co_filename):
        frame = frame.f_back
    if frame is None:
        warnings.warn(warning, stacklevel=2)
        return
    module_globals = frame.f_globals
    registry = module_globals.setdefault("__warningregistry__", {})
    warnings.warn_explicit(warning, type(warning), frame.f_code.co_filename,
                           frame.f_lineno, module_globals.get("__name__"), registry,
                           module_globals)


_session_lock = threading.Lock()
_SESSION: _Session | None = None


def _session() -> _Session:
    global _SESSION
    session = _SESSION
    if session is None:
        with _session_lock:
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
    message = _strip_error_prefix(
        error_text if error_text is not None else (held or r_runtime.current_error_text()),
        None if drop_outer or outer_name.startswith("<") else outer_name)
    if not message:
        message = "R stopped without a message"
    if _C_STACK_OVERFLOW in message:
        return RRecursionError(f"{message} (recursion too deep, through R)", stack=stack)
    frame_line, frame_file = _innermost_cell_line(stack)
    if frame_file is not None and (cell is None or frame_file == cell):
        # deeper than the top-level expression, in the same cell (or, for a call
        # from Python, in whichever cell defined the function)
        cell, line = frame_file, frame_line
    source = session.sources.get(cell) if cell else None
    return splice(RError(message, stack=stack, line=line, source=source), frames)


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
        filename = filename or f"<R cell {next(_cell_numbers)}>"
        session.sources[filename] = code
        register_source(filename, code)  # so tracebacks can show R lines
        expressions = self._parse(session, code, filename)
        result = CellResult(None, False)
        srcrefs = expressions.do_slot("srcref") if len(expressions) else None
        for index in range(len(expressions)):
            line = int(srcrefs[index][0])
            value, visible = self._evaluate_top_level(session, expressions[index],
                                                      filename, line)
            last = index == len(expressions) - 1
            if visible and print_visible and (print_last or not last):
                self._print(session, value, filename, line)
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
            raise RError(f"parse error at line {line}{column}: {what}", line=line,
                         source=code)
        return parsed

    def _evaluate_top_level(self, session: _Session, expression, filename: str,
                            line: int):
        """Evaluate one parsed expression in globalenv: (value, visible)."""
        __tracebackhide__ = True  # plumbing: IPython leaves it out of tracebacks
        with_visible = session.ri.baseenv["withVisible"]
        pair = _guarded(session, lambda: with_visible.rcall(((None, expression),),
                                                             session.ri.globalenv),
                        "withVisible", filename, line)
        return pair[0], bool(pair[1][0])

    def _print(self, session: _Session, value, filename: str, line: int) -> None:
        _guarded(session, lambda: session.helpers["print_value"](value), "print",
                 filename, line)

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
        session = _session()
        _check_name(name)
        ri = session.ri
        found = ri.baseenv["get0"](name, envir=ri.globalenv, inherits=True,
                                   ifnotfound=_MISSING_MARK(ri))
        if _is_missing_mark(found):
            raise RNameError(f"object '{name}' not found: R's global environment "
                             f"(and the packages it sees) has no variable by that name")
        value = session.marshal.to_python(found, copy=copy)
        if isinstance(value, RFunction) and value.name is None:
            value.name = name
        return value

    def __getitem__(self, name: str):
        return self.get(name)

    def __setitem__(self, name: str, value) -> None:
        self.assign(name, value)

    def __contains__(self, name: str) -> bool:
        session = _session()
        return bool(session.ri.baseenv["exists"](name, envir=session.ri.globalenv)[0])

    def __repr__(self) -> str:
        state = "running" if r_runtime.is_started() else "not started"
        return f"<polymagic R engine ({state})>"


def _check_name(name) -> None:
    if not isinstance(name, str) or not name:
        raise TypeError(f"R variable names are non-empty strings, not {name!r}")


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

    __slots__ = ("sexp", "name", "_cdata", "__weakref__")

    def __init__(self, sexp, name: str | None = None):
        self.sexp = sexp
        self.name = name
        self._cdata = sexp.__sexp__._cdata

    def __call__(self, *args, **kwargs):
        __tracebackhide__ = True  # plumbing: IPython leaves it out of tracebacks
        if threading.get_ident() != _r_thread:
            _session()  # starts R, or raises ThreadError from a foreign thread
        if kwargs or len(args) >= len(_LANG):
            return self._call_with_names(args, kwargs)
        to_r = _to_r
        r_args = [to_r(value) for value in args]  # alive until R returns
        _enter_r()
        # The hot path: build the call with R's C API and R_tryEval it (rpy2's own
        # closure call spends ~6 us in Python around the same two C calls).
        call = _rlib.Rf_protect(_LANG[len(r_args)](
            self._cdata, *[value.__sexp__._cdata for value in r_args]))
        result = _rlib.R_tryEval(call, _rlib.R_GlobalEnv, _ERROR_FLAG)
        failed = _ERROR_FLAG[0]
        if not failed:
            result = _wrap_sexp(result)  # preserved from here on
        _rlib.Rf_unprotect(1)
        interrupted = _leave()
        if failed:
            raise _failure(_SESSION, interrupted, outer_name=self.name or "<R function>",
                           drop_outer=False)
        if interrupted:
            raise KeyboardInterrupt
        if _SESSION.held_stderr is not None:
            _SESSION.release_stderr()
        return _to_python(result)

    def _call_with_names(self, args, kwargs):
        """Calls with keyword arguments (named R arguments), through rpy2."""
        __tracebackhide__ = True  # plumbing: IPython leaves it out of tracebacks
        to_r = _to_r
        r_args = [to_r(value) for value in args]
        r_kwargs = {key: to_r(value) for key, value in kwargs.items()}
        _enter_r()
        try:
            result = self.sexp(*r_args, **r_kwargs)
        except _RRuntimeError:
            failure = _failure(_SESSION, _leave(), outer_name=self.name or "<R function>",
                               drop_outer=False)
        except BaseException:
            _leave()
            raise
        else:
            if _leave():
                raise KeyboardInterrupt
            _SESSION.release_stderr()
            return _to_python(result)
        raise failure

    def __repr__(self) -> str:
        return f"<R function {self.name or '(anonymous)'}>"


R = REngine()


marshal_shim.connect(start=r_runtime.start, lock=r_runtime.lock,
                     python_section=r_runtime.python_section, function_class=RFunction)
