"""C++ cells: compile with the system compiler, load in-process through cffi.

`cpp(source, **options)` returns a module-like object whose attributes are the
functions the cell defines at top level. Builds are cached by content (source,
options, compiler identity, Python/NumPy ABI): an unchanged cell loads in
milliseconds, also in a new process, without running libclang or the compiler.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from ... import build
from ...progress import cell_label
from ...toolchain import compiler, compiler_identity, load_extension
from ...tracebacks import entry_point
from .options import CppOptions

__all__ = ["cpp", "CppOptions"]

# Files of a cache entry (written by polymagic.bridges.cpp.compiler, which a cache hit never
# imports: no libclang, no cffi code generator, no compiler run).
MODULE_FILE = "module.so"
PLAN_FILE = "plan.json"


@entry_point
def cpp(source: str, *, compile_args=(), link_args=(), libraries=(), library_dirs=(),
        include_dirs=(), std: str = "c++17", optimize="2", name: str | None = None,
        force: bool = False, verbose: bool = False):
    """Compile C++ `source` and return a module of its top-level functions.

    compile_args/link_args: extra compiler/linker flags (a string or a list);
    libraries (-l), library_dirs (-L), include_dirs (-I); std ("c++20" for
    std::span); optimize ("2" for -O2); name: the module's name; force: rebuild even
    if cached; verbose: print the compiler commands and their output.
    """
    options = CppOptions.make(compile_args, link_args, libraries, library_dirs,
                              include_dirs, std, optimize, name, force, verbose)
    return load(source, options)


def load(source: str, options: CppOptions):
    """Build (or find in the cache) and load `source` with `options`."""
    from . import module as cpp_module
    from ...tracebacks import register_source

    cxx = compiler("c++")
    key = build.cache_key("cpp", source, options.key_parts(),
                          compiler_identity(cxx),
                          build.sources_digest(Path(__file__).parent))
    if options.force:
        key += f"_forced{os.getpid()}_{os.urandom(4).hex()}"
    module_name = f"_pm_{key}"

    def produce(staging: Path) -> None:
        from .compiler import build_module
        build_module(source, options, module_name, cxx, staging, MODULE_FILE, PLAN_FILE)

    library = build.cached_build(key, MODULE_FILE, produce, label=cell_label("C++", source))
    plan = json.loads((library.parent / PLAN_FILE).read_text())
    filename = f"<C++ cell {key[4:12]}>"
    register_source(filename, source)
    cpp_module.warn_skipped(plan)
    extension = load_extension(module_name, library)
    return cpp_module.make_module(options.name or filename, extension, plan, source,
                                  filename)
