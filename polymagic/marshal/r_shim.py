"""Build, load and use the R shim (r_shim*.c): Python buffers seen by R as vectors
(ALTREP views), R closures calling Python, and R objects read and built from Python.

The shim is a small CPython extension compiled on first use into polymagic's build cache
(keyed by its sources, R's home and version, the compiler and the Python ABI), then loaded
from there in milliseconds. Its functions take and return R objects as integer addresses;
this module turns those into rpy2 `rinterface` objects without rpy2's slower generic paths.
An R error inside the shim (an allocation failing, a string R cannot translate) raises
ConversionError with R's message; it never unwinds through Python (see r_shim.h).

Every shim function that creates an R object returns it already R_PreserveObject'ed;
`adopt()` hands that preservation over to rpy2's bookkeeping, so the object is released
exactly once, when its rpy2 proxy dies.
"""
from __future__ import annotations

import os
import sysconfig
from pathlib import Path

from ..build import cache_key, cached_build
from ..toolchain import compiler, compiler_identity, load_extension, python_include_flags, run_tool
from ..errors import BridgeUnavailable, CompileError, ConversionError, RError

HERE = Path(__file__).parent
SOURCES = ("r_shim.c", "r_shim_views.c", "r_shim_closures.c", "r_shim_objects.c",
           "r_shim_calls.c", "r_shim_hub.c")
HEADERS = ("r_shim.h",)
MODULE_NAME = "_polymagic_r_shim"
KIND_REAL, KIND_INTEGER, KIND_COMPLEX = 0, 1, 2

_state: dict = {"shim": None}

# What the R engine hands marshal, so that marshal imports no bridge: how to start R,
# R's lock, the section for Python code R calls back into (a function giving the
# addresses of the C functions that begin and end it), the class of R functions
# seen from Python, and what to do after R unwound inside the shim (R printed an error
# that reaches the user as a ConversionError). Set once by polymagic.bridges.r.
engine: dict = {}


def connect(*, start, lock, python_section, function_class, on_r_error=None) -> None:
    """Called by the R engine: what the conversions need from it."""
    engine.update(start=start, lock=lock, python_section=python_section,
                  function_class=function_class, on_r_error=on_r_error)


def shim():
    """The loaded shim module (R started, classes registered); built on first use."""
    module = _state["shim"]
    if module is None:
        module = _load()
    return module


def _load():
    if not engine:
        raise RuntimeError("polymagic.marshal.r needs the R engine: import "
                           "polymagic.bridges.r (or use pm.R) first")
    rinterface = engine["start"]()
    with engine["lock"]:
        if _state["shim"] is None:
            path = _build(_r_version(rinterface))
            module = load_extension(MODULE_NAME, path)
            module.set_error_handling(ConversionError, RError, engine.get("on_r_error"))
            module.register_classes()
            _bind_rpy2(rinterface)
            _state["shim"] = module
    return _state["shim"]


def _r_version(rinterface) -> str:
    return str(rinterface.baseenv["R.version.string"][0])


def _build(r_version: str) -> Path:
    r_home = os.environ["R_HOME"]
    texts = {name: (HERE / name).read_text() for name in SOURCES + HEADERS}
    c_compiler = compiler("c")
    key = cache_key("r_shim", sorted(texts.items()), r_home, r_version,
                    compiler_identity(c_compiler))
    artifact = MODULE_NAME + (sysconfig.get_config_var("EXT_SUFFIX") or ".so")

    def produce(directory: Path) -> None:
        for name, text in texts.items():  # the very texts the key was made from
            (directory / name).write_text(text)
        command = [c_compiler, "-O2", "-fPIC", "-shared", "-Wall", "-fvisibility=hidden",
                   *python_include_flags(), *r_include_flags(r_home), *SOURCES,
                   "-o", artifact, *r_link_flags(r_home)]
        result = run_tool(command, cwd=directory)
        if result.returncode != 0:
            raise CompileError("C (polymagic R shim)", result.stderr, command)

    return cached_build(key, artifact, produce)


def r_link_flags(r_home: str) -> list[str]:
    """Linking against libR, found at run time where it was at build time."""
    return [f"-L{r_home}/lib", "-lR", f"-Wl,-rpath,{r_home}/lib"]


def r_include_flags(r_home: str) -> list[str]:
    """R's header directory: `R CMD config --cppflags`, else $R_HOME/include."""
    result = run_tool([str(Path(r_home) / "bin" / "R"), "CMD", "config", "--cppflags"])
    flags = result.stdout.split() if result.returncode == 0 else []
    if not flags and not (Path(r_home) / "include" / "Rinternals.h").exists():
        raise BridgeUnavailable("R", "R's C headers (Rinternals.h) were not found",
                                "Install them: sudo apt-get install -y r-base-dev")
    return flags or [f"-I{r_home}/include"]


# ---- rpy2 objects from addresses ------------------------------------------------------

_rpy2: dict = {}


def _bind_rpy2(rinterface) -> None:
    """Cache the rpy2 internals that adopt()/borrow()/address_of() use on hot paths."""
    from rpy2.rinterface_lib import _rinterface_capi, conversion, openrlib
    _rpy2.update(
        ffi=openrlib.ffi,
        preserved=_rinterface_capi._R_PRESERVED,
        capsule=_rinterface_capi.SexpCapsule,
        classes=conversion._R_RPY2_MAP,
        default_class=conversion._R_RPY2_DEFAULT_MAP,
        to_rinterface=conversion._cdata_to_rinterface,
    )


def adopt(address: int, cls=None):
    """The rpy2 proxy of a shim-made R object, taking over the shim's R_PreserveObject."""
    ffi = _rpy2["ffi"]
    cdata = ffi.cast("SEXP", address)
    preserved = _rpy2["preserved"]
    count = preserved.get(address, 0)
    preserved[address] = count + 1
    if count:
        shim().release(address)  # rpy2 already preserves it: keep one preservation
    capsule = object.__new__(_rpy2["capsule"])
    capsule._cdata = cdata
    if cls is None:
        cls = _rpy2["classes"].get(cdata.sxpinfo.type, _rpy2["default_class"])
    proxy = object.__new__(cls)
    proxy._sexpobject = capsule
    return proxy


def borrow(address: int):
    """The rpy2 proxy of an R object that something else keeps alive right now."""
    return _rpy2["to_rinterface"](_rpy2["ffi"].cast("SEXP", address))


def address_of(sexp) -> int:
    """The address of the R object behind an rpy2 proxy."""
    return int(_rpy2["ffi"].cast("uintptr_t", sexp.__sexp__._cdata))


def wrap(kind: int, array, shared_writes: bool, dims, cls):
    """An R vector (ALTREP) over `array`'s contiguous buffer, as an rpy2 proxy."""
    return adopt(shim().wrap(kind, array, shared_writes, dims), cls)
