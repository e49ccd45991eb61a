"""The Cython room: compile a Cython cell in-process and load it (engine.py)."""
from .engine import CythonBuild, CythonOptions, build, cython, make_options

__all__ = ["cython", "build", "make_options", "CythonOptions", "CythonBuild"]
