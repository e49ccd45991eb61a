"""The compiler processes of one build, killed with everything they started when the
build stops early.

Each compiler runs in a process group of its own, so that killing it also kills what
it started (cc1plus, as, collect2/ld): killing only the `g++` driver, as
`subprocess.run` does on Ctrl-C, leaves cc1plus running. A build that fails or is
interrupted (KeyboardInterrupt) kills every process it started before the exception
goes on.
"""
from __future__ import annotations

import os
import signal
import subprocess

from ...errors import CompileError


class Jobs:
    """`with Jobs() as jobs:` start compilers with `jobs.start`, wait with `finish`."""

    def __init__(self):
        self._started: list[subprocess.Popen] = []

    def __enter__(self) -> "Jobs":
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if exc_type is not None:
            for job in self._started:
                _kill_group(job)

    def start(self, command: list[str]) -> subprocess.Popen:
        job = subprocess.Popen([str(part) for part in command], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
        self._started.append(job)
        return job

    def finish(self, job: subprocess.Popen) -> subprocess.CompletedProcess:
        out, err = job.communicate()
        return subprocess.CompletedProcess(job.args, job.returncode, out, err)

    def run(self, command: list[str]) -> subprocess.CompletedProcess:
        return self.finish(self.start(command))


def run(command: list[str], what: str) -> None:
    """Run one compiler command; CompileError naming `what` if it fails."""
    with Jobs() as jobs:
        result = jobs.run(command)
    if result.returncode != 0:
        raise CompileError("C++", f"{what} failed:\n{result.stderr}", command)


def _kill_group(job: subprocess.Popen) -> None:
    if job.poll() is None:
        try:
            os.killpg(job.pid, signal.SIGKILL)  # the group is the job's own (its pid)
        except ProcessLookupError:
            pass
    try:
        job.wait()
    finally:
        for stream in (job.stdout, job.stderr):
            if stream is not None:
                stream.close()
