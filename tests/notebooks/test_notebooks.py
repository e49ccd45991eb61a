"""Every notebook in notebooks/ runs through a real kernel, and each cell shows what it
declares.

A code cell declares what it must show in comments (`#`, or `//` in a C++ cell):

    # expect: TEXT          a line of this cell's own output is TEXT, whole ("..." stands
                            for any text, as in doctest)
    # expect-display: MIME  this cell displayed data of that type (a plot: image/png)
    # raises: NAME: TEXT    this cell raised NAME, and the first line of its message is TEXT
    # frames: A -> B -> C   its traceback's frames, outermost first, e.g. `cell:1`,
                            `<R cell>:3 in check`, `cell:3 in calibrate`
    # expect (julia): ...   only where a Julia runtime is found; `(no julia)`: only where not

A cell's own output is its stream text, its results and displays (text/plain) and its
error's message: never its traceback, which echoes the cell's source (comments
included), and never a line that holds a marker, so no declaration can satisfy itself.
A cell tagged `raises-exception` must declare `raises:` and `frames:`, and raise; any
cell that shows output must declare at least one line. `frames:` lists every frame a
user sees, so a frame of polymagic's own files (shown as `polymagic/<file>:line`) fails it.

Why this matcher rather than nbval or testbook: nbval compares each cell with outputs
stored in the .ipynb, and these notebooks are kept without outputs (readable diffs; a
saved notebook holds no build output). Storing them would mean baselines full of plots,
timings, paths and addresses, each needing a sanitizer, re-recorded from a run, so a
wrong value recorded once passes forever; and nbval lets a `raises-exception` cell pass
without raising. testbook asserts from a separate Python file inside the running kernel:
good for values, but the expectation leaves the cell a reader sees, it does not read
error outputs or traceback frames, and its last release is from 2021. Each declaration
here sits beside the code it checks, and the matcher is the ~90 lines below, unit-tested
on synthetic notebooks at the end of this file.
"""
from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

import polymagic

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
PACKAGE = Path(polymagic.__file__).resolve().parent

MARKER = re.compile(r"(?:#|//)\s*(expect-display|expect|raises|frames)"
                    r"(?:\s*\(([^)]*)\))?:\s*(.*?)\s*$")
CONDITIONS = {"julia", "no julia"}
ANSI = re.compile(r"\x1b\[[0-9;]*m")
CELL_FRAME = re.compile(r"Cell In\[\d+\], line (\d+)(?:, in ([^(]+))?")
FILE_FRAME = re.compile(r"File (.+?):(\d+), in ([^(]+)")
FOREIGN_CELL = re.compile(r"<(.+?) (cell|code)\b[^>]*>")  # <R code k>: pm.R code


@dataclass
class Marker:
    kind: str
    text: str


def markers(cell, conditions: set[str]) -> list[Marker]:
    """The declarations in a cell's source that apply on this machine."""
    found = []
    for line in cell.source.splitlines():
        match = MARKER.search(line)
        if not match:
            continue
        kind, condition, text = match.groups()
        if condition is not None and condition not in CONDITIONS:
            raise ValueError(f"unknown condition ({condition}) in: {line}")
        if condition is None or condition in conditions:
            found.append(Marker(kind, text))
    return found


def _matches(expected: str, line: str) -> bool:
    pattern = ".*".join(re.escape(part) for part in expected.strip().split("..."))
    return re.fullmatch(pattern, line.strip()) is not None


def own_lines(cell) -> list[str]:
    """The lines a cell itself showed: stream text, text/plain of results and displays,
    its error's message; lines holding a marker (echoed source) left out."""
    texts, stream = [], None
    for output in cell.get("outputs", []):
        if output.output_type == "stream" and output.name == stream:
            texts[-1] += output.text  # one print may reach us in two messages
            continue
        stream = output.get("name") if output.output_type == "stream" else None
        if output.output_type == "stream":
            texts.append(output.text)
        elif output.output_type in ("execute_result", "display_data"):
            texts.append(output.data.get("text/plain", ""))
        elif output.output_type == "error":
            texts.append(output.evalue)
    return [line for text in texts for line in text.splitlines()
            if not MARKER.search(line)]


def frames(error) -> list[str]:
    """The error's traceback frames, outermost first, as `cell:3 in f`, `<R cell>:2 in g`
    or, for polymagic's own files, `polymagic/hub.py:10 in call`."""
    found = []
    for entry in error.traceback:
        header = ANSI.sub("", entry).lstrip().split("\n", 1)[0]
        if match := CELL_FRAME.match(header):
            line, function = match.groups()
            where = f"cell:{line}"
        elif match := FILE_FRAME.match(header):
            filename, line, function = match.groups()
            if FOREIGN_CELL.fullmatch(filename):
                filename = FOREIGN_CELL.sub(r"<\1 \2>", filename)
            elif Path(filename).resolve().is_relative_to(PACKAGE):
                filename = "polymagic/" + Path(filename).resolve().relative_to(PACKAGE).as_posix()
            else:
                filename = Path(filename).name
            where = f"{filename}:{line}"
        else:
            continue  # the banner, the final message, "[... skipping hidden frames]"
        found.append(f"{where} in {function.strip()}" if function else where)
    return found


def cell_problems(cell, conditions: set[str]) -> list[str]:
    """What this cell declared and did not show (empty when it showed all of it)."""
    declared = markers(cell, conditions)
    outputs = cell.get("outputs", [])
    errors = [output for output in outputs if output.output_type == "error"]
    tagged = "raises-exception" in cell.metadata.get("tags", [])
    kinds = {marker.kind for marker in declared}
    problems = []
    if outputs and not declared:
        problems.append("shows output but declares nothing to check")
    if tagged and not {"raises", "frames"} <= kinds:
        problems.append("is tagged raises-exception but lacks `raises:` or `frames:`")
    if tagged and not errors:
        problems.append("is tagged raises-exception but raised nothing")
    lines = own_lines(cell)
    for marker in declared:
        if marker.kind == "expect" and not any(_matches(marker.text, line) for line in lines):
            problems.append(f"expected a line {marker.text!r}; its lines: {lines}")
        elif marker.kind == "expect-display" and not any(
                marker.text in output.get("data", {}) for output in outputs):
            problems.append(f"displayed no {marker.text}")
        elif marker.kind == "raises":
            name, _, first_line = marker.text.partition(":")
            raised = [(e.ename, (e.evalue.splitlines() or [""])[0]) for e in errors]
            if not any(ename == name.strip() and _matches(first_line, message)
                       for ename, message in raised):
                problems.append(f"expected to raise {marker.text!r}; raised {raised}")
        elif marker.kind == "frames":
            wanted = [frame.strip() for frame in marker.text.split("->")]
            shown = [frames(error) for error in errors]
            if wanted not in shown:
                problems.append(f"expected frames {wanted}; traceback had {shown}")
    return problems


def notebook_problems(notebook, conditions: set[str]) -> list[str]:
    """Every code cell's problems, each prefixed by the cell's index and first line."""
    problems = []
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        head = cell.source.splitlines()[0] if cell.source else ""
        problems += [f"cell {index} ({head!r}) {problem}"
                     for problem in cell_problems(cell, conditions)]
    return problems


def _runner():
    spec = importlib.util.spec_from_file_location("run_notebook",
                                                  ROOT / "scripts" / "run_notebook.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _julia_found() -> bool:
    from polymagic.bridges.julia.locate import find_julia
    return find_julia() is not None


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_shows_what_each_cell_declares(path, tmp_path):
    """The notebook runs in a real kernel; each cell shows what its comments declare,
    and each cell tagged raises-exception raises the declared error with its frames."""
    julia = _julia_found()  # without Julia, every notebook still runs: its cells say so
    notebook = _runner().execute(path, tmp_path)
    assert any(markers(cell, {"julia", "no julia"}) for cell in notebook.cells
               if cell.cell_type == "code"), f"{path.name} declares nothing to check"
    problems = notebook_problems(notebook, {"julia"} if julia else {"no julia"})
    assert not problems, f"{path.name}:\n" + "\n".join(problems)


# --- the matcher itself, on synthetic cells (no kernel) --------------------------------

def _cell(source, *outputs, tags=()):
    cell = nbformat.v4.new_code_cell(source)
    cell.outputs = [nbformat.v4.new_output(**output) for output in outputs]
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def _stream(text):
    return {"output_type": "stream", "name": "stdout", "text": text}


def _error(ename, evalue, *entries):
    banner = ["-" * 20, f"\x1b[0;31m{ename}\x1b[0m   Traceback (most recent call last)"]
    return {"output_type": "error", "ename": ename, "evalue": evalue,
            "traceback": banner + list(entries) + [f"{ename}: {evalue}"]}


R_RAISES = ("%%R\ncheck <- function(n) if (n > 3) stop('n is too big: ', n)\ncheck(10)\n"
            "# raises: RError: R error (cell line 1): in check(10) : n is too big: 10\n"
            "# frames: cell:1 -> <R cell>:2 in <top level> -> <R cell>:1 in check\n")
R_FRAMES = ("Cell In[3], line 1\n----> 1 get_ipython().run_cell_magic('R', '', ...)\n",
            "    [... skipping hidden 5 frame]\n",
            "File <R cell 4>:2, in <top level>()\n----> 2 check(10)\n",
            "File \x1b[0;32m<R cell 4>:1\x1b[0m, in \x1b[0;36mcheck\x1b[0m()\n----> 1 check <-")
POLYMAGIC_FRAME = f"File {PACKAGE / 'hub.py'}:10, in call(f)\n---> 10 f()\n"


def test_an_expect_is_not_satisfied_by_its_own_source_echoed_in_a_traceback():
    """The traceback echoes `check(10)  # expect: n is too big: 10`; that is not output."""
    source = "%%R\ncheck(10)  # expect: n is too big: 10\n"
    cell = _cell(source, _error("RError", "R error: in check(10) : unrelated failure",
                                "File <R cell 1>:1, in <top level>()\n"
                                "----> 1 check(10)  # expect: n is too big: 10\n"))
    assert any("expected a line 'n is too big: 10'" in p for p in cell_problems(cell, set()))


def test_an_expect_matches_a_whole_line_not_a_part():
    """`spikes found` does not pass on "0 spikes found"; "..." is the only wildcard."""
    cell = _cell("print(n, 'spikes found')  # expect: spikes found", _stream("0 spikes found\n"))
    assert cell_problems(cell, set())
    exact = _cell("print(n)  # expect: 509 spikes found, ...% of the planted ones",
                  _stream("509 spikes found, 100% of the planted ones\n"))
    assert cell_problems(exact, set()) == []
    wrong = _cell(exact.source, _stream("0 spikes found, 0% of the planted ones\n"))
    assert cell_problems(wrong, set())


def test_a_line_flushed_in_two_stream_messages_is_one_line():
    """The kernel may send `R called Python: 144.0` as two stream messages: still one line."""
    cell = _cell("print('R called Python:', x)  # expect: R called Python: 144.0",
                 _stream("R called Python:"), _stream(" 144.0\n"))
    assert cell_problems(cell, set()) == []
    two_lines = _cell("print(1); print(2)  # expect: 12", _stream("1\n"), _stream("2\n"))
    assert cell_problems(two_lines, set())


def test_an_expect_is_checked_only_against_its_own_cell():
    """A line printed by another cell does not satisfy this cell's expect."""
    notebook = nbformat.v4.new_notebook(cells=[_cell("print(1)  # expect: 1", _stream("2\n")),
                                               _cell("print(2)  # expect: 2", _stream("1\n"))])
    assert len(notebook_problems(notebook, set())) == 2


def test_a_cell_tagged_to_raise_must_raise_the_declared_error_with_its_frames():
    """Raising nothing, another class, another message, frames out of order or a frame
    of polymagic's own all fail; the declared error passes."""
    good = _cell(R_RAISES, _error("RError", "R error (cell line 1): in check(10) : "
                                  "n is too big: 10\n-->    1 | check <- ...", *R_FRAMES),
                 tags=["raises-exception"])
    assert cell_problems(good, set()) == []
    silent = _cell(R_RAISES, tags=["raises-exception"])
    assert any("raised nothing" in p for p in cell_problems(silent, set()))
    for ename, evalue, entries in [
            ("ValueError", good.outputs[0].evalue, R_FRAMES),
            ("RError", "R error (cell line 1): in check(10) : unrelated failure", R_FRAMES),
            ("RError", good.outputs[0].evalue, (R_FRAMES[0], R_FRAMES[3], R_FRAMES[2])),
            ("RError", good.outputs[0].evalue, R_FRAMES[:3] + (POLYMAGIC_FRAME,) + R_FRAMES[3:])]:
        bad = _cell(R_RAISES, _error(ename, evalue, *entries), tags=["raises-exception"])
        assert cell_problems(bad, set()), (ename, evalue)


def test_every_cell_that_shows_output_declares_something():
    """A cell with output but no declaration, or tagged to raise without `raises:` and
    `frames:`, is a problem."""
    assert cell_problems(_cell("print(3)", _stream("3\n")), set())
    undeclared = _cell("1/0", _error("ZeroDivisionError", "division by zero",
                                     "Cell In[1], line 1\n"), tags=["raises-exception"])
    assert any("lacks" in p for p in cell_problems(undeclared, set()))


def test_conditional_expects_apply_only_where_their_condition_holds():
    """`expect (julia):` is checked only where Julia is found, `(no julia)` only where not."""
    cell = _cell("%%julia\n1  # expect (julia): 1\n# expect (no julia): Julia is not ...",
                 _stream("Julia is not available\n"))
    assert cell_problems(cell, {"no julia"}) == []
    assert cell_problems(cell, {"julia"})
    with pytest.raises(ValueError, match="unknown condition"):
        markers(_cell("# expect (jula): 1"), set())
