"""Every magic turns a malformed option line, or cell text that cannot be encoded, into
a UsageError naming the magic; nothing runs and the session goes on (issue 9)."""
from __future__ import annotations

import pytest
from IPython.core.error import UsageError

UNBALANCED = [("cell", "R", "-i 'x", "1"), ("line", "R", "-i 'x", None),
              ("cell", "julia", "-i 'x", "1"), ("line", "julia", "-o 'y 1", None),
              ("cell", "cpp", "-c '-O2", "int f() { return 1; }"),
              ("cell", "cython", "-c '-O2", "def f(): pass"),
              ("line", "Rpush", "'x", None), ("line", "Rpull", "'x", None),
              ("line", "Rget", "'x", None)]


@pytest.fixture(scope="module")
def ip():
    from IPython.testing.globalipapp import get_ipython, start_ipython
    shell = start_ipython() or get_ipython()
    shell.run_line_magic("load_ext", "polymagic")
    return shell


def _run(ip, form, magic, line, cell):
    if form == "cell":
        return ip.run_cell_magic(magic, line, cell)
    return ip.run_line_magic(magic, line)


@pytest.mark.parametrize("form, magic, line, cell", UNBALANCED,
                         ids=[f"{form}-{magic}" for form, magic, *_ in UNBALANCED])
def test_unbalanced_quotes_are_a_usage_error_naming_the_magic(ip, form, magic, line, cell):
    """An option line shlex cannot read (unbalanced quote) is a UsageError that names
    the magic and the line, not shlex's bare ValueError."""
    with pytest.raises(UsageError) as failure:
        _run(ip, form, magic, line, cell)
    assert f"%{magic}: cannot read the options" in str(failure.value)
    assert "No closing quotation" in str(failure.value)


SURROGATE = [("R", "x <- 'a\udc80'"), ("julia", 'x = "a\udc80"'),
             ("cpp", "int f() { return 1; } // \udc80"), ("cython", "x = 'a\udc80'")]


@pytest.mark.parametrize("magic, cell", SURROGATE, ids=[magic for magic, _ in SURROGATE])
def test_lone_surrogate_in_a_cell_is_a_usage_error_naming_the_magic(ip, magic, cell):
    """Cell text UTF-8 cannot encode (a lone surrogate) is a UsageError naming the
    magic and where the character is, raised before any runtime or compiler runs."""
    with pytest.raises(UsageError) as failure:
        ip.run_cell_magic(magic, "", cell)
    assert f"%%{magic}" in str(failure.value) and "lone surrogate" in str(failure.value)


def test_the_session_goes_on_after_bad_input(ip):
    """After every bad line above, R still runs a cell."""
    for form, magic, line, cell in UNBALANCED:
        with pytest.raises(UsageError):
            _run(ip, form, magic, line, cell)
    ip.run_cell_magic("R", "-o answer", "answer <- 41 + 1")
    assert ip.user_ns["answer"][0] == 42
