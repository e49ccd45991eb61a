"""The options of a %%cpp build (the magic's flags and pm.cpp's keyword arguments)."""
from __future__ import annotations

import re
import shlex

from ...errors import CppOptionError

# The language standard when none is asked for: C++20 (std::span, the zero-copy idiom
# the docs teach, works without a flag; g++ 10+ and clang 10+ know it).
DEFAULT_STD = "c++20"
# What --std may name: c++17, gnu++20, c++2b ... (the compiler judges the rest).
_STANDARD = re.compile(r"(?:c|gnu)\+\+[0-9][0-9a-z]")
# Sanitizers whose runtime must be loaded before the program starts: loaded into a
# running Python with the cell, it would end the process.
_PRELOADED_SANITIZERS = {"address": "libasan", "kernel-address": "libasan",
                         "hwaddress": "libhwasan", "thread": "libtsan",
                         "memory": "libmsan", "leak": "liblsan"}

class CppOptions:
    """Everything that decides how a cell is compiled and linked.

    (A plain class, not a dataclass: building one costs milliseconds at import, and a
    cache hit in a new process has a budget of a few milliseconds in all.)
    """

    _FIELDS = ("compile_args", "link_args", "libraries", "library_dirs", "include_dirs",
               "std", "optimize", "name", "force", "verbose")

    def __init__(self, compile_args=(), link_args=(), libraries=(), library_dirs=(),
                 include_dirs=(), std=DEFAULT_STD, optimize="2", name=None, force=False,
                 verbose=False):
        self.compile_args, self.link_args = compile_args, link_args
        self.libraries, self.library_dirs = libraries, library_dirs
        self.include_dirs, self.std, self.optimize = include_dirs, std, optimize
        self.name, self.force, self.verbose = name, force, verbose

    def __repr__(self) -> str:
        return "CppOptions(" + ", ".join(
            f"{field}={getattr(self, field)!r}" for field in self._FIELDS) + ")"

    @classmethod
    def make(cls, compile_args=(), link_args=(), libraries=(), library_dirs=(),
             include_dirs=(), std=DEFAULT_STD, optimize="2", name=None, force=False,
             verbose=False) -> "CppOptions":
        """Normalise user input: strings of flags are split like a shell would.
        CppOptionError (a ValueError) for values that cannot work."""
        options = cls(_split(compile_args, "compile_args"), _split(link_args, "link_args"),
                      tuple(libraries), tuple(library_dirs), tuple(include_dirs),
                      _standard(std),
                      str(optimize).removeprefix("-O").removeprefix("O") or "2",
                      name, bool(force), bool(verbose))
        _check_sanitizers((*options.compile_args, *options.link_args))
        return options

    def key_parts(self) -> dict:
        """What goes into the cache key (not name, force or verbose)."""
        return {field: getattr(self, field) for field in self._FIELDS
                if field not in ("name", "force", "verbose")}

    def cxx_flags(self) -> list[str]:
        return [f"-O{self.optimize}", f"-std={self.std}", "-fPIC",
                *(f"-I{path}" for path in self.include_dirs), *self.compile_args]

    def link_flags(self) -> list[str]:
        return [*(f"-L{path}" for path in self.library_dirs),
                *(f"-l{lib}" for lib in self.libraries), *self.link_args]

    def preprocessor_flags(self) -> list[str]:
        """The compile flags libclang must see too (macros, includes)."""
        flags, args = [], list(self.compile_args)
        for position, arg in enumerate(args):
            if arg.startswith(("-D", "-U", "-I", "-include")):
                flags.append(arg)
                if arg in ("-D", "-U", "-I", "-include") and position + 1 < len(args):
                    flags.append(args[position + 1])
        return flags


def _split(value, option: str) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else list(value)
    parts = []
    for item in items:
        if not isinstance(item, str):
            raise CppOptionError(f"{option}: expected flags as a str or a list of str, "
                                 f"got {type(item).__name__}")
        try:
            parts += shlex.split(item)
        except ValueError as error:  # "No closing quotation", "No escaped character"
            raise CppOptionError(f"{option}: cannot split {item!r} into flags: "
                                 f"{error}") from None
    return tuple(parts)


def _standard(std) -> str:
    if std is None:
        return DEFAULT_STD
    value = str(std).removeprefix("-std=").removeprefix("--std=") or DEFAULT_STD
    if not _STANDARD.fullmatch(value):
        raise CppOptionError(f"std: {std!r} is not a C++ standard (examples: c++17, "
                             f"c++20, gnu++20)")
    if value.endswith(("98", "03")):
        raise CppOptionError(f"std: {std!r}: the code polymagic generates around a cell "
                             f"needs C++11 or later ({DEFAULT_STD} is the default)")
    return value


def _check_sanitizers(flags) -> None:
    for flag in flags:
        if not flag.startswith("-fsanitize="):
            continue
        for name in flag.removeprefix("-fsanitize=").split(","):
            runtime = _PRELOADED_SANITIZERS.get(name)
            if runtime is not None and not _loaded(runtime):
                raise CppOptionError(
                    f"{flag}: the {name} sanitizer's runtime ({runtime}) must be loaded "
                    f"before Python starts, or loading the cell would end the process. "
                    f"Start Python with LD_PRELOAD=$(c++ -print-file-name={runtime}.so) "
                    f"(and pass the flag to both -c and --link-args), or use "
                    f"-fsanitize=undefined, which loads with the cell")


def _loaded(library: str) -> bool:
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            return any(f"/{library}.so" in line or f"/{library}-" in line for line in maps)
    except OSError:
        return False
