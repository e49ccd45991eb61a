"""Compile and link one cell into an extension module, in a build-cache staging dir.

The steps, with the slow ones overlapped: libclang reads the cell's signatures; the
cell + trampolines (C++) and cffi's glue (C) then compile in parallel; one link joins
them with polymagic's C++ runtime (compiled once per compiler, cached) and the fault
library (faults.py), with exit() and its kin wrapped (native/runtime.cpp).
"""
from __future__ import annotations

import json
import re
import subprocess
import sysconfig
from pathlib import Path

from ... import build
from ...errors import CompileError
from ...toolchain import EXCERPT, cell_remarks, compiler_identity, first_error_first
from . import capi, codegen, processes, signatures, sources
from .options import CppOptions

RUNTIME_SOURCE = sources.NATIVE / "runtime.cpp"
_CELL_LINE = re.compile(r"^cell:(\d+):(?:\d+:)? (?:fatal )?error", re.MULTILINE)
_CELL_REF = re.compile(r"\bcell:(\d+)\b")
_UNDEFINED = re.compile(r"undefined reference to `([^'(]+)")


def runtime_object(cxx: str) -> Path:
    """polymagic's C++ runtime object for this compiler (built once, then cached)."""
    flags = ["-O2", "-std=c++17", "-fPIC", "-fvisibility=hidden", f"-I{build.CSRC}",
             f"-I{sources.NATIVE}", f"-I{signatures.INCLUDE_DIR}"]
    key = build.cache_key("cpp-runtime", build.sources_digest(sources.NATIVE.parent),
                          build.csrc_text(), flags, compiler_identity(cxx))

    def produce(staging: Path) -> None:
        processes.run([cxx, *flags, "-c", str(RUNTIME_SOURCE), "-o",
                       str(staging / "runtime.o")], "polymagic's C++ runtime")
    return build.cached_build(key, "runtime.o", produce, language="C++")


# exit() and its kin leave the call instead of the process (native/runtime.cpp).
_WRAPPED_EXITS = ("exit", "_Exit", "quick_exit", "_exit")


def build_module(source: str, options: CppOptions, module_name: str, cxx: str,
                 staging: Path, module_file: str, plan_file: str,
                 fault_library: Path) -> None:
    """Write the extension `module_file` and the export plan `plan_file` into
    `staging`, or raise CompileError. Every compiler process it starts is killed if
    the build stops early (Ctrl-C included)."""
    runtime = runtime_object(cxx)
    plan = _read_signatures(source, options, cxx)
    _check_imports(plan)
    plan["c_api"] = capi.plan_entry(plan)  # what the loader gives the C-API callers
    cell_cpp, glue_c = staging / "cell_module.cpp", staging / "glue.c"
    cell_cpp.write_text(codegen.translation_unit(source, plan))
    with processes.Jobs() as jobs:
        cell_job = jobs.start([cxx, *options.cxx_flags(), f"-I{signatures.INCLUDE_DIR}",
                               "-fvisibility=hidden", "-c",
                               str(cell_cpp), "-o", str(staging / "cell_module.o")])
        codegen.emit_glue(plan, module_name, glue_c)
        # The full C API, not cffi's default limited one: the glue's pm_python_room
        # reads the thread state (the module is built per Python version anyway).
        glue_job = jobs.start([cxx, "-x", "c", "-O2", "-fPIC", "-fvisibility=hidden",
                               "-D_CFFI_NO_LIMITED_API", *_python_includes(), "-c",
                               str(glue_c), "-o", str(staging / "glue.o")])
        cell_result, glue_result = jobs.finish(cell_job), jobs.finish(glue_job)
        _check(cell_result, source, plan, "compilation")
        for line in cell_warnings(cell_result.stderr, source):
            print(line)  # on stdout, where Cython's magic shows a compiler's warnings
        _check(glue_result, source, plan, "compilation of the cffi glue")
        link = [cxx, "-shared", "-o", str(staging / module_file),
                str(staging / "cell_module.o"), str(staging / "glue.o"), str(runtime),
                str(fault_library),
                # the fault library, wherever the cache is: beside this entry
                f"-Wl,-rpath,$ORIGIN/../{fault_library.parent.name}",
                *(f"-Wl,--wrap={name}" for name in _WRAPPED_EXITS),
                *options.link_flags(), "-Wl,-z,defs", "-Wl,--warn-unresolved-symbols"]
        link_result = jobs.run(link)
    _check_link(link_result, plan)
    if options.verbose:
        for job in (cell_result, glue_result, link_result):
            print(" ".join(job.args), job.stderr, sep="\n")
    (staging / plan_file).write_text(json.dumps(plan))


def _read_signatures(source: str, options: CppOptions, cxx: str) -> dict:
    """The export plan, from libclang; options libclang rejects (a --std it does not
    know) are explained by the compiler's own diagnostic, as a CompileError."""
    from clang.cindex import TranslationUnitLoadError
    args = signatures.clang_args(cxx, options.std, options.include_dirs,
                                 options.preprocessor_flags())
    try:
        return signatures.parse(source, args)
    except TranslationUnitLoadError as failure:
        check = [cxx, *options.cxx_flags(), "-fsyntax-only", "-x", "c++", "/dev/null"]
        with processes.Jobs() as jobs:
            result = jobs.run(check)
        if result.returncode != 0:
            raise CompileError("C++", f"the compiler rejects these options:\n"
                               f"{result.stderr}", check) from None
        raise CompileError("C++", f"libclang, which reads the cell's functions, could "
                           f"not parse it with these options ({failure}): "
                           f"{' '.join(args[:3])}...", args) from None


def _check_imports(plan: dict) -> None:
    """A PM_PYTHON declaration polymagic cannot define is an error at its cell line."""
    problems = plan["import_errors"]
    if problems:
        raise CompileError("C++", "\n".join(
            f"cell:{p['line']}: error: PM_PYTHON function '{p['name']}' cannot be "
            f"provided by Python: {p['reason']}" for p in problems), (),
            [p["line"] for p in problems])


def _python_includes() -> list[str]:
    paths = {sysconfig.get_paths()["include"], sysconfig.get_paths()["platinclude"]}
    return [f"-I{path}" for path in sorted(paths)]


def _check(result: subprocess.CompletedProcess, source: str, plan: dict,
           what: str) -> None:
    if result.returncode == 0:
        return
    diagnostics = result.stderr
    lines = [int(n) for n in _CELL_LINE.findall(diagnostics)]
    if not lines and codegen.TRAMPOLINE_FILE in diagnostics:
        diagnostics = (f"polymagic generated code that does not compile for this cell "
                       f"(a polymagic bug; please report it):\n{diagnostics}")
    raise CompileError("C++", first_error_first(quote_cell_lines(diagnostics, source)),
                       result.args, lines)


# `cell:LINE:COL: error|warning|note: ...`, and the source excerpt g++ prints under a
# diagnostic when it can read the file (`    2 |   return x;` and `      |   ^~`)
_CELL_DIAGNOSTIC = re.compile(r"^cell:(\d+):(\d+): (?:fatal )?(?:error|warning|note)")


def quote_cell_lines(diagnostics: str, source: str) -> str:
    """The compiler's output with the cell line and a caret under each cell diagnostic,
    as g++ prints them for a file it can read (the cell reaches it as `#line 1 "cell"`,
    a name with no file behind it)."""
    cell, out = source.splitlines(), []
    raw_lines = diagnostics.splitlines()
    for index, raw in enumerate(raw_lines):
        out.append(raw)
        match = _CELL_DIAGNOSTIC.match(raw)
        following = raw_lines[index + 1] if index + 1 < len(raw_lines) else ""
        if match and 0 < int(match[1]) <= len(cell) and not EXCERPT.match(following):
            line, column = int(match[1]), int(match[2])
            text = cell[line - 1].expandtabs(8)  # as g++ shows a tab
            # g++ counts bytes when it cannot read the file: the prefix, as shown
            prefix = cell[line - 1].encode()[:max(column - 1, 0)]
            caret = " " * len(prefix.decode(errors="ignore").expandtabs(8)) + "^"
            out += [f"{line:>5} | {text}", f"{'':>5} | {caret}"]
    return "\n".join(out)


def cell_warnings(diagnostics: str, source: str) -> list[str]:
    """The warnings and notes about cell lines, with their quoted line and caret."""
    return cell_remarks(quote_cell_lines(diagnostics, source))


def _unresolved(stderr: str) -> list[str]:
    """Linker lines about undefined symbols that are not Python's own API."""
    return [line for line in stderr.splitlines()
            if "undefined reference to" in line
            and not re.search(r"undefined reference to `_?Py", line)]


def _check_link(result: subprocess.CompletedProcess, plan: dict) -> None:
    """Link failures, and references to symbols nothing defines, become CompileError.

    `-z defs` with `--warn-unresolved-symbols` makes the linker list every undefined
    symbol as a warning; Python's API is resolved when the module loads, every other
    one would fail then, so it is an error now.
    """
    problems = list(dict.fromkeys(_unresolved(result.stderr)))
    if result.returncode == 0 and not problems:
        return
    text = "\n".join(problems) if result.returncode == 0 else result.stderr
    lines = [int(n) for n in _CELL_REF.findall(text)]
    for name in dict.fromkeys(_UNDEFINED.findall(text)):
        line = plan["declared"].get(name.rpartition("::")[2])
        if line:
            lines.append(line)
            text += f"\ncell:{line}: '{name}' is declared here but never defined"
    raise CompileError("C++", f"linking failed:\n{text}", result.args, lines)
