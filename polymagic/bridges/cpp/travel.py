"""C++ cell modules that pickle (polymagic.travel): what of a cell travels (engine.restore
loads it in the process that receives it).

A cell module travels with its two cache entries: the fault library it links (through
its RUNPATH, `$ORIGIN/../<fault entry>`, so both are published under their own keys)
and the cell's `module.so` and `plan.json` (the export plan: no libclang, no compiler on
the receiving side). On another platform the receiver builds the cell from its source
and options, as `pm.cpp` would.

Functions cffi calls directly stay cffi's builtins (no wrapper, no cost per call): they
pickle as `getattr(lib, "pm_f<i>")`, and the cell's `lib` pickles through a copyreg
rule for cffi's Lib type as `getattr(module, "lib")`. Functions with a generated Python
wrapper (arrays, strings, callbacks) become `CellFunction`s: partials, called through C.
"""
from __future__ import annotations

import copyreg
import types as pytypes
from pathlib import Path

from ... import travel

_MODULES_BY_LIB: dict[int, pytypes.ModuleType] = {}  # id(lib) -> its travelling module


def make_travelling(module, key: str, source: str, options, library: Path,
                    fault_library: Path, loader):
    """Make the freshly made cell `module` picklable; `loader(payload)` (engine.restore)
    loads it again in the process that unpickles it."""
    entries = [(fault_library.parent.name, str(fault_library.parent), [fault_library.name]),
               (key, str(library.parent), [library.name, "plan.json"])]
    recipe = {"source": source, "options": {field: getattr(options, field)
                                            for field in options._FIELDS}}
    recipe["options"]["force"] = False
    travel.attach(module, travel.Payload("cpp", key, entries, recipe, loader))
    for export in module.__exports__:
        function = getattr(module, export)
        if isinstance(function, pytypes.FunctionType):  # a generated wrapper
            setattr(module, export, travel.wrap_function(module, export, function))
    _register_lib(module)
    return module


def _register_lib(module) -> None:
    lib_type = type(module.lib)
    if copyreg.dispatch_table.get(lib_type) is not _reduce_lib:
        copyreg.pickle(lib_type, _reduce_lib)
    _MODULES_BY_LIB[id(module.lib)] = module


def _reduce_lib(lib):
    """A cell's cffi library pickles as its module's attribute; any other Lib does not
    pickle, as before this rule."""
    module = _MODULES_BY_LIB.get(id(lib))
    if module is None or module.lib is not lib:
        raise TypeError(f"cannot pickle {lib!r}: a cffi library that is not a polymagic "
                        "C++ cell's")
    return (getattr, (module, "lib"))
