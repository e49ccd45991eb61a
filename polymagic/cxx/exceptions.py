"""Python classes for C++ exceptions that escape a cell's function.

Every one is a `polymagic.CppError` (the foreign message, the cell line of the function
that threw) and also the builtin whose meaning fits, so `except ValueError` works:
std::invalid_argument -> CppValueError, std::out_of_range -> CppIndexError,
std::runtime_error -> CppRuntimeError, any other std::exception -> CppStdException.
Anything else thrown (an int, a user type not derived from std::exception) is a plain
CppError.
"""
from __future__ import annotations

from ..errors import CppError


class CppValueError(CppError, ValueError):
    """std::invalid_argument (or a subclass) escaped a C++ function."""


class CppIndexError(CppError, IndexError):
    """std::out_of_range (or a subclass) escaped a C++ function."""


class CppRuntimeError(CppError, RuntimeError):
    """std::runtime_error (or a subclass) escaped a C++ function."""


class CppStdException(CppError, RuntimeError):
    """A std::exception that is neither invalid_argument, out_of_range nor runtime_error."""


# Kind codes written by runtime.cpp's pm_rt_capture.
PYTHON, INVALID_ARGUMENT, OUT_OF_RANGE, RUNTIME_ERROR, STD_EXCEPTION, UNKNOWN = range(1, 7)

CLASSES = {INVALID_ARGUMENT: CppValueError, OUT_OF_RANGE: CppIndexError,
           RUNTIME_ERROR: CppRuntimeError, STD_EXCEPTION: CppStdException,
           UNKNOWN: CppError}


def from_cpp(kind: int, type_name: str, what: str, function: str, line: int | None,
             source: str | None) -> CppError:
    """The Python exception for a C++ exception of `type_name` with `what()`."""
    if kind == UNKNOWN:
        message = (f"{function}() threw a {type_name}, which is not a std::exception "
                   f"(no message)")
    else:
        message = f"{function}() threw {type_name}: {what}"
    error = CLASSES[kind](message, line=line, source=source)
    error.cpp_type = type_name
    error.what = what if kind != UNKNOWN else None
    return error
