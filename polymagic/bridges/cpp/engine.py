"""C++ cells: compile with the system compiler, load in-process through cffi.

`cpp(source, **options)` returns a module-like object whose attributes are the
functions the cell defines at top level. Builds are cached by content (source,
options, compiler identity, Python/NumPy ABI): an unchanged cell loads in
milliseconds, also in a new process, without running libclang or the compiler.
"""
from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path

from ... import build
from ...errors import CompileError, DamagedCacheEntry
from ...progress import cell_label
from ...toolchain import compiler, compiler_identity, load_extension
from ...tracebacks import entry_point
from .options import DEFAULT_STD, CppOptions

__all__ = ["cpp", "CppOptions"]

# Files of a cache entry (written by polymagic.bridges.cpp.compiler, which a cache hit never
# imports: no libclang, no cffi code generator, no compiler run).
MODULE_FILE = "module.so"
PLAN_FILE = "plan.json"


@entry_point
def cpp(source: str, *, compile_args=(), link_args=(), libraries=(), library_dirs=(),
        include_dirs=(), std: str = DEFAULT_STD, optimize="2", name: str | None = None,
        force: bool = False, verbose: bool = False):
    """Compile C++ `source` and return a module of its top-level functions.

    compile_args/link_args: extra compiler/linker flags (a string or a list);
    libraries (-l), library_dirs (-L), include_dirs (-I); std (the language
    standard, "c++20" by default); optimize ("2" for -O2); name: the module's name;
    force: rebuild even if cached; verbose: print the compiler commands and their output.
    """
    options = CppOptions.make(compile_args, link_args, libraries, library_dirs,
                              include_dirs, std, optimize, name, force, verbose)
    return load(source, options)


def load(source: str, options: CppOptions):
    """Build (or find in the cache) and load `source` with `options`."""
    from . import faults

    _check_encodable(source)
    cxx = compiler("c++")
    key = build.cache_key("cpp", source, options.key_parts(),
                          compiler_identity(cxx),
                          build.sources_digest(Path(__file__).parent))
    if options.force:
        key += f"_forced{os.getpid()}_{os.urandom(4).hex()}"
    module_name = f"_pm_{key}"
    fault_library = faults.library(cxx)  # every cell links it: built before, kept after

    def produce(staging: Path) -> None:
        from .compiler import build_module
        build_module(source, options, module_name, cxx, staging, MODULE_FILE, PLAN_FILE,
                     fault_library)

    label = cell_label("C++", source)
    library = build.cached_build(key, MODULE_FILE, produce, label=label)
    plan = _read_plan(library.parent / PLAN_FILE)
    if plan is None:  # damaged: built again (rare, so no cleverness)
        library = build.cached_build(key, MODULE_FILE, produce, label=label)
        plan = _read_plan(library.parent / PLAN_FILE, last_try=True)
    return _load_built(key, source, options, library, plan, fault_library)


def _load_built(key: str, source: str, options: CppOptions, library: Path, plan: dict,
                fault_library: Path):
    """Load a built cell: its module, which pickles (polymagic.travel)."""
    from . import faults, module as cpp_module, travel
    from ...tracebacks import register_source

    filename = f"<C++ cell {key[4:12]}>"
    register_source(filename, source)
    cpp_module.warn_skipped(plan)
    extension = load_extension(f"_pm_{key}", library)
    faults.activate(extension.lib)
    module = cpp_module.make_module(options.name or filename, extension, plan, source,
                                    filename)
    return travel.make_travelling(module, key, source, options, library, fault_library,
                                  restore)


def restore(payload):
    """A cell module unpickled here (polymagic.travel): its travelled entries published
    into this cache and loaded, with no compiler; on another platform, built again."""
    options = CppOptions(**payload.recipe["options"])
    if not payload.loadable_here():
        return load(payload.recipe["source"], options)
    payload.publish_files()
    (fault_key, _, (fault_name,)), (key, _, (module_file, plan_file)) = payload.entries
    library = build.cache_dir() / key / module_file
    plan = _read_plan(library.parent / plan_file, last_try=True)
    return _load_built(key, payload.recipe["source"], options, library, plan,
                       build.cache_dir() / fault_key / fault_name)


def _check_encodable(source: str) -> None:
    """The compiler reads UTF-8: a lone surrogate (from a bad decode, or a "\\ud800"
    escape) cannot be written for it."""
    try:
        source.encode("utf-8")
    except UnicodeEncodeError as error:
        line = source.count("\n", 0, error.start) + 1
        column = error.start - (source.rfind("\n", 0, error.start) + 1) + 1
        raise CompileError("C++", f"cell:{line}:{column}: error: %%cpp / pm.cpp(): the "
                           f"cell contains {source[error.start:error.end]!r}, which "
                           f"cannot be encoded as UTF-8 for the compiler ({error.reason}); "
                           f"remove it or write it as a C++ escape", (), [line]) from None


_PLAN_KEYS = ("functions", "skipped", "imports", "c_api")


def _read_plan(path: Path, last_try: bool = False) -> dict | None:
    """The stored export plan; None (the entry is dropped, with a warning) if it is
    missing or damaged, so that the caller builds the cell again."""
    try:
        plan = json.loads(path.read_text())
        if isinstance(plan, dict) and all(key in plan for key in _PLAN_KEYS):
            return plan
        problem = "it lacks parts of an export plan"
    except (OSError, ValueError) as error:  # missing, unreadable, not JSON
        problem = f"{type(error).__name__}: {error}"
    if last_try:
        raise CompileError("C++", f"the export plan just built at {path} cannot be read "
                           f"({problem}); is something else writing to the cache?")
    _drop_entry(path.parent, f"its {path.name} is unusable ({problem})")
    return None


def _drop_entry(entry: Path, problem: str) -> None:
    """Move a damaged entry aside (atomically: no process loads half of it) and delete it."""
    warnings.warn(f"polymagic's build cache entry {entry} was damaged ({problem}); it was "
                  "removed and is built again", DamagedCacheEntry, stacklevel=4)
    aside = entry.parent / f".{entry.name}-damaged-{os.getpid()}-{os.urandom(4).hex()}"
    try:
        os.rename(entry, aside)
    except FileNotFoundError:
        return  # another process dropped it first
    shutil.rmtree(aside, ignore_errors=True)
