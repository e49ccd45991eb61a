"""The content-addressed build cache shared by %%cpp, %%cython and the internal C shims.

An entry is a directory named by the hash of everything that decides its bytes: the
source, the options, the compiler's identity and version, the Python and NumPy ABI and
polymagic's version. Entries are built in a private temporary directory and published
with one atomic rename, so two processes building the same cell never see half a build.
Compilers are run with argument lists, never through a shell.
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
from pathlib import Path
from typing import Callable

from .config import option
from .progress import progress
from .errors import CacheDirError, PolymagicError

VERSION = "0.1.0"

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
    configured = option("cache_dir")
    if configured:
        root = Path(configured).expanduser()
    else:
        base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
        root = Path(base) / "polymagic"
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    _check_private(root)
    return root


def _check_private(path: Path) -> None:
    """Refuse a cache that another user could write shared libraries into."""
    info = path.stat()
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
            sysconfig.get_platform(), _numpy_version(), VERSION)


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
                 label: str | None = None) -> Path:
    """The path of `artifact` in entry `key`, calling `produce(tmpdir)` when absent.

    `produce` writes the entry's files into the directory it is given and raises on
    failure; nothing is published then. A build that takes more than a second shows
    `label` (what is built) and the time so far (polymagic.progress).
    """
    entry = cache_dir() / key
    target = entry / artifact
    if target.exists():
        return target
    _remove_abandoned_staging(entry.parent, key)
    staging = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=entry.parent))
    try:
        with progress(label or f"polymagic's {key.rpartition('_')[0]} module"):
            produce(staging)
        if not (staging / artifact).exists():
            raise PolymagicError(f"build of {key} produced no {artifact}")
        _publish(staging, entry)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


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


def _publish(staging: Path, entry: Path) -> None:
    """Rename `staging` to `entry`; if another process won the race, keep its entry."""
    try:
        os.rename(staging, entry)
    except OSError:
        if not entry.is_dir():
            raise
