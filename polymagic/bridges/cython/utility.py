"""Cython's shared utility module (the memoryview machinery and the rest of Cython's
runtime support, `cython --shared`): built once per toolchain into the cache, in a
background thread, and imported by every cell compiled against it."""
from __future__ import annotations

import sys
import sysconfig
import threading
from pathlib import Path

from ...build import cache_dir, cache_key, cached_build
from ...errors import CompileError
from ...toolchain import lower_priority, run_tool
from .loading import load_module
from .toolchain import CYTHON_LOCK, EXT_SUFFIX, LANGUAGE, Toolchain

_UTILITY_BUILDS: dict[tuple[str, str], "UtilityBuild"] = {}
_UTILITY_BUILDS_LOCK = threading.Lock()


def utility_build(toolchain: Toolchain) -> "UtilityBuild":
    """The one UtilityBuild of this process for a toolchain and cache directory."""
    name = toolchain.utility_name
    with _UTILITY_BUILDS_LOCK:
        key = (str(cache_dir()), name)
        if key not in _UTILITY_BUILDS:
            _UTILITY_BUILDS[key] = UtilityBuild(toolchain)
        return _UTILITY_BUILDS[key]


def load_utility_module(toolchain: Toolchain, name: str) -> None:
    """Make the shared utility module importable by name before a cell imports it."""
    if name in sys.modules:
        return
    path = utility_build(toolchain).wait()  # built again if the cache was pruned
    sys.modules[name] = load_module(name, path)


class UtilityBuild:
    """Builds Cython's shared utility module into the cache in a background thread.

    One per toolchain and process (`utility_build`), so a cell that needs the module
    waits for the build already running instead of starting another. The thread is not
    a daemon: at exit Python waits for the compiler (a few seconds at most) and the
    entry is published, so no compiler is left orphaned and no half-built entry is
    visible (`cached_build` publishes atomically; another process building the same
    module at the same time is harmless: the first rename wins). A failure is kept and
    raised, as CompileError, by the next cell that needs the module; that cell consumes
    it, so the one after retries the build.
    """

    def __init__(self, toolchain: Toolchain):
        self.toolchain = toolchain
        self.name = toolchain.utility_name
        self.key = cache_key("cyutility", self.name, toolchain.key_parts()[:2])
        self.artifact = self.name + EXT_SUFFIX
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None
        self._after: list = []  # work to do once the build has ended (then())

    @property
    def path(self) -> Path:
        return cache_dir() / self.key / self.artifact

    def ready(self) -> bool:
        """Loaded in this process or built in the cache."""
        return self.name in sys.modules or self.path.exists()

    def state(self) -> str:
        with self._lock:
            if self._failure is not None:
                return "shared utility module failed to build"
            if self._thread is not None and self._thread.is_alive():
                return "shared utility module building in the background"
        return "shared utility module ready" if self.ready() else \
            "shared utility module missing"

    def start(self) -> None:
        """Start building in the background unless built, building, or failed."""
        with self._lock:
            running = self._thread is not None and self._thread.is_alive()
            if running or self._failure is not None or self.ready():
                return
            self._thread = threading.Thread(target=self._run, name=f"polymagic {self.name}")
            self._thread.start()

    def then(self, work) -> None:
        """Call `work()` once this build has ended (at once if none is running), in
        its thread: background work that would slow the build down goes after it."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                self._after.append(work)
                return
        work()

    def wait(self) -> Path:
        """The built module's path, after the build (raises the build's failure); an entry
        found damaged is built again here."""
        self.start()
        thread = self._thread
        if thread is not None:
            thread.join()
        self.raise_failure()
        return self._cached_build()

    def raise_failure(self) -> None:
        """Raise (once) the failure of a finished background build, as CompileError.

        Moot, and dropped, when the module exists after all (another process built it).
        """
        with self._lock:
            failure, self._failure = self._failure, None
        if failure is None or self.ready():
            return
        if isinstance(failure, CompileError):
            raise failure
        raise CompileError(LANGUAGE, "building Cython's shared utility module failed: "
                           f"{type(failure).__name__}: {failure}") from failure

    def _run(self) -> None:
        try:
            self._cached_build()
        except BaseException as failure:  # kept, and raised by the next cell needing it
            with self._lock:
                self._failure = failure
        finally:
            with self._lock:
                after, self._after = self._after, []
            for work in after:
                try:
                    work()
                except Exception:  # noqa: BLE001 - optional work: the builds need none
                    pass

    def _cached_build(self) -> Path:
        return cached_build(self.key, self.artifact, self._produce,
                            language=f"{LANGUAGE} (C compiler)")

    def _produce(self, staging: Path) -> None:
        suffix = ".cpp" if self.toolchain.cplus else ".c"
        c_file = staging / (self.name + suffix)
        with CYTHON_LOCK:
            from Cython.Build.SharedModule import generate_shared_module
            from Cython.Compiler.Main import CompilationOptions, default_options
            options = CompilationOptions(
                default_options, cplus=self.toolchain.cplus,
                shared_c_file_path=str(c_file), errors_to_stderr=False)
            error, _ = generate_shared_module(options)
        if error is not None:
            raise CompileError(LANGUAGE, f"generating Cython's utility module: {error}")
        tool = self.toolchain
        command = [tool.compiler, "-shared", "-fPIC", "-O2", "-fwrapv", "-DNDEBUG",
                   f"-I{sysconfig.get_paths()['include']}", c_file.name, "-o",
                   self.artifact]
        finished = run_tool(lower_priority(command), cwd=staging)  # in the background
        if finished.returncode != 0:
            raise CompileError(f"{LANGUAGE} (C compiler)",
                               "building Cython's shared utility module failed:\n"
                               + (finished.stderr or finished.stdout), command=command)
        c_file.unlink()

