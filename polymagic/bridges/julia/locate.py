"""Find a Julia executable without touching the network and without importing juliacall.

Importing juliacall with no Julia makes juliapkg download one; so the Julia bridge first
asks this module. It looks where juliapkg itself would look when offline, in the same
order: the configured executable (`PYTHON_JULIAPKG_EXE` or `-X juliapkg-exe=...`), a Julia
juliapkg installed earlier (its `meta.json`, its install prefix), Julias installed by
juliaup, then `julia` on PATH. Each candidate is checked by running `julia --version`.
Only the standard library is imported here.
"""
from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ...errors import BridgeUnavailable

# juliacall 0.9.x (PythonCall.jl 0.9) asks for Julia ^1.10.3 in its juliapkg.json.
MINIMUM_VERSION = (1, 10, 3)

HOW_TO_GET_JULIA = (
    "Install Julia 1.10 or later with juliaup (curl -fsSL https://install.julialang.org "
    "| sh) and make sure `julia` is on PATH, or point polymagic at an existing Julia "
    "with PYTHON_JULIAPKG_EXE=/path/to/bin/julia. To let juliacall download Julia "
    "itself, set POLYMAGIC_JULIA_AUTOINSTALL=yes.")

_VERSION_TIMEOUT_SECONDS = 30
_VERSION_PATTERN = re.compile(r"^julia version (\d+)\.(\d+)\.(\d+)", re.IGNORECASE)


@dataclass(frozen=True)
class JuliaInstall:
    """A Julia executable that answered `--version`, and where it was found."""

    path: str
    version: tuple[int, int, int]
    source: str

    @property
    def version_text(self) -> str:
        return ".".join(map(str, self.version))


def configured_executable() -> tuple[str | None, str]:
    """The Julia executable the user configured and where it came from (-X option first)."""
    value = sys._xoptions.get("juliapkg-exe")
    if isinstance(value, str):
        return value, "-X juliapkg-exe"
    for variable in ("PYTHON_JULIAPKG_EXE", "PYTHON_JULIACALL_EXE"):
        value = os.environ.get(variable)
        if value:  # juliacall's own EXE (with PYTHON_JULIACALL_PROJECT) bypasses juliapkg
            return value, variable
    return None, "PYTHON_JULIAPKG_EXE"


def julia_version(path: str) -> tuple[int, int, int] | None:
    """(major, minor, patch) printed by `path --version`, or None if it is not a Julia."""
    try:
        result = subprocess.run([path, "--version"], capture_output=True, text=True,
                                timeout=_VERSION_TIMEOUT_SECONDS, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = _VERSION_PATTERN.match(result.stdout.strip())
    if result.returncode != 0 or match is None:
        return None
    return tuple(int(part) for part in match.groups())


def juliapkg_project() -> Path:
    """The Julia project juliapkg uses for this Python (same rule as juliapkg.state)."""
    configured = os.environ.get("PYTHON_JULIAPKG_PROJECT") or sys._xoptions.get(
        "juliapkg-project")
    if isinstance(configured, str) and configured:
        return Path(configured)
    if sys.prefix != sys.base_prefix:
        return Path(sys.prefix) / "julia_env"
    if os.environ.get("CONDA_PREFIX"):
        return Path(os.environ["CONDA_PREFIX"]) / "julia_env"
    return _depot() / "environments" / "pyjuliapkg"


def _depot() -> Path:
    depot_path = os.environ.get("JULIA_DEPOT_PATH")
    if depot_path:
        return Path(depot_path.split(";" if os.name == "nt" else ":")[0]).absolute()
    return Path.home() / ".julia"


def _executable_name() -> str:
    return "julia.exe" if os.name == "nt" else "julia"


def _juliapkg_candidates():
    """The Julia juliapkg resolved (meta.json) or installed into its own prefix."""
    prefix = juliapkg_project() / "pyjuliapkg"
    meta = prefix / "meta.json"
    if meta.is_file():
        try:
            executable = json.loads(meta.read_text()).get("executable")
        except (OSError, ValueError):
            executable = None  # a damaged meta file: juliapkg re-resolves it as well
        if isinstance(executable, str):
            yield executable, f"juliapkg's {meta}"
    yield str(prefix / "install" / "bin" / _executable_name()), "juliapkg's install prefix"


def _juliaup_candidates():
    """Julias juliaup installed, newest first, read from its juliaup.json."""
    depot = os.environ.get("JULIAUP_DEPOT_PATH")
    juliaup_dir = (Path(depot) if depot else Path.home() / ".julia") / "juliaup"
    try:
        installed = json.loads((juliaup_dir / "juliaup.json").read_text()).get(
            "InstalledVersions", {})
    except (OSError, ValueError):
        return
    machine = platform.machine().lower()
    paths = []
    for version_text, info in installed.items():
        if machine and machine not in version_text.lower().replace("x64", "x86_64"):
            continue
        if "BinaryPath" in info:
            paths.append((version_text, juliaup_dir / info["BinaryPath"]))
        elif "Path" in info:
            paths.append((version_text, juliaup_dir / info["Path"] / "bin" /
                          _executable_name()))
    for _, path in sorted(paths, key=lambda item: _version_key(item[0]), reverse=True):
        yield str(path), "juliaup"


def _version_key(text: str) -> tuple[int, ...]:
    """'1.10.4+0.x64.linux.gnu' -> (1, 10, 4), so 1.10 sorts after 1.9."""
    return tuple(int(part) for part in re.findall(r"\d+", text.split("+")[0])[:3])


def _candidates():
    yield from _juliapkg_candidates()
    yield from _juliaup_candidates()
    on_path = shutil.which("julia")
    if on_path:
        yield on_path, "PATH"


def _configured_install(value: str, source: str) -> JuliaInstall:
    """The Julia the user configured, or BridgeUnavailable saying what is wrong with it."""
    path = shutil.which(value) or value
    if not os.path.exists(path):
        raise BridgeUnavailable("Julia", f"{source}={value!r}: no such file",
                                HOW_TO_GET_JULIA)
    version = julia_version(path)
    if version is None:
        raise BridgeUnavailable(
            "Julia", f"{source}={value!r} is not a Julia executable (`{path} --version` "
            "did not print 'julia version X.Y.Z')", HOW_TO_GET_JULIA)
    return JuliaInstall(path, version, source)


def locate_julia() -> JuliaInstall:
    """The Julia to use; BridgeUnavailable (with how to get one) when there is none.

    A configured executable is final: if it is wrong the error says so, rather than
    silently falling back to another Julia.
    """
    value, source = configured_executable()
    if value:
        return _configured_install(value, source)
    seen = set()
    for path, source in _candidates():
        if path in seen or not os.path.isfile(path):
            continue
        seen.add(path)
        version = julia_version(path)
        if version is not None and version >= MINIMUM_VERSION:
            return JuliaInstall(path, version, source)
    raise BridgeUnavailable(
        "Julia", "no Julia runtime found (PYTHON_JULIAPKG_EXE is unset, `julia` is not "
        "on PATH, and neither juliaup nor juliapkg has installed one)", HOW_TO_GET_JULIA)


def find_julia() -> str | None:
    """The path of a usable Julia executable, or None when `locate_julia` finds none."""
    try:
        return locate_julia().path
    except BridgeUnavailable:
        return None  # "no Julia" is this function's answer, not a failure
