"""Python classes for C++ exceptions that escape a cell's function.

Every one is a `polymagic.CppError` (the foreign message, the cell line of the function
that threw) and also the builtin whose meaning fits, so `except ValueError` works:
std::invalid_argument -> CppValueError, std::out_of_range -> CppIndexError,
std::runtime_error -> CppRuntimeError, any other std::exception -> CppStdException.
Anything else thrown (an int, a user type not derived from std::exception) is a plain
CppError. The depth guard (a call that would re-enter Python with the thread's stack nearly
exhausted, or at Python's recursion limit) raises CppRecursionError, a RecursionError.
"""
from __future__ import annotations

from ...errors import (CppError, CppIndexError, CppRecursionError, CppRuntimeError,  # noqa: F401
                       CppStdException, CppValueError)


# Kind codes written by runtime.cpp's pm_rt_capture.
(PYTHON, INVALID_ARGUMENT, OUT_OF_RANGE, RUNTIME_ERROR, STD_EXCEPTION, UNKNOWN,
 RECURSION) = range(1, 8)

CLASSES = {INVALID_ARGUMENT: CppValueError, OUT_OF_RANGE: CppIndexError,
           RUNTIME_ERROR: CppRuntimeError, STD_EXCEPTION: CppStdException,
           UNKNOWN: CppError, RECURSION: CppRecursionError}


def from_cpp(kind: int, type_name: str, what: str, function: str, line: int | None,
             source: str | None) -> CppError:
    """The Python exception for a C++ exception of `type_name` with `what()`."""
    if kind == RECURSION:
        message = (f"maximum recursion depth exceeded: {function}() stopped before "
                   f"calling Python again: {what} (deep recursion between C++ and "
                   f"Python)")
    elif kind == UNKNOWN:
        message = (f"{function}() threw a {type_name}, which is not a std::exception "
                   f"(no message)")
    else:
        message = f"{function}() threw {type_name}: {what}"
    error = CLASSES[kind](message, line=line, source=source)
    error.cpp_type = type_name
    error.what = what if kind not in (UNKNOWN, RECURSION) else None
    return error
