"""The options of a %%cpp build (the magic's flags and pm.cpp's keyword arguments)."""
from __future__ import annotations

import shlex



class CppOptions:
    """Everything that decides how a cell is compiled and linked.

    (A plain class, not a dataclass: building one costs milliseconds at import, and a
    cache hit in a new process has a budget of a few milliseconds in all.)
    """

    _FIELDS = ("compile_args", "link_args", "libraries", "library_dirs", "include_dirs",
               "std", "optimize", "name", "force", "verbose")

    def __init__(self, compile_args=(), link_args=(), libraries=(), library_dirs=(),
                 include_dirs=(), std="c++17", optimize="2", name=None, force=False,
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
             include_dirs=(), std="c++17", optimize="2", name=None, force=False,
             verbose=False) -> "CppOptions":
        """Normalise user input: strings of flags are split like a shell would."""
        return cls(_split(compile_args), _split(link_args), tuple(libraries),
                   tuple(library_dirs), tuple(include_dirs),
                   std.removeprefix("-std=") or "c++17",
                   str(optimize).removeprefix("-O").removeprefix("O") or "2",
                   name, bool(force), bool(verbose))

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


def _split(value) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(shlex.split(value))
    return tuple(part for item in value for part in shlex.split(item))
