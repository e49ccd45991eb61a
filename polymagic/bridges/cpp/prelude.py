"""Precompiled headers that spare a new cell's build from parsing the same headers again.

Two headers in native/ are precompiled once per compiler and flags, into the build
cache, in a background thread, when the second build of a process could use them (the
builds go on without them, so no cell ever waits for a precompilation; a process that
builds one cell, such as a worker or a test's child, starts none):

- `std_prelude.hpp`, the standard headers cells include most, for g++ (a `.gch`,
  force-included with `-include`) and for libclang (a `.pch`, `-include-pch`), and
  `std_core.hpp`, a part of it half its size, for cells that include nothing more of
  it (a precompiled header costs time to load in proportion to its size);
- `glue_prelude.h`, Python.h and the C headers of cffi's glue (a `.gch`).

A precompiled header is only valid for the flags it was built with, so each is keyed
by the exact flags (std, -O, -D, -I ...) and the compiler's (or libclang's) identity.
g++ does not check that the headers it read are unchanged (a libc or Python update in
place): each entry records them with their size and mtime, and an entry whose headers
moved is discarded and built again. libclang checks its own (an error, and the cell is
read without it).

A force-included prelude must not change what a cell means: `choose` accepts a
cell only when every header it includes is a standard one (or polymagic.hpp) and
no other directive (a #define that could configure a header, an #if around an
include) comes before its last #include; a compiler flag that includes a file first
(`-include`, `-imacros`) rules it out too. Declarations the cell did not include can
still clash with the cell's own names (math.h's `y1`, say): the caller compiles
again without the prelude when a compilation with it fails, so such a cell builds
as before and its diagnostics are the ones it would get without the prelude.
"""
from __future__ import annotations

import atexit
import collections
import functools
import json
import os
import re
import shutil
import signal
import subprocess
import threading
from pathlib import Path

from ... import build
from ...errors import CompileError
from ...toolchain import compiler_identity, lower_priority
from . import sources

STD_PRELUDE = "std_prelude.hpp"
STD_CORE = "std_core.hpp"
GLUE_PRELUDE = "glue_prelude.h"
DEPENDENCIES = "dependencies.json"

# Standard library headers (C++ and C): a cell including only these may get the prelude.
_STANDARD = frozenset("""
    algorithm any array atomic barrier bit bitset charconv chrono codecvt compare complex
    concepts condition_variable coroutine deque exception execution expected filesystem
    format forward_list fstream functional future initializer_list iomanip ios iosfwd
    iostream istream iterator latch limits list locale map memory memory_resource mutex
    new numbers numeric optional ostream queue random ranges ratio regex scoped_allocator
    semaphore set shared_mutex source_location span sstream stack stdexcept stop_token
    streambuf string string_view syncstream system_error thread tuple type_traits
    typeindex typeinfo unordered_map unordered_set utility valarray variant vector version
    cassert cctype cerrno cfenv cfloat cinttypes climits clocale cmath csetjmp csignal
    cstdarg cstddef cstdint cstdio cstdlib cstring ctime cuchar cwchar cwctype
    assert.h ctype.h errno.h fenv.h float.h inttypes.h limits.h locale.h math.h setjmp.h
    signal.h stdarg.h stddef.h stdint.h stdio.h stdlib.h string.h time.h uchar.h wchar.h
    wctype.h polymagic.hpp
""".split())
_DIRECTIVE = re.compile(r"^[ \t]*(?:/\*.*?\*/[ \t]*)*#[ \t]*(\w*)(.*)$", re.MULTILINE)
_ANGLE_INCLUDE = re.compile(r"[ \t]*<([^>]+)>")
# Flags that put a file before the prelude: it would no longer come first.
_FIRST_FILE_FLAGS = ("-include", "-imacros", "--include", "--imacros")


@functools.lru_cache(maxsize=None)
def _headers_of(prelude: str) -> frozenset[str]:
    return frozenset(re.findall(r"^#include <([^>]+)>", sources.text(prelude),
                                re.MULTILINE))


def choose(source: str, compile_args=()) -> str | None:
    """The standard prelude to force-include before `source` (STD_CORE or
    STD_PRELUDE), or None when the cell would not compile with it exactly as without
    it (see the module docstring) or would not gain (it includes none of its
    headers)."""
    if any(arg.startswith(_FIRST_FILE_FLAGS) for arg in compile_args):
        return None
    directives = [(match[1], match[2]) for match in _DIRECTIVE.finditer(source)]
    last_include = max((position for position, (name, _) in enumerate(directives)
                        if name == "include"), default=-1)
    included = set()
    for position, (name, rest) in enumerate(directives):
        if name == "include":
            header = _ANGLE_INCLUDE.match(rest)
            if header is None or header[1] not in _STANDARD:
                return None  # its own headers may configure the standard ones
            included.add(header[1])
        elif position < last_include and (name, rest.strip()) != ("pragma", "once"):
            return None
    wanted = included & _headers_of(STD_PRELUDE)
    if not wanted:
        return None
    return STD_CORE if wanted <= _headers_of(STD_CORE) else STD_PRELUDE


# ------------------------------------------------------------------ g++ (.gch)

def compiler_prelude(cxx: str, flags: list[str], name: str = STD_PRELUDE,
                     language: str = "c++") -> Path | None:
    """The header to force-include (`-include`; its `.gch` is beside it) for a
    compilation with `flags` by `cxx`, or None when it is not built yet (then its
    build starts in the background) or cannot be built with these flags."""
    key = build.cache_key("cpp-prelude", name, sources.text(name), language, flags,
                          compiler_identity(cxx))
    gch = build.cached_entry(key, name + ".gch")
    if gch is not None and not _headers_unchanged(gch.parent):
        discard(gch.parent)
        gch = None
    if gch is None:
        _BUILDS.start(key, name + ".gch", functools.partial(
            _precompile, cxx, flags, name, language))
        return None
    return gch.parent / name


def _precompile(cxx: str, flags: list[str], name: str, language: str,
                staging: Path) -> None:
    header, dependencies = staging / name, staging / "dependencies.d"
    header.write_text(sources.text(name))
    _BUILDS.run(lower_priority([cxx, *flags, "-x", f"{language}-header", str(header),
                                "-o", str(staging / (name + ".gch")), "-MD", "-MF",
                                str(dependencies)]))
    paths = [path for path in _make_dependencies(dependencies.read_text())
             if Path(path) != header]
    dependencies.unlink()
    (staging / DEPENDENCIES).write_text(json.dumps(
        {path: _size_and_mtime(path) for path in paths}))


def _make_dependencies(text: str) -> list[str]:
    """The files of a make rule written by -MD (`target: a.h b.h \\`)."""
    body = text.replace("\\\n", " ").partition(":")[2]
    return [part.replace("\\ ", " ") for part in re.findall(r"(?:\\ |\S)+", body)]


def _size_and_mtime(path: str) -> list[int]:
    info = os.stat(path)
    return [info.st_size, info.st_mtime_ns]


_KNOWN_DEPENDENCIES: dict[str, dict] = {}  # entry -> its headers, read once per process


def _headers_unchanged(entry: Path) -> bool:
    """Every header the entry's precompiled header read is as it was (size, mtime)."""
    recorded = _KNOWN_DEPENDENCIES.get(str(entry))
    if recorded is None:
        try:
            recorded = json.loads((entry / DEPENDENCIES).read_text())
        except (OSError, ValueError):
            return False
        _KNOWN_DEPENDENCIES[str(entry)] = recorded
    try:
        return all(_size_and_mtime(path) == list(known)
                   for path, known in recorded.items())
    except OSError:  # a header was removed
        return False


def discard(entry: Path) -> None:
    """Remove an entry whose precompiled header cannot be used (atomically: moved
    aside first), so that it is built again."""
    _KNOWN_DEPENDENCIES.pop(str(entry), None)
    aside = entry.parent / f".{entry.name}-stale-{os.getpid()}-{os.urandom(4).hex()}"
    try:
        os.rename(entry, aside)
    except OSError:
        return  # already gone (another process discarded or replaced it)
    shutil.rmtree(aside, ignore_errors=True)


# ------------------------------------------------------------- libclang (.pch)

def libclang_prelude(args: list[str], name: str = STD_PRELUDE) -> Path | None:
    """The precompiled prelude `name` for libclang parses with `args`
    (`-include-pch` it), or None when not built yet (its build starts in the
    background)."""
    key = build.cache_key("cpp-clang-prelude", name, sources.text(name), args,
                          _libclang_identity())
    pch = build.cached_entry(key, name + ".pch")
    if pch is None:
        _BUILDS.start(key, name + ".pch",
                      functools.partial(_precompile_for_libclang, args, name))
    return pch


def _libclang_identity() -> list:
    import clang.cindex as cindex
    library = cindex.conf.get_filename()
    try:
        return [library, *_size_and_mtime(library)]
    except OSError:  # found on the loader's search path: its name is all there is
        return [library]


def _precompile_for_libclang(args: list[str], name: str, staging: Path) -> None:
    import clang.cindex as cindex
    os.environ.setdefault("LIBCLANG_NOTHREADS", "1")  # as signatures.parse runs it
    # The package's own copy is parsed: the .pch names the header it was made from,
    # and libclang checks that file when the .pch is used.
    header = str(sources.NATIVE / name)
    # A complete translation unit: saved as "incomplete", libclang 18's C++20 .pch
    # reports "multiple overloads of '__va_list_tag'" in every parse that uses it.
    unit = cindex.Index.create().parse(header, args=_as_header(args))
    errors = [d.spelling for d in unit.diagnostics
              if d.severity >= cindex.Diagnostic.Error]
    if errors:
        raise CompileError("C++", f"libclang cannot precompile {name}: {errors[0]}")
    unit.save(str(staging / (name + ".pch")))


def _as_header(args: list[str]) -> list[str]:
    args = list(args)
    for position in range(len(args) - 1):
        if args[position] == "-x":
            args[position + 1] += "-header"
            return args
    return ["-x", "c++-header", *args]


def is_prelude_failure(message: str) -> bool:
    """Whether a libclang diagnostic says its precompiled header is unusable (stale,
    damaged, made by another version)."""
    return bool(re.search(r"precompiled header|PCH file|AST file", message))


# ------------------------------------------------------------ background builds

class _Builds:
    """The precompilations of this process: one background thread per cache key,
    started when a key is wanted the second time. A key whose build failed is not
    tried again in this process (cells build without it, as before). The threads are
    daemons and their compilers are killed when Python exits: a build cut short is
    never published (publication is atomic), and no exit waits for one."""

    WANTED_BEFORE_BUILD = 2

    def __init__(self):
        self._lock = threading.Lock()
        self._threads: dict[str, threading.Thread] = {}
        self._wanted: collections.Counter = collections.Counter()
        self._failed: set[str] = set()
        self._compilers: set[subprocess.Popen] = set()
        atexit.register(self._kill_compilers)

    def start(self, key: str, artifact: str, produce) -> None:
        with self._lock:
            running = self._threads.get(key)
            if key in self._failed or (running is not None and running.is_alive()):
                return
            self._wanted[key] += 1
            if self._wanted[key] < self.WANTED_BEFORE_BUILD:
                return
            thread = threading.Thread(target=self._run, args=(key, artifact, produce),
                                      name=f"polymagic {key}", daemon=True)
            self._threads[key] = thread
            thread.start()

    def _run(self, key: str, artifact: str, produce) -> None:
        try:
            build.cached_build(key, artifact, produce, language="C++")
        except BaseException:  # the precompiled header is an optimisation only
            with self._lock:
                self._failed.add(key)

    def run(self, command: list[str]) -> None:
        """Run a compiler (in a process group of its own, killed at exit)."""
        job = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
        with self._lock:
            self._compilers.add(job)
        try:
            _, errors = job.communicate()
        finally:
            with self._lock:
                self._compilers.discard(job)
        if job.returncode != 0:
            raise CompileError("C++", f"precompiling a header failed:\n{errors}", command)

    def _kill_compilers(self) -> None:
        with self._lock:
            compilers = list(self._compilers)
        for job in compilers:
            try:
                os.killpg(job.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    def wait(self) -> None:
        """Until every precompilation started so far has ended."""
        with self._lock:
            threads = list(self._threads.values())
        for thread in threads:
            thread.join()


_BUILDS = _Builds()
wait = _BUILDS.wait
