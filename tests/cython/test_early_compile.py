"""The C compiler starts on Python.h while Cython runs (polymagic/bridges/cython/early.py):
used when its command does not depend on Cython's output, and its messages read as a
plain compile's."""
from __future__ import annotations

import textwrap

import pytest

pytest.importorskip("Cython", reason="Cython is not installed (pip install polymagic[cython])")

from polymagic.bridges import cython as bridge  # noqa: E402
from polymagic.errors import CompileError  # noqa: E402

pytestmark = pytest.mark.usefixtures("private_cache")

WARNING_CELL = textwrap.dedent('''\
    cdef extern from *:
        """
        #include <stdio.h>
        #pragma message ( "pm_early_note" )
        static int answer = 42;
        """
        int answer
    def get():
        return answer
    ''')


def compiler_calls(captured: str) -> list[str]:
    return [line for line in captured.splitlines()
            if line.startswith("[polymagic cython] ") and " -o " in line]


def test_a_plain_cell_is_compiled_by_the_early_compiler(capsys):
    result = bridge.build(WARNING_CELL, force=True, verbose=True)
    assert result.module.get() == 42
    calls = compiler_calls(capsys.readouterr().err)
    assert len(calls) == 1 and "early_stub.c" in calls[0]
    note = next(line for line in result.warnings if "pm_early_note" in line)
    assert note.startswith("cell:4: note:")
    assert not any("early_stub" in line for line in result.warnings)


def test_a_numpy_cell_is_compiled_the_plain_way(capsys):
    result = bridge.build("cimport numpy as cnp\nimport numpy as np\n"
                          "def first(cnp.ndarray[cnp.float64_t] a):\n    return a[0]\n",
                          force=True, verbose=True)
    import numpy as np
    assert result.module.first(np.array([2.5])) == 2.5
    calls = compiler_calls(capsys.readouterr().err)
    assert calls and not any("early_stub" in call for call in calls)


def test_a_c_error_reads_as_the_plain_compile_reports_it():
    """The early compile fails; the plain one runs, and its message counts."""
    with pytest.raises(CompileError) as raised:
        bridge.build(textwrap.dedent('''\
            cdef extern from *:
                """
                static int broken(void) { return no_such_symbol; }
                """
                int broken()
            def get():
                return broken()
            '''), force=True)
    assert raised.value.lines == [3]
    assert "no_such_symbol" in str(raised.value)
    assert "early_stub" not in str(raised.value)
