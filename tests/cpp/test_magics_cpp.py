"""%%cpp: options through magic_arguments, names bound in the user namespace."""
import shutil

import numpy as np
import pytest
from IPython.core.error import UsageError

from polymagic.errors import CompileError

if shutil.which("c++") is None and shutil.which("g++") is None:
    pytest.skip("no C++ compiler on PATH", allow_module_level=True)


@pytest.fixture(scope="module")
def ip(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("POLYMAGIC_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        # imported here: once another test module has started the global shell, only
        # the name imported afterwards returns it
        from IPython.testing.globalipapp import get_ipython
        shell = get_ipython()
        shell.run_line_magic("load_ext", "polymagic")
        yield shell


def test_cell_binds_functions(ip):
    """Every exported function of the cell lands in ip.user_ns and works on arrays."""
    ip.run_cell_magic("cpp", "", "double dot(const double* a, const double* b, long n) {"
                      " double s = 0; for (long i = 0; i < n; ++i) s += a[i] * b[i];"
                      " return s; }\nint plus(int a, int b) { return a + b; }")
    assert ip.user_ns["plus"](2, 3) == 5
    x = np.arange(4.0)
    assert ip.user_ns["dot"](x, x, 4) == 14.0


def test_rerun_rebinds(ip):
    """Running an edited cell rebinds the same name to the new code."""
    ip.run_cell_magic("cpp", "", "int answer() { return 1; }")
    ip.run_cell_magic("cpp", "", "int answer() { return 2; }")
    assert ip.user_ns["answer"]() == 2


def test_options_are_parsed(ip):
    """-c, --std, -O and -n reach the build; -n binds the module too."""
    ip.run_cell_magic("cpp", "-c '-DBASE=40' --std c++20 -O 1 -n mymod",
                      "#include <span>\nint base(std::span<const int> xs) "
                      "{ return BASE + (int)xs.size(); }")
    assert ip.user_ns["base"](np.zeros(2, dtype=np.int32)) == 42
    assert ip.user_ns["mymod"].base is ip.user_ns["base"]


def test_bad_option_is_usage_error(ip):
    """An unknown flag or a bad -O value is a UsageError; the magic still works after."""
    with pytest.raises(UsageError):
        ip.run_cell_magic("cpp", "--no-such-flag", "int f() { return 1; }")
    with pytest.raises(UsageError):
        ip.run_cell_magic("cpp", "-O 9", "int f() { return 1; }")
    ip.run_cell_magic("cpp", "", "int still_works() { return 1; }")
    assert ip.user_ns["still_works"]() == 1


def test_compile_error_raises(ip):
    """A broken cell raises CompileError with the cell line, not print-and-return."""
    with pytest.raises(CompileError) as info:
        ip.run_cell_magic("cpp", "", "int ok() { return 1; }\nint bad() { return nope; }")
    assert info.value.lines == [2]
