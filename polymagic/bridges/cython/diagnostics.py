"""Cython's and the C compiler's diagnostics, with positions turned into cell lines."""
from __future__ import annotations

import re
from pathlib import Path

from ...toolchain import EXCERPT, cell_remarks, first_error_first

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


def map_cython_listing(report: str, pyx_name: str,
                       source: str | None = None) -> tuple[str, list[int]]:
    """Cython's error listing with positions as `cell:LINE:COL`, each followed by the
    cell line and a caret (with `source`) instead of Cython's excerpt above it, first
    error first; the error lines."""
    out, lines, rules_left = [], [], 0
    cell = source.splitlines() if source is not None else []
    for raw in report.splitlines():
        if raw.startswith("Error compiling Cython file"):
            rules_left = 2  # the excerpt lies between the next two ---- lines
            continue
        if rules_left:
            rules_left -= raw.startswith("-" * 20)
            continue
        match = _CYTHON_POSITION.match(raw)
        if match and Path(match["file"]).name == pyx_name:
            kind = "warning" if match["warn"] else "error"
            line, column = int(match["line"]), int(match["col"])
            out.append(f"cell:{line}:{column}: {kind}: {match['message']}")
            if 0 < line <= len(cell):  # Cython's columns count from 0
                out += [f"{line:>5} | {cell[line - 1]}", f"{'':>5} | {' ' * column}^"]
            if kind == "error":
                lines.append(line)
        elif raw.strip():
            out.append(raw)
    return first_error_first("\n".join(out)), lines


def cell_warnings(diagnostics: str) -> list[str]:
    """The warnings and notes about cell lines (`#pragma message` is a note), each
    with the cell line the compiler quotes under it, from a build that succeeded."""
    return cell_remarks(diagnostics)


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
    out, error_lines, include_line, last_line = [], [], None, None
    for raw in stderr.splitlines():
        match = _C_POSITION.match(raw)
        excerpt = EXCERPT.match(raw)
        if excerpt and excerpt["number"] and last_line is not None:
            # the compiler quotes the C file's line: number it as the cell's
            out.append(f"{last_line:>5}" + raw[excerpt.end("number"):])
            continue
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
        last_line = cell_line if ours else None
        if cell_line is None:
            out.append(raw)
            continue
        where = f"cell:{cell_line}"  # no column: #line maps lines, not columns
        out.append(where + ("" if ours else f" (in {match['file']}:{line})") + rest)
        if re.match(r"^: (fatal )?error:", rest):
            error_lines.append(cell_line)
    return first_error_first("\n".join(out)), error_lines


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
