"""Long work shown while it runs: what is being done and the time so far.

`with progress("C++ cell `int add(int a, int b)`"):` shows nothing if the body ends
within a moment (POLYMAGIC_PROGRESS_DELAY seconds, 1 by default). After that a timer
thread shows the label and the elapsed time, redrawn in place every half second:

- in a notebook (an IPython kernel), as a display in the running cell, updated through
  its display_id and removed when the work ends;
- elsewhere, on stderr: one line redrawn in place and erased at the end on a terminal;
  a line when it starts being shown and one when it ends when stderr is a file or pipe.

Jupyter can update a display but not delete one: the only removal is `clear_output`,
which empties the whole cell. So when the work runs inside a polymagic cell magic
(`whole_cell`: the cell is the magic's alone) and nothing else was written while it
ran, the cell is cleared, and the saved notebook keeps nothing; otherwise (a build
started by `pm.cpp()` among other code, `--verbose` output) the display is emptied,
which shows nothing but leaves an empty output behind.

Only work on the main thread is shown: background work (Cython's shared module) is
not what the user is waiting for. Work inside shown work (a build step inside a cell's
build) adds no second display.
"""
from __future__ import annotations

import contextlib
import contextvars
import functools
import sys
import threading
import time

from .config import option
from .errors import ConfigError

DEFAULT_DELAY_S = 1.0
REDRAW_INTERVAL_S = 0.5

_running: list = []  # the progress being shown (main thread only, so no lock)
_whole_cell: list = []  # polymagic cell magics running (main thread only)


@contextlib.contextmanager
def progress(label: str, *, delay: float | None = None):
    """Show `label` and the elapsed time while the body runs longer than `delay`
    seconds (default: POLYMAGIC_PROGRESS_DELAY, else 1 s); remove it when it ends."""
    if threading.current_thread() is not threading.main_thread() or _running:
        yield
        return
    shown = _Progress(label, _delay() if delay is None else delay)
    _running.append(shown)
    shown.start()
    try:
        yield
    except BaseException:
        shown.stop(ok=False)
        raise
    else:
        shown.stop(ok=True)
    finally:
        _running.remove(shown)


def whole_cell(method):
    """Decorate a cell magic: while it runs, the cell's output is its own, so progress
    shown in it may be removed with `clear_output` (see the module docstring)."""
    @functools.wraps(method)
    def cell_magic(self, line, cell=None, *args, **kwargs):
        if cell is None:  # a line magic (%R x) shares its cell with other code
            return method(self, line, *args, **kwargs)
        _whole_cell.append(method)
        try:
            return method(self, line, cell, *args, **kwargs)
        finally:
            _whole_cell.pop()
    return cell_magic


def cell_label(language: str, source: str, width: int = 40) -> str:
    """'C++ cell `int add(int a, int b) {`': the language and the cell's first line
    that is code (not blank, a comment, an include or an import), cut to `width`."""
    for line in source.splitlines():
        text = line.strip()
        if text and not text.startswith(_NOT_CODE):
            if len(text) > width:
                text = text[:width - 1] + "…"
            return f"{language} cell `{text}`"
    return f"{language} cell"


_NOT_CODE = ("#", "//", "/*", "*", "import ", "from ", "cimport ", "using ")


def describe(label: str, elapsed: float) -> str:
    """The text shown: 'Building <label>: 3.5 s'."""
    return f"Building {label}: {elapsed:.1f} s"


def _delay() -> float:
    text = option("progress_delay")
    if text is None:
        return DEFAULT_DELAY_S
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"environment variable POLYMAGIC_PROGRESS_DELAY={text!r} is not "
                          f"a number of seconds") from None


class _Progress:
    """A timer thread that shows the work once `delay` has passed, then redraws it."""

    def __init__(self, label: str, delay: float):
        self.label = label
        self.delay = delay
        self.started = time.perf_counter()
        self.finished = threading.Event()
        self.view = None
        self.writes = _WriteWatch() if _whole_cell and _kernel_shell() else None
        # The thread runs in the caller's context: ipykernel routes a display to the
        # cell whose request set the context, i.e. the cell that is waiting.
        context = contextvars.copy_context()
        self.thread = threading.Thread(target=context.run, args=(self._run,),
                                       name="polymagic-progress", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self, ok: bool) -> None:
        self.finished.set()
        self.thread.join()
        written = self.writes.stop() if self.writes is not None else True
        if self.view is not None:
            self.view.close(describe(self.label, self.elapsed()), ok,
                            clear_cell=not written)

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def _run(self) -> None:
        if self.finished.wait(self.delay):
            return
        self.view = _view()
        self.view.show(describe(self.label, self.elapsed()))
        while not self.finished.wait(REDRAW_INTERVAL_S):
            self.view.update(describe(self.label, self.elapsed()))


class _WriteWatch:
    """Whether anything was written to sys.stdout or sys.stderr while it watched."""

    def __init__(self):
        self.written = False
        self.streams = {"stdout": sys.stdout, "stderr": sys.stderr}
        for name, stream in self.streams.items():
            setattr(sys, name, _NotingStream(stream, self))

    def stop(self) -> bool:
        for name, stream in self.streams.items():
            if isinstance(getattr(sys, name), _NotingStream):
                setattr(sys, name, stream)
        return self.written


class _NotingStream:
    """A stream that notes a write, then passes everything on to the real one."""

    def __init__(self, stream, watch: _WriteWatch):
        self._stream = stream
        self._watch = watch

    def write(self, text):
        if text:
            self._watch.written = True
        return self._stream.write(text)

    def __getattr__(self, name):
        return getattr(self._stream, name)


def _view():
    """Where progress goes: the notebook's output area, else stderr."""
    if _kernel_shell() is not None:
        return _NotebookView()
    stream = sys.stderr
    return _TerminalView(stream) if _is_terminal(stream) else _LogView(stream)


def _kernel_shell():
    """The IPython shell of a Jupyter kernel, if this process is one (IPython is not
    imported for the question)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return shell if getattr(shell, "kernel", None) is not None else None


def _is_terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


class _NotebookView:
    """A display in the running cell, updated in place and removed at the end."""

    def show(self, text: str) -> None:
        from IPython.display import display
        self.handle = display({"text/plain": text}, raw=True, display_id=True)

    def update(self, text: str) -> None:
        self.handle.update({"text/plain": text}, raw=True)

    def close(self, text: str, ok: bool, clear_cell: bool) -> None:
        if clear_cell:  # the cell holds nothing else: remove the display itself
            from IPython.display import clear_output
            clear_output()
        else:  # an empty bundle shows nothing (an empty output stays in the file)
            self.handle.update({}, raw=True)


class _TerminalView:
    """One line on a terminal, redrawn in place and erased at the end."""

    def __init__(self, stream):
        self.stream = stream

    def show(self, text: str) -> None:
        self.update(text)

    def update(self, text: str) -> None:
        self.stream.write(f"\r{text}\x1b[K")
        self.stream.flush()

    def close(self, text: str, ok: bool, clear_cell: bool) -> None:
        self.stream.write("\r\x1b[K")
        self.stream.flush()


class _LogView:
    """A file or pipe cannot be redrawn: a line when shown and one at the end."""

    def __init__(self, stream):
        self.stream = stream

    def show(self, text: str) -> None:
        self.stream.write(f"polymagic: {text} ...\n")
        self.stream.flush()

    def update(self, text: str) -> None:
        pass

    def close(self, text: str, ok: bool, clear_cell: bool) -> None:
        self.stream.write(f"polymagic: {text}, {'done' if ok else 'failed'}\n")
        self.stream.flush()
