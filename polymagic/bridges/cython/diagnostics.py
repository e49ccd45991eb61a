"""Cython's and the C compiler's diagnostics, with positions turned into cell lines."""
from __future__ import annotations

import re
from pathlib import Path

def unencodable_text(source: str) -> tuple[str, list[int]] | None:
    """A diagnostic (`cell:LINE:COL: error: ...`) and its line for the first character
    of the cell that cannot be written as UTF-8 (a lone surrogate), or None."""
    try:
        source.encode("utf-8")
        return None
    except UnicodeEncodeError as bad:
        before = source[:bad.start]
        line = before.count("\n") + 1
        column = bad.start - (before.rfind("\n") + 1) + 1
        return (f"cell:{line}:{column}: error: character {source[bad.start]!r} cannot be "
                "encoded as UTF-8 (a lone surrogate, e.g. from a broken copy and paste); "
                "remove or replace it", [line])


_CYTHON_POSITION = re.compile(r"^(?P<warn>warning: )?(?P<file>\S+?):(?P<line>\d+):"
                              r"(?P<col>\d+): (?P<message>.*)$")


def map_cython_listing(report: str, pyx_name: str) -> tuple[str, list[int]]:
    """Cython's error listing with positions as `cell:LINE:COL`; the error lines."""
    out, lines = [], []
    for raw in report.splitlines():
        match = _CYTHON_POSITION.match(raw)
        if match and Path(match["file"]).name == pyx_name:
            kind = "warning" if match["warn"] else "error"
            out.append(f"cell:{match['line']}:{match['col']}: {kind}: {match['message']}")
            if kind == "error":
                lines.append(int(match["line"]))
        elif raw.strip() and not raw.startswith(("Error compiling Cython file", "---")):
            out.append(raw)
    return "\n".join(out), lines


_C_POSITION = re.compile(r"^(?P<prefix>In file included from |\s+from )?(?P<file>[^\s:]"
                         r"[^:]*):(?P<line>\d+)(?::(?P<col>\d+))?(?P<rest>[:,].*)?$")


def map_c_diagnostics(stderr: str, c_file: Path, source: str) -> tuple[str, list[int]]:
    """C compiler output with cell positions as `cell:LINE:COL`; the cell lines of errors.

    Lines of the cell reach the compiler through Cython's `#line` directives. Code that
    Cython copies without a `#line` (verbatim C blocks, `cdef extern from "x.h"`
    includes) is found in the cell by its text.
    """
    pyx_name = c_file.with_suffix(".pyx").name
    c_lines = c_file.read_text(encoding="utf-8").splitlines()
    cell_lines = source.splitlines()
    out, error_lines, include_line = [], [], None
    for raw in stderr.splitlines():
        match = _C_POSITION.match(raw)
        if not match:  # e.g. "x.pyx: In function 'f':", or a source excerpt
            out.append(raw.replace(pyx_name, "cell").replace(c_file.name, "cell (C)"))
            continue
        name, line = Path(match["file"]).name, int(match["line"])
        cell_line = None
        if name == pyx_name:
            cell_line = line
        elif name == c_file.name:
            cell_line = _cell_line_of_c_line(c_lines, line, cell_lines)
        ours = name in (pyx_name, c_file.name)
        if match["prefix"]:  # an include chain: remember the cell line it starts from
            include_line = cell_line if match["prefix"].startswith("In") else \
                (include_line or cell_line)
            out.append(raw)
            continue
        if not ours:
            cell_line = include_line  # inside a header that the cell included
        else:
            include_line = None
        rest = match["rest"] or ""
        if cell_line is None:
            out.append(raw)
            continue
        where = f"cell:{cell_line}"  # no column: #line maps lines, not columns
        out.append(where + ("" if ours else f" (in {match['file']}:{line})") + rest)
        if re.match(r"^: (fatal )?error:", rest):
            error_lines.append(cell_line)
    return "\n".join(out), error_lines


def _cell_line_of_c_line(c_lines: list[str], number: int, cell_lines: list[str]):
    """The cell line that produced C line `number`, for code copied without #line."""
    if not 0 < number <= len(c_lines):
        return None
    text = c_lines[number - 1].strip()
    include = re.match(r'#include\s+["<](?P<header>[^">]+)[">]', text)
    for index, cell_text in enumerate(cell_lines, start=1):
        if include:
            if "extern from" in cell_text and (f'"{include["header"]}"' in cell_text or
                                               f"'{include['header']}'" in cell_text):
                return index
        elif text and cell_text.strip() == text:
            return index
    return None
