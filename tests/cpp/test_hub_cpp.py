"""C++ in the shared namespace: PM_PYTHON functions call Python (and R through it) at
call time, recursion works both ways, errors keep their object and C++ frames, and
deep recursion raises RecursionError instead of overflowing the stack."""
import gc
import os
import shutil
import subprocess
import sys
import textwrap
import traceback

import numpy as np
import pytest

import polymagic as pm
from polymagic import hub
from polymagic.errors import CompileError, ConversionError, CppError
from polymagic.tracebacks import foreign_frames

if shutil.which(os.environ.get("CXX", "c++")) is None and shutil.which("g++") is None:
    pytest.skip("no C++ compiler on PATH", allow_module_level=True)

CELL = r"""
#include <polymagic.hpp>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

PM_PYTHON double twice_py(double x);
double use_twice(double x) { return twice_py(x) + 1; }
double twice_in_a_thread(double x) {
    double result = 0;
    std::thread worker([&] { result = twice_py(x); });
    worker.join();
    return result;
}

PM_PYTHON double fib_py(int n);
double fib_cpp(int n) { return n < 2 ? n : fib_py(n - 1) + fib_py(n - 2); }

PM_PYTHON long down_py(long n);
long down_cpp(long n) { return n == 0 ? 0 : 1 + down_py(n - 1); }

PM_PYTHON double down_r(int n);
double down_cpp_r(int n) { return n == 0 ? 0 : 1 + down_r(n - 1); }

PM_PYTHON void chain_py(int n);
void chain_cpp(int n) {
    chain_py(n);
}
PM_PYTHON int back_py(int n);
int thrower(int n) {
    if (n == 0) throw std::invalid_argument("bottom of the chain");
    return back_py(n - 1);
}

static int unwound = 0;
struct Sentinel { ~Sentinel() { ++unwound; } };
PM_PYTHON int failing_py(int n);
int guarded(int n) { Sentinel s; return failing_py(n); }
int unwound_count() { return unwound; }

PM_PYTHON int answer_py();
int answer() { return answer_py(); }
PM_PYTHON bool is_even_py(int n);
bool is_even(int n) { return is_even_py(n); }

PM_PYTHON std::string greet_py(const std::string& who, const char* punctuation);
std::string greet(const std::string& who) { return greet_py(who, "!") + "?"; }

PM_PYTHON double sum_py(std::span<const double> xs);
double sum_via_python(std::span<const double> xs) { return sum_py(xs); }
PM_PYTHON void scale_py(std::span<double> xs);
void scale_via_python(std::span<double> xs) { scale_py(xs); }

PM_PYTHON std::vector<double> ramp_py(int n);
double ramp_total(int n) { double s = 0; for (double x : ramp_py(n)) s += x; return s; }
"""


# each test module builds into its own fresh cache directory
pytestmark = pytest.mark.usefixtures("private_cache")


@pytest.fixture(scope="module")
def cell():
    return pm.cpp(CELL, std="c++20")




def _module_level_triple(x):
    return 3 * x


def test_cpp_calls_a_python_function_of_an_explicit_namespace(cell, space):
    """A PM_PYTHON function calls the callable bound in use_namespace()'s dict."""
    space["twice_py"] = lambda x: 2 * x
    assert cell.use_twice(20.5) == 42.0


def test_caller_globals_are_the_default_namespace(cell, monkeypatch):
    """Without use_namespace or IPython, C++ finds the calling module's globals."""
    monkeypatch.setitem(hub._state, "explicit", None)
    monkeypatch.setitem(hub._state, "ipython", None)
    monkeypatch.setitem(globals(), "twice_py", _module_level_triple)
    assert cell.use_twice(2.0) == 7.0


def test_imports_are_not_exported(cell):
    """Only functions the cell defines are module attributes, not its PM_PYTHON ones."""
    assert "use_twice" in cell.__exports__
    assert not hasattr(cell, "twice_py") and "twice_py" not in cell.__exports__
    assert len(cell.__imports__) == 13


def test_arithmetic_imports_are_called_through_the_c_api(cell, space):
    """PM_PYTHON functions with arithmetic types are called by the module's C glue
    (no cffi callback); string, span and vector ones keep a cffi callback."""
    through_c = [how for how in cell.__imports__.values() if isinstance(how, str)]
    through_cffi = [how for how in cell.__imports__.values()
                    if isinstance(how, cell.ffi.CData)]
    assert len(through_c) == 9 and all(how.endswith("_call") for how in through_c)
    assert len(through_cffi) == 4  # greet_py, sum_py, scale_py, ramp_py


def test_c_api_imports_call_any_kind_of_callable(cell, space, R):
    """A bound method, a builtin, a lambda and an R function all answer a PM_PYTHON call."""
    class Scaler:
        def scale(self, x):
            return 4 * x
    space["twice_py"] = Scaler().scale
    assert cell.use_twice(2.0) == 9.0
    space["twice_py"] = abs
    assert cell.use_twice(-0.25) == 1.25
    space["twice_py"] = lambda x: x / 2
    assert cell.use_twice(3.0) == 2.5
    space["twice_py"] = R.eval("function(x) x * 3")
    assert cell.use_twice(1.25) == 4.75


def test_import_called_from_a_cpp_thread(cell, space):
    """A thread C++ starts may call a PM_PYTHON function (it takes the GIL itself)."""
    space["twice_py"] = lambda x: 2 * x
    assert cell.twice_in_a_thread(20.0) == 40.0
    assert cell.use_twice(1.0) == 3.0


def test_integer_and_bool_results_keep_their_rules(cell, space):
    """Out-of-range ints raise cffi's OverflowError; any int is a fine bool result;
    a str for a bool is a ConversionError; the next call works."""
    space["answer_py"] = lambda: 2**40
    with pytest.raises(OverflowError, match="does not fit 'int'"):
        cell.answer()
    space["answer_py"] = lambda: True
    assert cell.answer() == 1
    space["is_even_py"] = lambda n: 2
    assert cell.is_even(1) is True
    space["is_even_py"] = lambda n: "yes"
    with pytest.raises(ConversionError, match="bool is_even_py"):
        cell.is_even(1)
    space["is_even_py"] = lambda n: n % 2 == 0
    assert cell.is_even(2) is True


def test_fib_split_between_python_and_cpp(cell, space):
    """fib_py calls C++ fib_cpp, which calls fib_py through PM_PYTHON: fib(20) = 6765."""
    def fib_py(n):
        return n if n < 2 else cell.fib_cpp(n - 1) + cell.fib_cpp(n - 2)
    space["fib_py"] = fib_py
    assert fib_py(20) == 6765
    assert cell.fib_cpp(20) == 6765


def test_mutual_recursion_to_depth_1000(cell, space):
    """C++ <-> Python mutual recursion 1000 calls deep (500 each way) counts right.

    Each round trip uses two units of Python's recursion limit (the call into C++,
    the Python function), so the limit is raised as for any deep recursion."""
    space["down_py"] = lambda n: 0 if n == 0 else 1 + cell.down_cpp(n - 1)
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(5000)
    try:
        assert cell.down_cpp(1000) == 1000
    finally:
        sys.setrecursionlimit(limit)


def test_python_recursion_limit_raises_recursion_error(cell, space):
    """At Python's recursion limit, C++ raises RecursionError before calling Python
    again (never a silently ignored error), and the next call works."""
    space["down_py"] = lambda n: 0 if n == 0 else 1 + cell.down_cpp(n - 1)
    with pytest.raises(RecursionError, match="recursion limit"):
        cell.down_cpp(10**5)
    assert cell.down_cpp(10) == 10


def test_r_function_called_from_cpp_calls_back_cpp(cell, space, R):
    """C++ calls an R function from the namespace, which calls C++ back via py$."""
    space["down_r"] = R.eval(
        "function(n) if (n == 0) 0 else 1 + py$down_cpp_r(as.integer(n - 1))")
    space["down_cpp_r"] = cell.down_cpp_r
    assert cell.down_cpp_r(300) == 300


def test_python_error_at_the_bottom_arrives_as_itself(cell, space):
    """A Python exception under C++ -> Python -> C++ is the same object, C++ frames shown."""
    original = LookupError("deep down")

    def chain_py(n):
        if n == 0:
            raise original
        cell.chain_cpp(n - 1)
    space["chain_py"] = chain_py
    with pytest.raises(LookupError) as info:
        cell.chain_cpp(2)
    assert info.value is original
    text = "".join(traceback.format_exception(info.value))
    assert text.count("<C++ cell") == 3 and "in chain_cpp" in text
    assert "void chain_cpp(int n) {" in text  # the C++ function's line is shown
    assert [f.split(":")[1] for f in foreign_frames(info.value)] == ["chain_cpp"] * 3
    assert "pm_python_chain_py" not in text  # polymagic's thunks are left out


def _layers(error: BaseException) -> list[str]:
    """The traceback's frames in call order, as 'C++ f' for a cell's function and
    'Python f' for code in this test module (polymagic's own frames are left out)."""
    layers = []
    for frame in traceback.extract_tb(error.__traceback__):
        if frame.filename.startswith("<C++ cell"):
            layers.append(f"C++ {frame.name}")
        elif frame.filename == __file__:
            layers.append(f"Python {frame.name}")
    return layers


def test_mixed_traceback_lists_cpp_and_python_frames_in_call_order(cell, space):
    """Python -> C++ -> Python -> C++ -> Python -> C++ -> Python (raises): every C++ frame
    sits between the Python frame that called it and the Python function it called."""
    def chain_py(n):
        if n == 0:
            raise LookupError("deep down")
        cell.chain_cpp(n - 1)
    space["chain_py"] = chain_py
    with pytest.raises(LookupError) as info:
        cell.chain_cpp(2)
    assert _layers(info.value) == [
        "Python test_mixed_traceback_lists_cpp_and_python_frames_in_call_order",
        "C++ chain_cpp", "Python chain_py", "C++ chain_cpp", "Python chain_py",
        "C++ chain_cpp", "Python chain_py"]


def test_cpp_throw_under_python_lists_frames_in_call_order(cell, space):
    """A C++ throw at the bottom of Python -> C++ -> Python -> C++: the frames read top()
    -> thrower -> back_py -> thrower, the throwing C++ function last."""
    def back_py(n):
        return cell.thrower(n)
    space["back_py"] = back_py

    def top(n):
        return cell.thrower(n)
    with pytest.raises(ValueError) as info:
        top(1)
    assert _layers(info.value) == [
        "Python test_cpp_throw_under_python_lists_frames_in_call_order", "Python top",
        "C++ thrower", "Python back_py", "C++ thrower"]


def test_cpp_throw_at_the_bottom_arrives_mapped(cell, space):
    """A C++ throw under Python -> C++ -> Python -> C++ arrives as CppValueError."""
    space["back_py"] = lambda n: cell.thrower(n)

    def top(n):
        return cell.thrower(n)
    with pytest.raises(ValueError, match="bottom of the chain") as info:
        top(2)
    assert isinstance(info.value, CppError)
    assert foreign_frames(info.value).count(foreign_frames(info.value)[0]) == 3


def test_python_error_unwinds_cpp_destructors(cell, space):
    """A Python exception unwinds the C++ frames (destructors run); next call works."""
    def failing_py(n):
        raise KeyError(n)
    space["failing_py"] = failing_py
    before = cell.unwound_count()
    with pytest.raises(KeyError):
        cell.guarded(1)
    assert cell.unwound_count() == before + 1
    space["failing_py"] = lambda n: n + 1
    assert cell.guarded(1) == 2


def test_redefinition_is_seen_at_the_next_call(cell, space):
    """Rebinding the Python name changes what C++ calls next."""
    space["answer_py"] = lambda: 1
    assert cell.answer() == 1
    space["answer_py"] = lambda: 42
    assert cell.answer() == 42


def test_missing_name_raises_hub_name_error(cell, space):
    """A PM_PYTHON name the namespace lacks raises HubNameError naming it; C++ goes on."""
    with pytest.raises(hub.HubNameError, match="C\\+\\+ asked the shared Python namespace for 'answer_py'"):
        cell.answer()
    space["answer_py"] = lambda: 5
    assert cell.answer() == 5


def test_results_convert_to_the_declared_type(cell, space):
    """Integral floats (R's numbers) become int; bool and str results convert."""
    space["answer_py"] = lambda: 7.0
    assert cell.answer() == 7
    space["answer_py"] = lambda: np.int16(8)
    assert cell.answer() == 8
    space["is_even_py"] = lambda n: np.bool_(n % 2 == 0)
    assert cell.is_even(4) is True and cell.is_even(3) is False


def test_wrong_result_type_is_a_conversion_error(cell, space):
    """A result that is not the declared type raises ConversionError naming both."""
    space["answer_py"] = lambda: 2.5
    with pytest.raises(ConversionError, match=r"int answer_py\(\).*2\.5 \(float\)"):
        cell.answer()
    space["answer_py"] = lambda: 3
    assert cell.answer() == 3


def test_strings_cross_both_ways(cell, space):
    """const std::string& and const char* arrive as str; a str result is a std::string."""
    space["greet_py"] = lambda who, punctuation: f"hello {who}{punctuation}"
    assert cell.greet("wörld") == "hello wörld!?"


def test_spans_arrive_as_views(cell, space):
    """A std::span argument is a NumPy view of the C++ memory: same address, writable
    only when the span is not const."""
    seen = {}

    def sum_py(xs):
        seen["address"], seen["writeable"] = xs.ctypes.data, xs.flags.writeable
        return float(xs.sum())
    space["sum_py"] = sum_py
    space["scale_py"] = lambda xs: xs.__imul__(2)
    data = np.arange(5.0)
    assert cell.sum_via_python(data) == 10.0
    assert seen == {"address": data.ctypes.data, "writeable": False}
    cell.scale_via_python(data)
    assert data.tolist() == [0.0, 2.0, 4.0, 6.0, 8.0]


def test_vector_result_is_filled_from_an_array(cell, space):
    """A std::vector<double> result is copied from the NumPy array Python returns."""
    space["ramp_py"] = lambda n: np.arange(n)
    assert cell.ramp_total(5) == 10.0
    space["ramp_py"] = lambda n: [[1.0]]
    with pytest.raises(ConversionError, match="std::vector<double>"):
        cell.ramp_total(1)


def test_slots_outlive_the_module_object(space):
    """Functions taken from a cell keep calling Python after the module object is gone."""
    module = pm.cpp("#include <polymagic.hpp>\nPM_PYTHON int seven_py();\n"
                    "int seven() { return seven_py(); }\n")
    seven = module.seven
    del module
    gc.collect()
    space["seven_py"] = lambda: 7
    assert seven() == 7


def test_unsupported_import_is_a_compile_error_at_its_line():
    """A PM_PYTHON declaration Python cannot provide is a CompileError at its line."""
    source = ("#include <polymagic.hpp>\n\nPM_PYTHON double total(const double* xs);\n"
              "double use(const double* xs) { return total(xs); }\n")
    with pytest.raises(CompileError, match="std::span") as info:
        pm.cpp(source)
    assert info.value.lines == [3]
    noexcept = "#include <polymagic.hpp>\nPM_PYTHON int f() noexcept;\nint g() { return f(); }\n"
    with pytest.raises(CompileError, match="noexcept"):
        pm.cpp(noexcept)


def test_unannotated_declaration_is_still_a_link_error():
    """A declaration without PM_PYTHON is not provided by Python: a link error, as before."""
    source = ("#include <polymagic.hpp>\nPM_PYTHON int f();\nint g();\n"
              "int h() { return f() + g(); }\n")
    with pytest.raises(CompileError, match="'g'") as info:
        pm.cpp(source)
    assert info.value.lines == [3]


def test_recursion_that_exhausts_the_stack_raises_recursion_error(tmp_path):
    """C++ <-> Python recursion to depth 10**6 raises RecursionError, never a segfault."""
    script = textwrap.dedent("""
        import sys
        import polymagic as pm
        m = pm.cpp('#include <polymagic.hpp>\\nPM_PYTHON long down_py(long n);\\n'
                   'long down_cpp(long n) { return n == 0 ? 0 : 1 + down_py(n - 1); }\\n')
        def down_py(n):
            return 0 if n == 0 else 1 + m.down_cpp(n - 1)
        sys.setrecursionlimit(10**6)
        try:
            m.down_cpp(10**6)
        except RecursionError as error:
            print("RecursionError:", error.__class__.__name__)
        print("after:", m.down_cpp(100))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True,
                            text=True, timeout=300, env=dict(os.environ))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "RecursionError: CppRecursionError" in result.stdout
    assert "after: 100" in result.stdout


def test_notebook_cells_share_the_user_namespace():
    """In IPython, a %%cpp cell's PM_PYTHON function finds a Python cell's function."""
    pytest.importorskip("IPython", reason="IPython is not installed")
    from IPython.testing.globalipapp import get_ipython
    shell = get_ipython()
    shell.run_line_magic("load_ext", "polymagic")
    shell.run_cell("def fib_py(n):\n"
                   "    return n if n < 2 else fib_cpp(n - 1) + fib_cpp(n - 2)\n")
    shell.run_cell_magic("cpp", "", "#include <polymagic.hpp>\n"
                         "PM_PYTHON double fib_py(int n);\n"
                         "double fib_cpp(int n) { return n < 2 ? n : fib_py(n - 1) + "
                         "fib_py(n - 2); }\n")
    assert shell.user_ns["fib_py"](20) == 6765


def test_imports_may_live_in_named_namespaces(space):
    """A PM_PYTHON function in a named namespace calls the Python name it is spelled;
    one in an anonymous namespace is a CompileError at its line."""
    module = pm.cpp("#include <polymagic.hpp>\nnamespace physics { namespace units {\n"
                    "PM_PYTHON double scale_py(double x);\n} }\n"
                    "double scaled(double x) { return physics::units::scale_py(x); }\n")
    space["scale_py"] = lambda x: 10 * x
    assert module.scaled(4.2) == 42.0
    with pytest.raises(CompileError, match="anonymous namespace") as info:
        pm.cpp("#include <polymagic.hpp>\nnamespace {\nPM_PYTHON int f();\n}\n"
               "int g() { return f(); }\n")
    assert info.value.lines == [3]
