"""Compile a Cython cell into an extension module and load it, without setuptools.

`cython(source, **options)` runs Cython in this process (with `#line` directives, so the
C compiler reports lines of the cell), calls the C compiler once to compile and link,
and loads the result with importlib's extension loader. Builds live in polymagic's
content-addressed cache (`polymagic.build`), keyed by the source, the options, the
compiler's identity and flags, Cython's version and the Python/NumPy ABI, so re-running
an unchanged cell loads in milliseconds, also in a new process.

Speed: Cython's memoryview support is ~20k lines of C that Cython's own magic compiles
into every cell. Here it is built once, as Cython's "shared utility module"
(`cython --shared`, utility.py), cached like any cell, and imported by every cell that
needs it. Until it exists, a cell without memoryviews is compiled with its utility code
inline (no wait) while the shared module builds in the background (see cell.py).

Every Cython or C compiler failure raises `CompileError` whose diagnostics and `.lines`
use the cell's line numbers (diagnostics.py).

The room: options.py (what a build depends on), toolchain.py (compiler and flags),
cell.py (one cell's build), utility.py (the shared utility module), loading.py (loading
and annotation), diagnostics.py (compiler output -> cell lines), and this entry point.
"""
from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path

from ...errors import CompileError
from ...progress import cell_label, progress
from ...tracebacks import entry_point
from .cell import MANIFEST, CellBuild
from .diagnostics import unencodable_text
from .loading import check_module_name, load_cell, read_annotation
from .options import CythonOptions, distutils_header, make_options
from .toolchain import EXT_SUFFIX, LANGUAGE, Toolchain
from .utility import load_utility_module

__all__ = ["cython", "build", "make_options", "CythonOptions", "CythonBuild"]


@dataclasses.dataclass
class CythonBuild:
    """A loaded cell: the module, where it came from, and what the build said."""

    module: object
    path: Path
    cached: bool
    annotation_html: str | None
    numpy_include: bool
    warnings: list[str]
    utility_code: str  # "shared": imports Cython's shared utility module; "inline": its own


@entry_point
def cython(source: str, **options):
    """Compile `source` (Cython code) and return the loaded extension module.

    Options (all optional) mirror Cython's %%cython: annotate (False/True/"fullc"),
    cplus, language_level (2/3), compile_args, link_args, libraries, library_dirs,
    include_dirs, sources (extra C files), name, pgo (profile-guided optimisation,
    trained by the cell's module-level code in a child process), force, verbose.
    """
    return build(source, **options).module


@entry_point
def build(source: str, **options) -> CythonBuild:
    """Like `cython()`, returning the module with its annotation and build facts."""
    opts = make_options(**options)
    if opts.name is not None:
        check_module_name(opts.name)
    bad_text = unencodable_text(source)
    if bad_text is not None:
        raise CompileError(LANGUAGE, bad_text[0], lines=bad_text[1])
    source = source if source.endswith("\n") else source + "\n"
    toolchain = Toolchain.for_options(opts, distutils_header(source))
    started = time.perf_counter()
    cell = CellBuild(source, opts, toolchain,
                     stamp=time.time() if opts.force else None)
    with progress(cell_label("Cython", source)):  # shown if it takes over a second
        path = cell.cached_path() or cell.build()
    manifest = json.loads((path.parent / MANIFEST).read_text())
    if manifest["utility_module"]:
        load_utility_module(toolchain, manifest["utility_module"])
    module = load_cell(path.name[:-len(EXT_SUFFIX)], path, source)
    module = _make_travelling(module, source, options, path, manifest, toolchain)
    html = read_annotation(path.parent / manifest["annotation"]) \
        if manifest["annotation"] else None
    if opts.verbose:
        print(f"[polymagic cython] {module.__name__} from {path} "
              f"({'cache hit' if not cell.ran else 'built'}, utility code "
              f"{manifest['utility_code']}, {time.perf_counter() - started:.3f} s)",
              file=sys.stderr)
    return CythonBuild(module, path, not cell.ran, html, manifest["numpy_include"],
                       manifest["warnings"], manifest["utility_code"])


def _make_travelling(module, source: str, options: dict, path: Path, manifest: dict,
                     toolchain: Toolchain):
    """The cell's module and functions pickle (travel.py: polymagic.travel)."""
    from .travel import make_travelling
    from .utility import utility_build
    utility = utility_build(toolchain).path if manifest["utility_module"] else None
    return make_travelling(module, source, options, path, manifest, utility, restore)


def restore(payload):
    """A cell module unpickled here (polymagic.travel): its travelled entries published
    into this cache and loaded, with no compiler; on another platform, built again."""
    from .travel import load_travelled
    if payload.loadable_here():
        return load_travelled(payload, restore)
    return build(payload.recipe["source"], **payload.recipe["options"]).module
