"""Find a Julia executable without touching the network and without importing juliacall.

Importing juliacall with no Julia makes juliapkg download one; so the Julia bridge first
asks this module. It follows juliacall's and juliapkg's own rules (juliacall 0.9.37
`__init__.py` `init()`; juliapkg 0.1.28 `state.py`, `find_julia.py`, `install_julia.py`,
`deps.py`), offline:

1. juliacall's own Julia: `PYTHON_JULIACALL_EXE` (or `_BINDIR`) together with
   `PYTHON_JULIACALL_PROJECT`; juliacall then skips juliapkg, and refuses one without
   the other.
2. The executable configured for juliapkg (`-X juliapkg-exe=...`, then
   `PYTHON_JULIAPKG_EXE`). Options are read from `-X` first, then the environment.
3. A Julia juliapkg resolved or installed earlier (its `meta.json`, its install prefix).
4. Julias installed by juliaup, newest first, for this machine's architecture as
   juliapkg names it (arm64 -> aarch64, amd64 -> x86_64 -> x64).
5. `julia` on PATH.

Configured executables are final; found ones must be versions juliapkg accepts
(juliacall's `^1.10.3`, and at most 1.11 when Python's OpenSSL is older than 3.5). Each
is checked by running `julia --version`. Only the standard library is imported here.
"""
from __future__ import annotations

import json
import os
import platform
import re
import shutil
import ssl
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ...errors import BridgeUnavailable

# juliacall 0.9.x (PythonCall.jl 0.9) asks for Julia ^1.10.3 in its juliapkg.json.
MINIMUM_VERSION = (1, 10, 3)
# The meta.json format juliapkg 0.1.28 writes and reads (deps.py META_VERSION); another
# version makes juliapkg ignore the file and resolve again.
JULIAPKG_META_VERSION = 8

HOW_TO_GET_JULIA = (
    "Install Julia 1.10 or later with juliaup (curl -fsSL https://install.julialang.org "
    "| sh) and make sure `julia` is on PATH, or point polymagic at an existing Julia "
    "with PYTHON_JULIAPKG_EXE=/path/to/bin/julia. To let juliacall download Julia "
    "itself, set POLYMAGIC_JULIA_AUTOINSTALL=yes. More: python -m polymagic help julia")

_VERSION_TIMEOUT_SECONDS = 30
_VERSION_PATTERN = re.compile(r"^julia version (\d+)\.(\d+)\.(\d+)", re.IGNORECASE)
# install_julia.py: arch_aliases, then short_arches (the names in juliaup's versions).
_ARCH_ALIASES = {"arm64": "aarch64", "i386": "i686", "amd64": "x86_64"}
_SHORT_ARCHES = {"i686": "x86", "x86_64": "x64"}
_JULIAUP_VERSION = re.compile(r"^(\d+)\.(\d+)\.(\d+)(?P<pre>-[^+]*)?(?:\+(?P<build>.*))?$")


@dataclass(frozen=True)
class JuliaInstall:
    """A Julia executable that answered `--version`, and where it was found.

    `juliapkg_exe` is the value PYTHON_JULIAPKG_EXE must have for juliapkg to use this
    Julia without downloading another, or None to leave juliapkg's setting alone (the
    user configured it, juliacall bypasses juliapkg, or juliapkg chose this Julia
    itself: setting it then would make juliapkg resolve its project again).
    """

    path: str
    version: tuple[int, int, int]
    source: str
    juliapkg_exe: str | None = None

    @property
    def version_text(self) -> str:
        return ".".join(map(str, self.version))


def juliapkg_environment(install: JuliaInstall) -> dict[str, str]:
    """The environment variables to set before importing juliacall for `install`."""
    return {"PYTHON_JULIAPKG_EXE": install.juliapkg_exe} if install.juliapkg_exe else {}


# -- options ---------------------------------------------------------------------------

def option(xkey: str, variable: str) -> tuple[str | None, str]:
    """(value, where it came from): `-X xkey=value` first, then the environment, as
    juliacall's `option()` and juliapkg's `get_config()` read them."""
    value = sys._xoptions.get(xkey)
    if value is True:  # `-X key` without `=value`
        raise BridgeUnavailable("Julia", f"-X {xkey} is given without a value",
                                f"write -X {xkey}=VALUE, or leave it out")
    if value is not None:
        return value, f"-X {xkey}"
    return os.environ.get(variable), variable


def configured_executable() -> tuple[str | None, str]:
    """The Julia executable configured for juliapkg and where it came from."""
    value, source = option("juliapkg-exe", "PYTHON_JULIAPKG_EXE")
    return (value or None), source


def juliacall_executable() -> tuple[str, str] | None:
    """(executable, source) when juliacall will use its own Julia and skip juliapkg
    (PYTHON_JULIACALL_EXE or _BINDIR, with PYTHON_JULIACALL_PROJECT); None when it
    will ask juliapkg. BridgeUnavailable, naming the variables, when only some are set
    (juliacall itself raises then)."""
    exe, exe_source = option("juliacall-exe", "PYTHON_JULIACALL_EXE")
    bindir, bindir_source = option("juliacall-home", "PYTHON_JULIACALL_BINDIR")
    project, project_source = option("juliacall-project", "PYTHON_JULIACALL_PROJECT")
    lib, lib_source = option("juliacall-lib", "PYTHON_JULIACALL_LIB")
    if not exe and bindir:
        exe, exe_source = os.path.join(bindir, _executable_name()), bindir_source
    if not exe and not project:
        if lib:
            raise _juliacall_pairing_error(f"{lib_source} is set without "
                                           "PYTHON_JULIACALL_EXE")
        return None
    if not exe or not project:
        given, missing = (exe_source, "PYTHON_JULIACALL_PROJECT") if exe else \
            (project_source, "PYTHON_JULIACALL_EXE (or PYTHON_JULIACALL_BINDIR)")
        raise _juliacall_pairing_error(f"{given} is set without {missing}")
    if not os.path.isdir(project):
        raise BridgeUnavailable("Julia", f"{project_source}={project!r}: no such folder",
                                "Point it at the Julia project that has PythonCall "
                                "installed, or unset the PYTHON_JULIACALL_* variables.")
    return exe, exe_source


def _juliacall_pairing_error(what: str) -> BridgeUnavailable:
    return BridgeUnavailable(
        "Julia", f"{what}: juliacall uses its own Julia only when PYTHON_JULIACALL_EXE "
        "and PYTHON_JULIACALL_PROJECT are set together (and refuses to start otherwise)",
        "Set both (the project must have PythonCall installed), or unset them and point "
        "polymagic at Julia with PYTHON_JULIAPKG_EXE.")


# -- versions --------------------------------------------------------------------------

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


def compatible(version: tuple[int, int, int], openssl=ssl.OPENSSL_VERSION_INFO) -> bool:
    """Whether juliapkg would pick this Julia for juliacall: `^1.10.3`, and below 1.12
    when Python's OpenSSL is older than 3.5 (deps.py `openssl_compat`: Julia 1.12 needs
    OpenSSL 3.5)."""
    if not MINIMUM_VERSION <= tuple(version) < (2, 0, 0):
        return False
    return tuple(openssl[:2]) >= (3, 5) or tuple(version) < (1, 12, 0)


def juliaup_arch(machine: str | None = None) -> str:
    """This machine's architecture as juliaup spells it in its versions ('x64',
    'aarch64', 'x86'), by juliapkg's `get_short_arch`."""
    arch = (platform.machine() if machine is None else machine).lower()
    arch = _ARCH_ALIASES.get(arch, arch)
    return _SHORT_ARCHES.get(arch, arch)


# -- where juliapkg keeps things -------------------------------------------------------

def juliapkg_project() -> Path:
    """The Julia project juliapkg uses for this Python (its state.py rule)."""
    configured, source = option("juliapkg-project", "PYTHON_JULIAPKG_PROJECT")
    if configured:
        if not os.path.isabs(configured):  # juliapkg raises at import then
            raise BridgeUnavailable("Julia", f"{source}={configured!r} is not an absolute "
                                    "path, which juliapkg requires",
                                    f"Give {source} an absolute path.")
        return Path(configured)
    if sys.prefix != sys.base_prefix:
        return Path(sys.prefix).absolute() / "julia_env"
    if os.environ.get("CONDA_PREFIX"):
        return Path(os.environ["CONDA_PREFIX"]).absolute() / "julia_env"
    return _depot() / "environments" / "pyjuliapkg"


def _depot() -> Path:
    depot_path = os.environ.get("JULIA_DEPOT_PATH")
    if depot_path:
        return Path(depot_path.split(";" if os.name == "nt" else ":")[0]).absolute()
    return Path.home() / ".julia"


def _executable_name() -> str:
    return "julia.exe" if os.name == "nt" else "julia"


def juliapkg_meta(prefix: Path) -> dict | None:
    """juliapkg's meta.json under `prefix` when juliapkg would trust it, else None."""
    try:
        meta = json.loads((prefix / "meta.json").read_text())
    except (OSError, ValueError):
        return None  # missing or damaged: juliapkg resolves again as well
    if not isinstance(meta, dict) or meta.get("meta_version") != JULIAPKG_META_VERSION:
        return None
    return meta


# -- candidates: (path, source, value for PYTHON_JULIAPKG_EXE) ------------------------

def _juliapkg_candidates():
    """The Julia juliapkg resolved (meta.json) or installed into its own prefix."""
    prefix = juliapkg_project() / "pyjuliapkg"
    meta = juliapkg_meta(prefix)
    if meta is not None and isinstance(meta.get("executable"), str):
        # juliapkg reuses this Julia while PYTHON_JULIAPKG_EXE matches what it recorded
        # (can_skip_resolve): keep that value, None included.
        yield meta["executable"], f"juliapkg's {prefix / 'meta.json'}", \
            meta.get("override_executable")
    installed = str(prefix / "install" / "bin" / _executable_name())
    yield installed, "juliapkg's install prefix", installed


def _juliaup_candidates(machine: str | None = None):
    """Julias juliaup installed for this architecture, newest first (juliaup.json)."""
    depot = os.environ.get("JULIAUP_DEPOT_PATH")
    juliaup_dir = (Path(depot) if depot else Path.home() / ".julia") / "juliaup"
    try:
        installed = json.loads((juliaup_dir / "juliaup.json").read_text()).get(
            "InstalledVersions", {})
    except (OSError, ValueError, AttributeError):
        return
    arch = juliaup_arch(machine)
    found = []
    for version_text, info in installed.items():
        version = _juliaup_version(version_text, arch)
        if version is None or not isinstance(info, dict):
            continue
        if "BinaryPath" in info:
            found.append((version, juliaup_dir / info["BinaryPath"]))
        elif "Path" in info:
            found.append((version, juliaup_dir / info["Path"] / "bin" / _executable_name()))
    for _, path in sorted(found, key=lambda item: item[0], reverse=True):
        yield str(path), "juliaup", str(path)


def _juliaup_version(text: str, arch: str) -> tuple[int, int, int] | None:
    """'1.10.4+0.x64.linux.gnu' -> (1, 10, 4) when built for `arch` and not a
    pre-release (find_julia.py ju_find_julia_noinstall: `arch in ver.build`)."""
    match = _JULIAUP_VERSION.match(text.replace("~", "."))
    if match is None or match.group("pre") or arch not in (match.group("build") or ""):
        return None
    return tuple(int(part) for part in match.groups()[:3])


def _candidates():
    yield from _juliapkg_candidates()
    yield from _juliaup_candidates()
    on_path = shutil.which("julia")
    if on_path:
        yield on_path, "PATH", on_path


# -- locating --------------------------------------------------------------------------

def _configured_install(value: str, source: str) -> JuliaInstall:
    """The Julia the user configured, or BridgeUnavailable saying what is wrong with it."""
    fix = (f"Point {source} at a Julia executable (.../bin/julia), or unset it to let "
           "polymagic look for one.")
    path = shutil.which(value) or value
    if not os.path.exists(path):
        raise BridgeUnavailable("Julia", f"{source}={value!r}: no such file", fix)
    version = julia_version(path)
    if version is None:
        raise BridgeUnavailable(
            "Julia", f"{source}={value!r} is not a Julia executable (`{path} --version` "
            "did not print 'julia version X.Y.Z')", fix)
    return JuliaInstall(path, version, source)


def locate_julia() -> JuliaInstall:
    """The Julia to use; BridgeUnavailable (with how to get one) when there is none.

    A configured executable is final: if it is wrong the error says so, rather than
    silently falling back to another Julia.
    """
    for configured in (juliacall_executable(), configured_executable()):
        if configured and configured[0]:
            return _configured_install(*configured)
    seen = set()
    for path, source, juliapkg_exe in _candidates():
        if path in seen or not os.path.isfile(path):
            continue
        seen.add(path)
        version = julia_version(path)
        if version is not None and compatible(version):
            return JuliaInstall(path, version, source, juliapkg_exe)
    raise BridgeUnavailable(
        "Julia", "no Julia runtime found (PYTHON_JULIAPKG_EXE is unset, `julia` is not "
        "on PATH, and neither juliaup nor juliapkg has installed one)", HOW_TO_GET_JULIA)


def find_julia() -> str | None:
    """The path of a usable Julia executable, or None when `locate_julia` finds none."""
    try:
        return locate_julia().path
    except BridgeUnavailable:
        return None  # "no Julia" is this function's answer, not a failure
