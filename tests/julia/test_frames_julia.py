"""Julia frames in Python tracebacks (bridges/julia/frames.py), and juliacall's own Python
frames treated as plumbing by the hub and the traceback splicer. No Julia is needed:
the stack lines are the text Julia's `show(io, ::StackFrame)` prints, and the juliacall
frame is made the way PythonCall makes its wrapper methods (Python code compiled under
a .jl file name, run in juliacall's globals)."""
import traceback

import pytest

from polymagic import hub
from polymagic.bridges.julia.frames import julia_traceback_frames, parse_frame
from polymagic.tracebacks import is_plumbing_frame, splice

PYTHONCALL_FILE = "/home/user/.julia/packages/PythonCall/Wx4pT/src/JlWrap/any.jl"


@pytest.mark.parametrize("shown, function, filename, line", [
    ("top-level scope at In[7]:5", "top-level scope", "In[7]", 5),
    ("fib(n::Int64) at cell-3:2", "fib", "cell-3", 2),
    ("g(x::Vector{T}) where T at cell-3:9", "g", "cell-3", 9),
    ('(::var"#1#2")(x::Int64) at In[4]:1', '(::var"#1#2")', "In[4]", 1),
    ("total(v::Vector{Float64}) at In[5]:2 [inlined]", "total", "In[5]", 2),
    ("macro expansion at In[3]:4 [inlined]", "macro expansion", "In[3]", 4),
    ('var"#f#3"(k::Int64, ::typeof(f), x::Int64) at In[6]:1', 'var"#f#3"', "In[6]", 1),
    ("(::PythonFunction)(args::Int64; kwargs::@Kwargs{}) at julia.jl:80",
     "(::PythonFunction)", "julia.jl", 80),
    ('f(x::Val{Symbol(" at ")}) at cell-1:3', "f", "cell-1", 3),
    ("jl_apply at julia.h:?", "jl_apply", "julia.h", 0),
], ids=["top-level", "plain", "where", "closure", "inlined", "inlined-macro", "kwbody",
        "callable-struct", "at-in-type", "unknown-line"])
def test_shown_julia_frames_are_parsed(shown, function, filename, line):
    """Each form Julia prints becomes a frame with the callee, the file and the line."""
    frame = parse_frame(shown)
    assert (frame.function, frame.filename, frame.line) == (function, filename, line)


def test_lines_without_a_location_give_no_frame():
    """A frame Julia prints without ` at file:line` is skipped; the others keep order."""
    frames = julia_traceback_frames(["top-level scope at In[7]:5", "macro expansion",
                                     "  g(x::Vector{Float64}, y::Int64) at cell-3:9"])
    assert [(f.function, f.filename, f.line) for f in frames] == [
        ("top-level scope", "In[7]", 5), ("g", "cell-3", 9)]


def juliacall_wrapper(function):
    """A Python function compiled under PythonCall's file name into juliacall-like
    globals, calling `function`: what AnyValue.__call__ is to a Julia callback."""
    source = "def __call__(*args):\n    return target(*args)\n"
    namespace = {"__name__": "juliacall", "target": function}
    exec(compile(source, PYTHONCALL_FILE, "exec"), namespace)
    return namespace["__call__"]


def test_juliacall_frames_are_plumbing():
    """A frame running in juliacall's globals is plumbing whatever its file name."""
    seen = []
    juliacall_wrapper(lambda: seen.append(__import__("sys")._getframe(1)))()
    assert is_plumbing_frame(seen[0])


def test_the_hub_looks_past_juliacall_frames(monkeypatch):
    """`py.f` from Julia in a plain script: the caller lookup skips juliacall's wrapper
    frame and finds the script's globals, not juliacall's (which have no `f`)."""
    monkeypatch.setitem(hub._state, "explicit", None)
    monkeypatch.setitem(hub._state, "ipython", None)
    found = juliacall_wrapper(hub.namespace)()
    assert found is globals()


def test_splicing_drops_juliacall_frames():
    """An error rising through juliacall's wrapper loses that frame when spliced; the
    user's frames stay."""
    def users_callback():
        raise LookupError("from the user's callback")

    try:
        juliacall_wrapper(users_callback)()
    except LookupError as caught:
        error = splice(caught, [])
    files = [frame.filename for frame in traceback.extract_tb(error.__traceback__)]
    assert PYTHONCALL_FILE not in files
    assert any(name == "users_callback" for name in
               (frame.name for frame in traceback.extract_tb(error.__traceback__)))
