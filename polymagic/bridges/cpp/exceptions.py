"""Python exceptions for what ends a C++ call early: a throw, a fault, exit(), Ctrl-C.

Every C++ exception is a `polymagic.CppError` (the foreign message, the cell line of the
function that threw) and also the builtin whose meaning fits, so `except ValueError`
works: std::invalid_argument -> CppValueError, std::out_of_range -> CppIndexError,
std::runtime_error -> CppRuntimeError, any other std::exception -> CppStdException.
Anything else thrown (an int, a user type not derived from std::exception) is a plain
CppError. The depth guard (a call that would re-enter Python with the thread's stack nearly
exhausted, or at Python's recursion limit) raises CppRecursionError, a RecursionError.

A fault (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT) raises CppFault, exit() and its kin
CppExit; pm::check_interrupt() after Ctrl-C raises KeyboardInterrupt, and so does a
second Ctrl-C in a call that never checks (native/faults.h).
"""
from __future__ import annotations

from ...errors import (CppError, CppExit, CppFault, CppIndexError,  # noqa: F401
                       CppRecursionError, CppRuntimeError, CppStdException, CppValueError)


# Kind codes written by native/runtime.cpp (pm_rt_capture, pm_rt_fault_landed).
(PYTHON, INVALID_ARGUMENT, OUT_OF_RANGE, RUNTIME_ERROR, STD_EXCEPTION, UNKNOWN,
 RECURSION, FAULT, EXIT, INTERRUPTED, FORCED_STOP) = range(1, 12)

CLASSES = {INVALID_ARGUMENT: CppValueError, OUT_OF_RANGE: CppIndexError,
           RUNTIME_ERROR: CppRuntimeError, STD_EXCEPTION: CppStdException,
           UNKNOWN: CppError, RECURSION: CppRecursionError}

DAMAGE = ("polymagic cut the C++ code off mid-way so that the session goes on, but the "
          "process state may be damaged (no destructors ran, and memory or locks that "
          "code held may be left half-updated): save your work and restart the kernel "
          "(or the process) when you can")


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


def stopped(kind: int, name: str, detail: str, number: int, function: str,
            cell: str, line: int | None, source: str | None) -> BaseException:
    """The exception for a call stopped by a jump (native/faults.h): a fault, exit()
    and its kin, or a forced Ctrl-C. `number` is the signal, or the exit status."""
    where = f"{function}() in {cell}"
    if kind == FORCED_STOP:
        return KeyboardInterrupt(
            f"{where} was stopped by force at a second Ctrl-C: it does not call "
            f"pm::check_interrupt() (polymagic.hpp), which would have stopped it at "
            f"the first one. {DAMAGE}")
    if kind == EXIT:
        error = CppExit(f"{where} called {detail}, which would have ended the whole "
                        f"Python process; the call was stopped instead. {DAMAGE}",
                        line=line, source=source)
        error.how, error.status = name, number
    else:
        error = CppFault(f"{where} was stopped by {name}: {detail}. {DAMAGE}",
                         line=line, source=source)
    error.signal = None if kind == EXIT else name
    error.function, error.cell = function, cell
    return error
