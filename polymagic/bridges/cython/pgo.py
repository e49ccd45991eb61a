"""`%%cython --pgo`: profile-guided optimisation, as Cython's magic does it.

1. The cell is compiled with `-fprofile-generate` into an instrumented module, loaded
   under the name `_pgo_<module>` (so the cell can tell the training run by
   `"_pgo_" in __name__`, as Cython documents).
2. The training run imports that module in a **child process**: its module-level code
   is the training workload. GCC's profiling runtime writes the profile (`.gcda`) when
   a process exits, so a module loaded in this process could not give it until the
   session ends.
3. The cell is compiled again with `-fprofile-use`: the same objects, in the same
   directory, so GCC finds each object's profile by its path.

GCC only: clang's profiles need `llvm-profdata` to merge, and Cython's magic supports
GCC only too.
"""
from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Callable

from ...errors import CompileError, CythonOptionError
from ...toolchain import compiler_identity
from .toolchain import EXT_SUFFIX, LANGUAGE

GENERATE = ("-fprofile-generate",)
USE = ("-fprofile-use", "-fprofile-correction",  # correction: threads race on counters
       "-Wmissing-profile")  # says so if GCC finds no profile for an object

# Per cell: an entry point under the training name that hands over to the cell's own.
_TRAINING_ENTRY = """\
#include <Python.h>
extern PyMODINIT_FUNC PyInit_{name}(void);
PyMODINIT_FUNC PyInit__pgo_{name}(void);
PyMODINIT_FUNC PyInit__pgo_{name}(void) {{ return PyInit_{name}(); }}
"""


def check_compiler(compiler: str) -> None:
    """Refuse --pgo with a compiler whose profiles this build cannot use."""
    if "clang" in compiler_identity(compiler).lower():
        raise CythonOptionError(f"--pgo needs GCC ({compiler} is clang, whose profiles "
                                "need llvm-profdata); set $CC/$CXX to gcc/g++")


def build_with_profile(compile_call: Callable[[list[str]], list[str]], compiler: str,
                       flags: list[str], link_flags: list[str], sources: list[str],
                       work: Path, module_name: str, output: str) -> list[str]:
    """Instrumented build, training run, optimised build of `sources` into `output`
    (in `work`); `compile_call` runs one compiler command there and returns its
    warnings about the cell. Returns the optimised build's warnings."""
    def build(step: tuple[str, ...], pairs: list[tuple[str, str]], target: str):
        warnings = []
        for source, obj in pairs:  # compiled apart: a profile is found by object path
            warnings += compile_call([compiler, *flags, *step, "-c", source, "-o", obj])
        compile_call([compiler, *flags, *step, *(obj for _, obj in pairs), "-o", target,
                      *link_flags])
        return warnings

    cell_objects = [(source, f"pgo{index}_{Path(source).stem}.o")
                    for index, source in enumerate(sources)]
    training_name = f"_pgo_{module_name}"
    entry = work / f"{training_name}.c"
    entry.write_text(_TRAINING_ENTRY.format(name=module_name))
    instrumented = training_name + EXT_SUFFIX
    build(GENERATE, [*cell_objects, (entry.name, f"{training_name}.o")], instrumented)
    train(training_name, work / instrumented)
    warnings = build(USE, cell_objects, output)
    for leftover in [entry, work / instrumented, *work.glob("*.o"), *work.glob("*.gcda")]:
        leftover.unlink(missing_ok=True)
    return warnings


def train(name: str, path: Path) -> None:
    """Import the instrumented module in a child process (same Python, same sys.path),
    forwarding its output; its exit writes the profile."""
    command = [sys.executable, "-m", "polymagic.bridges.cython.training", name,
               str(path), json.dumps(sys.path)]
    finished = subprocess.run(command, capture_output=True, text=True, check=False)
    if finished.stdout:
        print(finished.stdout, end="")
    if finished.returncode != 0:
        how = f"exit status {finished.returncode}" if finished.returncode > 0 else \
            signal.Signals(-finished.returncode).name
        raise CompileError(f"{LANGUAGE} (PGO training run)",
                           f"importing the instrumented module failed ({how}):\n"
                           + finished.stderr, command=command)
    if finished.stderr:
        print(finished.stderr, end="", file=sys.stderr)

