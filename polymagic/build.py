"""The content-addressed build cache shared by %%cpp, %%cython and the internal C shims.

An entry is a directory named by the hash of everything that decides its bytes: the
source, the options, the compiler's identity and version, the Python and NumPy ABI and
polymagic's version. Entries are built in a private temporary directory and published
with one atomic rename, so two processes building the same cell never see half a build.
Compilers are run with argument lists, never through a shell.

Entries heal themselves: each is published with an integrity record (the size and
SHA-256 of every file in it), and checked before it is used. Every cache hit compares
the sizes (one `stat` per file: a truncated file is caught, and a truncated shared
library would otherwise crash every process that loads it with SIGBUS); the first hit
of an entry in each process, and any hit after a file's mtime or inode moved, also
compares the hashes. A damaged entry is dropped with a `DamagedCacheEntry` warning and
built again. An artefact named `.so` or `.o` is published only if it is an ELF shared
library or object file, so a flag such as `-E` cannot cache text as a module.
"""
from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
import re
import shutil
import stat
import sys
import sysconfig
import tempfile
import time
import warnings
from pathlib import Path
from typing import Callable

from .config import option
from .progress import progress
from .errors import CacheDirError, CompileError, DamagedCacheEntry

VERSION = "0.1.0"
# Entries of format 2 carry an integrity record; it is part of every key, so entries of
# older formats (no record) are never looked at, rather than all judged damaged.
ENTRY_FORMAT = 2
RECORD = "integrity.json"

# Headers shared by polymagic's own C/C++ sources (e.g. the stack guard); builds that
# include them pass `-I{CSRC}` and put `csrc_text()` in their cache key.
CSRC = Path(__file__).with_name("csrc")


@functools.lru_cache(maxsize=None)
def csrc_text() -> str:
    """The text of every shared header, for cache keys."""
    return "".join(path.read_text() for path in sorted(CSRC.glob("*.h")))


def sources_digest(folder: Path, patterns=("*.py", "*.c", "*.h", "*.cpp", "*.hpp")) -> str:
    """A hash of the code that generates and builds a kind of module, for its cache keys:
    any edit to the generator (or a move of the modules it imports) makes new keys, so
    no library built by older code is loaded. Cached per folder for the process."""
    digest = _SOURCE_DIGESTS.get(folder)
    if digest is None:
        hasher = hashlib.sha256()
        for pattern in patterns:
            for path in sorted(folder.rglob(pattern)):
                hasher.update(str(path.relative_to(folder)).encode())
                hasher.update(path.read_bytes())
        digest = _SOURCE_DIGESTS[folder] = hasher.hexdigest()[:16]
    return digest


_SOURCE_DIGESTS: dict[Path, str] = {}


def cache_dir() -> Path:
    """The private cache directory (mode 0700), created on first use."""
    root = _cache_root(option("cache_dir"), os.environ.get("XDG_CACHE_HOME"),
                       os.environ.get("HOME"))
    try:
        info = os.stat(root)  # on every cache hit: one stat, no mkdir
    except FileNotFoundError:
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = os.stat(root)
    _check_private(root, info)
    return root


@functools.lru_cache(maxsize=8)
def _cache_root(configured: str | None, xdg_cache_home: str | None,
                home: str | None) -> Path:
    """Where the cache is, from the variables that decide it (the arguments key the
    lru_cache, so a changed variable is seen)."""
    if configured:
        return Path(configured).expanduser()
    base = xdg_cache_home or Path.home() / ".cache"
    return Path(base) / "polymagic"


def _check_private(path: Path, info: os.stat_result) -> None:
    """Refuse a cache that another user could write shared libraries into."""
    if info.st_uid != os.getuid():
        raise CacheDirError(f"cache directory {path} belongs to uid {info.st_uid}, not to "
                            f"you (uid {os.getuid()}); set POLYMAGIC_CACHE_DIR elsewhere")
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise CacheDirError(f"cache directory {path} is writable by other users "
                            f"(mode {oct(info.st_mode & 0o777)}); run chmod 700 on it")


@functools.lru_cache(maxsize=None)
def _platform_identity() -> tuple:
    """What makes a compiled extension loadable here: Python ABI, NumPy ABI, polymagic."""
    return (sys.implementation.cache_tag, sysconfig.get_config_var("EXT_SUFFIX"),
            sysconfig.get_platform(), _numpy_version(), VERSION, ENTRY_FORMAT)


def _numpy_version() -> str:
    """NumPy's version without importing it (the import costs ~45 ms in a new process)."""
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        return numpy.__version__
    spec = importlib.util.find_spec("numpy")
    if spec is None or not spec.submodule_search_locations:
        return "none"
    version_file = Path(spec.submodule_search_locations[0]) / "version.py"
    found = re.search(r'^(?:__version__|version)\s*[:=][^"\']*["\']([^"\']+)',
                      version_file.read_text(), re.M)
    return found.group(1) if found else "unknown"


def cache_key(kind: str, *parts) -> str:
    """A stable hash of a build's inputs (`parts` must be JSON-serialisable)."""
    payload = json.dumps([kind, _platform_identity(), parts], sort_keys=True, default=str)
    return f"{kind}_{hashlib.sha256(payload.encode()).hexdigest()[:32]}"


def cached_build(key: str, artifact: str, produce: Callable[[Path], None],
                 language: str = "native build", label: str | None = None) -> Path:
    """The path of `artifact` in entry `key`, calling `produce(tmpdir)` when absent.

    `produce` writes the entry's files into the directory it is given and raises on
    failure; nothing is published then. An artefact that is not what its name says (a
    `.so` that is no shared library) raises CompileError from `language`. A damaged
    entry is dropped with a warning and built again. A build that takes more than a
    second shows `label` (what is built) and the time so far (polymagic.progress).
    """
    target = cached_entry(key, artifact)
    if target is not None:
        return target
    entry = cache_dir() / key
    _remove_abandoned_staging(entry.parent, key)
    staging = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=entry.parent))
    try:
        with progress(label or f"polymagic's {key.rpartition('_')[0]} module"):
            produce(staging)
        produced = staging / artifact
        if not produced.is_file():
            raise CompileError(language, f"the build wrote no {artifact} (did a flag "
                               "such as -o send the output elsewhere?); nothing was cached")
        check_artifact(produced, language)
        verified = _write_record(staging)
        if _publish(staging, entry):
            _VERIFIED[f"{entry}/"] = verified  # hashed just now (a rename keeps inodes)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return entry / artifact


def cached_entry(key: str, artifact: str) -> Path | None:
    """The path of `artifact` in entry `key` if the entry exists and is intact; None if
    there is no entry, or if it was damaged (then it is dropped, with a warning)."""
    entry = cache_dir() / key
    problem, record_stat = _damage(f"{entry}/", artifact)
    if problem is None:
        return entry / artifact
    if record_stat is None and not entry.is_dir():
        return None  # not built yet
    _drop(entry, record_stat, problem)
    return None


# entry -> (stat of its record, its files, stat of its files) when last hashed here
_VERIFIED: dict[str, tuple[tuple, dict, tuple]] = {}


def _damage(entry: str, artifact: str) -> tuple[str | None, tuple | None]:
    """What is wrong with the entry whose path (ending in "/") is `entry`, or None when
    it is intact; and the stat of its record. Paths are strings here: this runs on
    every cache hit, and pathlib costs more than the stat calls."""
    try:
        record_stat = _stat_signature(entry + RECORD)
    except FileNotFoundError:
        return f"its {RECORD} is missing", None
    known = _VERIFIED.get(entry)
    if known is not None and known[0] == record_stat:
        files = known[1]
    else:
        known = None
        try:
            files = _read_record(entry + RECORD)
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as unreadable:
            return f"its {RECORD} is unreadable ({type(unreadable).__name__})", record_stat
    if artifact not in files:
        return f"{artifact} is not in its {RECORD}", record_stat
    signature = []
    for name, (size, _) in files.items():
        try:
            stat = _stat_signature(entry + name)
        except FileNotFoundError:
            return f"{name} is missing", record_stat
        if stat[0] != size:
            return f"{name} has {stat[0]} bytes, {size} were published", record_stat
        signature.append(stat)
    signature = tuple(signature)
    if known is not None and known[2] == signature:
        return None, record_stat  # hashed earlier in this process; no file moved since
    for name, (_, digest) in files.items():
        if _sha256(entry + name) != digest:
            return f"{name} differs from the file published (SHA-256)", record_stat
    _VERIFIED[entry] = (record_stat, files, signature)
    return None, record_stat


def _stat_signature(path: str) -> tuple[int, int, int]:
    """Size, mtime and inode: a file rewritten or replaced changes at least one."""
    info = os.stat(path)
    return info.st_size, info.st_mtime_ns, info.st_ino


def _read_record(path: str) -> dict[str, tuple[int, str]]:
    with open(path, encoding="utf-8") as stream:
        record = json.load(stream)
    return {name: (int(size), str(digest)) for name, (size, digest) in record["files"].items()}


def _sha256(path) -> str:
    with open(path, "rb") as stream:
        return hashlib.sha256(stream.read()).hexdigest()


def _write_record(staging: Path) -> tuple:
    """Write the entry's integrity record (size and SHA-256 of each file produced);
    return what `_damage` remembers of an entry it has hashed."""
    files, signature = {}, []
    for path in sorted(staging.iterdir()):
        if path.is_file():
            stat = _stat_signature(str(path))
            files[path.name] = (stat[0], _sha256(path))
            signature.append(stat)
    (staging / RECORD).write_text(json.dumps({"files": files}))
    return _stat_signature(str(staging / RECORD)), files, tuple(signature)


def _drop(entry: Path, record_stat: tuple | None, problem: str) -> None:
    """Move a damaged entry aside (atomically, so no process loads half of it) and
    delete it; the caller builds it again."""
    _VERIFIED.pop(f"{entry}/", None)
    warnings.warn(f"polymagic's build cache entry {entry} was damaged ({problem}); it "
                  "was removed and is built again", DamagedCacheEntry, stacklevel=3)
    aside = entry.parent / f".{entry.name}-damaged-{os.getpid()}-{os.urandom(4).hex()}"
    try:
        if record_stat is not None and \
                _stat_signature(str(entry / RECORD)) != record_stat:
            return  # another process already replaced it with a fresh build
    except FileNotFoundError:
        if record_stat is not None:
            return  # another process dropped it first
    try:
        os.rename(entry, aside)
    except FileNotFoundError:
        return  # another process dropped it first
    shutil.rmtree(aside, ignore_errors=True)


# What an artefact must be, by its suffix: ELF file types (e_type) on ELF platforms.
_ELF_TYPES = {".so": (3, "a shared library"), ".o": (1, "an object file")}
_ELF_NAMES = {1: "an object file", 2: "an executable", 3: "a shared library",
              4: "a core dump"}


def check_artifact(path: Path, language: str) -> None:
    """Raise CompileError unless `path` is what its suffix promises (`.so`: an ELF
    shared library, `.o`: an ELF object), e.g. after `-E`, `-S` or `-c` in the flags."""
    expected = _ELF_TYPES.get(path.suffix)
    if expected is None or sys.platform == "darwin" or os.name != "posix":
        return
    with open(path, "rb") as stream:
        head = stream.read(18)
    if len(head) == 18 and head[:4] == b"\x7fELF":
        kind = int.from_bytes(head[16:18], "little" if head[5] == 1 else "big")
        if kind == expected[0]:
            return
        found = _ELF_NAMES.get(kind, f"an ELF file of type {kind}")
    else:
        text = all(32 <= byte < 127 or byte in b"\t\n\r" for byte in head)
        found = "text (no ELF file)" if text else "no ELF file"
    raise CompileError(language, f"the compiler wrote {path.name} as {found} instead of "
                       f"{expected[1]}: a flag such as -E, -S or -c changed what it "
                       "produces. Nothing was cached.")


_ABANDONED_AFTER_S = 3600  # a build this old was killed (no build takes an hour)


def _remove_abandoned_staging(root: Path, key: str) -> None:
    """Staging folders of `key` left by a process killed mid-build (SIGKILL)."""
    now = time.time()
    for staging in root.glob(f".{key}-*"):
        try:
            abandoned = now - staging.stat().st_mtime > _ABANDONED_AFTER_S
        except FileNotFoundError:  # its build just finished or was cleaned by another
            continue
        if abandoned:
            shutil.rmtree(staging, ignore_errors=True)


def _publish(staging: Path, entry: Path) -> bool:
    """Rename `staging` to `entry` (True); if another process won the race, keep its
    entry (False)."""
    try:
        os.rename(staging, entry)
    except OSError:
        if not entry.is_dir():
            raise
        return False
    return True
