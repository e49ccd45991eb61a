"""The module-like object a C++ cell becomes: its functions, ready to call.

A function whose arguments and result cffi converts by itself (arithmetic types,
bool, void) is cffi's builtin `lib.pm_f<i>` itself: no Python frame per call. Others
get a small generated Python wrapper that turns NumPy arrays into pointers (zero-copy,
`ffi.from_buffer`), str into bytes, callables into function pointers, and returned
vectors into NumPy arrays that own the vector's memory.
"""
from __future__ import annotations

import keyword
import re
import types as pytypes
import warnings

from ...errors import ConversionError, UnsupportedSignature, also
from . import callbacks, classes, imports, overloads, types
from .records import all_functions


def warn_skipped(plan: dict) -> None:
    """One warning per function left out because of its types (also on cache hits)."""
    for entry in plan["skipped"]:
        if entry.get("warn"):
            warnings.warn(f"C++ function {entry['name']!r} (cell line {entry['line']}) "
                          f"is not exported: {entry['reason']}", UnsupportedSignature,
                          stacklevel=4)


class ModuleInfo:
    """What the exception path needs to know about a loaded cell module."""

    def __init__(self, functions: list, source: str, filename: str):
        self.functions, self.source, self.filename = functions, source, filename
        self.imports = {}  # PM_PYTHON slot -> the function pointer it holds (alive)


def make_module(name: str, extension, plan: dict, source: str, filename: str):
    """A ModuleType holding the cell's exported functions."""
    ffi, lib = extension.ffi, extension.lib
    info = ModuleInfo(all_functions(plan), source, filename)
    imports.connect_c_api(info, ffi, lib, plan)
    if plan.get("imports"):
        imports.connect(info, ffi, lib, plan["imports"], plan["c_api"])
    # Held for the life of the process, like the library itself: the PM_PYTHON slots
    # point into `info.imports`, whatever becomes of the module object.
    callbacks.modules[extension.__name__] = info
    module = pytypes.ModuleType(name, f"C++ cell compiled by polymagic ({filename})")
    module.__file__ = extension.__file__
    module.ffi, module.lib = ffi, lib
    module.__signatures__ = {f["export"]: f for f in plan["functions"]}
    module.__skipped__ = list(plan["skipped"])
    module.__exports__ = [f["export"] for f in plan["functions"]]
    module.__imports__ = info.imports
    context = types.Context(ffi, lib)
    context.classes = {}
    made = classes.make_classes(plan, module, context, lambda m: _wrapper(m, _raw(m, lib),
                                                                          context))
    _publish_classes(module, plan, made)
    for function in plan["functions"]:
        setattr(module, function["export"], _callable(function, lib, context))
    overloads.bind_overload_sets(module, plan["functions"])
    return module


def _raw(function: dict, lib):
    return getattr(lib, function["symbol"])


def _publish_classes(module, plan: dict, made: dict) -> None:
    """Top-level classes as module attributes; namespaced ones under their namespace
    (`module.geo.Point`), as cppyy names them."""
    module.__classes__ = {}
    for entry in plan.get("classes", ()):
        holder = module
        for part in entry["namespace"]:
            if not hasattr(holder, part):
                setattr(holder, part, pytypes.SimpleNamespace())
            holder = getattr(holder, part)
        setattr(holder, entry["name"], made[entry["qualified"]])
        module.__classes__[".".join([*entry["namespace"], entry["name"]])] = \
            made[entry["qualified"]]


def _callable(function: dict, lib, context: types.Context):
    raw = getattr(lib, function["symbol"])
    kinds = [types.kind_of(p["type"]) for p in function["params"]]
    if all(kind.direct for kind in kinds) and types.kind_of(function["ret"]).direct:
        return raw
    return _wrapper(function, raw, context)


def _python_name(name: str) -> str:
    reserved = name in ("_raw", "_result", "_wrapper") or re.fullmatch(r"_a\d+", name)
    return f"{name}_" if keyword.iskeyword(name) or reserved else name


def _wrapper(function: dict, raw, context: types.Context):
    """Generate `def f(a, b): return _result(_raw(*_a0(a), b))`: each parameter's
    kind gives its converter (`_a<i>`), the result's kind the result's (`_result`)."""
    names = [_python_name(p["name"]) for p in function["params"]]
    if len(set(names)) != len(names):
        names = [f"arg{i}" for i in range(len(names))]
    namespace, actuals = {"_raw": raw}, []
    for position, (name, param) in enumerate(zip(names, function["params"])):
        kind = types.kind_of(param["type"])
        inline = getattr(kind, "inline_argument", lambda _name: None)(name)
        if inline is not None:
            actuals.append(inline)
            continue
        where = f"{function['export']}(): argument {param['name']!r}"
        converter = kind.argument_converter(context, where)
        if converter is None:
            actuals.append(name)
            continue
        namespace[f"_a{position}"] = converter
        actuals.append(f"{'*' if kind.arity == 2 else ''}_a{position}({name})")
    call = f"_raw({', '.join(actuals)})"
    result = types.kind_of(function["ret"])
    namespace["_result"] = result.result_converter(context)
    if namespace["_result"] is None:
        body = f"return {call}"
    elif getattr(result, "keeps_receiver", False) and function["params"] and \
            function["params"][0]["type"].get("receiver"):
        body = f"return _result({call}, {names[0]})"  # a method: its result borrows
    else:
        body = f"return _result({call})"
    # Defined under a fixed name, so that a C++ function called `_raw` cannot shadow
    # the names the body uses; it is then named after its function.
    text = f"def _wrapper({', '.join(names)}):\n    {body}\n"
    exec(compile(text, callbacks.plumbing_filename(f"wrapper of {function['export']}"),
                 "exec"), namespace)
    wrapper = namespace["_wrapper"]
    wrapper.__name__ = wrapper.__qualname__ = function["export"]
    wrapper.__doc__ = _signature_text(function)
    return wrapper


def _signature_text(function: dict) -> str:
    params = ", ".join(f"{types.describe(p['type'])} {p['name']}"
                       for p in function["params"])
    return f"{types.describe(function['ret'])} {function['name']}({params})  " \
           f"[C++, cell line {function['line']}]"


_PYTHON_TYPES = {"double": "float", "float": "float", "bool": "bool"}  # else int


def argument_error(module_name: str, index: int, position: int, value,
                   cause: BaseException) -> ConversionError:
    """The error for a scalar argument cffi refused (its TypeError or OverflowError
    `cause`, which the error still is), called from the glue's failure path (native/glue_preamble.c):
    `add(): argument 'left' expects int (C++ int), got str 'x'`."""
    function = next(f for f in callbacks.modules[module_name].functions
                    if f["index"] == index)
    param = function["params"][position]
    kind = types.kind_of(param["type"])
    shown = repr(value)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    expected = _PYTHON_TYPES.get(kind.tag, "int")
    why = f", out of range for C++ {kind.cpp()}" if isinstance(cause, OverflowError) else ""
    error = ConversionError(f"{function['export']}(): argument {param['name']!r} expects "
                            f"{expected} (C++ {kind.cpp()}), got {type(value).__name__} "
                            f"{shown}{why}")
    # still what cffi raised, for code that catches it
    return also(error, OverflowError) if why else error
