"""Overloaded C++ functions dispatch on the arguments' types (pybind11's two passes),
and the explicit instantiations of a function template are its overloads."""
import os
import pickle
import shutil
import warnings

import numpy as np
import pytest

import polymagic as pm
from polymagic.bridges.cpp.overloads import dispatcher
from polymagic.errors import ConversionError, OverloadError, UnsupportedSignature

if shutil.which(os.environ.get("CXX", "c++")) is None and shutil.which("g++") is None:
    pytest.skip("no C++ compiler on PATH", allow_module_level=True)

CELL = r"""
#include <functional>
#include <span>
#include <string>

// double is declared first: twice(3) still reaches int (the exact pass comes first)
double twice(double x) { return 2 * x; }
int twice(int x) { return 2 * x; }
bool twice(bool x) { return !x; }
std::string twice(const std::string& s) { return s + s; }
long twice(std::span<const long> xs) { long s = 0; for (long x : xs) s += 2 * x; return s; }
double twice(std::span<const double> xs) { double s = 0; for (double x : xs) s += x; return 2*s; }

const char* width(int) { return "int"; }
const char* width(long long) { return "long long"; }

const char* sign(unsigned int) { return "unsigned"; }
const char* sign(int) { return "int"; }

const char* take(std::function<double(double)> f) { return f(1) == 2 ? "callback" : "?"; }
const char* take(double) { return "double"; }
const char* take(const std::string&) { return "string"; }

void fill(double* p, long n) { for (long i = 0; i < n; ++i) p[i] = 7; }
void fill(const std::string&, long) {}

double total(std::span<const double> xs) { double s = 0; for (double x : xs) s += x; return s; }
double total(const std::string& s) { return -1; }

double half(double x) { return x / 2; }

template <class T> T triple(T x) { return 3 * x; }
template double triple<double>(double);
template int triple(int);

template <class T> const char* which(T) { return __PRETTY_FUNCTION__; }
template const char* which<double>(double);
template const char* which<long>(long);

template <class T> T square(T x) { return x * x; }
template float square<float>(float);

template <class T> T lonely(T x) { return x; }

namespace inner { template <class T> T id(T x) { return x; } }
template short inner::id<short>(short);

template <class T> T wide(T x) { return x; }
template long double wide<long double>(long double);
"""

pytestmark = pytest.mark.usefixtures("private_cache")


@pytest.fixture(scope="module")
def cell():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = pm.cpp(CELL, std="c++20")
    module.caught_warnings = [w for w in caught if w.category is UnsupportedSignature]
    return module


def test_each_overload_is_reached_by_its_argument_type(cell):
    """int, float, bool, str and arrays of two dtypes each reach their own overload,
    whatever the declaration order (the result's class shows which one ran)."""
    calls = [(2.5, 5.0, float), (3, 6, int), (True, False, bool), ("ab", "abab", str),
             (np.arange(3), 6, int), (np.arange(3.0), 6.0, float)]
    for argument, expected, cls in calls:
        result = cell.twice(argument)
        assert result == expected and type(result) is cls, (argument, result)


def test_numpy_scalars_are_exact_matches(cell):
    """NumPy integers go to the integral overload, NumPy floats to the floating one,
    NumPy bools to bool (as pybind11 does)."""
    assert type(cell.twice(np.int64(4))) is int
    assert type(cell.twice(np.float32(1.5))) is float
    assert cell.twice(np.bool_(True)) is False


def test_an_int_out_of_range_goes_to_the_wider_overload(cell):
    """The exact pass checks the range: 2**40 does not fit an int, so long long."""
    assert cell.width(5) == "int"
    assert cell.width(2**40) == "long long"


def test_unsigned_ranges(cell):
    """A negative int skips the unsigned overload; one too big for both is no match."""
    assert cell.sign(3) == "unsigned"
    assert cell.sign(-1) == "int"
    with pytest.raises(OverloadError):
        cell.sign(2**33)


def test_the_c_exact_pass_agrees_with_the_python_rule(cell):
    """The C front (OverloadSet) and the Python dispatcher behind it (__wrapped__)
    choose the same overload for every kind of argument, and errors alike."""
    assert type(cell.twice).__name__ == "OverloadSet"
    python = cell.twice.__wrapped__
    for argument in (2.5, 3, -7, True, False, "ab", b"ab", np.int32(4), np.float32(1.5),
                     np.bool_(False), np.arange(3), np.arange(3.0), 2**31, 2**70):
        assert repr(cell.twice(argument)) == repr(python(argument)), argument
    for function, argument in ((cell.sign, 2**32 - 1), (cell.sign, -2**31),
                               (cell.width, -2**63), (cell.take, abs)):
        assert function(argument) == function.__wrapped__(argument)
    for failing in ((cell.twice, [1]), (cell.sign, 2**64), (cell.sign, 1.5)):
        with pytest.raises(OverloadError) as native:
            failing[0](failing[1])
        with pytest.raises(OverloadError) as fallback:
            failing[0].__wrapped__(failing[1])
        assert str(native.value) == str(fallback.value)


def test_callables_reach_callback_overloads(cell):
    """A callable reaches the std::function overload; a float and a str their own."""
    assert cell.take(lambda x: 2 * x) == "callback"
    assert cell.take(1.5) == "double"
    assert cell.take("x") == "string"


def test_conversion_pass(cell):
    """With no exact match, the first overload that converts is called: int ->
    double, and a const array of another dtype is copied to the parameter's dtype."""
    assert cell.take(3) == "double"  # int -> double (no int overload)
    assert cell.total(np.arange(4, dtype=np.int32)) == 6.0  # copied to float64
    assert cell.total(np.arange(8.0)[::2]) == 12.0  # strided: copied contiguous


def test_a_writable_pointer_never_takes_a_copy(cell):
    """double* would write into a copy, and the writes would be lost: no match."""
    data = np.zeros(3)
    cell.fill(data, 3)
    assert data.tolist() == [7.0, 7.0, 7.0]
    with pytest.raises(OverloadError):
        cell.fill(np.zeros(3, dtype=np.float32), 3)
    with pytest.raises(OverloadError):
        cell.fill(np.zeros(3)[::2], 2)


def test_no_match_lists_every_overload_and_the_types_given(cell):
    """pybind11's message: every C++ signature, and what the call passed."""
    with pytest.raises(OverloadError) as caught:
        cell.twice([1, 2])
    assert isinstance(caught.value, ConversionError)
    assert isinstance(caught.value, TypeError)
    message = str(caught.value)
    assert message.startswith("twice(): incompatible function arguments.")
    for signature in ("double twice(double x)", "int twice(int x)", "bool twice(bool x)",
                      "std::string twice(const std::string& s)",
                      "long twice(std::span<const long> xs)",
                      "double twice(std::span<const double> xs)"):
        assert signature in message
    assert "Invoked with: [1, 2] (list)" in message


def test_wrong_number_of_arguments_is_no_match(cell):
    """Too many or too few arguments: the same error, naming what was given."""
    with pytest.raises(OverloadError, match=r"Invoked with: 1 \(int\), 2 \(int\)"):
        cell.twice(1, 2)
    with pytest.raises(OverloadError, match="Invoked with: no arguments"):
        cell.twice()


def test_keywords_bind_by_cpp_parameter_names(cell):
    """twice(x=2.5) and twice(s='ab') choose by name and type."""
    assert cell.twice(x=2.5) == 5.0
    assert cell.twice(s="ab") == "abab"
    with pytest.raises(OverloadError, match="Invoked with: y=1"):
        cell.twice(y=1)


def test_help_lists_every_overload(cell):
    """The dispatcher's docstring has each overload with its Python types."""
    doc = cell.twice.__doc__
    assert "double twice(double x)  [x: float" in doc
    assert "int twice(int x)  [x: int" in doc
    assert "std::string twice(const std::string& s)  [s: str" in doc


def test_suffixed_names_remain(cell):
    """Each overload is still exported alone as name__<types>."""
    assert cell.twice__double(1.5) == 3.0
    assert cell.twice__int(2) == 4
    assert {"twice", "twice__double", "twice__int"} <= set(cell.__exports__)


def test_plain_functions_stay_cffi_builtins(cell):
    """A function that is not overloaded, with scalar types, is cffi's builtin."""
    assert type(cell.half).__name__ == "builtin_function_or_method"
    assert type(cell.square).__name__ == "builtin_function_or_method"


def test_template_instantiations_are_overloads(cell):
    """Each explicit instantiation is an overload of the template's name, whose
    trampoline calls that instantiation."""
    assert cell.triple(2) == 6 and type(cell.triple(2)) is int
    assert cell.triple(0.5) == 1.5
    assert "T = double" in cell.which(1.5)
    assert "T = long" in cell.which(1)
    assert cell.__signatures__["triple__int"]["callee"] == "triple<int>"
    assert "double triple<double>(double x)" in cell.triple.__doc__


def test_a_single_instantiation_is_exported_under_the_name(cell):
    """One instantiation: the name itself, no dispatcher."""
    assert cell.square(1.5) == 2.25


def test_template_without_instantiation_warns_how_to_instantiate(cell):
    """Not exported; the warning shows the line to write."""
    assert not hasattr(cell, "lonely")
    messages = [str(w.message) for w in cell.caught_warnings]
    assert any("'lonely'" in m and "template double lonely<double>(double);" in m
               for m in messages), messages


def test_namespaced_and_unsupported_instantiations_are_not_exported(cell):
    """A namespace's template is not exported (as its functions are not); an
    instantiation with a type that cannot cross warns naming it."""
    assert not hasattr(cell, "id") and not hasattr(cell, "inner")
    messages = [str(w.message) for w in cell.caught_warnings]
    assert any("'wide'" in m and "long double" in m for m in messages), messages


def test_dispatcher_pickles(cell):
    """The overload set travels like any cell function."""
    assert pickle.loads(pickle.dumps(cell.twice))(3) == 6


def test_rerunning_a_cell_redefines_overloads(private_cache):
    """An edited cell rebinds the overload set; the old module keeps its own."""
    first = pm.cpp("int f(int x) { return x; }\ndouble f(double x) { return x; }\n")
    second = pm.cpp("int f(int x) { return 10 * x; }\n"
                    "double f(double x) { return 10 * x; }\n")
    assert (first.f(2), first.f(2.5)) == (2, 2.5)
    assert (second.f(2), second.f(2.5)) == (20, 25.0)


def test_dispatcher_api_with_a_leading_receiver():
    """dispatcher(name, candidates, leading=1): the receiver passes unchecked, the
    rest chooses (the API classes use for overloaded methods)."""
    def spec(tag):
        return {"kind": "scalar", "tag": tag}

    def entry(tag):
        return {"name": "m", "params": [{"name": "v", "type": spec(tag)}],
                "ret": spec(tag), "line": 1}
    method = dispatcher("m", [(entry("double"), lambda self, v: ("double", self, v)),
                              (entry("int"), lambda self, v: ("int", self, v))],
                        leading=1)
    assert method("me", 2) == ("int", "me", 2)
    assert method("me", 2.0) == ("double", "me", 2.0)
    with pytest.raises(OverloadError, match=r"(?s)m\(\): incompatible.*Invoked with: 'x'"):
        method("me", "x")

    class Holder:
        m = method
    holder = Holder()
    assert holder.m(2) == ("int", holder, 2)  # bound as a method, self leading
    assert Holder.m(holder, 2.5) == ("double", holder, 2.5)
    assert holder.m(v=3) == ("int", holder, 3)


def test_python_dispatcher_serves_alone_where_c_cannot_be_built(monkeypatch):
    """Without the C part (a process with no compiler), the generated Python rule
    is the dispatcher, with the same choices and error."""
    from polymagic.bridges.cpp import overloads
    monkeypatch.setattr(overloads, "_native_type", lambda: None)
    spec = {"kind": "scalar", "tag": "int"}
    entry = {"name": "f", "params": [{"name": "v", "type": spec}], "ret": spec, "line": 1}
    function = dispatcher("f", [(entry, lambda v: v + 1)])
    assert type(function).__name__ == "function"
    assert function(1) == 2
    with pytest.raises(OverloadError, match="Invoked with: 1.5"):
        function(1.5)


def test_magic_binds_the_overload_set(tmp_path_factory):
    """%%cpp binds the dispatcher under the name; an edited cell rebinds it."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("POLYMAGIC_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        from IPython.testing.globalipapp import get_ipython
        ip = get_ipython()
        ip.run_line_magic("load_ext", "polymagic")
        ip.run_cell_magic("cpp", "", "int g(int x) { return x; }\n"
                                     "double g(double x) { return -x; }\n")
        assert (ip.user_ns["g"](2), ip.user_ns["g"](2.0)) == (2, -2.0)
        ip.run_cell_magic("cpp", "", "int g(int x) { return 2 * x; }\n"
                                     "double g(double x) { return -2 * x; }\n")
        assert (ip.user_ns["g"](2), ip.user_ns["g"](2.0)) == (4, -4.0)
