"""Foreign frames are spliced into Python tracebacks in call order, with their source."""
import traceback

import pytest

from polymagic.tracebacks import ForeignFrame, foreign_frames, register_source, splice

R_CELL = "f <- function(n) {\n  if (n > 2) stop('boom')\n  g(n)\n}\n"


def _python_bottom():
    raise ValueError("deep python")


def _boundary(frames):
    try:
        _python_bottom()
    except ValueError as error:
        raise splice(error, frames)


def test_spliced_frames_print_in_call_order_with_foreign_source():
    """Python's printer shows boundary, then R frames with their R lines, then Python."""
    register_source("<R cell t1>", R_CELL)
    frames = [ForeignFrame("R", "f", "<R cell t1>", 3), ForeignFrame("R", "g", "<R cell t1>", 2)]
    with pytest.raises(ValueError) as caught:
        _boundary(frames)
    text = "".join(traceback.format_exception(caught.value))
    order = [text.index(s) for s in ('in _boundary', '"<R cell t1>", line 3, in f', "g(n)",
                                     '"<R cell t1>", line 2, in g', "stop('boom')",
                                     "in _python_bottom")]
    assert order == sorted(order), text
    assert foreign_frames(caught.value) == ["R:f:3", "R:g:2"]


def test_no_carets_under_foreign_lines():
    """Python 3.11's caret markers are not drawn under foreign source."""
    register_source("<R cell t2>", "x <- 1\n     some_long_r_call(with, many, arguments)\n")
    with pytest.raises(ValueError) as caught:
        _boundary([ForeignFrame("R", "h", "<R cell t2>", 2)])
    text = "".join(traceback.format_exception(caught.value))
    foreign_part = text.split('"<R cell t2>"')[1].split("File")[0]
    assert "^" not in foreign_part, foreign_part


def test_internal_frames_are_dropped(monkeypatch):
    """Frames of polymagic's own plumbing do not appear between layers."""
    import polymagic.tracebacks as tracebacks
    monkeypatch.setattr(tracebacks, "is_plumbing", lambda filename: filename == __file__)
    with pytest.raises(ValueError) as caught:
        _boundary([ForeignFrame("C++", "fib", "<cpp cell>", 4)])
    names = [entry.name for entry in traceback.extract_tb(caught.value.__traceback__)]
    # _boundary appears once, as the re-raise site; its first entry and _python_bottom are gone
    assert names == ["test_internal_frames_are_dropped", "_boundary", "fib"], names
