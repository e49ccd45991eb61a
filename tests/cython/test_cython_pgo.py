"""%%cython --pgo: instrumented build, training run in a child process, optimised build.

Cython's own tests of its magic's --pgo (`test_cython3_pgo` in
Cython.Build.Tests.TestIpythonMagic) and of compiler warnings (`test_cython_warning_shown`)
run here unchanged against polymagic's %%cython.
"""
from __future__ import annotations

import os
import textwrap
import unittest

import pytest

pytest.importorskip("Cython", reason="Cython is not installed (pip install polymagic[cython])")
pytest.importorskip("IPython", reason="IPython is not installed")

from polymagic.errors import CompileError  # noqa: E402

pytestmark = pytest.mark.usefixtures("private_cache")


@pytest.fixture(scope="module")
def ip(private_cache):
    """The IPython test shell with polymagic's %%cython registered (last, so it wins)."""
    from IPython.testing.globalipapp import get_ipython

    from polymagic.magics.cython import CythonMagics
    shell = get_ipython()
    shell.register_magics(CythonMagics)
    return shell


def run_cythons_own_test(ip, name: str) -> None:
    """Cython's own magic test `name` (Cython.Build.Tests.TestIpythonMagic),
    unchanged, run against polymagic's %%cython; it must pass."""
    from Cython.Build.Tests.TestIpythonMagic import TestIPythonMagic
    from Cython.TestUtils import CythonTest

    from polymagic.magics.cython import CythonMagics

    class WithPolymagic(TestIPythonMagic):
        def setUp(self):
            CythonTest.setUp(self)  # instead of loading Cython's own magic
            self._ip.register_magics(CythonMagics)

    suite = unittest.TestSuite([WithPolymagic(name)])
    result = unittest.TextTestRunner(verbosity=0).run(suite)
    assert result.testsRun == 1
    assert result.wasSuccessful(), result.errors + result.failures
    magic = ip.magics_manager.magics["cell"]["cython"]
    assert isinstance(magic.__self__, CythonMagics)  # it ran polymagic's, not Cython's


def test_cythons_own_pgo_test_passes_with_polymagic(ip):
    """Cython's test_cython3_pgo, unchanged, passes with polymagic's %%cython."""
    run_cythons_own_test(ip, "test_cython3_pgo")


def test_cythons_own_warning_test_passes_with_polymagic(ip):
    """Cython's test_cython_warning_shown: a C compiler's `#pragma message` from a build
    that succeeds is shown on stdout, as Cython's magic shows it."""
    run_cythons_own_test(ip, "test_cython_warning_shown")


PROBE = textwrap.dedent("""\
    import os
    def work(int n):
        cdef long total = 0
        cdef int i
        for i in range(n):
            total += i % 7
        return total
    if "_pgo_" in __name__:  # Cython's documented way to tell the training run
        with open({record!r}, "a") as out:
            out.write(f"{{os.getpid()}} {{__name__}}\\n")
        for _ in range(200):
            work(10000)
    """)


def test_training_runs_in_a_child_and_its_profile_is_used(ip, tmp_path, capsys):
    """The training run is the cell's module code under a `_pgo_` name in another
    process; the optimised build finds its profile (-Wmissing-profile stays quiet);
    the cell works here; re-running it is a cache hit without training."""
    record = tmp_path / "training.txt"
    cell = PROBE.format(record=str(record))
    capsys.readouterr()
    ip.run_cell_magic("cython", "--pgo --verbose", cell)
    built = capsys.readouterr().err
    trainings = record.read_text().split()
    assert len(trainings) == 2 and int(trainings[0]) != os.getpid()
    assert trainings[1].startswith("_pgo__pm_cython_")
    assert ip.user_ns["work"](14) == sum(i % 7 for i in range(14))
    commands = [line for line in built.splitlines() if line.startswith("[polymagic cython] ")
                and " -o " in line]
    assert [("-fprofile-generate" in c, "-fprofile-use" in c) for c in commands] == \
        [(True, False)] * 3 + [(False, True)] * 2  # 2 compiles + link, compile + link
    assert "profile count data file not found" not in built
    ip.run_cell_magic("cython", "--pgo --verbose", cell)
    assert "(cache hit," in capsys.readouterr().err
    assert len(record.read_text().split()) == 2  # no second training run


def test_failing_training_run_is_a_compile_error(ip):
    """An exception in the training run raises CompileError with the child's traceback;
    nothing is cached and the session goes on."""
    from polymagic.build import cache_dir
    cells_before = {name for name in os.listdir(cache_dir()) if name.startswith("cython_")}
    with pytest.raises(CompileError, match="PGO training run") as caught:
        ip.run_cell_magic("cython", "--pgo", "raise ValueError('pm training failed')\n")
    assert "ValueError: pm training failed" in str(caught.value)
    assert {name for name in os.listdir(cache_dir())
            if name.startswith("cython_")} == cells_before
    ip.run_cell_magic("cython", "", "def pm_after_pgo():\n    return 3\n")
    assert ip.user_ns["pm_after_pgo"]() == 3
