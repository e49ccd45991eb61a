"""Cython cell modules that pickle (polymagic.travel): what of a cell travels, and how
the process that receives it loads it (engine.restore decides between this and a
rebuild).

A cell's functions stay Cython's own cyfunctions (no wrapper, no cost per call).
Cython pickles a cyfunction by reference, `module.qualname`, which no other process
can import: the cell's module exists only where it was built. So a copyreg rule for
the cyfunction type pickles a top-level function of a cell as
`getattr(<cell module>, name)`, and the module as its payload: the cell's extension
and build manifest, and Cython's shared utility module when the cell imports it, all
published into the receiver's cache and loaded there. Any other cyfunction pickles as
before. Once a cell module is loaded in a process it is in `sys.modules` under its
name, so what Cython pickles by name (cdef classes, methods) resolves there too.
"""
from __future__ import annotations

import copyreg
import sys
import types
from pathlib import Path

from ... import build, travel
from .loading import load_cell, load_module
from .toolchain import EXT_SUFFIX

MANIFEST = "build.json"  # cell.MANIFEST (cell.py imports Cython's compiler: not here)
_MODULES: dict[str, types.ModuleType] = {}  # module name -> a travelling cell module


def make_travelling(module, source: str, options: dict, path: Path, manifest: dict,
                    utility_path: Path | None, loader):
    """Make the freshly loaded cell `module` picklable; `loader(payload)`
    (engine.restore) loads it again in the process that unpickles it."""
    entries = [] if utility_path is None else \
        [(utility_path.parent.name, str(utility_path.parent), [utility_path.name])]
    entries.append((path.parent.name, str(path.parent), [path.name, MANIFEST]))
    recipe = {"source": source, "options": {**options, "force": False},
              "utility_module": manifest["utility_module"]}
    travel.attach(module, travel.Payload("cython", path.parent.name, entries, recipe,
                                         loader))
    _MODULES[module.__name__] = module
    for value in vars(module).values():
        if type(value).__name__ in ("cython_function_or_method", "fused_cython_function"):
            if copyreg.dispatch_table.get(type(value)) is not _reduce_cyfunction:
                copyreg.pickle(type(value), _reduce_cyfunction)
    return module


def _reduce_cyfunction(function):
    """A top-level function of a cell: its module's attribute; else Cython's way."""
    module = _MODULES.get(getattr(function, "__module__", None))
    name = function.__qualname__
    if module is None or getattr(module, name, None) is not function:
        return function.__reduce__()
    return (getattr, (module, name))


def load_travelled(payload: travel.Payload, loader):
    """Publish the travelled entries into this cache and load the cell (no compiler)."""
    payload.publish_files()
    *utility, (key, _, (artifact, _manifest)) = payload.entries
    if utility:
        (utility_key, _, (utility_artifact,)), = utility
        name = payload.recipe["utility_module"]
        if name not in sys.modules:
            sys.modules[name] = load_module(name, build.cache_dir() / utility_key /
                                            utility_artifact)
    path = build.cache_dir() / key / artifact
    module = load_cell(artifact[:-len(EXT_SUFFIX)], path, payload.recipe["source"])
    return make_travelling(module, payload.recipe["source"], payload.recipe["options"],
                           path, {"utility_module": payload.recipe["utility_module"]},
                           build.cache_dir() / utility_key / utility_artifact
                           if utility else None, loader)
