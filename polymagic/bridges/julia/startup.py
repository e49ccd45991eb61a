"""Before and during `import juliacall`: the environment juliacall reads, and what its
failures mean for the user.

juliacall starts Julia when it is imported (juliacall 0.9.37 `__init__.py`, `init()`):
it reads its options (`-X juliacall-*`, then `PYTHON_JULIACALL_*`), asks juliapkg for a
Julia and a project (which may download Julia and install PythonCall.jl), opens
libjulia, calls `jl_init` and loads PythonCall. A failed import leaves no module
behind, so importing again would run `jl_init` a second time in the same process; the
engine therefore keeps the first failure and raises it again (engine.py).
"""
from __future__ import annotations

import importlib.util
import os
import re
import sys

from ... import config
from ...errors import BridgeUnavailable, ConfigError
from .locate import HOW_TO_GET_JULIA, JuliaInstall, juliapkg_environment, locate_julia

# Read by juliacall's init() once Julia is up: "yes" (or unset) makes juliacall load its
# own IPython extension, whose %julia magic would replace polymagic's.
AUTOLOAD_VARIABLE = "PYTHON_JULIACALL_AUTOLOAD_IPYTHON_EXTENSION"

# Option names as juliacall's `option()` and juliapkg's `get_config()` quote them in the
# errors they raise for a bad value ("PYTHON_JULIACALL_THREADS=x: expecting an int",
# "-X juliapkg-offline must be one of: yes, no").
_OPTION_NAME = re.compile(r"PYTHON_JULIA(?:CALL|PKG)_[A-Z_]+|-X ?julia(?:call|pkg)-[a-z-]+")

RESTART = "Julia starts once per process: restart Python to try again."


def prepare_environment() -> JuliaInstall | None:
    """Set what juliacall and juliapkg read at import; the Julia found (None when none
    was found and POLYMAGIC_JULIA_AUTOINSTALL=yes lets juliapkg download one).

    BridgeUnavailable when there is no Julia and no permission to download one."""
    os.environ.setdefault(AUTOLOAD_VARIABLE, "no")  # first: every path imports juliacall
    if julia_already_running():
        return None  # the user imported juliacall before: its Julia is the one to use
    try:
        install = locate_julia()
    except BridgeUnavailable:
        if not config.flag("julia_autoinstall"):
            raise
        return None  # opted in: juliapkg may download Julia now
    os.environ.update(juliapkg_environment(install))
    return install


def julia_already_running() -> bool:
    """Whether juliacall was imported (and started Julia) before polymagic needed it."""
    juliacall = sys.modules.get("juliacall")
    return juliacall is not None and hasattr(juliacall, "Main")


def ensure_juliacall_installed() -> None:
    """BridgeUnavailable when the juliacall package is missing (checked without
    importing it, so installing it and trying again in this process is safe)."""
    if importlib.util.find_spec("juliacall") is None:
        raise BridgeUnavailable("Julia", "the juliacall package is not installed",
                                "pip install 'polymagic[julia]'")


def import_juliacall(install: JuliaInstall | None):
    """juliacall, imported (which starts Julia); its failures as polymagic errors."""
    try:
        import juliacall
    except Exception as error:  # juliacall and juliapkg raise bare Exception too
        raise startup_error(error, install) from error
    if not hasattr(juliacall, "Main"):
        raise ConfigError("juliacall was told not to start Julia (PYTHON_JULIACALL_INIT=no "
                          "or -X juliacall-init=no), and polymagic needs Julia started: "
                          f"unset that option. {RESTART}")
    return juliacall


def startup_error(error: BaseException, install: JuliaInstall | None) -> Exception:
    """The polymagic error for a failed `import juliacall`: ConfigError when juliacall or
    juliapkg rejected one of their options, BridgeUnavailable otherwise."""
    message = str(error) or type(error).__name__
    if _OPTION_NAME.search(message):
        return ConfigError(f"juliacall rejected its configuration: {message}. Fix or unset "
                           f"that option. {RESTART}")
    if install is None:
        return BridgeUnavailable("Julia", f"juliacall could not download or start Julia: "
                                 f"{message}", f"{HOW_TO_GET_JULIA} {RESTART}")
    return BridgeUnavailable(
        "Julia", f"juliacall could not start Julia {install.version_text} "
        f"({install.path}): {message}",
        "On its first start juliapkg installs PythonCall.jl into its Julia project, which "
        "needs Julia's package servers once (or PYTHON_JULIAPKG_OFFLINE=yes with a depot "
        f"that already has it); juliacall's output above says what failed. {RESTART}")


def interrupted_start() -> BridgeUnavailable:
    """What later calls raise after Ctrl-C stopped Julia's start part-way."""
    return BridgeUnavailable("Julia", "its start was interrupted", RESTART)
