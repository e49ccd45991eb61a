"""polymagic: R, Julia, C++ and Cython in one Python process, arrays shared as views.

`import polymagic as pm` is light: no runtime starts and no heavy dependency is imported
until a language is used (`pm.R.eval(...)` starts R, `pm.cpp(src)` runs the compiler).
"""
from __future__ import annotations

import importlib

from .errors import (BridgeUnavailable, CompileError, ConversionError, CopyRequired,
                     CppError, ForeignError, JuliaError, PolymagicError, RError)

__version__ = "0.1.0"

# Public name -> (module, attribute), resolved on first access (PEP 562).
_LAZY = {
    "R": ("polymagic.bridges.r", "R"),
    "julia": ("polymagic.bridges.julia", "julia"),
    "cpp": ("polymagic.bridges.cpp", "cpp"),
    "cython": ("polymagic.bridges.cython", "cython"),
    "py": ("polymagic.hub", "py"),
    "use_namespace": ("polymagic.hub", "use_namespace"),
}

__all__ = sorted([*_LAZY, "BridgeUnavailable", "CompileError", "ConversionError",
                  "CopyRequired", "CppError", "ForeignError", "JuliaError",
                  "PolymagicError", "RError", "load_ipython_extension",
                  "unload_ipython_extension", "__version__"])


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'polymagic' has no attribute {name!r}")
    module_name, attribute = _LAZY[name]
    value = getattr(importlib.import_module(module_name), attribute)
    globals()[name] = value
    return value


def __dir__():
    return __all__


def load_ipython_extension(ipython) -> None:
    """`%load_ext polymagic`: register the magics; start no runtime."""
    from .magics import register
    register(ipython)


def unload_ipython_extension(ipython) -> None:
    from .magics import unregister
    unregister(ipython)
