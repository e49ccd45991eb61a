"""A precompiled Python.h per toolchain: parsing Python.h is ~50 ms of every cell's
compile. Built once into the cache in the background (while Cython runs on the first
cell), then found by the compiler ahead of the real header. The modules built are the
same bytes with or without it; GCC checks that the header was precompiled with
compatible options and otherwise reads the real Python.h, through the wrapper beside
the precompiled file."""
from __future__ import annotations

import sysconfig
import threading
from pathlib import Path

from ...build import cache_dir, cache_key, cached_build, cached_entry
from ...toolchain import compiler_identity, lower_priority, run_tool
from .toolchain import LANGUAGE, Toolchain

HEADER = "Python.h"
PRECOMPILED = HEADER + ".gch"
_BUILDS: dict[tuple[str, str], "PrecompiledHeader"] = {}
_BUILDS_LOCK = threading.Lock()


def precompiled_header(toolchain: Toolchain) -> "PrecompiledHeader | None":
    """The one PrecompiledHeader of this process for a toolchain, or None where it is
    not used: compilers other than GCC, and cells with include directories of their
    own (a `Python.h` there must not be shadowed)."""
    if "gcc" not in compiler_identity(toolchain.compiler).lower() and \
            "g++" not in compiler_identity(toolchain.compiler).lower():
        return None
    if sum(flag.startswith("-I") for flag in toolchain.flags) != 1:
        return None
    key = cache_key("cypch", toolchain.key_parts())
    with _BUILDS_LOCK:
        return _BUILDS.setdefault((str(cache_dir()), key), PrecompiledHeader(toolchain, key))


class PrecompiledHeader:
    """Built in a background thread (not a daemon: a process ending meanwhile waits
    for the compiler and publishes); used only once built, never waited for."""

    def __init__(self, toolchain: Toolchain, key: str):
        self.toolchain = toolchain
        self.key = key
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Build it in the background unless built (checked in `include_flags`) or
        building."""
        with self._lock:
            if self._thread is not None or (cache_dir() / self.key / PRECOMPILED).exists():
                return
            self._thread = threading.Thread(target=self._run, name="polymagic Python.h pch")
            self._thread.start()

    def include_flags(self) -> list[str]:
        """`-I` of the precompiled header's directory, ahead of the real one, when it
        is built and intact; else nothing (the cell compiles as it would without)."""
        thread = self._thread
        if thread is not None and thread.is_alive():
            return []
        path = cached_entry(self.key, PRECOMPILED)
        return [f"-I{path.parent}"] if path is not None else []

    def _run(self) -> None:
        try:
            cached_build(self.key, PRECOMPILED, self._produce,
                         language=f"{LANGUAGE} (C compiler)")
        except Exception:  # noqa: BLE001 - an optimisation: the cells compile without it
            pass

    def _produce(self, staging: Path) -> None:
        include = sysconfig.get_paths()["include"]
        (staging / HEADER).write_text(f'#include "{include}/{HEADER}"\n')
        tool = self.toolchain
        language = "c++-header" if tool.cplus else "c-header"
        # Cython's C defines PY_SSIZE_T_CLEAN (empty) before including Python.h: the
        # header must be precompiled with the same definition for GCC to use it.
        command = [tool.compiler, "-x", language,
                   *(flag for flag in tool.flags if flag != "-shared"),
                   "-DPY_SSIZE_T_CLEAN=", HEADER, "-o", PRECOMPILED]
        finished = run_tool(lower_priority(command), cwd=staging)  # in the background
        if finished.returncode != 0:
            raise RuntimeError(finished.stderr)
