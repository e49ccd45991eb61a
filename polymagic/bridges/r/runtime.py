"""Embedded R's lifecycle: find R, start it once on first use, guard it with one lock.

R is single-threaded: it is started in, and only ever entered from, one thread; calls
from another thread raise ThreadError instead of corrupting R. The lock is reentrant
because calls come back in (Python -> R -> Python -> R ...).

Started R is kept from ending or crashing Python (guards.c): quit() raises an R error
instead of exiting, and R's C stack check holds in whichever thread started R. Ctrl-C
reaches R through signals.c. Both C files make one small library (the runtime shim),
built once through the build cache.
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import threading
import warnings
from pathlib import Path

from ...errors import BridgeUnavailable, CompileError, ThreadError

INSTALL_HINT = ("Install R (Debian/Ubuntu: sudo apt-get install -y r-base-core "
                "r-base-dev) and the rpy2 extra: pip install 'polymagic[r]'.")

lock = threading.RLock()
_state = {"rinterface": None, "thread": None, "libr": None, "shim": None}
_HERE = Path(__file__).parent
_SHIM_SOURCES = ("signals.c", "guards.c")


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
    with lock, ctrl_c_deferred() as deferral:
        if _state["rinterface"] is None:
            os.environ["R_HOME"] = r_home()
            with _library_path_kept():
                rinterface = _import_rinterface()
                in_main_thread = threading.current_thread() is threading.main_thread()
                _keep_r_stack_check(in_main_thread)
                rinterface.initr_simple()
            deferral.keep()  # rpy2 put Python's default SIGINT handler in place
            _state["thread"] = threading.get_ident()
            _state["rinterface"] = rinterface
            _guard_process(in_main_thread)
    return _state["rinterface"]


@contextlib.contextmanager
def _library_path_kept():
    """rpy2 puts R's library folders (/usr/lib/x86_64-linux-gnu among them) into
    LD_LIBRARY_PATH while R starts; left there, every Python started later as a child
    process (pip, Dask workers, kernels) loads the system's libpython instead of its own
    and fails. R is loaded by then and needs none of it, so the variable is restored."""
    before = os.environ.get("LD_LIBRARY_PATH")
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("LD_LIBRARY_PATH", None)
        else:
            os.environ["LD_LIBRARY_PATH"] = before


def _keep_r_stack_check(in_main_thread: bool) -> None:
    """Keep R's C stack check, which rpy2 turns off by default: with it, recursion
    that goes deep through R raises an error (RecursionError) instead of a segfault.
    R measures the main thread's stack; in another thread rpy2's default (off) holds
    while R starts, and _guard_process then points the check at this thread."""
    from rpy2.rinterface_lib import embedded
    if in_main_thread:
        embedded._DEFAULT_C_STACK_LIMIT = 0  # 0: leave R's own limit in place


def _guard_process(in_main_thread: bool) -> None:
    """quit() raises an R error instead of ending Python; every interrupt R handles is
    noted (signals.c); outside the main thread, or when rpy2 started R with the check
    off, R's stack check measures this thread's stack."""
    library = shim()
    library.pm_guard_quit()
    if library.pm_note_r_interrupts() != 0:
        warnings.warn("R refused polymagic's options(interrupt): Ctrl-C during "
                      "Sys.sleep() and other blocking R calls may surface as an RError "
                      f"({current_error_text().strip()})", RuntimeWarning, 2)
    if (not in_main_thread or _stack_check_is_off()) \
            and library.pm_use_this_thread_stack() != 0:
        warnings.warn("R was started outside the main thread and the thread's stack "
                      "could not be read: R's C stack check is off, so very deep "
                      "recursion in R may crash the process", RuntimeWarning, 2)


def _stack_check_is_off() -> bool:
    """Whether R runs without its C stack check: rpy2 turns it off when R is started
    through rpy2 itself (rpy2's magic, rpy2.robjects) before polymagic uses R."""
    return ctypes.c_size_t.in_dll(libr(), "R_CStackLimit").value == ctypes.c_size_t(-1).value


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


def shim() -> ctypes.CDLL:
    """The runtime shim (signals.c, guards.c), built once through the build cache and
    loaded."""
    if _state["shim"] is None:
        library = ctypes.CDLL(str(_build_shim()))
        for name in ("pm_sigint_enter", "pm_sigint_leave", "pm_sigint_pause",
                     "pm_note_r_interrupts", "pm_use_this_thread_stack"):
            getattr(library, name).argtypes = []
            getattr(library, name).restype = ctypes.c_int
        library.pm_sigint_resume.argtypes = [ctypes.c_int]  # what pause returned
        library.pm_sigint_resume.restype = ctypes.c_int
        library.pm_guard_quit.argtypes = []
        library.pm_guard_quit.restype = None
        library.pm_sigint_target.argtypes = [ctypes.c_void_p]
        library.pm_sigint_target.restype = None
        pending = ctypes.c_int.in_dll(libr(), "R_interrupts_pending")
        library.pm_sigint_target(ctypes.addressof(pending))
        _state["shim"] = library
    return _state["shim"]


def hook_address(name: str) -> int:
    """The address of one of the runtime shim's C functions (pm_sigint_enter ...), for
    the marshal shim to call directly."""
    return ctypes.cast(getattr(shim(), name), ctypes.c_void_p).value


def _build_shim() -> Path:
    from ... import build, toolchain
    from ...marshal.r_shim import r_include_flags, r_link_flags
    compiler = toolchain.compiler("c")
    home = os.environ["R_HOME"]
    texts = {name: (_HERE / name).read_text() for name in _SHIM_SOURCES}
    key = build.cache_key("r_runtime", sorted(texts.items()), build.csrc_text(), home,
                          _r_version(), toolchain.compiler_identity(compiler))

    def produce(directory: Path) -> None:
        for name, text in texts.items():  # the very texts the key was made from
            (directory / name).write_text(text)
        command = [compiler, "-O2", "-shared", "-fPIC", "-Wall", f"-I{build.CSRC}",
                   *r_include_flags(home), *_SHIM_SOURCES, "-o", "r_runtime.so",
                   *r_link_flags(home)]
        result = toolchain.run_tool(command, cwd=directory)
        if result.returncode != 0:
            raise CompileError("C (polymagic R runtime shim)", result.stderr, command)

    return build.cached_build(key, "r_runtime.so", produce)


def _r_version() -> str:
    """R's version, for the cache key (the shim is linked against this libR)."""
    return str(_state["rinterface"].baseenv["R.version.string"][0])


class ctrl_c_deferred:
    """Ctrl-C during the block takes effect when it ends: starting R must not stop
    half-way (R would be up, polymagic's side of it not). Python runs signal
    handlers in the main thread only, so only there is there anything to defer."""

    def __enter__(self) -> "ctrl_c_deferred":
        self.received: list = []
        self.active = threading.current_thread() is threading.main_thread()
        if self.active:
            self.previous = signal.signal(signal.SIGINT, self._record)
        return self

    def _record(self, number, frame) -> None:
        self.received.append(frame)

    def keep(self) -> None:
        """Defer again after something (rpy2's start) put another handler in place."""
        if self.active:
            signal.signal(signal.SIGINT, self._record)

    def __exit__(self, failure_type, failure, traceback) -> None:
        if not self.active:
            return
        signal.signal(signal.SIGINT, self.previous)
        if self.received and failure_type is None and callable(self.previous):
            self.previous(signal.SIGINT, self.received[0])  # Python's raises KeyboardInterrupt


def python_section() -> tuple[int, int]:
    """The addresses of the runtime shim's functions that give Python code R calls back
    into Python's SIGINT handler (Ctrl-C there raises KeyboardInterrupt in Python) and
    R's back when the callback returns (`int pm_sigint_pause(void)`, and
    `int pm_sigint_resume(int)` given what pause returned)."""
    return hook_address("pm_sigint_pause"), hook_address("pm_sigint_resume")
