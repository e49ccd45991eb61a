"""Which C or C++ compiler and which flags build a Cython cell (all of it part of the
cache key), and the rule that Cython's own compiler runs one build at a time.

The compiler itself is chosen by polymagic.toolchain's one rule.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import sys
import sysconfig
import threading

from ...errors import CythonOptionError
from ...toolchain import compiler, compiler_identity
from .options import CythonOptions, absolute_paths

LANGUAGE = "Cython"
EXT_SUFFIX = sysconfig.get_config_var("EXT_SUFFIX")
# In-process Cython keeps global state (Options, utility-code caches): one at a time.
CYTHON_LOCK = threading.RLock()


@dataclasses.dataclass(frozen=True)
class Toolchain:
    """The C or C++ compiler and the full flag list for one build."""

    compiler: str
    cplus: bool
    flags: tuple[str, ...]          # before the sources
    link_flags: tuple[str, ...]     # after the sources
    define_numpy: tuple[str, ...] = ("-DNPY_NO_DEPRECATED_API=NPY_1_7_API_VERSION",)

    @classmethod
    def for_options(cls, opts: CythonOptions, header: dict) -> "Toolchain":
        cplus = opts.cplus or header.get("language") == "c++"
        include_dirs = [*opts.include_dirs, *absolute_paths(header.get("include_dirs", ()))]
        macros = [f"-D{name}" + ("" if value is None else f"={value}")
                  for name, value in header.get("define_macros", ())]
        flags = ("-shared", "-fPIC", "-O2", "-fwrapv", "-DNDEBUG",
                 f"-I{sysconfig.get_paths()['include']}",
                 *(f"-I{d}" for d in include_dirs), *macros,
                 *header.get("extra_compile_args", ()), *opts.compile_args)
        link_flags = (*(f"-L{d}" for d in [*opts.library_dirs,
                                             *absolute_paths(header.get("library_dirs", ()))]),
                      *(f"-l{lib}" for lib in [*opts.libraries,
                                               *header.get("libraries", ())]),
                      *header.get("extra_link_args", ()), *opts.link_args)
        _refuse_address_sanitizer([*flags, *link_flags])
        return cls(compiler("c++" if cplus else "c"), cplus, tuple(flags),
                   tuple(link_flags))

    def key_parts(self) -> list:
        import Cython  # the package root is light (~10 ms); the compiler is not imported
        return [compiler_identity(self.compiler), self.cplus, list(self.flags),
                list(self.link_flags), Cython.__version__]

    @property
    def utility_name(self) -> str:
        """The module name of Cython's shared utility code for this toolchain."""
        import Cython
        digest = hashlib.sha256(json.dumps(
            [compiler_identity(self.compiler), self.cplus, Cython.__version__,
             sys.implementation.cache_tag]).encode()).hexdigest()[:16]
        return f"_pm_cyutility_{digest}"


_ADDRESS_SANITIZER = re.compile(r"^-fsanitize=(?:.*,)?(?:address|kernel-address|hwaddress)"
                                r"(?:,|$)|^-l(?:hw)?asan$")


def _refuse_address_sanitizer(flags: list[str]) -> None:
    """A module built with -fsanitize=address needs ASan's runtime loaded first in the
    process; loaded later, the runtime ends the process at once ("ASan runtime does not
    come first"). Refuse it unless the runtime is already loaded (LD_PRELOAD)."""
    asked = [flag for flag in flags if _ADDRESS_SANITIZER.match(flag)]
    if not asked or _asan_runtime_loaded():
        return
    raise CythonOptionError(
        f"{asked[0]}: a module built with AddressSanitizer cannot be loaded into a "
        "process started without its runtime (the runtime would end the process). "
        "Start Python with LD_PRELOAD=$(cc -print-file-name=libasan.so) to use it.")


def _asan_runtime_loaded() -> bool:
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            return "asan" in maps.read()  # libasan or libhwasan
    except OSError:
        return False
