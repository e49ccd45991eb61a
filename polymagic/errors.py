"""Every exception and warning class polymagic raises, in one place.

    PolymagicError
    ├── BridgeUnavailable (ImportError)      a runtime or compiler is missing: how to get it
    ├── ConfigError (ValueError)             a POLYMAGIC_* variable holds a bad value
    ├── OptionError (ValueError)             a library option polymagic cannot use
    │   ├── CppOptionError
    │   ├── CythonOptionError
    │   └── GraphicsOptionError
    ├── CacheDirError (PermissionError)      the build cache is not private
    ├── HubNameError (NameError, KeyError)   the shared namespace lacks a name
    ├── MagicNameError (NameError)           a magic option names no Python variable
    ├── ConversionError (TypeError)          a value cannot cross
    │   ├── CopyRequired (ValueError)        copy=False, but only a copy can cross
    │   └── OverloadError                    no C++ overload takes these argument types
    ├── ThreadError (RuntimeError)           a one-thread runtime entered from another
    ├── CompileError                         compiler/linker diagnostics, cell lines
    ├── UnsupportedType                      (internal) a C++ type that cannot cross
    └── ForeignError                         foreign message, stack, cell line
        ├── RError
        │   ├── RNameError (KeyError)
        │   └── RRecursionError (RecursionError)
        ├── JuliaError
        │   └── JuliaNameError (KeyError)
        └── CppError
            ├── CppValueError (ValueError)         std::invalid_argument
            ├── CppIndexError (IndexError)         std::out_of_range
            ├── CppRuntimeError (RuntimeError)     std::runtime_error
            ├── CppStdException (RuntimeError)     any other std::exception
            ├── CppRecursionError (RecursionError) the C++ -> Python depth guard
            └── CppFault                           a C++ call stopped by a signal
                └── CppExit                        ... or by exit() and its kin

    Warnings: RWarning, UnsupportedSignature (both UserWarning); DamagedCacheEntry
    (RuntimeWarning): a build cache entry was damaged, dropped and is built again.

    `also(error, *bases)` makes an error an instance of classes from libraries this
    module does not import (IPython's UsageError, rpy2's RRuntimeError, RParsingError,
    RInterpreterError), so code written against those libraries still catches it.

Each foreign failure carries the language, the foreign message, the foreign stack and
where in the cell it happened; the message is rendered lazily from those parts, so a
bridge can fill them in as it learns them. Each class also subclasses the builtin whose
meaning fits, so `except KeyError` or `except ValueError` work as users expect.
"""
from __future__ import annotations

import threading


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


class ConfigError(PolymagicError, ValueError):
    """An environment variable holds a value polymagic cannot use."""


class OptionError(PolymagicError, ValueError):
    """An option given to a library function has a value it cannot use."""


class CppOptionError(OptionError):
    """An option given to pm.cpp() (or %%cpp) has a value it cannot use."""


class CythonOptionError(OptionError):
    """An option given to pm.cython() has a value it cannot use."""


class GraphicsOptionError(OptionError):
    """A plot option that R's device cannot take (bad format, unit, size...)."""


class CacheDirError(PolymagicError, PermissionError):
    """The cache directory is not private to this user, so loading from it is unsafe."""


class HubNameError(PolymagicError, NameError, KeyError):
    """A language asked the shared namespace for a name it does not hold."""

    def __str__(self) -> str:
        return self.args[0]


class MagicNameError(PolymagicError, NameError):
    """A magic option (`-i`, `-d`, `%Rpush`) names a Python variable that is not defined."""


class UnsupportedType(PolymagicError):
    """A C++ type that cannot cross; the message names it (used for warnings)."""


class UnsupportedSignature(UserWarning):
    """A cell function was not exported because a type in its signature cannot cross."""


class DamagedCacheEntry(RuntimeWarning):
    """A build cache entry was truncated or altered after it was published; it was
    removed and is built again (the message names the entry and what was wrong)."""


class ConversionError(PolymagicError, TypeError):
    """A value cannot cross into (or out of) a language."""


class CopyRequired(ConversionError, ValueError):
    """copy=False was asked, but the value can only cross as a copy."""


class OverloadError(ConversionError):
    """No overload of a C++ function takes the arguments' types; the message lists
    every overload's signature and the types given (pybind11's "incompatible function
    arguments")."""


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
    """Julia threw an exception; `julia_type` names its Julia type ('MethodError',
    'BoundsError' ...; '' when polymagic raised it, as for JuliaNameError)."""

    language = "Julia"
    julia_type = ""


class JuliaNameError(JuliaError, KeyError):
    """Julia's Main has no variable by that name (a KeyError, as with RNameError)."""

    def __str__(self) -> str:
        return JuliaError.__str__(self)


class CppError(ForeignError):
    """A C++ exception that is not a std::exception crossed into Python."""

    language = "C++"


class CppValueError(CppError, ValueError):
    """std::invalid_argument (or a subclass) escaped a C++ function."""


class CppIndexError(CppError, IndexError):
    """std::out_of_range (or a subclass) escaped a C++ function."""


class CppRuntimeError(CppError, RuntimeError):
    """std::runtime_error (or a subclass) escaped a C++ function."""


class CppStdException(CppError, RuntimeError):
    """A std::exception that is neither invalid_argument, out_of_range nor runtime_error."""


class CppRecursionError(CppError, RecursionError):
    """Recursion through C++ (to Python and back) nearly exhausted the thread's stack."""


class CppFault(CppError):
    """A C++ call faulted (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT) and polymagic cut it
    off instead of letting the process die; the process state may be damaged, so a
    restart is wise. `signal` names the signal, `function` the C++ function, `cell`
    its cell."""

    signal: str | None = None
    function: str | None = None
    cell: str | None = None


class CppExit(CppFault):
    """A cell called exit(), _Exit(), quick_exit() or _exit(): polymagic stopped the call
    instead of the process. `how` names the function called, `status` its status."""

    how: str | None = None
    status: int | None = None


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


_mixed_classes: dict = {}
_mixed_lock = threading.Lock()


def also(error: BaseException, *bases: type) -> BaseException:
    """`error`, now also an instance of `bases` (classes of other libraries, which
    polymagic does not import itself), keeping its class name, message and attributes.

    The combined class is made once per combination and pickles as polymagic's own
    class; bases that `error` is already an instance of are left out."""
    current = type(error)
    wanted = tuple(base for base in bases if not isinstance(error, base) and not any(
        other is not base and issubclass(other, base) for other in bases))  # C3 order
    if not wanted:
        return error
    own = current.__dict__.get("_polymagic_class", current)
    with _mixed_lock:
        combined = _mixed_classes.get((current, wanted))
        if combined is None:
            combined = _mixed_classes[(current, wanted)] = type(
                own.__name__, (current, *wanted),
                {"__module__": own.__module__, "__doc__": own.__doc__,
                 "_polymagic_class": own,
                 "__reduce__": lambda self: (own, self.args, self.__dict__)})
    error.__class__ = combined  # same layout: only the class changes, not the object
    return error


def _excerpt(source: str, line: int, context: int = 1) -> str:
    """The cell lines around `line`, numbered, with an arrow on `line`."""
    lines = source.splitlines()
    first, last = max(1, line - context), min(len(lines), line + context)
    return "\n".join(
        f"{'-->' if n == line else '   '} {n:4d} | {lines[n - 1]}"
        for n in range(first, last + 1))
