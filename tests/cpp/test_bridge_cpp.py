"""pm.cpp: C++ cells compiled by the real compiler, loaded through cffi, zero-copy."""
import gc
import os
import shutil
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

import polymagic as pm
from polymagic.errors import CompileError, ConversionError, CppError

if shutil.which(os.environ.get("CXX", "c++")) is None and shutil.which("g++") is None:
    pytest.skip("no C++ compiler on PATH", allow_module_level=True)

CELL = r"""
#include <cstdint>
#include <functional>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

int add(int a, int b) { return a + b; }
double scale(double x, float k) { return x * k; }
bool negate(bool b) { return !b; }
unsigned long long big(unsigned long long x) { return x + 1; }
void nothing() {}

void fill(double* out, long n, double value) { for (long i = 0; i < n; ++i) out[i] = value; }
std::uintptr_t address_of(const double* data) { return (std::uintptr_t)data; }
double total(std::span<const double> xs) { double s = 0; for (double x : xs) s += x; return s; }
double scaled_sum(std::span<const double> xs, double factor) { return total(xs) * factor; }
std::uintptr_t span_address(std::span<double> xs) { xs[0] = 42; return (std::uintptr_t)xs.data(); }
long count_ints(const std::int32_t* xs, long n) { long s = 0; for (long i = 0; i < n; ++i) s += xs[i]; return s; }

std::string greet(const std::string& who) { return "hello " + who; }
std::size_t length(const char* text) { return std::string(text).size(); }
const char* constant() { return "static text"; }
std::string shout(std::string_view text) { return std::string(text) + "!"; }

static std::uintptr_t last_vector = 0;
std::vector<double> ramp(int n) {
    std::vector<double> v(n);
    for (int i = 0; i < n; ++i) v[i] = i;
    last_vector = (std::uintptr_t)v.data();
    return v;
}
std::uintptr_t last_vector_address() { return last_vector; }

double call_twice(double (*f)(double), double x) { return f(f(x)); }
double call_function(std::function<double(double)> f, double x) { return f(x) + 1; }
void call_void(std::function<void(int)> f) { f(7); }

int depth(int n, int (*again)(int)) { return n <= 0 ? 0 : 1 + again(n - 1); }

int int_callback(int (*f)(int), int x) { return f(x); }
bool bool_callback(bool (*f)(int), int x) { return f(x); }
unsigned char byte_callback(unsigned char (*f)(int), int x) { return f(x); }
long long wide_callback(std::function<long long(unsigned long long, signed char)> f) {
    return f(18446744073709551615ull, -5);
}
void void_callback(void (*f)(int)) { f(1); }
static std::function<double(double)> kept;
void keep(std::function<double(double)> f) { kept = f; }
double call_kept(double x) { return kept(x); }
void drop_kept() { kept = nullptr; }

static int unwound = 0;
struct Sentinel { ~Sentinel() { ++unwound; } };
static int after_callback = 0;
double guarded(double (*f)(double)) {
    Sentinel s;
    double r = f(1.0);
    ++after_callback;
    return r;
}
int unwound_count() { return unwound; }
int after_callback_count() { return after_callback; }

int check_positive(int x) { if (x < 0) throw std::invalid_argument("negative input"); return x; }
int element(int i) { std::vector<int> v{1, 2, 3}; return v.at(i); }
void fail_runtime() { throw std::runtime_error("runtime trouble"); }
void fail_logic() { throw std::logic_error("logic trouble"); }
void fail_overflow() { throw std::overflow_error("too big"); }
struct bad_choice : std::invalid_argument { using std::invalid_argument::invalid_argument; };
void fail_own() { throw bad_choice("no such choice"); }
void fail_int() { throw 42; }

static int helper_static(int x) { return 2 * x; }
inline int helper_inline(int x) { return 3 * x; }
constexpr int helper_constexpr(int x) { return 4 * x; }

double twice(double x) { return 2 * x; }
int twice(int x) { return 2 * x; }

template <class T> T identity(T x) { return x; }
long double unsupported(long double x) { return x; }
"""


# each test module builds into its own fresh cache directory
pytestmark = pytest.mark.usefixtures("private_cache")


@pytest.fixture(scope="module")
def cell():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = pm.cpp(CELL, std="c++20")
    module.caught_warnings = caught
    return module


def test_scalars_are_cffi_builtins(cell):
    """Arithmetic and bool functions are cffi's own builtins, returning right values."""
    assert cell.add(2, 3) == 5
    assert cell.scale(1.5, 2.0) == 3.0
    assert cell.negate(True) is False
    assert cell.big(2**64 - 2) == 2**64 - 1
    assert cell.nothing() is None
    assert type(cell.add).__name__ == "builtin_function_or_method"


def test_bad_scalar_argument_names_function_parameter_type_and_value(cell):
    """cffi's bare "an integer is required" becomes a ConversionError (a TypeError)
    naming the function, the parameter, the C++ type and the value received; an
    out-of-range int is still an OverflowError too; the function stays cffi's builtin."""
    with pytest.raises(ConversionError) as info:
        cell.add("x", 2)
    assert str(info.value) == "add(): argument 'a' expects int (C++ int), got str 'x'"
    assert isinstance(info.value, TypeError) and not isinstance(info.value, OverflowError)
    with pytest.raises(ConversionError, match=r"scale\(\): argument 'k' expects float "
                       r"\(C\+\+ float\), got NoneType None"):
        cell.scale(1.0, None)
    with pytest.raises(OverflowError) as info:
        cell.big(-1)
    assert isinstance(info.value, ConversionError)
    assert str(info.value) == ("big(): argument 'x' expects int (C++ unsigned long long), "
                               "got int -1, out of range for C++ unsigned long long")
    with pytest.raises(ConversionError, match="negate\\(\\): argument 'b' expects bool"):
        cell.negate(2)
    assert type(cell.add).__name__ == "builtin_function_or_method"
    assert cell.add(2, 3) == 5  # and it still works


def test_bad_scalar_argument_of_a_wrapped_function_is_named(cell):
    """A scalar beside a converted parameter (the position counts the span's two C
    arguments) is named the same way."""
    with pytest.raises(ConversionError) as info:
        cell.scaled_sum(np.ones(3), "2")
    assert str(info.value).startswith("scaled_sum(): argument 'factor' expects float")


def test_pointer_is_a_view(cell):
    """T* writes into the NumPy array itself; const T* receives its data address."""
    data = np.zeros(5)
    cell.fill(data, 5, 2.5)
    assert np.all(data == 2.5)
    assert cell.address_of(data) == data.ctypes.data
    assert cell.count_ints(np.arange(4, dtype=np.int32), 4) == 6


def test_pointer_dtype_is_checked(cell):
    """A float32 array for double* raises a TypeError naming both dtypes."""
    with pytest.raises(TypeError, match="float64.*float32") as info:
        cell.fill(np.zeros(3, dtype=np.float32), 3, 1.0)
    assert isinstance(info.value, ConversionError)
    assert cell.add(1, 1) == 2


def test_readonly_array_needs_const_pointer(cell):
    """A read-only array is refused for double* but accepted for const double*."""
    data = np.ones(3)
    data.flags.writeable = False
    with pytest.raises(TypeError, match="read-only"):
        cell.fill(data, 3, 0.0)
    assert cell.address_of(data) == data.ctypes.data


def test_strided_array_is_refused(cell):
    """A strided array cannot be a pointer without a copy, so it raises."""
    with pytest.raises(TypeError, match="contiguous"):
        cell.address_of(np.zeros(10)[::2])


def test_span_is_a_view(cell):
    """std::span<T> sees the array's memory: same address, writes visible."""
    data = np.arange(4.0)
    assert cell.total(data) == 6.0
    assert cell.span_address(data) == data.ctypes.data
    assert data[0] == 42


def test_strings_cross_both_ways(cell):
    """str -> const std::string& / const char* / string_view, and back to str."""
    assert cell.greet("wörld") == "hello wörld"
    assert cell.length("héllo") == len("héllo".encode())
    assert cell.constant() == "static text"
    assert cell.shout("hey") == "hey!"
    with pytest.raises(TypeError, match="str"):
        cell.greet(3)


def test_vector_result_owns_the_vector_memory(cell):
    """A returned std::vector becomes an array over the vector's own buffer, freed later."""
    live_before = cell.lib.pm_rt_live_holders()
    values = cell.ramp(5)
    assert values.tolist() == [0, 1, 2, 3, 4]
    assert values.ctypes.data == cell.last_vector_address()
    assert cell.lib.pm_rt_live_holders() == live_before + 1
    values[0] = 9.0  # writable, like any array
    del values
    gc.collect()
    assert cell.lib.pm_rt_live_holders() == live_before


def test_function_pointer_and_std_function_take_callables(cell):
    """Python callables pass as function pointers and std::function."""
    assert cell.call_twice(lambda x: x * 3, 1.0) == 9.0
    assert cell.call_function(lambda x: x / 2, 4.0) == 3.0
    seen = []
    cell.call_void(seen.append)
    assert seen == [7]


class _Scaler:
    def __init__(self, factor):
        self.factor = factor

    def scale(self, x):
        return self.factor * x



def test_callbacks_go_through_the_c_api_not_ffi_callback(cell):
    """A Python callable for a function pointer or std::function is called by the
    module's C glue: no cffi callback is made for it."""
    from polymagic.bridges.cpp import callbacks

    def triple(x):
        return 3 * x
    assert cell.call_twice(triple, 1.0) == 9.0
    assert cell.call_function(triple, 1.0) == 4.0
    assert triple not in callbacks._pointer_cache
    assert cell.__signatures__["call_twice"]["params"][0]["type"]["kind"] == "fnptr"


def test_c_api_path_calls_any_kind_of_callable(cell, R):
    """Bound methods, builtins, lambdas and R functions all work as callbacks."""
    twice_r = R.eval("function(x) x * 2")
    for function, expected in [(_Scaler(3).scale, -9.0), (abs, 1.0),
                               (lambda x: x + 2, 3.0), (twice_r, -4.0)]:
        assert cell.call_twice(function, -1.0) == expected
        assert cell.call_function(function, -1.0) == function(-1.0) + 1
    assert cell.int_callback(R.eval("function(n) as.integer(n + 1L)"), 41) == 42


def test_callback_arguments_and_results_convert_as_cffi_does(cell):
    """Every arithmetic type crosses; results obey cffi's rules (bool is 0/1, an int
    result needs an int, a void callback returns None) with cffi's own errors."""
    assert cell.wide_callback(lambda big, small: (big == 2**64 - 1) * 100 + small) == 95
    assert cell.int_callback(lambda n: np.int16(n), 7) == 7
    assert cell.int_callback(lambda n: True, 7) == 1
    assert cell.bool_callback(lambda n: n % 2 == 0, 4) is True
    assert cell.bool_callback(lambda n: np.bool_(False), 4) is False
    with pytest.raises(TypeError, match="an integer is required"):
        cell.int_callback(lambda n: 2.0, 1)
    with pytest.raises(OverflowError, match="does not fit 'int'"):
        cell.int_callback(lambda n: 2**40, 1)
    with pytest.raises(OverflowError, match="does not fit '_Bool'"):
        cell.bool_callback(lambda n: 2, 1)
    with pytest.raises(OverflowError, match="does not fit 'unsigned char'"):
        cell.byte_callback(lambda n: 300, 1)
    with pytest.raises(TypeError, match="must return None"):
        cell.void_callback(lambda n: n)
    with pytest.raises(TypeError, match="pass a callable, got int"):
        cell.call_twice(3, 1.0)
    assert cell.byte_callback(lambda n: 255, 1) == 255


def test_cffi_function_pointer_is_passed_through(cell):
    """A cffi pointer of the parameter's type is called directly by C++."""
    pointer = cell.ffi.callback("double(double)", lambda x: x - 1)
    assert cell.call_twice(pointer, 5.0) == 3.0
    assert cell.call_function(pointer, 5.0) == 5.0


def test_kept_std_function_holds_its_callable(cell):
    """A std::function C++ keeps after the call holds a reference to the Python
    callable (usable after Python dropped it) and releases it when C++ drops it."""
    import weakref

    class Doubler:
        def __call__(self, x):
            return 2 * x
    doubler = Doubler()
    alive = weakref.ref(doubler)
    cell.keep(doubler)
    del doubler
    gc.collect()
    assert alive() is not None and cell.call_kept(21.0) == 42.0
    cell.drop_kept()
    gc.collect()
    assert alive() is None
    passing = Doubler()
    alive = weakref.ref(passing)
    assert cell.call_function(passing, 1.0) == 3.0  # not kept: no reference taken
    del passing
    gc.collect()
    assert alive() is None


def test_callback_recursion_into_cpp(cell):
    """C++ calls Python, which calls the same C++ function again, to depth 50."""
    def again(n):
        return cell.depth(n, again)
    assert cell.depth(50, again) == 50


def test_python_error_in_callback_unwinds_cpp(cell):
    """A callback's exception unwinds the C++ frames and arrives as the same object."""
    original = KeyError("from the callback")

    def failing(x):
        raise original

    unwound, after = cell.unwound_count(), cell.after_callback_count()
    with pytest.raises(KeyError) as info:
        cell.guarded(failing)
    assert info.value is original
    assert cell.unwound_count() == unwound + 1  # the C++ destructor ran
    assert cell.after_callback_count() == after  # C++ did not continue after the call
    assert cell.guarded(lambda x: x) == 1.0


EXCEPTIONS = {
    "std::invalid_argument": ("check_positive", (-1,), "CppValueError", "negative input"),
    "a subclass of invalid_argument": ("fail_own", (), "CppValueError", "no such choice"),
    "std::out_of_range": ("element", (10,), "CppIndexError", "vector::_M_range_check"),
    "std::runtime_error": ("fail_runtime", (), "CppRuntimeError", "runtime trouble"),
    "std::overflow_error (a runtime_error)": ("fail_overflow", (), "CppRuntimeError",
                                              "too big"),
    "std::logic_error (any other std::exception)": ("fail_logic", (), "CppStdException",
                                                    "logic trouble"),
    "throw 42 (not a std::exception)": ("fail_int", (), "CppError", None),
}
CPP_TYPES = {"check_positive": "std::invalid_argument", "fail_own": "bad_choice",
             "element": "std::out_of_range", "fail_runtime": "std::runtime_error",
             "fail_overflow": "std::overflow_error", "fail_logic": "std::logic_error",
             "fail_int": "int"}


@pytest.mark.parametrize("case", EXCEPTIONS)
def test_cpp_exceptions_map_to_python(cell, case):
    """Each C++ exception arrives as exactly its mapped class (the most derived
    standard base decides: std::overflow_error is a CppRuntimeError), with its C++
    type in `cpp_type`, what() in `what` and the function's cell line."""
    import polymagic.errors as errors
    function, args, class_name, what = EXCEPTIONS[case]
    with pytest.raises(CppError) as info:
        getattr(cell, function)(*args)
    error = info.value
    assert type(error) is getattr(errors, class_name)
    assert error.cpp_type == CPP_TYPES[function]
    if what is None:
        assert error.what is None and "not a std::exception" in str(error)
    else:
        assert error.what.startswith(what) and what in str(error)
    definition = next(number for number, line in enumerate(CELL.splitlines(), start=1)
                      if f" {function}(" in line and "{" in line)
    assert error.line == definition
    assert cell.check_positive(3) == 3


def test_static_inline_constexpr_are_exported(cell):
    """Internal-linkage and inline functions are exported like any other."""
    assert (cell.helper_static(1), cell.helper_inline(1), cell.helper_constexpr(1)) == \
        (2, 3, 4)


def test_overloads_get_suffixed_names(cell):
    """Overloads are exported as name__<parameter types> too; the name itself
    dispatches on the arguments' types (tests/cpp/test_overloads.py)."""
    assert cell.twice__double(1.5) == 3.0
    assert cell.twice__int(2) == 4
    assert type(cell.twice(2)) is int and cell.twice(1.5) == 3.0


def test_templates_and_unsupported_types_are_skipped(cell):
    """Templates are listed as skipped; unsupported types warn naming function and type."""
    skipped = {entry["name"]: entry["reason"] for entry in cell.__skipped__}
    assert "template" in skipped["identity"]
    messages = [str(w.message) for w in cell.caught_warnings]
    assert any("unsupported" in m and "long double" in m for m in messages), messages
    assert not hasattr(cell, "unsupported")


def test_compile_error_names_the_cell_line():
    """A compile error raises CompileError with the cell's own line number."""
    source = "int fine() { return 1; }\n\nint broken() { return undefined_name; }\n"
    with pytest.raises(CompileError) as info:
        pm.cpp(source)
    assert info.value.lines == [3]
    assert "cell:3" in str(info.value) and "undefined_name" in str(info.value)
    assert pm.cpp("int fine() { return 1; }").fine() == 1


def test_compile_error_quotes_the_cell_line_first():
    """The first error comes first, with its cell line quoted and a caret under the
    column, as g++ prints them for a file it can read; later errors follow, quoted."""
    source = ("int add(int left, int right) {\n  return left + rightt;\n}\n"
              "int g() {\treturn; }\n")
    with pytest.raises(CompileError) as info:
        pm.cpp(source)
    shown = info.value.diagnostics.splitlines()
    assert shown[0].startswith("cell:2:17: error:") and "rightt" in shown[0]
    assert shown[1] == "    2 |   return left + rightt;"
    assert shown[2] == "      |                 ^"
    later = shown.index(next(line for line in shown if line.startswith("cell:4:")))
    assert shown[later + 1] == "    4 | int g() {       return; }"  # the tab, as g++ shows it
    assert shown[later + 2].index("^") == shown[later + 1].index("return")
    assert str(info.value).splitlines()[1] == shown[0]


def test_warnings_of_a_successful_build_are_shown_once(capsys):
    """The compiler's warnings and notes about the cell are printed on stdout, quoted
    with a caret, when the cell is built (a cache hit builds nothing, so shows none);
    nothing about polymagic's generated code is shown."""
    source = ('#warning "pm_cell_warning"\nint f(int x) {\n  int unused;\n'
              '  return x;\n}\n')
    assert pm.cpp(source, compile_args=["-Wall"]).f(3) == 3
    shown = capsys.readouterr().out.splitlines()
    assert shown[:3] == ['cell:1:2: warning: #warning "pm_cell_warning" [-Wcpp]',
                         '    1 | #warning "pm_cell_warning"', "      |  ^"]
    assert shown[3].startswith("cell:3:7: warning: unused variable") and len(shown) == 6
    assert pm.cpp(source, compile_args=["-Wall"]).f(4) == 4
    assert capsys.readouterr().out == ""


def test_link_error_names_the_cell_line():
    """Calling a function that is declared but never defined is a CompileError at link."""
    source = "double missing(double);\ndouble use(double x) { return missing(x); }\n"
    with pytest.raises(CompileError, match="missing") as info:
        pm.cpp(source)
    assert 1 in info.value.lines


def test_redefinition_gives_new_code():
    """Editing a cell and running it again binds the names to the new code."""
    first = pm.cpp("int version() { return 1; }")
    second = pm.cpp("int version() { return 2; }")
    assert (first.version(), second.version()) == (1, 2)


def test_unchanged_cell_is_loaded_from_cache():
    """Running the same cell twice loads the same cached library, without rebuilding."""
    source = "int cached_value() { return 7; }"
    first = pm.cpp(source)
    built = os.stat(first.__file__).st_mtime_ns
    again = pm.cpp(source)
    assert again.__file__ == first.__file__
    assert os.stat(again.__file__).st_mtime_ns == built
    assert again.cached_value() == 7


def test_force_rebuilds():
    """force=True builds again (a new library) and the result works."""
    source = "int forced() { return 5; }"
    first = pm.cpp(source)
    forced = pm.cpp(source, force=True)
    assert forced.__file__ != first.__file__ and forced.forced() == 5


def test_options_reach_the_compiler():
    """compile_args (-D) and optimize reach the compiler and libclang."""
    module = pm.cpp("int value() { return VALUE; }", compile_args="-DVALUE=11",
                    optimize="0", name="valued")
    assert module.value() == 11 and module.__name__ == "valued"


def test_deep_callback_recursion_raises_recursion_error():
    """Python -> C++ -> Python recursion through a function pointer, 10**6 deep, raises
    RecursionError (the stack guard) instead of overflowing the stack."""
    script = textwrap.dedent("""
        import sys
        import polymagic as pm
        m = pm.cpp('int depth(int n, int (*again)(int)) '
                   '{ return n <= 0 ? 0 : 1 + again(n - 1); }')
        def again(n):
            return m.depth(n, again)
        sys.setrecursionlimit(10**6)
        try:
            m.depth(10**6, again)
        except RecursionError as error:
            print("RecursionError:", error.__class__.__name__)
        print("after:", m.depth(100, again))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "RecursionError: CppRecursionError" in result.stdout
    assert "after: 100" in result.stdout
