"""Python callables called from C++, and exceptions across the C++ boundary.

Callables passed for callback parameters, and PM_PYTHON imports with arithmetic
types, are called by the module's C glue through the C API (capi.py);
`imports.connect_c_api` hands the glue the Python objects it needs. Either way a Python
exception takes the same road: stashed here under a handle, thrown through the C++
frames, raised again as the same object (`exception_from_cpp`).

`function_pointer(ffi, lib, cdecl, callable)` (ffi.callback; the other PM_PYTHON
imports use it) turns any
Python callable into a C function pointer of signature `cdecl` whose Python exceptions
are not lost. When the callable raises, cffi calls our onerror handler; it stashes the
exception object under a handle and tells the module's runtime (a thread-local); the
C++ thunk that made the call sees it and throws a C++ exception carrying the handle,
which unwinds the C++ frames up to the trampoline; the trampoline records it and the
glue raises the ORIGINAL exception object in Python (`exception_from_cpp`).
"""
from __future__ import annotations

import itertools
import os
import threading
import weakref

from ...tracebacks import ForeignFrame, splice
from . import exceptions, types

_stash: dict[int, BaseException] = {}
_handles = itertools.count(1)
_stash_lock = threading.Lock()

# cffi module name -> the loaded module's description (set by polymagic.bridges.cpp.module).
modules: dict[str, object] = {}

# callable -> {cdecl: cffi callback}, so passing the same function again is cheap.
_pointer_cache: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def stash(error: BaseException) -> int:
    """Keep `error` alive under a new handle until the C++ side hands it back."""
    with _stash_lock:
        handle = next(_handles)
        _stash[handle] = error
    return handle


def _onerror_for(lib):
    def onerror(exc_type, error, traceback):
        if error is None:  # cffi passes the type alone for some C-level failures
            error = exc_type()
        lib.pm_rt_note_callback_error(stash(error.with_traceback(traceback)))
        return None  # cffi returns the zero value; the thunk throws before using it
    return onerror


def function_pointer(ffi, lib, cdecl: str, function):
    """A C function pointer of type `cdecl` ("double(*)(double)") calling `function`.

    The pointer lives as long as the returned cdata (and, when `function` can be
    weakly referenced, as long as `function` itself: it is cached per callable).
    """
    if isinstance(function, ffi.CData) and ffi.typeof(function) == ffi.typeof(cdecl):
        return function
    if not callable(function):
        raise TypeError(f"expected a callable for a C++ {cdecl} parameter, "
                        f"got {type(function).__name__}")
    try:
        per_callable = _pointer_cache.setdefault(function, {})
    except TypeError:  # not weakly referenceable (a bound method, a builtin): no cache
        per_callable = {}
    pointer = per_callable.get((cdecl, id(lib)))
    if pointer is None:
        pointer = ffi.callback(cdecl, function, onerror=_onerror_for(lib))
        per_callable[(cdecl, id(lib))] = pointer
    return pointer


def c_value(ffi, tag: str):
    """value -> what cffi makes of it as a C `tag` (an int, bool or float), raising
    cffi's own errors: the rules ffi.callback applies to a callback's result."""
    ctype = ffi.typeof(f"{types.c_name(tag)}[1]")

    def convert(value):
        box = ffi.new(ctype)
        box[0] = value
        return box[0]
    return convert


# The first entries of a module's C-API table (see polymagic/bridges/cpp/capi.py); then one
# result converter per callback signature, then a (name, converter) pair per import
# served by C.
C_API_TABLE_HEAD = ("stash", "hub_state", "hub_lookup", "explicit", "ipython",
                    "language")


def exception_from_cpp(module_name: str, function: int, kind: int, handle: int,
                       type_name: bytes, message: bytes,
                       raised: BaseException | None = None) -> BaseException:
    """The exception object the C glue raises for a pending C++ error (GIL held).
    `raised`: what Python's own signal handlers raised, run by the glue after a
    Ctrl-C (normally a KeyboardInterrupt)."""
    info = modules.get(module_name)
    described = info.functions[function] if info is not None else None
    name = described["name"] if described else "a C++ function"
    line = described["line"] if described else None
    source = info.source if info else None
    if kind == exceptions.PYTHON:
        with _stash_lock:
            error = _stash.pop(handle, None)
        if error is None:  # the C glue could not stash it (printed as unraisable)
            error = SystemError("a Python exception raised under C++ was lost on the "
                                "way (see the 'Exception ignored' report above)")
    elif kind == exceptions.INTERRUPTED:  # pm::check_interrupt() after a Ctrl-C
        error = raised if raised is not None else KeyboardInterrupt()
    elif kind in (exceptions.FAULT, exceptions.EXIT, exceptions.FORCED_STOP):
        error = exceptions.stopped(
            kind, type_name.decode("utf-8", "replace"), message.decode("utf-8", "replace"),
            handle, name, info.filename if info else "a C++ cell", line, source)
    else:
        error = exceptions.from_cpp(
            kind, type_name.decode("utf-8", "replace"), message.decode("utf-8", "replace"),
            name, line, source)
    if described is not None:
        frame = ForeignFrame("C++", described["name"], info.filename, described["line"])
        splice(error, [frame])
    return error


def plumbing_filename(what: str) -> str:
    """A code filename inside polymagic's directory, naming no real file: tracebacks
    drop such frames at language boundaries and the hub looks past them for the
    caller's globals, as for any of polymagic's own frames."""
    return os.path.join(os.path.dirname(__file__), f"<{what}>")
