"""The C compiler started on a cell before Cython has written its C.

Every C file Cython writes begins the same way: `PY_SSIZE_T_CLEAN`, then Python.h
(the lines between only look at Py_LIMITED_API, which the command line would set).
So the compiler can start with the cell, on a stub that includes Python.h and then a
named pipe (polymagic/tailpipe.py), and parse Python.h (or load it precompiled) while
Cython runs; an #include of the C file comes through the pipe once Cython has written
it, and the compiler's messages are made to read as for the C file compiled itself.

Only where the command does not depend on Cython's output: a cell that cimports NumPy
(its include directory and defines) or builds with --pgo is compiled the plain way, and
so is one whose early compile failed: the plain compile's verdict and messages count.
"""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

from ... import processes, tailpipe
from .toolchain import Toolchain

STUB_LINES = '#define PY_SSIZE_T_CLEAN\n#include "Python.h"\n'


class EarlyCompile:
    """The compile and link of one cell, started in `folder` before its C exists."""

    def __init__(self, jobs: processes.Jobs, pipe: tailpipe.TailPipe,
                 command: list[str], output: Path):
        self.pipe, self.output = pipe, output
        self.job = jobs.start(command, cwd=output.parent)

    def finish(self, jobs: processes.Jobs, c_file: Path) -> subprocess.CompletedProcess:
        """Give the compiler `c_file` (an #include of it: a line that fits in the pipe
        at once, and the file's own directory for its includes, as when compiled
        itself) and wait for it; its messages as a compile of `c_file` gives them."""
        quoted = str(c_file).replace("\\", "\\\\").replace('"', '\\"')
        self.pipe.feed(f'#include "{quoted}"\n', self.job)
        finished = jobs.finish(self.job)
        finished.stderr = _as_if_plain(finished.stderr, c_file)
        return finished

    def cancel(self) -> None:
        """Not needed after all: the compiler is stopped and its pipe removed."""
        processes.kill(self.job)
        self.pipe.close()


# the stub's include of the C file, from gcc's include chains
_THROUGH_STUB = re.compile(r"(?:,\n\s+from|^In file included from) early_stub\.\w+:\d+:\n",
                           re.MULTILINE)


def _as_if_plain(messages: str, c_file: Path) -> str:
    """The compiler's messages with the stub left out and the C file named as when it
    is compiled itself."""
    messages = _THROUGH_STUB.sub(lambda m: ":\n" if m[0].startswith(",") else "", messages)
    return messages.replace(str(c_file), c_file.name)


def start(jobs: processes.Jobs, toolchain: Toolchain, include_flags: list[str],
          sources: tuple[str, ...], folder: Path, artifact: str) -> EarlyCompile | None:
    """The early compile of a cell into `folder`/`artifact`, or None where there is no
    named pipe."""
    pipe = tailpipe.open_in(folder)
    if pipe is None:
        return None
    suffix = ".cpp" if toolchain.cplus else ".c"
    stub = folder / f"early_stub{suffix}"
    stub.write_text(STUB_LINES + pipe.include_line())
    output = folder / artifact
    command = [toolchain.compiler, *include_flags, *toolchain.flags, "-pipe", stub.name,
               *sources, "-o", output.name, *toolchain.link_flags]
    return EarlyCompile(jobs, pipe, command, output)
