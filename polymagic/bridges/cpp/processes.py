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
import time

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
    killed = job.poll() is None
    if killed:
        try:
            os.killpg(job.pid, signal.SIGKILL)  # the group is the job's own (its pid)
        except ProcessLookupError:
            killed = False
    try:
        job.wait()
        if killed:
            _wait_for_group(job.pid)
    finally:
        for stream in (job.stdout, job.stderr):
            if stream is not None:
                stream.close()


def _wait_for_group(group: int, limit_s: float = 5.0) -> None:
    """Until no process of `group` runs: the driver dies first, and cc1plus (tearing
    down a large precompiled header) may take milliseconds more. Its zombie, which
    nobody may reap for a while, does not count. Linux only (/proc)."""
    deadline = time.monotonic() + limit_s
    while _running_in_group(group) and time.monotonic() < deadline:
        time.sleep(0.002)


def _running_in_group(group: int) -> bool:
    try:
        entries = [entry.name for entry in os.scandir("/proc") if entry.name.isdigit()]
    except OSError:
        return False
    for pid in entries:
        try:
            with open(f"/proc/{pid}/stat", "rb") as stat:
                line = stat.read()
        except OSError:
            continue  # gone meanwhile
        state, _parent, process_group = line[line.rindex(b")") + 2:].split()[:3]
        if int(process_group) == group and state != b"Z":
            return True
    return False
