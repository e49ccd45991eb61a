"""Native faults, exit() and Ctrl-C in %%cpp calls, as Python exceptions: the Python
half of native/faults.h (the C half: native/faults.c, one small library per compiler
that every cell module links; the landing: native/runtime.cpp).

On by default. `POLYMAGIC_CPP_FAULTS=off` leaves segfaults, abort(), exit() and a
second Ctrl-C to the process, as in plain C++ (for a debugger, or a core dump); read
when a cell is loaded. `pm::check_interrupt()` works either way.
"""
from __future__ import annotations

import functools
import sys
from pathlib import Path

from ... import build
from ...config import flag
from ...toolchain import compiler_identity
from . import processes, sources

# native/faults.h's PM_CATCH_* flags.
CATCH_FAULTS, CATCH_INTERRUPTS = 1, 2
_FLAGS = ("-O2", "-fPIC", "-fvisibility=default")
_state = {"lib": None, "hooked": False}


def wanted() -> int:
    """What polymagic catches, by the configuration (POLYMAGIC_CPP_FAULTS)."""
    return (CATCH_FAULTS if flag("cpp_faults", default=True) else 0) | CATCH_INTERRUPTS


def library(cxx: str) -> Path:
    """The fault library for compiler `cxx`, built once, then cached. Its file name is
    its soname, which names its content: cells find it through their RUNPATH, and a
    process loads one copy of it, whichever cache entry its cells come from."""
    key = _key(cxx)
    name = f"libpolymagic_faults_{key.partition('_')[2][:16]}.so"

    def produce(staging: Path) -> None:
        processes.run([cxx, "-x", "c", *_FLAGS, f"-I{sources.NATIVE}", "-shared",
                       f"-Wl,-soname,{name}", "-Wl,--as-needed",
                       str(sources.NATIVE / "faults.c"), "-o", str(staging / name)],
                      "polymagic's C++ fault handlers")
    return build.cached_build(key, name, produce, language="C++")


@functools.lru_cache(maxsize=None)
def _key(cxx: str) -> str:
    return build.cache_key("cpp-faults", sources.text("faults.h"), sources.text("faults.c"),
                           _FLAGS, compiler_identity(cxx))


def activate(lib) -> int:
    """Install the handlers (through a loaded cell's `lib`) as configured, and, in
    IPython, put the Ctrl-C handler back before every cell (Jupyter's kernel replaces
    it with Python's own). Returns the PM_CATCH_* flags in effect."""
    _state["lib"] = lib
    _hook_ipython()
    return lib.pm_faults_setup(wanted())


def reassert(*_event) -> None:
    """Put the handlers back if something replaced them (an IPython pre_run_cell hook)."""
    lib = _state["lib"]
    if lib is not None:
        lib.pm_faults_setup(wanted())


def _hook_ipython() -> None:
    if _state["hooked"]:
        return
    ipython = sys.modules.get("IPython")  # never imported here: only if running
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is not None:
        shell.events.register("pre_run_cell", reassert)
        _state["hooked"] = True
