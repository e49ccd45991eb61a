"""The Cython room: compile a Cython cell in-process and load it (engine.py is the entry;
options, toolchain, cell, utility, loading and diagnostics each hold one step)."""
from .engine import CythonBuild, CythonOptions, build, cython, make_options

__all__ = ["cython", "build", "make_options", "CythonOptions", "CythonBuild"]
