"""Compile and link one cell into an extension module, in a build-cache staging dir.

The steps, with the slow ones overlapped: libclang reads the cell's signatures; the
cell + trampolines (C++) and cffi's glue (C) then compile in parallel; one link joins
them with polymagic's C++ runtime (compiled once per compiler, cached).
"""
from __future__ import annotations

import json
import re
import subprocess
import sysconfig
from pathlib import Path

from ... import build
from ...errors import CompileError
from ...toolchain import compiler_identity, run_tool
from . import capi, codegen, signatures, sources
from .options import CppOptions

RUNTIME_SOURCE = sources.NATIVE / "runtime.cpp"
_CELL_LINE = re.compile(r"^cell:(\d+):(?:\d+:)? (?:fatal )?error", re.MULTILINE)
_CELL_REF = re.compile(r"\bcell:(\d+)\b")
_UNDEFINED = re.compile(r"undefined reference to `([^'(]+)")


def runtime_object(cxx: str) -> Path:
    """polymagic's C++ runtime object for this compiler (built once, then cached)."""
    source = RUNTIME_SOURCE.read_text()
    flags = ["-O2", "-std=c++17", "-fPIC", "-fvisibility=hidden", f"-I{build.CSRC}"]
    key = build.cache_key("cpp-runtime", source, build.csrc_text(), flags,
                          compiler_identity(cxx))

    def produce(staging: Path) -> None:
        _run([cxx, *flags, "-c", str(RUNTIME_SOURCE), "-o", str(staging / "runtime.o")],
             "polymagic's C++ runtime")
    return build.cached_build(key, "runtime.o", produce)


def build_module(source: str, options: CppOptions, module_name: str, cxx: str,
                 staging: Path, module_file: str, plan_file: str) -> None:
    """Write the extension `module_file` and the export plan `plan_file` into
    `staging`, or raise CompileError."""
    runtime = runtime_object(cxx)
    args = signatures.clang_args(cxx, options.std, options.include_dirs,
                                 options.preprocessor_flags())
    plan = signatures.parse(source, args)
    _check_imports(plan)
    plan["c_api"] = capi.plan_entry(plan)  # what the loader gives the C-API callers
    cell_cpp, glue_c = staging / "cell_module.cpp", staging / "glue.c"
    cell_cpp.write_text(codegen.translation_unit(source, plan))
    cell_job = _start([cxx, *options.cxx_flags(), f"-I{signatures.INCLUDE_DIR}",
                       "-fvisibility=hidden", "-c",
                       str(cell_cpp), "-o", str(staging / "cell_module.o")])
    codegen.emit_glue(plan, module_name, glue_c)
    # The full C API, not cffi's default limited one: the glue's pm_python_room reads
    # the thread state (the module is built per Python version anyway).
    glue_job = _start([cxx, "-x", "c", "-O2", "-fPIC", "-fvisibility=hidden",
                       "-D_CFFI_NO_LIMITED_API", *_python_includes(), "-c", str(glue_c),
                       "-o",
                       str(staging / "glue.o")])
    cell_result, glue_result = _finish(cell_job), _finish(glue_job)
    _check(cell_result, source, plan, "compilation")
    _check(glue_result, source, plan, "compilation of the cffi glue")
    link = [cxx, "-shared", "-o", str(staging / module_file),
            str(staging / "cell_module.o"), str(staging / "glue.o"), str(runtime),
            *options.link_flags(), "-Wl,-z,defs", "-Wl,--warn-unresolved-symbols"]
    link_result = run_tool(link)
    _check_link(link_result, plan)
    if options.verbose:
        for job in (cell_result, glue_result, link_result):
            print(" ".join(job.args), job.stderr, sep="\n")
    (staging / plan_file).write_text(json.dumps(plan))


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


def _start(command: list[str]) -> subprocess.Popen:
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _finish(job: subprocess.Popen) -> subprocess.CompletedProcess:
    out, err = job.communicate()
    return subprocess.CompletedProcess(job.args, job.returncode, out, err)


def _run(command: list[str], what: str) -> None:
    result = run_tool(command)
    if result.returncode != 0:
        raise CompileError("C++", f"{what} failed:\n{result.stderr}", command)


def _check(result: subprocess.CompletedProcess, source: str, plan: dict,
           what: str) -> None:
    if result.returncode == 0:
        return
    diagnostics = result.stderr
    lines = [int(n) for n in _CELL_LINE.findall(diagnostics)]
    if not lines and codegen.TRAMPOLINE_FILE in diagnostics:
        diagnostics = (f"polymagic generated code that does not compile for this cell "
                       f"(a polymagic bug; please report it):\n{diagnostics}")
    raise CompileError("C++", diagnostics, result.args, lines)


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
