"""`python -m polymagic situation`: what polymagic finds on this machine.

Reads everything without starting a runtime (R is asked through `R RHOME`, not embedded).
"""
from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from importlib import metadata

from . import __version__

_PACKAGES = ("numpy", "rpy2", "juliacall", "cffi", "Cython", "libclang", "IPython",
             "pandas")


def _command_output(*command: str) -> str | None:
    if shutil.which(command[0]) is None:
        return None
    result = subprocess.run(list(command), capture_output=True, text=True, check=False)
    return (result.stdout or result.stderr).strip() or None


def _package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def _first_line(text: str | None) -> str:
    return text.splitlines()[0] if text else "not found"


def report() -> list[tuple[str, str]]:
    """(label, value) rows describing runtimes, compilers, packages and the cache."""
    from .bridges.julia.locate import find_julia
    from .build import cache_dir
    rows = [("polymagic", __version__), ("python", sys.version.split()[0]),
            ("platform", platform.platform())]
    rows.append(("R home", os.environ.get("R_HOME") or _first_line(_command_output("R", "RHOME"))))
    rows.append(("R version", _first_line(_command_output("R", "--version"))))
    for language, compiler, version in _compilers():
        rows.append((f"{language} compiler", f"{compiler}: {version}" if compiler else version))
    julia = find_julia()
    rows.append(("julia", julia or "not found (set PYTHON_JULIAPKG_EXE or put julia on PATH)"))
    rows.extend((f"package {name}", _package_version(name)) for name in _PACKAGES)
    rows.append(("cache dir", str(cache_dir())))
    return rows


def main() -> int:
    rows = report()
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"{label:<{width}}  {value}")
    return 0


def _compilers() -> list[tuple[str, str | None, str]]:
    """(language, compiler, its version or why there is none) for C++ and C, by
    polymagic.toolchain's rule."""
    from .errors import BridgeUnavailable
    from .toolchain import compiler
    found = []
    for language in ("C++", "C"):
        try:
            executable = compiler(language.lower())
        except BridgeUnavailable as missing:
            found.append((language, None, f"not found ({missing.reason})"))
            continue
        found.append((language, executable,
                      _first_line(_command_output(executable, "--version"))))
    return found
