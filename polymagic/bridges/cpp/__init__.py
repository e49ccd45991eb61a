"""The C++ room: compile a %%cpp cell with the system compiler and load it in-process.

`cpp()` (engine.py) is the entry point; the other modules are its parts: `types` (the
type table), `signatures` (libclang -> exported functions), `codegen` and `capi`
(extern "C" trampolines, the cffi glue and C-API callers), `compiler` (compiler runs),
`callbacks` and `imports` (calls between C++ and Python, exceptions across the
boundary), `module` (the module-like object a cell becomes), and the C++ the cells
link against (runtime.cpp, include/polymagic.hpp).
"""
from .engine import CppOptions, cpp, load

__all__ = ["cpp", "load", "CppOptions"]
