"""Julia stack lines as traceback frames.

PolymagicBridge.jl sends the user's frames as Julia prints a `StackFrame` (`show`,
base/stacktraces.jl): the call (`show_spec_linfo`), then ` at <basename of the file>:<line>`
(`?` when the line is unknown), then ` [inlined]` for inlined frames:

    top-level scope at In[7]:2
    fib(n::Int64) at cell-3:4
    g(x::Vector{T}) where T at cell-3:9
    (::var"#1#2")(x::Int64) at In[4]:1
    total(v::Vector{Float64}) at In[5]:2 [inlined]
    var"#f#3"(k::Int64, ::typeof(f), x::Int64) at In[6]:1

A line without ` at file:line` (a C frame) gives no frame.
"""
from __future__ import annotations

import re

from ...tracebacks import ForeignFrame

# The last " at " starts the location (a shown type could contain " at " itself).
_SHOWN_FRAME = re.compile(r"^(?P<call>.+) at (?P<file>[^:]+):(?P<line>\d+|\?)"
                          r"(?: \[inlined\])?$")


def julia_traceback_frames(stack: list[str]) -> list[ForeignFrame]:
    """Julia stack lines (outermost first) as traceback frames."""
    frames = []
    for text in stack:
        frame = parse_frame(text.strip())
        if frame is not None:
            frames.append(frame)
    return frames


def parse_frame(text: str) -> ForeignFrame | None:
    """One shown StackFrame as a ForeignFrame (line 0 when Julia printed `?`), or None."""
    shown = _SHOWN_FRAME.match(text)
    if shown is None:
        return None
    line = shown.group("line")
    return ForeignFrame("Julia", function_name(shown.group("call")), shown.group("file"),
                        int(line) if line.isdigit() else 0)


def function_name(call: str) -> str:
    """The callee of a shown call: 'fib(n::Int64)' -> 'fib', '(::var"#1#2")(x)' ->
    '(::var"#1#2")', 'g(x::T) where T' -> 'g'; 'top-level scope' stays as it is."""
    end = _callee_end(call)
    return call[:end].strip() or call.strip()


def _callee_end(call: str) -> int:
    """Where the callee ends: at the '(' that opens the argument list, skipping a
    parenthesised callee and `var"..."` names (which may hold any character)."""
    position, depth = 0, 0
    while position < len(call):
        if call.startswith('var"', position):
            position = _after_quoted(call, position + 3)
            continue
        char = call[position]
        if char == "(":
            if depth == 0 and position > 0:
                return position
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return position + 1
        position += 1
    return len(call)


def _after_quoted(text: str, quote: int) -> int:
    """The index after the string literal whose opening quote is at `quote`."""
    position = quote + 1
    while position < len(text):
        if text[position] == "\\":
            position += 2
            continue
        if text[position] == '"':
            return position + 1
        position += 1
    return len(text)
