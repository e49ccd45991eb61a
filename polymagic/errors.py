"""The exception hierarchy every bridge raises.

Each foreign failure carries the language, the foreign message, the foreign stack and
where in the cell it happened; the message is rendered lazily from those parts, so a
bridge can fill them in as it learns them.
"""
from __future__ import annotations


class PolymagicError(Exception):
    """Base of every error polymagic raises on purpose."""


class BridgeUnavailable(PolymagicError, ImportError):
    """A language runtime or compiler is missing; the message says how to get it."""

    def __init__(self, language: str, reason: str, how_to_fix: str = ""):
        self.language = language
        self.reason = reason
        self.how_to_fix = how_to_fix
        super().__init__(language, reason, how_to_fix)

    def __str__(self) -> str:
        text = f"{self.language} is not available: {self.reason}"
        return f"{text}\n{self.how_to_fix}" if self.how_to_fix else text


class ConversionError(PolymagicError, TypeError):
    """A value cannot cross into (or out of) a language."""


class CopyRequired(ConversionError, ValueError):
    """copy=False was asked, but the value can only cross as a copy."""


class ThreadError(PolymagicError, RuntimeError):
    """A runtime that is bound to one thread was called from another."""


class ForeignError(PolymagicError):
    """An error raised by foreign code (R, Julia, C++), with its message and stack.

    `message` is the foreign message, `stack` a list of foreign frames as text
    (innermost last), `line` the 1-based cell line where it happened (or None),
    `output` what the code printed before failing.
    """

    language = "foreign"

    def __init__(self, message: str, stack=(), line: int | None = None,
                 source: str | None = None, output: str = ""):
        self.message = message
        self.stack = list(stack)
        self.line = line
        self.source = source
        self.output = output
        super().__init__(message)

    def __str__(self) -> str:
        where = f" (cell line {self.line})" if self.line else ""
        text = f"{self.language} error{where}: {self.message}"
        if self.line and self.source:
            text += "\n" + _excerpt(self.source, self.line)
        if self.stack:
            text += f"\n{self.language} stack (innermost last):\n" + "\n".join(
                f"  {frame}" for frame in self.stack)
        return text


class RError(ForeignError):
    """R signalled an error (`stop()`, a failed parse, an R-level failure)."""

    language = "R"


class RNameError(RError, KeyError):
    """R has no variable by that name (a KeyError, as `pm.R["x"]` is a lookup)."""

    def __str__(self) -> str:
        return RError.__str__(self)


class RWarning(UserWarning):
    """An R warning, re-issued as a Python warning (same order, R's message)."""


class RRecursionError(RError, RecursionError):
    """R ran out of C stack (deep recursion, often across languages)."""


class JuliaError(ForeignError):
    """Julia threw an exception."""

    language = "Julia"


class CppError(ForeignError):
    """A C++ exception that is not a std::exception crossed into Python."""

    language = "C++"


class CompileError(PolymagicError):
    """A compiler or linker rejected a cell; diagnostics use the cell's line numbers."""

    def __init__(self, language: str, diagnostics: str, command=(), lines=()):
        self.language = language
        self.diagnostics = diagnostics
        self.command = list(command)
        self.lines = sorted(set(lines))
        super().__init__(language, diagnostics)

    def __str__(self) -> str:
        where = f" at cell line {', '.join(map(str, self.lines))}" if self.lines else ""
        return f"{self.language} compilation failed{where}:\n{self.diagnostics.rstrip()}"


def _excerpt(source: str, line: int, context: int = 1) -> str:
    """The cell lines around `line`, numbered, with an arrow on `line`."""
    lines = source.splitlines()
    first, last = max(1, line - context), min(len(lines), line + context)
    return "\n".join(
        f"{'-->' if n == line else '   '} {n:4d} | {lines[n - 1]}"
        for n in range(first, last + 1))
