"""The C++ room: compile a %%cpp cell with the system compiler and load it in-process.

`cpp()` (engine.py) is the entry point; the other modules are its parts: `types` (the
type table), `signatures` (libclang -> exported functions), `codegen` and `capi`
(extern "C" trampolines, the cffi glue and C-API callers), `compiler` (compiler runs),
`callbacks` and `imports` (calls between C++ and Python, exceptions across the
boundary), `module` (the module-like object a cell becomes), `sources` (reads the
room's C and C++: native/, pasted around the per-cell code, and native/runtime.cpp,
which every cell links) and the header cells include (include/polymagic.hpp).
"""
from .engine import CppOptions, cpp, load

__all__ = ["cpp", "load", "CppOptions"]
