"""Embedded R's lifecycle: find R, start it once on first use, guard it with one lock.

R is single-threaded: it is started in, and only ever entered from, one thread; calls
from another thread raise ThreadError instead of corrupting R. The lock is reentrant
because calls come back in (Python -> R -> Python -> R ...).
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import subprocess
import threading
from pathlib import Path

from ...errors import BridgeUnavailable, CompileError, ThreadError

INSTALL_HINT = ("Install R (Debian/Ubuntu: sudo apt-get install -y r-base-core "
                "r-base-dev) and the rpy2 extra: pip install 'polymagic[r]'.")

lock = threading.RLock()
_state = {"rinterface": None, "thread": None, "libr": None, "signals": None}
_SIGNALS_SOURCE = Path(__file__).with_name("signals.c")


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
            _keep_r_stack_check()
            rinterface.initr_simple()
            _state["thread"] = threading.get_ident()
            _state["rinterface"] = rinterface
    return _state["rinterface"]


def _keep_r_stack_check() -> None:
    """Keep R's C stack check, which rpy2 turns off by default: with it, recursion
    that goes deep through R raises an error (RecursionError) instead of a segfault.
    R measures the stack of the main thread, so the check stays off when R is
    started from another thread."""
    from rpy2.rinterface_lib import embedded
    if threading.current_thread() is threading.main_thread():
        embedded._DEFAULT_C_STACK_LIMIT = 0  # 0: leave R's own limit in place


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


def libr() -> ctypes.CDLL:
    """libR.so (already loaded by rpy2) through ctypes, for the few symbols rpy2 lacks."""
    if _state["libr"] is None:
        start()
        _state["libr"] = ctypes.CDLL(os.path.join(os.environ["R_HOME"], "lib",
                                                  "libR.so"), mode=ctypes.RTLD_GLOBAL)
    return _state["libr"]


def visible() -> bool:
    """R_Visible: whether R's last top-level evaluation would auto-print its value."""
    return bool(ctypes.c_int.in_dll(libr(), "R_Visible").value)


def current_error_text() -> str:
    """R's error buffer (what geterrmessage() returns), read without evaluating R."""
    function = libr().R_curErrorBuf
    function.restype = ctypes.c_char_p
    return (function() or b"").decode("utf-8", "replace")


def signals() -> ctypes.CDLL:
    """The SIGINT shim (signals.c), built once through the build cache and loaded."""
    if _state["signals"] is None:
        library = ctypes.CDLL(str(_build_signals_shim()))
        for name in ("pm_sigint_enter", "pm_sigint_leave", "pm_sigint_pause",
                     "pm_sigint_resume"):
            getattr(library, name).argtypes = []
            getattr(library, name).restype = ctypes.c_int
        library.pm_sigint_target.argtypes = [ctypes.c_void_p]
        library.pm_sigint_target.restype = None
        pending = ctypes.c_int.in_dll(libr(), "R_interrupts_pending")
        library.pm_sigint_target(ctypes.addressof(pending))
        _state["signals"] = library
    return _state["signals"]


def _build_signals_shim() -> Path:
    from ... import build, toolchain
    compiler = toolchain.compiler("c")
    source = _SIGNALS_SOURCE.read_text()
    key = build.cache_key("r_signals", source, build.csrc_text(),
                          toolchain.compiler_identity(compiler))

    def produce(directory: Path) -> None:
        command = [compiler, "-O2", "-shared", "-fPIC", f"-I{build.CSRC}",
                   str(_SIGNALS_SOURCE), "-o",
                   str(directory / "r_signals.so")]
        result = toolchain.run_tool(command)
        if result.returncode != 0:
            raise CompileError("C", result.stderr, command)

    return build.cached_build(key, "r_signals.so", produce)


@contextlib.contextmanager
def python_section():
    """Python's SIGINT handler for Python code that R calls back into (Ctrl-C there
    raises KeyboardInterrupt in Python); R's comes back when the callback returns."""
    shim = _state["signals"]
    if shim is None:
        yield
        return
    shim.pm_sigint_pause()
    try:
        yield
    finally:
        shim.pm_sigint_resume()
