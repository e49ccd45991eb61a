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

from ... import hub
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
    context = types.Context(ffi, lib)
    served_by_c = {entry["index"]: entry["caller"] for entry in plan_c_api["imports"]}
    pointers = {}
    for function in imports:
        if function["index"] in served_by_c:
            pointers[function["slot"]] = served_by_c[function["index"]]
            continue
        from .codegen import c_slot_type
        pointer = callbacks.function_pointer(ffi, lib, c_slot_type(function),
                                             _thunk(function, context))
        setattr(lib, function["slot"], pointer)
        pointers[function["slot"]] = pointer
    info.imports = pointers


def _thunk(function: dict, context: types.Context):
    """Generate `def pm_python_f(a0, a1, a1_n): return _lookup("f", "C++")(a0, _a1(a1,
    a1_n))` with the conversions each parameter's and the result's kind give."""
    namespace = {"_lookup": hub.lookup}
    formals, actuals = [], []
    for position, param in enumerate(function["params"]):
        kind = types.kind_of(param["type"])
        names = kind.thunk_formals(f"a{position}")
        formals += names
        converter = kind.thunk_converter(context)
        if converter is None:
            actuals += names
        else:
            namespace[f"_a{position}"] = converter
            actuals.append(f"_a{position}({', '.join(names)})")
    result = types.kind_of(function["ret"])
    namespace["_result"] = result.python_result(context, function)
    call = f"_lookup({function['name']!r}, 'C++')({', '.join(actuals)})"
    if result.held:
        formals.append("out")  # where the C++ result object is, to fill it in place
        body = f"_result({call}, out)"
    elif isinstance(result, types.Void):
        body = call  # whatever Python returns is ignored, as C++ declared void
    elif namespace["_result"] is not None:
        body = f"return _result({call})"
    else:
        body = f"return {call}"
    thunk_name = f"pm_python_{function['name']}"
    text = f"def {thunk_name}({', '.join(formals)}):\n    {body}\n"
    exec(compile(text, callbacks.plumbing_filename(f"PM_PYTHON {function['name']}"),
                 "exec"), namespace)
    return namespace[thunk_name]


def result_converter(function: dict, ffi):
    """For the C caller of an arithmetic import: a result that is not an exact int
    (or bool) -> an int (bool) by the result kind's rules, then cffi's range check;
    None where C converts every result itself (float, double, void)."""
    rule = types.kind_of(function["ret"]).python_result(types.Context(ffi, None), function)
    if rule is None:
        return None
    to_c = callbacks.c_value(ffi, function["ret"]["tag"])
    return lambda value: to_c(rule(value))
