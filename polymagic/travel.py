"""Cell modules that travel to other processes and machines (pickle, Dask, joblib).

A compiled cell's functions pickle by reference to their module, and the module pickles
to a `Payload`: its cache key, the platform it was built for, the files of its cache
entries (the built artefact, read when pickled, never before) and the recipe to build
it again (source and options). Functions of one module therefore share one payload in
a pickle's memo. Unpickled in another process, the payload publishes the artefact into
that process's cache (the cache's own atomic publication, with its integrity record),
then the language's room loads it; on another platform the room rebuilds from the
recipe. A process loads each payload once (`restore`).

The artefact bytes are protocol-5 `PickleBuffer`s: an engine that passes a
`buffer_callback` (Dask does) sends them out of band, without copying them into the
pickle stream.

This module knows no language: each room (polymagic/bridges/*/travel.py) says which
files travel and how a module is loaded again, through the `loader` it names.
"""
from __future__ import annotations

import functools
import pickle
import platform
import threading
import types
from pathlib import Path
from typing import Callable

from . import build

__all__ = ["Payload", "TravellingModule", "CellFunction", "attach", "restore",
           "publish", "platform_tag"]


def platform_tag() -> list:
    """What a built artefact needs to load here: Python and NumPy ABI, machine, polymagic."""
    return [*build._platform_identity(), platform.machine()]


class Payload:
    """What a cell module needs to exist in another process.

    language: "cpp" or "cython"; key: its cache key; entries: [(cache key, directory,
    file names)] in load order (libraries it depends on first), read when pickled;
    recipe: source and options, to build again elsewhere; loader: the room's function
    `loader(payload) -> module`, pickled by reference.
    """

    def __init__(self, language: str, key: str, entries: list, recipe: dict,
                 loader: Callable, platform: list | None = None,
                 files: list | None = None):
        self.language, self.key, self.entries = language, key, entries
        self.recipe, self.loader = recipe, loader
        self.platform = platform if platform is not None else platform_tag()
        self.files = files  # [(cache key, {name: bytes-like})] once unpickled

    def __reduce_ex__(self, protocol):
        files = self.files if self.files is not None else self._read_entries()
        if protocol >= 5:  # out of band when the pickler takes buffers
            files = [(key, {name: pickle.PickleBuffer(data) for name, data in found.items()})
                     for key, found in files]
        return (_unpickled_payload, (self.language, self.key, self.entries, self.recipe,
                                     self.loader, self.platform, files))

    def _read_entries(self) -> list:
        """The entries' files as bytes; [] when one is gone from the cache (cleaned):
        the receiver then builds from the recipe."""
        try:
            return [(key, {name: (Path(directory) / name).read_bytes() for name in names})
                    for key, directory, names in self.entries]
        except OSError:
            return []

    def loadable_here(self) -> bool:
        """The artefact was built for this platform, and travelled with the payload."""
        return bool(self.files) and list(self.platform) == platform_tag()

    def publish_files(self) -> None:
        """Put the travelled entries into this process's cache (a present, intact
        entry is kept: same key, same bytes)."""
        for key, found in self.files:
            publish(key, {name: bytes(data) for name, data in found.items()})

    def __repr__(self) -> str:
        return f"<polymagic {self.language} module payload {self.key}>"


def _unpickled_payload(language, key, entries, recipe, loader, tag, files):
    return Payload(language, key, entries, recipe, loader, tag, files)


def publish(key: str, files: dict[str, bytes]) -> Path:
    """Publish `files` as cache entry `key` (atomically, with its integrity record), as
    if built here; the first file is the artefact checked (an ELF shared library)."""
    def produce(staging: Path) -> None:
        for name, data in files.items():
            (staging / name).write_bytes(data)
    artifact = next(iter(files))
    return build.cached_build(key, artifact, produce, label=f"a travelled module {key}")


class TravellingModule(types.ModuleType):
    """A cell module that pickles to its payload (a module's class can be swapped for
    a subclass of ModuleType, so the room's own module object keeps its identity)."""

    def __reduce__(self):
        payload = self.__dict__["__pm_payload__"]
        return (restore, (payload,))


class CellFunction(functools.partial):
    """A cell function that pickles as (getattr, (its module, its name)).

    A partial is called through C (vectorcall): no Python frame per call. Its
    `__name__`, `__qualname__`, `__doc__` and `__wrapped__` are the function's."""

    __slots__ = ()

    def __reduce__(self):
        return (getattr, (self.__pm_module__, self.__name__))

    def __repr__(self) -> str:
        return f"<{self.__pm_module__.__pm_payload__.language} cell function {self.__name__}>"


def wrap_function(module, name: str, function) -> CellFunction:
    """`function` as a CellFunction of `module`, named `name`."""
    wrapped = CellFunction(function)
    wrapped.__name__ = wrapped.__qualname__ = name
    wrapped.__doc__ = getattr(function, "__doc__", None)
    wrapped.__wrapped__ = function
    wrapped.__pm_module__ = module
    # Dask names a task by a hash of its function, a partial by its `func`: the
    # generated function has no stable pickle, so it is named by its cell and name.
    token = ("polymagic cell function", module.__pm_payload__.key, name)
    function.__dask_tokenize__ = lambda: token
    return wrapped


_RESTORED: dict[str, types.ModuleType] = {}  # key -> the module loaded for it here
_RESTORE_LOCK = threading.RLock()  # Dask runs tasks in threads: one load per key


def attach(module: types.ModuleType, payload: Payload) -> types.ModuleType:
    """Make `module` travel as `payload`; a later unpickling of the same payload in
    this process returns this very module."""
    module.__class__ = TravellingModule
    module.__pm_payload__ = payload
    _RESTORED[payload.key] = module
    return module


def restore(payload: Payload) -> types.ModuleType:
    """The module of `payload` in this process: loaded once (its loader publishes the
    artefact or rebuilds), then the same module for every function that names it."""
    module = _RESTORED.get(payload.key)
    if module is not None:
        return module
    with _RESTORE_LOCK:
        module = _RESTORED.get(payload.key)
        if module is None:
            module = payload.loader(payload)
            if payload.key not in _RESTORED:  # a rebuild elsewhere has another key
                _RESTORED[payload.key] = module
    return module
