"""Compile and link one cell into an extension module, in a build-cache staging dir.

The steps, with the slow ones overlapped: g++ starts on the cell while libclang reads
its signatures, and gets the trampolines generated from them through a pipe
(tailpipe.py); cffi's glue (C) compiles meanwhile; one link joins them with
polymagic's C++ runtime (compiled once per compiler, cached) and the fault library
(faults.py), with exit() and its kin wrapped (native/runtime.cpp).

Most of a new cell's build time went to parsing the same headers again (the standard
headers for libclang and g++, Python.h for the glue): each compile loads them
precompiled when it can (prelude.py), and the link uses gold where there is one.
"""
from __future__ import annotations

import functools
import json
import re
import subprocess
import sysconfig
from pathlib import Path

from ... import build
from ...errors import CompileError
from ...toolchain import EXCERPT, cell_remarks, compiler_identity, first_error_first
from . import capi, codegen, prelude, processes, signatures, sources, tailpipe
from .options import CppOptions

RUNTIME_SOURCES = ("runtime.cpp", "std_calls.cpp")
_CELL_LINE = re.compile(r"^cell:(\d+):(?:\d+:)? (?:fatal )?error", re.MULTILINE)
_CELL_REF = re.compile(r"\bcell:(\d+)\b")
# ld.bfd quotes a symbol as `name', gold as 'name'
_UNDEFINED = re.compile(r"undefined reference to [`']([^'(]+)")


def runtime_object(cxx: str) -> Path:
    """polymagic's C++ runtime object for this compiler (built once, then cached)."""
    flags = ["-O2", "-std=c++17", "-fPIC", "-fvisibility=hidden", f"-I{build.CSRC}",
             f"-I{sources.NATIVE}", f"-I{signatures.INCLUDE_DIR}"]
    return _once_compiled("cpp-runtime", cxx, flags, RUNTIME_SOURCES, "runtime.o",
                          "polymagic's C++ runtime", build.csrc_text())


# The fixed C of every module's glue: compiled once, linked into each module (hidden).
GLUE_RUNTIME_SOURCES = ("glue_errors.c", "glue_callers.c", "containers_glue.c")


def glue_runtime_object(cxx: str) -> Path:
    """The fixed part of the modules' cffi glue (native/glue_runtime.h says what it
    gives) for this compiler and Python, built once, then cached: a cell's own glue
    is then only what cffi generates for its functions."""
    flags = ["-O2", "-fPIC", "-fvisibility=hidden", f"-I{sources.NATIVE}",
             *_python_includes()]
    return _once_compiled("cpp-glue-runtime", cxx, flags, GLUE_RUNTIME_SOURCES,
                          "glue_runtime.o", "polymagic's C glue runtime", language="c")


def _once_compiled(kind: str, cxx: str, flags: list[str], names: tuple[str, ...],
                   artifact: str, what: str, *key_parts, language: str | None = None
                   ) -> Path:
    """One relocatable object of the native/ files `names`, compiled with `flags` by
    `cxx`, cached under `kind` (keyed by the C++ room's sources, the flags and the
    compiler); `language` marks every input (g++ would read a 2nd `.c` as C++)."""
    key = build.cache_key(kind, build.sources_digest(sources.NATIVE.parent), *key_parts,
                          flags, compiler_identity(cxx))
    marked = ["-x", language] if language else []
    inputs = [part for name in names for part in (*marked, str(sources.NATIVE / name))]

    def produce(staging: Path) -> None:
        processes.run([cxx, *flags, "-r", "-nostdlib", *inputs, "-o",
                       str(staging / artifact)], what)
    return build.cached_build(key, artifact, produce, language="C++")


# exit() and its kin leave the call instead of the process (native/runtime.cpp).
_WRAPPED_EXITS = ("exit", "_Exit", "quick_exit", "_exit")


def build_module(source: str, options: CppOptions, module_name: str, cxx: str,
                 staging: Path, module_file: str, plan_file: str,
                 fault_library: Path) -> None:
    """Write the extension `module_file` and the export plan `plan_file` into
    `staging`, or raise CompileError. Every compiler process it starts is killed if
    the build stops early (Ctrl-C included)."""
    runtime, glue_runtime = runtime_object(cxx), glue_runtime_object(cxx)
    std_prelude = prelude.choose(source, options.compile_args)
    cell = _CellCompile(cxx, options, staging, std_prelude)
    glue_c = staging / "glue.c"
    glue_compile, glue_prelude = _glue_compile(cxx, glue_c, staging)
    with processes.Jobs() as jobs:
        cell.start(jobs, source)
        try:
            plan = _read_signatures(source, options, cxx, std_prelude)
            _check_imports(plan)
            plan["c_api"] = capi.plan_entry(plan)  # what the loader gives C-API callers
            unit = codegen.translation_unit(source, plan)
            codegen.emit_glue(plan, module_name, glue_c)
            glue_job = jobs.start(_force_include(glue_compile, glue_prelude))
            cell.give_rest(jobs, unit)
        finally:
            cell.close()
        cell_result, glue_result = cell.finish(jobs, unit), jobs.finish(glue_job)
        if glue_prelude is not None and glue_result.returncode != 0:
            glue_result = jobs.run(glue_compile)  # judged as before (prelude.py)
        _check(cell_result, source, plan, "compilation")
        for line in cell_warnings(cell_result.stderr, source):
            print(line)  # on stdout, where Cython's magic shows a compiler's warnings
        _check(glue_result, source, plan, "compilation of the cffi glue")
        link = [cxx, "-shared", "-o", str(staging / module_file),
                str(staging / "cell_module.o"), str(staging / "glue.o"), str(glue_runtime),
                str(runtime),
                str(fault_library),
                # the fault library, wherever the cache is: beside this entry
                f"-Wl,-rpath,$ORIGIN/../{fault_library.parent.name}",
                *(f"-Wl,--wrap={name}" for name in _WRAPPED_EXITS),
                *options.link_flags(), "-Wl,-z,defs", "-Wl,--warn-unresolved-symbols"]
        link_result = _link(jobs, link, cxx)
    _check_link(link_result, plan)
    if options.verbose:
        for job in (cell_result, glue_result, link_result):
            print(" ".join(job.args), job.stderr, sep="\n")
    (staging / plan_file).write_text(json.dumps(plan))


class _CellCompile:
    """The compilation of the cell and its trampolines, started before libclang has
    read the cell: g++ loads the precompiled prelude and parses the cell meanwhile,
    and gets the trampolines through a pipe (tailpipe.py) once they are generated.

    If that compilation fails, the cell is compiled again the plain way (the whole
    unit in one file, no prelude), whose verdict and diagnostics count: a cell whose
    names clash with a header of the prelude it did not include builds as before
    (prelude.py), and its error messages are the ones it always had.
    """

    def __init__(self, cxx: str, options: CppOptions, staging: Path,
                 std_prelude: str | None):
        flags = [*options.cxx_flags(), f"-I{signatures.INCLUDE_DIR}",
                 "-fvisibility=hidden"]
        self.path = staging / "cell_module.cpp"
        # -pipe: the assembler reads the compiler's output as it comes (no temp file)
        self.plain = [cxx, *flags, "-pipe", "-c", str(self.path), "-o",
                      str(staging / "cell_module.o")]
        header = std_prelude and prelude.compiler_prelude(cxx, flags, std_prelude)
        self.fast = _force_include(self.plain, header)
        self.pipe = tailpipe.open_in(staging)
        self.job, self.head = None, ""

    def start(self, jobs: processes.Jobs, source: str) -> None:
        if self.pipe is None:
            return  # started by give_rest, with the whole unit
        # the start of codegen.translation_unit's unit: the cell, numbered from line 1
        self.head = '#line 1 "cell"\n' + source + ("" if source.endswith("\n") else "\n")
        self.path.write_text(self.head + self.pipe.include_line())
        self.job = jobs.start(self.fast)

    def give_rest(self, jobs: processes.Jobs, unit: str) -> None:
        if self.job is not None and unit.startswith(self.head):
            self.pipe.feed(unit[len(self.head):], self.job)
        elif self.job is None:
            self.path.write_text(unit)
            self.job = jobs.start(self.fast)
        # else the unit no longer starts with the cell: finish() compiles it plainly

    def close(self) -> None:
        if self.pipe is not None:
            self.pipe.close()

    def finish(self, jobs: processes.Jobs, unit: str) -> subprocess.CompletedProcess:
        result = jobs.finish(self.job)
        whole = self.pipe is None or unit.startswith(self.head)  # it read all of it
        if (result.returncode == 0 and whole) or \
                (self.pipe is None and self.fast == self.plain):
            return result
        self.path.write_text(unit)
        return jobs.run(self.plain)


def _glue_compile(cxx: str, glue_c: Path, staging: Path) -> tuple[list[str], Path | None]:
    """The command compiling cffi's glue, and the precompiled header it may use.

    The full C API, not cffi's default limited one: the glue's pm_python_room reads
    the thread state (the module is built per Python version anyway). cffi's glue
    includes Python.h first, with no macro of its own before it that Python.h reads
    (with _CFFI_NO_LIMITED_API it defines no Py_LIMITED_API), so glue_prelude.h may
    be force-included before it.
    """
    flags = ["-x", "c", "-O2", "-fPIC", "-fvisibility=hidden", "-D_CFFI_NO_LIMITED_API",
             *_python_includes()]
    command = [cxx, *flags, "-pipe", "-c", str(glue_c), "-o", str(staging / "glue.o")]
    return command, prelude.compiler_prelude(cxx, flags, prelude.GLUE_PRELUDE, "c")


def _force_include(command: list[str], header: Path | None) -> list[str]:
    """`command` with `header` force-included first (its .gch is used when valid; an
    invalid one is reported by -Winvalid-pch and the header itself is read)."""
    if header is None:
        return command
    return [command[0], "-Winvalid-pch", "-include", str(header), *command[1:]]


def _link(jobs: processes.Jobs, link: list[str], cxx: str) -> subprocess.CompletedProcess:
    """Run the link with gold when the compiler has it (2-3x faster than ld.bfd on a
    module linked against libstdc++); a link gold fails is run again with the default
    linker, whose verdict and messages count."""
    faster = _gold(cxx)
    if faster:
        result = jobs.run([link[0], *faster, *link[1:]])  # the user's -fuse-ld wins
        if result.returncode == 0:
            return result
    return jobs.run(link)


@functools.lru_cache(maxsize=None)
def _gold(cxx: str) -> list[str]:
    """["-fuse-ld=gold"] if `cxx` can link with gold, else []."""
    try:
        result = subprocess.run([cxx, "-fuse-ld=gold", "-Wl,--version"],
                                capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return ["-fuse-ld=gold"] if result.returncode == 0 and "gold" in result.stdout else []


def _read_signatures(source: str, options: CppOptions, cxx: str,
                     std_prelude: str | None = None) -> dict:
    """The export plan, from libclang; options libclang rejects (a --std it does not
    know) are explained by the compiler's own diagnostic, as a CompileError."""
    from clang.cindex import TranslationUnitLoadError
    args = signatures.clang_args(cxx, options.std, options.include_dirs,
                                 options.preprocessor_flags())
    if std_prelude is not None:
        plan = _read_with_prelude(source, args, std_prelude)
        if plan is not None:
            return plan
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


def _read_with_prelude(source: str, args: list[str], name: str) -> dict | None:
    """The plan read with the precompiled standard prelude; None when there is none
    yet, or when the parse reported errors: the cell is then read without it, so that
    its plan is the one it has without the prelude."""
    from clang.cindex import TranslationUnitLoadError
    pch = prelude.libclang_prelude(args, name)
    if pch is None:
        return None
    try:
        plan = signatures.parse(source, [*args, "-include-pch", str(pch)],
                                skip_bodies=True)
    except TranslationUnitLoadError:  # the .pch may be what libclang could not load
        prelude.discard(pch.parent)
        return None
    errors = plan.get("parse_errors", ())
    if any(prelude.is_prelude_failure(error) for error in errors):
        prelude.discard(pch.parent)  # stale or damaged: built again for later cells
    return None if errors else plan


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
            and not re.search(r"undefined reference to [`']_?Py", line)]


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
