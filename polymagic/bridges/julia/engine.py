"""Julia embedded in the process through juliacall (PythonCall.jl): `pm.julia`.

Julia starts on first use, once, in the calling thread, and only after locate.py found
a Julia executable: importing juliacall without one makes juliapkg download Julia, which
polymagic does only when POLYMAGIC_JULIA_AUTOINSTALL=yes. Julia is entered only from the
thread that started it (a foreign thread can crash it), under a reentrant lock because
calls come back in (Python -> Julia -> Python -> Julia ...).

    from polymagic.bridges.julia import julia
    julia.eval("f(x) = 2x")          # evaluates in Main, returns the last value
    julia["x"] = numpy_array          # a Julia Array on the same memory
    julia["x"]                        # a numpy view of the Julia array
    julia["f"](3)                     # Julia functions are Python callables
"""
from __future__ import annotations

import itertools
import os
import re
import sys
import threading

from ... import config
from ...errors import BridgeUnavailable, JuliaError, ThreadError
from ...hub import NamespaceProxy
from ...tracebacks import ForeignFrame, register_source, splice
from ...marshal.julia import JULIA_SOURCE as CONVERSION_SOURCE
from .locate import HOW_TO_GET_JULIA, locate_julia

HELPER_MODULE = "PolymagicBridge"

EVAL_SOURCE = r'''
# Run `f` with stdout and stderr sent to a pipe that a task drains (no deadlock when the
# output outgrows the pipe buffer); returns f's value and the text it printed.
function capture_output(f)
    pipe = Pipe()
    Base.link_pipe!(pipe; reader_supports_async = true, writer_supports_async = true)
    old_stdout, old_stderr = stdout, stderr
    redirect_stdout(pipe.in)
    redirect_stderr(pipe.in)
    reader = @async read(pipe.out, String)
    local result
    try
        result = f()
    finally
        redirect_stdout(old_stdout)
        redirect_stderr(old_stderr)
        close(pipe.in)
    end
    return result, fetch(reader)
end

function run_cell(code::String, filename::String)
    try
        return (true, include_string(Main, code, filename), nothing)
    catch err
        return (false, err, catch_backtrace())
    end
end

unwrap_load_error(err) = err isa LoadError ? unwrap_load_error(err.error) : err

# The innermost frame inside this cell gives the line; else the LoadError's line.
function cell_line(err, backtrace, filename::String)
    for frame in stacktrace(backtrace)
        string(frame.file) == filename && return Int(frame.line)
    end
    err isa LoadError && err.file == filename && return Int(err.line)
    return 0
end

# The user's frames, innermost first: up to the cell's top level, or to PythonCall's
# own frames (when the error came through a call from Python).
user_frames(::Nothing) = Base.StackTraces.StackFrame[]
function user_frames(backtrace)
    frames = stacktrace(backtrace)
    kept = Base.StackTraces.StackFrame[]
    for frame in frames
        occursin("PythonCall", string(frame.file)) && break
        push!(kept, frame)
        frame.func === Symbol("top-level scope") && break
    end
    return kept
end

function describe_error(err, backtrace)
    inner = unwrap_load_error(err)
    message = sprint(showerror, inner; context = :limit => true)
    stack = join(reverse([sprint(show, frame) for frame in user_frames(backtrace)]), "\n")
    return (message, stack, inner isa InterruptException)
end

# (ok, value, output, message, stack, line, python_exception, interrupted)
function eval_cell(code::String, filename::String)
    (ok, value, backtrace), output = capture_output(() -> run_cell(code, filename))
    ok && return (true, value, output, "", "", 0, nothing, false)
    inner = unwrap_load_error(value)
    line = cell_line(value, backtrace, filename)
    if inner isa PythonCall.PyException
        return (false, nothing, output, "", "", line, inner.v, false)
    end
    message, stack, interrupted = describe_error(inner, backtrace)
    return (false, nothing, output, message, stack, line, nothing, interrupted)
end

assign_global(name::String, value) =
    (Core.eval(Main, Expr(:(=), Symbol(name), QuoteNode(value))); nothing)
has_global(name::String) = isdefined(Main, Symbol(name))
get_global(name::String) = getfield(Main, Symbol(name))

# Rich `display(x)` from Julia code goes to IPython (PythonCall's own display).
function push_ipython_display()
    any(d -> d isa PythonCall.Compat.IPythonDisplay, Base.Multimedia.displays) ||
        pushdisplay(PythonCall.Compat.IPythonDisplay())
    return nothing
end
'''


def _module_source() -> str:
    return (f"module {HELPER_MODULE}\n{CONVERSION_SOURCE}\n{EVAL_SOURCE}\nend\n"
            f"{HELPER_MODULE}\n")


class JuliaBridge:
    """The embedded Julia session: eval, get/set globals in Main, calls both ways."""

    def __init__(self):
        self._lock = threading.RLock()
        self._thread: int | None = None
        self._juliacall = None
        self._helpers = None
        self._converter = None
        self._cells = itertools.count(1)
        self.install = None  # the JuliaInstall in use, once started

    # -- lifecycle -------------------------------------------------------------------
    def start(self):
        """Start Julia (once) and return juliacall's Main; cheap after the first call."""
        if self._juliacall is not None:
            self.check_thread()
            return self._juliacall.Main
        with self._lock:
            if self._juliacall is None:
                self._boot()
        return self._juliacall.Main

    def is_started(self) -> bool:
        return self._juliacall is not None

    def check_thread(self) -> None:
        """Raise ThreadError unless called from the thread Julia was started in."""
        if threading.get_ident() != self._thread:
            raise ThreadError("Julia runs in the thread that started it and cannot be "
                              "entered from another thread (juliacall would crash); call "
                              "it from that thread (in a notebook, the kernel's main thread)")

    def _boot(self) -> None:
        self._prepare_environment()
        juliacall = _import_juliacall()
        helpers = juliacall.Main.seval(_module_source())
        from ...marshal.julia import JuliaConverter
        self._converter = JuliaConverter(juliacall, helpers, self.call)
        self._helpers = helpers
        self._thread = threading.get_ident()
        self._juliacall = juliacall
        # `py` in Julia: the shared Python namespace (polymagic.hub), e.g. py.f(3)
        juliacall.Main.seval("function (x) global py = x; nothing end")(
            NamespaceProxy("Julia"))

    def _prepare_environment(self) -> None:
        """Point juliapkg at the Julia we found, or refuse before any download."""
        try:
            self.install = locate_julia()
        except BridgeUnavailable:
            if not config.flag("julia_autoinstall"):
                raise
            return  # opted in: juliapkg may download Julia now
        if not (os.environ.get("PYTHON_JULIACALL_EXE")
                and os.environ.get("PYTHON_JULIACALL_PROJECT")):
            os.environ["PYTHON_JULIAPKG_EXE"] = self.install.path
        # juliacall would register its own %julia magic over ours.
        os.environ.setdefault("PYTHON_JULIACALL_AUTOLOAD_IPYTHON_EXTENSION", "no")

    # -- evaluation ------------------------------------------------------------------
    def eval(self, code: str, *, filename: str | None = None, copy: bool | None = None):
        """Evaluate Julia `code` in Main (as a file named `filename`, default 'cell-N'),
        print what it printed, return its last value converted."""
        self.start()
        with self._lock:
            filename = filename or f"cell-{next(self._cells)}"
            register_source(filename, code)  # tracebacks show the Julia lines
            result = self._helpers.eval_cell(code, filename)
            ok, value, output, message, stack, line, python_error, interrupted = result
            if output:
                sys.stdout.write(output)
                sys.stdout.flush()
            if not ok:
                self._raise_cell_error(code, filename, message, stack, line,
                                       python_error, interrupted, output)
            return self._converter.to_python(value, copy)

    @staticmethod
    def _raise_cell_error(code, filename, message, stack, line, python_error,
                          interrupted, output):
        if python_error is not None:  # a Python callback raised: the same object again
            if hasattr(python_error, "add_note"):  # Python >= 3.11
                python_error.add_note(f"(raised in Python code called from Julia, cell "
                                      f"line {line or '?'})")
            frames = [ForeignFrame("Julia", "top-level scope", filename, line)] \
                if line else []
            raise splice(python_error, frames)
        if interrupted:
            raise KeyboardInterrupt("Julia was interrupted")
        stack = stack.splitlines() if stack else []
        raise splice(JuliaError(message, stack, line or None, source=code, output=output),
                     julia_traceback_frames(stack))

    # -- globals ---------------------------------------------------------------------
    def __getitem__(self, name: str):
        return self.get(name)

    def __setitem__(self, name: str, value) -> None:
        self.assign(name, value)

    def __contains__(self, name: str) -> bool:
        self.start()
        with self._lock:
            return bool(self._helpers.has_global(name))

    def get(self, name: str, copy: bool | None = None):
        """The value of Main.`name`, converted (arrays as numpy views); KeyError if unset."""
        self.start()
        with self._lock:
            if not self._helpers.has_global(name):
                raise KeyError(f"Julia has no global named {name!r} in Main")
            value = self._call_julia(self._helpers.get_global, name)
            return self._converter.to_python(value, copy)

    def assign(self, name: str, value, copy: bool | None = None,
               shared_writes: bool = False) -> None:
        """Main.`name` = `value`, converted (numpy arrays as views: read-only for Julia,
        or Julia `Array`s sharing writes when `shared_writes`)."""
        self.start()
        with self._lock:
            julia_value = self._converter.to_julia(value, copy, shared_writes)
            self._call_julia(self._helpers.assign_global, name, julia_value)

    # -- calls -----------------------------------------------------------------------
    def call(self, function, *args, **kwargs):
        """Call a Julia function (a JuliaFunction or juliacall value) with converted
        arguments; returns the converted result."""
        self.start()
        target = getattr(function, "julia_function", function)
        with self._lock:
            to_julia = self._converter.to_julia
            args = [to_julia(arg) for arg in args]
            kwargs = {key: to_julia(arg) for key, arg in kwargs.items()}
            return self._converter.to_python(self._call_julia(target, *args, **kwargs))

    def _call_julia(self, function, *args, **kwargs):
        """Call into Julia; juliacall's JuliaError becomes polymagic's JuliaError."""
        try:
            return function(*args, **kwargs)
        except self._juliacall.JuliaError as error:
            message, stack, interrupted = self._helpers.describe_error(
                error.exception, error.backtrace)
            if interrupted:
                raise KeyboardInterrupt("Julia was interrupted") from error
            stack = stack.splitlines() if stack else []
            raise splice(JuliaError(message, stack),
                         julia_traceback_frames(stack)) from error

    # -- IPython ---------------------------------------------------------------------
    def enable_ipython_display(self) -> None:
        """Make Julia's `display(x)` show rich output (plots, HTML) in IPython."""
        self.start()
        with self._lock:
            self._helpers.push_ipython_display()

    @property
    def main(self):
        """juliacall's Main module, for anything this API does not cover."""
        return self.start()


# How Julia shows a StackFrame: "fib(n::Int64) at cell-3:4", "top-level scope at In[7]:2"
_JULIA_FRAME = re.compile(r"^(?P<function>[^(]+?)(?:\(.*\))? at (?P<file>\S+):(?P<line>\d+)$")


def julia_traceback_frames(stack: list[str]) -> list[ForeignFrame]:
    """Julia stack lines (outermost first) as traceback frames; lines that are not
    `function at file:line` (inlined or C frames) give none."""
    frames = []
    for text in stack:
        found = _JULIA_FRAME.match(text.strip())
        if found:
            frames.append(ForeignFrame("Julia", found.group("function").strip(),
                                       found.group("file"), int(found.group("line"))))
    return frames


def _import_juliacall():
    try:
        import juliacall
    except ImportError as error:
        raise BridgeUnavailable(
            "Julia", f"juliacall cannot be imported ({error})",
            "pip install 'polymagic[julia]'. " + HOW_TO_GET_JULIA) from error
    except Exception as error:  # juliapkg/juliacall raise bare Exception on failure
        raise BridgeUnavailable("Julia", f"juliacall could not start Julia: {error}",
                                HOW_TO_GET_JULIA) from error
    return juliacall


julia = JuliaBridge()
