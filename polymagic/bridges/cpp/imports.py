"""PM_PYTHON functions: C++ calls into the shared Python namespace.

A cell declares `PM_PYTHON double fib_py(int n);` (polymagic.hpp). With arithmetic
types only, the generated C++ definition calls the module's C glue, which looks the
name up and calls it through the C API (capi.py; `result_converter` gives it this
module's result rules). Otherwise it calls through a function-pointer slot. `connect`
fills each slot, once the module is loaded, with a C function pointer (made by
`callbacks.function_pointer`, so Python exceptions unwind through C++) to a thunk
that looks the name up in the shared namespace at call time (`hub.lookup`), so a
redefinition is seen by the next call, calls it, and converts the result to the
declared C++ type.

The slots live as long as the library (it is never unloaded), so the function
pointers are kept alive by the module's `ModuleInfo`, which `callbacks.modules`
holds for the life of the process.
"""
from __future__ import annotations

import operator

from ... import hub
from ...errors import ConversionError
from . import callbacks, types


def connect_c_api(info, ffi, lib, plan: dict) -> None:
    """Give the module's C glue the Python objects its C-API callers use (capi.py;
    `plan["c_api"]` says which, as the glue was generated)."""
    entry = plan["c_api"]
    table = [callbacks.stash, None, None, "explicit", "ipython", "C++"]
    if entry["imports"]:
        table[1:3] = hub._state, hub.lookup
    for ret in entry["results"]:
        table.append(None if ret in (None, "float", "double") else callbacks.c_value(ffi, ret))
    if entry["imports"]:
        for served in entry["imports"]:
            function = plan["imports"][served["index"]]
            table += [function["name"], result_converter(function, ffi)]
    info.c_api_table = tuple(table)
    lib.pm_py_connect(id(info.c_api_table))


def connect(info, ffi, lib, imports: list, plan_c_api: dict) -> None:
    """Point every PM_PYTHON slot of the module at its thunk (kept in `info`).

    Imports with arithmetic types have no slot: the module's C glue calls Python
    for them (capi.py; `connect_c_api` gave it `result_converter`s); they
    are listed in `info.imports` under the name of their C caller."""
    converters = _Converters(ffi, lib)
    served_by_c = {entry["index"]: entry["caller"] for entry in plan_c_api["imports"]}
    pointers = {}
    for function in imports:
        if function["index"] in served_by_c:
            pointers[function["slot"]] = served_by_c[function["index"]]
            continue
        from .codegen import c_slot_type
        thunk = _thunk(function, converters)
        pointer = callbacks.function_pointer(ffi, lib, c_slot_type(function),
                                             thunk)
        setattr(lib, function["slot"], pointer)
        pointers[function["slot"]] = pointer
    info.imports = pointers


def _thunk(function: dict, converters: "_Converters"):
    """Generate `def fib_py(a0): return _lookup("fib_py", "C++")(a0)` plus the
    conversions its types need (strings, spans, results Python must not guess)."""
    formals, actuals = [], []
    specs = []
    for position, param in enumerate(function["params"]):
        spec, name = param["type"], f"a{position}"
        specs.append(spec)
        if spec["kind"] == "scalar":
            formals.append(name)
            actuals.append(name)
        elif spec["kind"] == "cstr":
            formals.append(name)
            actuals.append(f"_c.cstr({name})")
        elif spec["kind"] == "string":
            formals += [name, f"{name}_n"]
            actuals.append(f"_c.string({name}, {name}_n)")
        else:  # span
            formals += [name, f"{name}_n"]
            actuals.append(f"_c.span({name}, {name}_n, _specs[{position}])")
    if function["ret"]["kind"] in ("string", "vector"):
        formals.append("out")  # where the C++ result object is, to assign it
    call = f"_lookup({function['name']!r}, 'C++')({', '.join(actuals)})"
    body = _result_statement(function, call)
    thunk_name = f"pm_python_{function['name']}"
    text = f"def {thunk_name}({', '.join(formals)}):\n    {body}\n"
    namespace = {"_lookup": hub.lookup, "_c": converters, "_specs": specs,
                 "_function": function}
    exec(compile(text, callbacks.plumbing_filename(f"PM_PYTHON {function['name']}"), "exec"),
         namespace)
    return namespace[thunk_name]


def result_converter(function: dict, ffi):
    """For the C caller of an arithmetic import: a result that is not an exact int
    (or bool) -> an int (bool) by this module's rules, then cffi's range check; None
    where C converts every result itself (float, double, void)."""
    result = function["ret"]
    if result["kind"] == "void" or result["tag"] in ("float", "double"):
        return None
    to_c = callbacks.c_value(ffi, result["tag"])
    if result["tag"] == "bool":
        converters = _Converters(ffi, None)
        return lambda value: to_c(converters.bool_result(value, function))
    return lambda value: to_c(_Converters.int_result(value, function))


def _result_statement(function: dict, call: str) -> str:
    result = function["ret"]
    kind = result["kind"]
    if kind == "void":
        return f"{call}"
    if kind in ("string", "vector"):
        return f"_c.{kind}_result({call}, out, _function)"
    if result["tag"] == "bool":
        return f"return _c.bool_result({call}, _function)"
    if result["tag"] in ("float", "double"):
        return f"return {call}"  # cffi takes int, float and NumPy floats itself
    return f"return _c.int_result({call}, _function)"


class _Converters:
    """Conversions used by the thunks of one module (bound to its ffi and lib)."""

    def __init__(self, ffi, lib):
        import numpy
        self.numpy, self.ffi, self.lib = numpy, ffi, lib

    def cstr(self, pointer):
        return self.ffi.string(pointer).decode("utf-8", "surrogateescape")

    def string(self, pointer, size):
        return self.ffi.unpack(pointer, size).decode("utf-8", "surrogateescape")

    def span(self, pointer, size, spec):
        """A NumPy view of the C++ span (valid during the call), read-only if const."""
        dtype = self.numpy.dtype(types.dtype_char(spec["tag"]))
        if size == 0:
            return self.numpy.empty(0, dtype)
        view = self.numpy.frombuffer(self.ffi.buffer(pointer, size * dtype.itemsize),
                                     dtype)
        if spec["const"]:
            view.flags.writeable = False
        return view

    @staticmethod
    def int_result(value, function):
        if type(value) is int:
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)  # R's numbers are doubles: 3.0 is a fine int
        try:
            return operator.index(value)  # NumPy integers, bool
        except TypeError:
            raise _result_error(function, value) from None

    def bool_result(self, value, function):
        if isinstance(value, (bool, int, self.numpy.bool_)):
            return bool(value)
        raise _result_error(function, value)

    def string_result(self, value, out, function):
        if isinstance(value, str):
            value = value.encode("utf-8", "surrogateescape")
        elif not isinstance(value, bytes):
            raise _result_error(function, value)
        self.lib.pm_assign_string(out, value, len(value))

    def vector_result(self, value, out, function):
        """Copy a NumPy array (or a sequence) into the std::vector C++ returns."""
        tag = function["ret"]["tag"]
        dtype = self.numpy.dtype(types.dtype_char(tag))
        try:
            array = self.numpy.ascontiguousarray(value, dtype=dtype)
        except (TypeError, ValueError):
            raise _result_error(function, value) from None
        if array.ndim != 1:
            raise _result_error(function, value)
        assign = getattr(self.lib, f"pm_assign_vector_{tag}")
        assign(out, self.ffi.from_buffer(f"{types.c_name(tag)}[]", array), array.size)


def _result_error(function: dict, value) -> ConversionError:
    shown = repr(value)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return ConversionError(
        f"C++ declared {describe(function)} (cell line {function['line']}), but the "
        f"Python side returned {shown} ({type(value).__name__}), which is not a "
        f"{types.describe(function['ret'])}")


def describe(function: dict) -> str:
    """'PM_PYTHON double fib_py(int n)', for messages."""
    params = ", ".join(f"{types.describe(p['type'])} {p['name']}"
                       for p in function["params"])
    return f"PM_PYTHON {types.describe(function['ret'])} {function['name']}({params})"
