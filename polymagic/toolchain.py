"""The native toolchain: one rule for choosing the C and C++ compilers, one way to run
them, and one loader for the extension modules they build.

Every room that compiles (the C++ and Cython cells, R's C shims) goes through here, so a
user's `$CC`/`$CXX` means the same thing everywhere and a missing compiler is always the
same `BridgeUnavailable`.
"""
from __future__ import annotations

import functools
import importlib.machinery
import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
from typing import Iterable

from .errors import BridgeUnavailable

# language -> (environment variable, sysconfig variable, fallbacks on PATH)
_RULES = {
    "c": ("CC", "CC", ("cc", "gcc", "clang")),
    "c++": ("CXX", "CXX", ("c++", "g++", "clang++")),
}
INSTALL_HINT = "Install a C/C++ compiler (Debian: apt-get install -y g++) or set $CXX/$CC."


def compiler(language: str = "c++") -> str:
    """The compiler for `language` ("c" or "c++"): the first word of $CC/$CXX when set;
    else the one Python was built with, if it is on PATH; else the usual names."""
    variable, config_variable, fallbacks = _RULES[language]
    configured = shlex.split(os.environ.get(variable, ""))
    if configured:
        if shutil.which(configured[0]) is None:
            raise BridgeUnavailable(language.upper(), f"${variable} names "
                                    f"{configured[0]!r}, which is not on PATH", INSTALL_HINT)
        return configured[0]
    built_with = shlex.split(sysconfig.get_config_var(config_variable) or "")
    for candidate in (*built_with[:1], *fallbacks):
        if shutil.which(candidate):
            return candidate
    raise BridgeUnavailable(language.upper(), f"no {language.upper()} compiler found "
                            f"(${variable} is unset; none of {', '.join(fallbacks)} is on "
                            "PATH)", INSTALL_HINT)


@functools.lru_cache(maxsize=None)
def compiler_identity(executable: str) -> str:
    """Resolved path and first `--version` line of a compiler, for cache keys."""
    path = shutil.which(executable)
    if path is None:
        raise BridgeUnavailable("compiler", f"{executable!r} was not found on PATH",
                                INSTALL_HINT)
    result = subprocess.run([path, "--version"], capture_output=True, text=True,
                            check=False)
    first_line = (result.stdout or result.stderr).splitlines()[:1]
    return f"{os.path.realpath(path)} {' '.join(first_line)}"


def python_include_flags() -> list[str]:
    """-I for Python's headers (every extension module and C shim needs them)."""
    return [f"-I{sysconfig.get_paths()['include']}"]


def lower_priority(command: list[str]) -> list[str]:
    """`command` under `nice -n 10` where there is one: a build in the background
    yields the processor to the cell the user waits for."""
    nice = shutil.which("nice")
    return [nice, "-n", "10", *command] if nice else list(command)


def run_tool(command: Iterable[str], cwd=None, env: dict | None = None
             ) -> subprocess.CompletedProcess:
    """Run a compiler (argument list, no shell) and return its completed process."""
    command = [str(part) for part in command]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True,
                          check=False)


def load_extension(name: str, path) -> object:
    """Import the extension module at `path` whose PyInit name is `name`, without a
    sys.path lookup; registered in sys.modules so that pickle and cdef classes find it."""
    path = str(path)
    loader = importlib.machinery.ExtensionFileLoader(name, path)
    spec = importlib.util.spec_from_file_location(name, path, loader=loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    sys.modules[name] = module
    return module


# ---- compiler diagnostics, already in the cell's terms (`cell:LINE:COL: error: ...`)

EXCERPT = re.compile(r"^ *(?P<number>\d*) \| ")  # a quoted source line, or its caret line
_ANY_ERROR = re.compile(r"^\S[^:]*:\d+(?::\d+)?: (?:fatal )?error")
_CELL_REMARK = re.compile(r"^cell:\d+(?::\d+)?: (?:warning|note):")


def first_error_first(diagnostics: str) -> str:
    """The first error with its quoted line moved to the top, so that it is seen
    without scrolling; the rest follows in the compiler's order."""
    lines = diagnostics.splitlines()
    start = next((i for i, line in enumerate(lines) if _ANY_ERROR.match(line)), None)
    if not start:  # none, or already first
        return diagnostics
    end = start + 1
    while end < len(lines) and EXCERPT.match(lines[end]):
        end += 1
    return "\n".join(lines[start:end] + lines[:start] + lines[end:])


def cell_remarks(diagnostics: str) -> list[str]:
    """The warnings and notes about cell lines (`#warning`, `#pragma message`), each with
    the lines quoted under it, from a build that succeeded: what the user should see.
    Remarks about polymagic's generated code are left out."""
    kept, keep = [], False
    for line in diagnostics.splitlines():
        if _CELL_REMARK.match(line):
            keep = True
        elif not EXCERPT.match(line):
            keep = False
        if keep:
            kept.append(line)
    return kept
