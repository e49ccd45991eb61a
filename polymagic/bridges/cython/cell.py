"""One cell build: Cython in this process, then one compiler call, published into the
cache as <name>.pyx, the extension, build.json and maybe <name>.html."""
from __future__ import annotations

import dataclasses
import json
import os
import shlex
import sys
import tempfile
from pathlib import Path

from ...build import cache_dir, cache_key, cached_build, cached_entry
from ...errors import CompileError
from ...toolchain import run_tool
from .diagnostics import cell_warnings, map_c_diagnostics, map_cython_listing
from . import pgo, server
from .cythonize import compiler_is_warm, run_cython
from .options import CythonOptions, key_options
from .pch import PrecompiledHeader, precompiled_header
from .toolchain import EXT_SUFFIX, LANGUAGE, Toolchain
from .utility import UtilityBuild, utility_build

MANIFEST = "build.json"
SHARED, INLINE = "shared", "inline"  # where a cell's Cython utility code lives


@dataclasses.dataclass
class Generated:
    """Cython's output for a cell, in a scratch directory, before it is compiled."""

    mode: str
    c_file: Path
    numpy_used: bool
    warnings: list[str]
    imports_utility: bool    # the C imports the shared utility module (shared mode)
    uses_cython_utility: bool  # needs utility code written in Cython (memoryviews)


class CellBuild:
    """Produces a cache entry: <name>.pyx, the extension, build.json, maybe <name>.html.

    A cell's entry is keyed by its inputs and by where its utility code lives: "shared"
    (it imports Cython's shared utility module) or "inline" (it carries its own, as with
    Cython's magic). When the shared module is not built yet, a cell that needs no
    utility code written in Cython (memoryviews, cython.view) is compiled inline at
    once, and the shared module is built in the background for later cells; a cell
    with memoryviews waits for the shared module, which is faster for it than compiling
    ~20k lines of memoryview C into the cell.
    """

    def __init__(self, source: str, opts: CythonOptions, toolchain: Toolchain,
                 stamp: float | None):
        self.source = source
        self.opts = opts
        self.toolchain = toolchain
        parts = (source, key_options(opts), toolchain.key_parts(), stamp)
        self.keys = {mode: cache_key("cython", *parts, mode) for mode in (SHARED, INLINE)}
        self.ran = False
        self.cython_here = False  # Cython ran in this process (else in the warm server)
        self.pch: PrecompiledHeader | None = None

    def module_name(self, mode: str) -> str:
        return self.opts.name or f"_pm_{self.keys[mode]}"

    def artifact(self, mode: str) -> str:
        return self.module_name(mode) + EXT_SUFFIX

    def cached_path(self) -> Path | None:
        """The extension of an existing, intact entry for this cell, shared or inline
        (a damaged one is dropped with a warning, and the cell is built again)."""
        for mode in (SHARED, INLINE):
            path = cached_entry(self.keys[mode], self.artifact(mode))
            if path is not None:
                return path
        return None

    def build(self) -> Path:
        """Run Cython, decide where the utility code lives, compile and publish."""
        utility = utility_build(self.toolchain)
        if self.opts.pgo:
            pgo.check_compiler(self.toolchain.compiler)
        else:
            self.pch = precompiled_header(self.toolchain)
        with tempfile.TemporaryDirectory(prefix=".cython-", dir=cache_dir()) as scratch:
            # A --pgo training run loads the cell alone, in a child: inline utility code.
            # Until the shared module exists, a cell that needs no memoryview machinery
            # is made inline (probing inline instead would cost a memoryview cell ~1 s:
            # Cython compiles the memoryview code, written in Cython, into it).
            generated = self._cythonize(Path(scratch), INLINE if self.opts.pgo else SHARED,
                                        utility.name)
            if (generated.imports_utility and not generated.uses_cython_utility
                    and not utility.ready()):
                generated = self._cythonize(Path(scratch), INLINE, utility.name)
            # After the cell's Cython runs: the utility's C generation needs the lock.
            utility.start()
            if self.opts.verbose:
                print(f"[polymagic cython] utility code {generated.mode} "
                      f"({utility.state()})", file=sys.stderr)
            mode = generated.mode
            path = cached_build(self.keys[mode], self.artifact(mode),
                                lambda staging: self._produce(staging, generated, utility),
                                language=f"{LANGUAGE} (C compiler)")
        # For the next cells and processes, after the shared utility module's build
        # (which a memoryview cell may be waiting for): Cython warm in a server for the
        # next process, and a precompiled Python.h (not built while this cell builds:
        # on a busy machine that cost the first cell more than it saves).
        if self.cython_here:
            utility.then(server.start_once)
        if self.pch is not None:
            utility.then(self.pch.start)
        return path

    def _produce(self, staging: Path, generated: Generated,
                 utility: UtilityBuild) -> None:
        self.ran = True  # not when another process published this entry meanwhile
        name = self.module_name(generated.mode)
        for produced in generated.c_file.parent.glob(f"{name}.*"):
            produced.rename(staging / produced.name)  # .pyx, .c/.cpp, .html, .lis
        c_file = staging / generated.c_file.name
        if generated.imports_utility:
            utility.raise_failure()  # a failed background build: before compiling
        c_warnings = self._compile(c_file, staging, generated)
        if generated.imports_utility:
            utility.wait()
        html = staging / f"{name}.html"
        manifest = {"utility_code": generated.mode,
                    "utility_module": utility.name if generated.imports_utility else None,
                    "numpy_include": generated.numpy_used,
                    "annotation": html.name if html.exists() else None,
                    "warnings": generated.warnings + c_warnings}
        (staging / MANIFEST).write_text(json.dumps(manifest))
        if not self.opts.verbose:
            c_file.unlink()  # large and regenerable; kept with --verbose for inspection
        for warning in manifest["warnings"]:
            print(warning)  # on stdout, where Cython's own magic shows them

    def _cythonize(self, scratch: Path, mode: str, utility_name: str) -> Generated:
        """Run Cython on the cell in `scratch`, its utility code `mode` (shared/inline):
        in the warm Cython server when this process has not warmed Cython up itself
        and a server answers, else here."""
        name = self.module_name(mode)
        for stale in scratch.glob("*"):
            stale.unlink()  # the other mode's output, when Cython runs twice
        pyx = scratch / f"{name}.pyx"
        pyx.write_text(self.source, encoding="utf-8")
        request = {"pyx": str(pyx), "name": name, "cplus": self.toolchain.cplus,
                   "language_level": self.opts.language_level,
                   "annotate": self.opts.annotate,
                   "shared_utility": utility_name if mode == SHARED else None,
                   "include_path": [os.getcwd(), *self.opts.include_dirs]}
        reply = None if compiler_is_warm() else server.ask(
            {**request, "cwd": os.getcwd(), "sys_path": list(sys.path)})
        if reply is None:
            reply = run_cython(request)
            self.cython_here = True
        if self.opts.verbose:
            where = (f"the warm Cython server (pid {reply['server_pid']})"
                     if "server_pid" in reply else "this process")
            print(f"[polymagic cython] Cython ran in {where}", file=sys.stderr)
        if "crash" in reply:
            raise CompileError(LANGUAGE, reply["crash"])
        listing = pyx.with_suffix(".lis")
        report = listing.read_text(encoding="utf-8") if listing.exists() else ""
        if reply["errors"]:
            text, lines = map_cython_listing(report, pyx.name, self.source)
            raise CompileError(LANGUAGE, text or "Cython reported errors", lines=lines)
        c_file = Path(reply["c_file"])
        return Generated(
            mode=mode, c_file=c_file, numpy_used=reply["numpy_used"],
            warnings=[line for line in map_cython_listing(report, pyx.name)[0].splitlines()
                      if line.startswith("cell:")],
            imports_utility=mode == SHARED and f'"{utility_name}"' in c_file.read_text(
                encoding="utf-8"),
            uses_cython_utility=reply["uses_cython_utility"])

    def _compile(self, c_file: Path, staging: Path, generated: Generated) -> list[str]:
        """Compile and link in one compiler call (three steps and a training run with
        --pgo); return the warnings about the cell."""
        tool = self.toolchain
        numpy_flags = []
        if generated.numpy_used:
            import numpy
            numpy_flags = [f"-I{numpy.get_include()}", *tool.define_numpy]
        output = self.artifact(generated.mode)

        def compile_call(command: list[str]) -> list[str]:
            return self._run_compiler(command, c_file, staging)
        if self.opts.pgo:
            return pgo.build_with_profile(
                compile_call, tool.compiler, [*tool.flags, *numpy_flags],
                list(tool.link_flags), [c_file.name, *self.opts.sources], staging,
                self.module_name(generated.mode), output)
        # A precompiled Python.h, when built, is found ahead of the real one.
        pch_flags = self.pch.include_flags() if self.pch is not None else []
        return compile_call([tool.compiler, *pch_flags, *tool.flags, *numpy_flags, c_file.name,
                             *self.opts.sources, "-o", output, *tool.link_flags])

    def _run_compiler(self, command: list[str], c_file: Path, cwd: Path) -> list[str]:
        """Run one compiler command; raise CompileError at cell lines if it fails;
        return its warnings about the cell."""
        tool = self.toolchain
        if self.opts.verbose:
            print("[polymagic cython] " + shlex.join(command), file=sys.stderr)
        finished = run_tool(command, cwd=cwd)
        text, lines = map_c_diagnostics(finished.stderr + finished.stdout, c_file,
                                        self.source)
        if self.opts.verbose and (finished.stderr or finished.stdout):
            print(finished.stderr + finished.stdout, file=sys.stderr)
        if finished.returncode != 0:
            raise CompileError(f"{LANGUAGE} (C compiler)", text or
                               f"{tool.compiler} exited with {finished.returncode}",
                               command=command, lines=lines)
        return cell_warnings(text)
