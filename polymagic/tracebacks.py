"""Mixed-language tracebacks: foreign frames spliced into Python's own traceback.

When an error crosses R, C++ or Julia on its way up, the bridge that sees it leave
the foreign code splices that language's frames into the exception's traceback, so
Python's (and IPython's) traceback printer shows every layer in call order:

    File "<stdin>", line 1, in <module>            (Python)
    File "<R cell 2>", line 3, in fib_r           (R)
    File "<cpp cell>", line 5, in fib_cpp          (C++)
    File "<ipython-input-4>", line 2, in fib_py    (Python)

A synthetic frame is a real Python frame of a tiny code object that carries the
foreign file name, function name and line number (the trick Jinja2 uses for template
tracebacks); the foreign source is registered with `linecache` so printers show the
foreign line itself.

Polymagic's own frames (its plumbing) are left out: `splice` drops them where an
error leaves foreign code, and `entry_point` (on pm.cpp, pm.cython, pm.R, R and Julia
functions, every magic) drops them, its own frame included, where an error leaves
polymagic for the user's code. A crash inside polymagic keeps them (see
`hide_plumbing`).
"""
from __future__ import annotations

import dis
import functools
import linecache
import os
import sys
import types
from dataclasses import dataclass

# Code of the machinery between languages: polymagic itself, the bridges' libraries,
# and the stdlib glue they run through. Its frames are plumbing, not layers of the
# user's code: dropped from spliced tracebacks, skipped when looking for the caller.
_PLUMBING = (os.path.dirname(__file__) + os.sep, f"{os.sep}rpy2{os.sep}",
             f"{os.sep}cffi{os.sep}", f"{os.sep}juliacall{os.sep}",
             f"{os.sep}contextlib.py", f"{os.sep}functools.py", "<frozen ")


# Modules whose Python code is compiled under another file's name: juliacall's wrapper
# classes (AnyValue.__call__ ...) are compiled from strings in PythonCall's .jl files
# and run in juliacall's globals (PythonCall src/JlWrap/any.jl, init_any).
_PLUMBING_MODULES = frozenset({"juliacall"})


@functools.lru_cache(maxsize=1024)
def is_plumbing(filename: str) -> bool:
    """Whether code from `filename` belongs to polymagic's machinery (see _PLUMBING)."""
    return any(part in filename for part in _PLUMBING)


def is_plumbing_frame(frame: types.FrameType) -> bool:
    """Whether `frame` runs polymagic's machinery: by its file, or by the module whose
    globals it runs in (see _PLUMBING_MODULES)."""
    return (is_plumbing(frame.f_code.co_filename)
            or frame.f_globals.get("__name__") in _PLUMBING_MODULES)


@dataclass(frozen=True)
class ForeignFrame:
    """One frame of foreign code: language, function, file (or cell name) and line."""

    language: str
    function: str
    filename: str
    line: int

    def __str__(self) -> str:
        return f'{self.language}: File "{self.filename}", line {self.line}, in {self.function}'


class _SyntheticFrameMarker(Exception):
    """Raised inside a synthetic frame to capture it; never escapes this module."""


def register_source(filename: str, source: str) -> None:
    """Make `source` the text printers show for `filename` (a cell, not a real file)."""
    lines = [line + "\n" for line in source.splitlines()]
    linecache.cache[filename] = (len(source), None, lines, filename)


def forget_source(filename: str) -> None:
    """Drop what `register_source` registered for `filename` (its memory comes back)."""
    linecache.cache.pop(filename, None)


def _source_line(filename: str, line: int) -> str:
    return linecache.getline(filename, line).rstrip("\n")


@functools.lru_cache(maxsize=4096)
def _synthetic_code(filename: str, function: str, line: int, width: int):
    """Code whose line `line` raises, named `function`, in file `filename`.

    The raise statement is made at least as wide as the foreign line so that Python's
    printer draws no carets under foreign text it cannot understand.
    """
    statement = "raise _marker"
    if width > len(statement) + 2:
        statement = "raise (_marker" + " " * (width - len(statement) - 3) + ")"
    source = "\n" * (max(line, 1) - 1) + statement + "\n"
    return compile(source, filename, "exec").replace(co_name=function)


def _synthetic_traceback(frame: ForeignFrame) -> types.TracebackType:
    """A one-entry traceback whose frame shows `frame` (file, function, line)."""
    width = len(_source_line(frame.filename, frame.line))
    code = _synthetic_code(frame.filename, frame.function, frame.line, width)
    try:
        exec(code, {"_marker": _SyntheticFrameMarker, "__name__": frame.language})
    except _SyntheticFrameMarker as marker:
        return marker.__traceback__.tb_next
    raise AssertionError("unreachable: synthetic code always raises")


def chain(frames, tb_next: types.TracebackType | None = None):
    """A traceback of `frames` (outermost first) continuing into `tb_next`."""
    for frame in reversed(list(frames)):
        entry = _synthetic_traceback(frame)
        tb_next = types.TracebackType(tb_next, entry.tb_frame, entry.tb_lasti,
                                      entry.tb_lineno)
    return tb_next


def splice(error: BaseException, frames) -> BaseException:
    """Put `frames` (outermost first) in front of `error`'s traceback; return `error`.

    Called at the boundary where `error` leaves foreign code; re-raising it there
    adds the boundary's Python frames on top, so the order stays the call order.
    Plumbing entries are dropped, but only those added since the error last crossed a
    boundary (the rest were cleaned then), so an error rising through thousands of
    language levels costs linear, not quadratic, time.
    """
    fresh, rest = [], error.__traceback__
    while rest is not None and not is_foreign(rest):
        if not _is_internal(rest):
            fresh.append(rest)
        rest = rest.tb_next
    for entry in reversed(fresh):
        rest = types.TracebackType(rest, entry.tb_frame, entry.tb_lasti, entry.tb_lineno)
    error.__traceback__ = chain(frames, rest)
    return error


def is_foreign(tb: types.TracebackType) -> bool:
    """Whether this traceback entry is a synthetic frame standing for foreign code."""
    return tb.tb_frame.f_globals.get("_marker") is _SyntheticFrameMarker


def _is_internal(tb: types.TracebackType) -> bool:
    return is_plumbing_frame(tb.tb_frame)


def foreign_frames(error: BaseException) -> list[str]:
    """The foreign frames in `error`'s traceback, as text (for tests and messages)."""
    found, tb = [], error.__traceback__
    while tb is not None:
        if is_foreign(tb):
            code = tb.tb_frame.f_code
            found.append(f"{tb.tb_frame.f_globals['__name__']}:{code.co_name}:{tb.tb_lineno}")
        tb = tb.tb_next
    return found


# ---------------------------------------------------------------------------------
# Clean errors at the public boundary

_RAISE_OPCODES = frozenset(dis.opmap[name] for name in ("RAISE_VARARGS", "RERAISE")
                           if name in dis.opmap)
# From 3.11 a bare `raise` re-raises with the exception's own __traceback__ and adds no
# entry for the re-raising frame; 3.10 re-raises the traceback it caught.
_BARE_RAISE_KEEPS_CLEANED_TB = sys.version_info >= (3, 11)


_WRAPPED_DUNDERS = ("__call__", "__getitem__", "__setitem__", "__delitem__", "__contains__")


def entry_point(target):
    """Decorate a public entry point (pm.cpp, a magic ...) or a public class (pm.R's,
    an R function's: every public method and the call/item dunders): an error leaving
    it carries no frame of polymagic's plumbing, the entry's own frame included, so
    IPython, Jupyter and `traceback.print_exc()` in a script all show the user's code,
    then the foreign frames (see `hide_plumbing`)."""
    if isinstance(target, type):
        for name, member in list(vars(target).items()):
            if isinstance(member, types.FunctionType) and not hasattr(
                    member, "__polymagic_entry__") and (
                    not name.startswith("_") or name in _WRAPPED_DUNDERS):
                setattr(target, name, entry_point(member))
        return target

    @functools.wraps(target)
    def entry(*args, **kwargs):
        __tracebackhide__ = True  # for IPython, in case a traceback keeps this frame
        try:
            return target(*args, **kwargs)
        except BaseException as error:
            hide_plumbing(error)
            if _BARE_RAISE_KEEPS_CLEANED_TB:
                raise
            raise error  # 3.10: this one frame of polymagic's stays
    entry.__polymagic_entry__ = True  # wrapped once, however often a class is decorated
    return entry


def hide_plumbing(error: BaseException) -> BaseException:
    """Unlink plumbing entries from the traceback of `error` and of the errors chained
    to it (causes, contexts); return `error`.

    Errors polymagic raised on purpose and errors that came from the user's or foreign
    code are cleaned. An error that broke out of polymagic's own code without a raise
    statement (an AttributeError in a bridge, say) is a polymagic bug: it keeps every
    frame, because they say where the bug is.
    """
    if not _meant(error):
        return error
    pending, seen = [error], set()
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        current.__traceback__ = _without_plumbing(current.__traceback__)
        pending.extend(e for e in (current.__cause__, current.__context__) if e is not None)
    return error


def _meant(error: BaseException) -> bool:
    """Whether `error` is shown cleaned, i.e. it is not a crash inside polymagic."""
    from .errors import PolymagicError  # errors.py imports nothing: no cycle
    if isinstance(error, (PolymagicError, KeyboardInterrupt)):
        return True
    tb = error.__traceback__
    if tb is None:
        return True
    while tb.tb_next is not None and not is_foreign(tb):
        tb = tb.tb_next
    if is_foreign(tb) or not _is_internal(tb):  # it came from foreign or user code
        return True
    return tb.tb_frame.f_code.co_code[tb.tb_lasti] in _RAISE_OPCODES


def _without_plumbing(tb: types.TracebackType | None):
    """`tb` without its plumbing entries, up to its first foreign frame (what follows
    one was cleaned when the error crossed that boundary, see `splice`)."""
    kept, rest, dropped = [], tb, False
    while rest is not None and not is_foreign(rest):
        if _is_internal(rest):
            dropped = True
        else:
            kept.append(rest)
        rest = rest.tb_next
    if not dropped:
        return tb
    # new entries rather than setting tb_next, whose loop check walks the whole rest
    for entry in reversed(kept):
        rest = types.TracebackType(rest, entry.tb_frame, entry.tb_lasti, entry.tb_lineno)
    return rest
