"""The end of a translation unit, handed to a compiler that is already reading its start.

A cell's translation unit is the cell followed by its trampolines, and the trampolines
need libclang's reading of the cell. So that g++ loads its precompiled headers and
parses the cell while libclang reads it (two cores instead of one after the other),
the cell file ends with `#include "<fifo>"`, and the trampolines are written into that
named pipe once they exist: g++ waits at the include until then.

The pipe is opened read-write here before g++ starts, so g++'s open never blocks and
g++ sees end-of-file when this side closes: if this process dies, the compiler reads a
truncated file, fails and exits (it is never left waiting). This side closes only once
g++ has read everything (or has ended), because a pipe that nobody holds open loses
what was written into it. Linux only (a read-write open of a FIFO is Linux's
behaviour); elsewhere `open_in` gives None and the unit is written whole, as before.
"""
from __future__ import annotations

import fcntl
import os
import select
import struct
import subprocess
import sys
import termios
from pathlib import Path

_POLL_S = 0.002


def open_in(folder: Path) -> "TailPipe | None":
    """A TailPipe in `folder`, or None where there can be none (not Linux, or a file
    system without named pipes): then the unit is written whole."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return TailPipe(folder / "trampolines.fifo")
    except OSError:
        return None


class TailPipe:
    """A named pipe at `path` whose content is given later, with `feed`."""

    def __init__(self, path: Path):
        self.path = path
        os.mkfifo(path, 0o600)
        self._fd: int | None = os.open(path, os.O_RDWR | os.O_NONBLOCK)

    def include_line(self) -> str:
        return f'#include "{self.path}"\n'

    def feed(self, text: str, reader: subprocess.Popen) -> None:
        """Write `text` and close, once `reader` has read it all (or has ended)."""
        data = memoryview(text.encode())
        while data and reader.poll() is None:
            try:
                data = data[os.write(self._fd, data):]
            except BlockingIOError:  # the pipe is full until g++ reaches the include
                select.select([], [self._fd], [], _POLL_S)
        while self._unread() and reader.poll() is None:
            select.select([], [], [], _POLL_S)
        self.close()

    def _unread(self) -> int:
        return struct.unpack("i", fcntl.ioctl(self._fd, termios.FIONREAD, b"\0\0\0\0"))[0]

    def close(self) -> None:
        """End the pipe (g++ reads end-of-file) and remove it (no named pipe is
        published with the cache entry); safe to call twice."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        try:
            os.unlink(self.path)  # g++, which opened it, reads on
        except FileNotFoundError:
            pass
