"""Embedded R's lifecycle: find R, start it once on first use, guard it with one lock.

R is single-threaded: it is started in, and only ever entered from, one thread; calls
from another thread raise ThreadError instead of corrupting R. The lock is reentrant
because calls come back in (Python -> R -> Python -> R ...).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import threading

from ..errors import BridgeUnavailable, ThreadError

INSTALL_HINT = ("Install R (Debian/Ubuntu: sudo apt-get install -y r-base-core "
                "r-base-dev) and the rpy2 extra: pip install 'polymagic[r]'.")

lock = threading.RLock()
_state = {"rinterface": None, "thread": None}


def r_home() -> str:
    """R's home directory, from $R_HOME or `R RHOME`; BridgeUnavailable when no R."""
    home = os.environ.get("R_HOME")
    if home:
        return home
    if shutil.which("R") is None:
        raise BridgeUnavailable("R", "no R found ($R_HOME is unset and `R` is not on "
                                "PATH)", INSTALL_HINT)
    result = subprocess.run(["R", "RHOME"], capture_output=True, text=True, check=False)
    home = result.stdout.strip()
    if result.returncode != 0 or not home:
        raise BridgeUnavailable("R", f"`R RHOME` failed: {result.stderr.strip()}",
                                INSTALL_HINT)
    return home


def start():
    """Start embedded R (once) and return `rpy2.rinterface`; later calls are cheap."""
    rinterface = _state["rinterface"]
    if rinterface is not None:
        check_thread()
        return rinterface
    with lock:
        if _state["rinterface"] is None:
            os.environ["R_HOME"] = r_home()
            rinterface = _import_rinterface()
            rinterface.initr_simple()
            _state["thread"] = threading.get_ident()
            _state["rinterface"] = rinterface
    return _state["rinterface"]


def _import_rinterface():
    try:
        import rpy2.rinterface as rinterface
    except ImportError as error:
        raise BridgeUnavailable(
            "R", f"rpy2 cannot be imported ({error})",
            "Install rpy2 3.5.17 (pip install 'polymagic[r]'): rpy2-rinterface 3.6.6 "
            "and later need R 4.5 symbols.") from error
    return rinterface


def is_started() -> bool:
    return _state["rinterface"] is not None


def check_thread() -> None:
    """Raise ThreadError unless called from the thread R was started in."""
    if threading.get_ident() != _state["thread"]:
        raise ThreadError("R runs in the thread that started it and cannot be entered "
                          "from another thread; call it from that thread (in a notebook, "
                          "the kernel's main thread)")
