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
"""
from __future__ import annotations

import functools
import linecache
import os
import types
from dataclasses import dataclass

# Code of the machinery between languages: polymagic itself, the bridges' libraries,
# and the stdlib glue they run through. Its frames are plumbing, not layers of the
# user's code: dropped from spliced tracebacks, skipped when looking for the caller.
_PLUMBING = (os.path.dirname(__file__) + os.sep, f"{os.sep}rpy2{os.sep}",
             f"{os.sep}cffi{os.sep}", f"{os.sep}juliacall{os.sep}",
             f"{os.sep}contextlib.py", "<frozen ")


@functools.lru_cache(maxsize=1024)
def is_plumbing(filename: str) -> bool:
    """Whether code from `filename` belongs to polymagic's machinery (see _PLUMBING)."""
    return any(part in filename for part in _PLUMBING)


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
    return is_plumbing(tb.tb_frame.f_code.co_filename)


def foreign_frames(error: BaseException) -> list[str]:
    """The foreign frames in `error`'s traceback, as text (for tests and messages)."""
    found, tb = [], error.__traceback__
    while tb is not None:
        if is_foreign(tb):
            code = tb.tb_frame.f_code
            found.append(f"{tb.tb_frame.f_globals['__name__']}:{code.co_name}:{tb.tb_lineno}")
        tb = tb.tb_next
    return found
