"""Standard containers as parameters and results of %%cpp functions (copies), out-
parameters, their errors, and C++20 as the default standard."""
import collections.abc
import gc
import os
import shutil
import subprocess
import sys
import textwrap
import threading
import warnings

import numpy as np
import pytest

import polymagic as pm
from polymagic.bridges.cpp import codegen, containers
from polymagic.bridges.cpp.options import CppOptions
from polymagic.errors import ConversionError, CppError, CppFault, UnsupportedSignature

if shutil.which(os.environ.get("CXX", "c++")) is None and shutil.which("g++") is None:
    pytest.skip("no C++ compiler on PATH", allow_module_level=True)

CELL = r"""
#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

double total(const std::vector<double>& xs) { double s = 0; for (double x : xs) s += x; return s; }
double total_by_value(std::vector<double> xs) { double s = 0; for (double& x : xs) { s += x; x = -1; } return s; }
long total_ints(std::vector<long> xs) { long s = 0; for (long x : xs) s += x; return s; }
std::uintptr_t data_address(const std::vector<double>& xs) { return (std::uintptr_t)xs.data(); }
std::string join(const std::vector<std::string>& words) {
    std::string out; for (auto& w : words) out += w + "|"; return out; }
int count_true(const std::vector<bool>& flags) { int n = 0; for (bool f : flags) n += f; return n; }
unsigned char small(std::vector<unsigned char> xs) { return xs.empty() ? 0 : xs[0]; }

std::vector<std::string> names() { return {"ada", "grace", std::string("nul\0byte", 8)}; }
std::vector<bool> flags(int n) { std::vector<bool> v(n); for (int i = 0; i < n; ++i) v[i] = i % 2; return v; }
std::vector<std::vector<int>> grid(int n) { return std::vector<std::vector<int>>(n, std::vector<int>(2, n)); }

static std::uintptr_t last_data = 0;
std::vector<double> ramp(int n) { std::vector<double> v(n, 1.5); last_data = (std::uintptr_t)v.data(); return v; }
std::uintptr_t last_ramp() { return last_data; }

std::map<std::string, double> prices() { return {{"apple", 1.5}, {"pear", 2.0}}; }
double price_sum(const std::map<std::string, double>& m) { double s = 0; for (auto& [k, v] : m) s += v; return s; }
std::unordered_map<int, std::string> numbers(std::unordered_map<std::string, int> names) {
    std::unordered_map<int, std::string> out; for (auto& [k, v] : names) out[v] = k; return out; }
std::map<std::string, std::vector<double>> groups(const std::map<std::string, std::vector<double>>& data) {
    auto out = data; for (auto& [k, v] : out) v.push_back((double)v.size()); return out; }

std::pair<int, std::string> pair_of(int n, std::string s) { return {n, s}; }
std::vector<std::pair<int, std::string>> sorted_pairs(std::vector<std::pair<int, std::string>> xs) {
    std::sort(xs.begin(), xs.end()); return xs; }
std::tuple<int, double, std::string, bool> swap_tuple(std::tuple<std::string, int, double, bool> t) {
    return {std::get<1>(t), std::get<2>(t), std::get<0>(t), !std::get<3>(t)}; }

std::optional<double> half(std::optional<int> x) { if (x) return *x / 2.0; return std::nullopt; }
std::vector<std::optional<int>> holes(const std::vector<std::optional<int>>& xs) { return xs; }

std::string_view label() { return "a static label"; }
static const std::string kept = "kept string";
const std::string& kept_ref() { return kept; }
static std::vector<std::string> registry{"x", "y"};
const std::vector<std::string>& registry_ref() { return registry; }

void fill(std::vector<double>& out, int n) { out.assign(n, 7.0); }
void scale(std::vector<double>& v, double k) { for (auto& x : v) x *= k; }
void append_word(std::vector<std::string>& words) { words.push_back("end"); }
void add_entry(std::map<std::string, int>& m) { m["added"] = (int)m.size(); }
void scale_then_throw(std::vector<double>& v) { for (auto& x : v) x = 0; throw std::runtime_error("no"); }

std::vector<int> unsupported_view(std::vector<std::string_view> v) { return {}; }
void unsupported_pair_ref(std::pair<int, int>& p) {}
std::map<int, int, std::greater<int>> unsupported_comparator() { return {}; }
"""


@pytest.fixture(scope="module")
def cell():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = pm.cpp(CELL)
    module.caught_warnings = [str(w.message) for w in caught
                              if w.category is UnsupportedSignature]
    return module


# ---------------------------------------------------------------- vectors in

def test_vector_parameter_takes_lists_tuples_and_arrays(cell):
    """std::vector<T> / const std::vector<T>& accept a list, a tuple, any iterable and
    a NumPy array (exactly T, or another numeric dtype element by element)."""
    assert cell.total([1, 2.5, 3]) == 6.5
    assert cell.total((1.0, 2.0)) == 3.0
    assert cell.total(range(4)) == 6.0
    assert cell.total(np.arange(4.0)) == 6.0
    assert cell.total(np.arange(4)) == 6.0  # int64 array, element by element
    assert cell.total([]) == 0.0
    assert cell.total_ints(np.arange(5, dtype=np.int32)) == 10
    assert cell.small([255]) == 255


def test_vector_parameter_is_a_copy(cell):
    """A vector owns its memory: C++ gets a copy, and its writes do not reach Python."""
    array = np.arange(3.0)
    assert cell.data_address(array) != array.ctypes.data
    assert cell.total_by_value(array) == 3.0
    assert array.tolist() == [0.0, 1.0, 2.0]


def test_vector_of_strings_and_bools(cell):
    """std::vector<std::string> takes str and bytes; std::vector<bool> takes bools."""
    assert cell.join(["a", b"b", "\u00e9"]) == "a|b|\u00e9|"
    assert cell.count_true([True, False, True, 1, np.bool_(True)]) == 4
    assert cell.count_true(np.array([True, False, True])) == 2


# ---------------------------------------------------------------- vectors out

def test_vector_results(cell):
    """Vectors of strings become lists of str, of bool a NumPy bool array, nested
    vectors a list of NumPy arrays (copies)."""
    assert cell.names() == ["ada", "grace", "nul\0byte"]
    flags = cell.flags(4)
    assert flags.dtype == np.bool_ and flags.tolist() == [False, True, False, True]
    grid = cell.grid(2)
    assert isinstance(grid, list) and [g.tolist() for g in grid] == [[2, 2], [2, 2]]
    assert grid[0].dtype == np.dtype("i4")


def test_arithmetic_vector_result_stays_zero_copy(cell):
    """A std::vector<double> result is still a NumPy array over the vector's memory."""
    array = cell.ramp(5)
    assert array.ctypes.data == cell.last_ramp()
    assert array.tolist() == [1.5] * 5


# ---------------------------------------------------------------- maps, pairs, tuples

def test_maps_convert_both_ways(cell):
    """std::map and std::unordered_map <-> dict, any mapping in."""
    assert cell.prices() == {"apple": 1.5, "pear": 2.0}
    assert cell.price_sum({"a": 1, "b": 2.5}) == 3.5
    assert cell.numbers({"one": 1, "two": 2}) == {1: "one", 2: "two"}

    class Prices(collections.abc.Mapping):
        def __getitem__(self, key):
            return {"x": 4.0}[key]

        def __iter__(self):
            return iter(["x"])

        def __len__(self):
            return 1
    assert cell.price_sum(Prices()) == 4.0


def test_nested_map_of_vectors(cell):
    """std::map<std::string, std::vector<double>>: a dict of lists or arrays in, a
    dict of NumPy arrays out."""
    out = cell.groups({"a": [1.0], "b": np.array([2.0, 3.0]), "c": []})
    assert {k: v.tolist() for k, v in out.items()} == \
        {"a": [1.0, 1.0], "b": [2.0, 3.0, 2.0], "c": [0.0]}
    assert all(isinstance(v, np.ndarray) for v in out.values())


def test_pairs_and_tuples(cell):
    """std::pair and std::tuple <-> tuple; nested in a vector, a list of tuples."""
    assert cell.pair_of(1, "one") == (1, "one")
    assert cell.sorted_pairs([(2, "b"), [1, "a"]]) == [(1, "a"), (2, "b")]
    assert cell.swap_tuple(("s", 1, 2.5, False)) == (1, 2.5, "s", True)


def test_optional_is_a_value_or_none(cell):
    """std::optional<T> <-> the value or None, also inside containers."""
    assert cell.half(3) == 1.5
    assert cell.half(None) is None
    assert cell.holes([1, None, 3]) == [1, None, 3]


# ---------------------------------------------------------------- strings and refs

def test_string_view_and_const_reference_results_are_copied(cell):
    """A std::string_view or const std::string& result is copied into a str as the
    function returns; a const std::vector<std::string>& result into a list."""
    assert cell.label() == "a static label"
    assert cell.kept_ref() == "kept string"
    assert cell.registry_ref() == ["x", "y"]


# ---------------------------------------------------------------- out-parameters

def test_vector_out_parameter_refills_a_list(cell):
    """std::vector<T>&: a list passed is refilled with the vector's final contents."""
    out = [1.0]
    assert cell.fill(out, 3) is None
    assert out == [7.0, 7.0, 7.0] and all(type(x) is float for x in out)
    words = ["a"]
    cell.append_word(words)
    assert words == ["a", "end"]


def test_vector_out_parameter_writes_an_array_in_place(cell):
    """A NumPy array of exactly T is written back in place (same object, same memory)."""
    array = np.arange(3.0)
    address = array.ctypes.data
    cell.scale(array, 2.0)
    assert array.tolist() == [0.0, 2.0, 4.0] and array.ctypes.data == address


def test_array_out_parameter_cannot_change_size(cell):
    """C++ resizing the vector of a NumPy array is a ConversionError (and ValueError)."""
    array = np.zeros(2)
    with pytest.raises(ConversionError) as info:
        cell.fill(array, 5)
    assert isinstance(info.value, ValueError)
    message = str(info.value)
    assert "fill(): argument 'out' is a C++ std::vector<double>&" in message
    assert "C++ left 5 elements" in message and "holds 2" in message and "list" in message
    assert array.tolist() == [0.0, 0.0]


def test_map_out_parameter_refills_a_dict(cell):
    """std::map&: the dict passed is cleared and refilled."""
    d = {"a": 1}
    cell.add_entry(d)
    assert d == {"a": 1, "added": 1}


def test_out_parameter_is_not_written_back_when_cpp_throws(cell):
    """A C++ exception leaves the caller's list as it was."""
    values = [1.0, 2.0]
    with pytest.raises(CppError, match="no"):
        cell.scale_then_throw(values)
    assert values == [1.0, 2.0]


def test_out_parameter_refuses_what_cannot_be_filled(cell):
    """A tuple, or an array of another dtype, cannot be filled back."""
    with pytest.raises(ConversionError, match=r"scale\(\): argument 'v' is a C\+\+ "
                       r"std::vector<double>&: expected a list, or a writable NumPy "
                       r"array .* got tuple \(1.0,\)"):
        cell.scale((1.0,), 2.0)
    with pytest.raises(ConversionError, match="got ndarray"):
        cell.scale(np.ones(2, np.float32), 2.0)
    with pytest.raises(ConversionError, match="expected a dict"):
        cell.add_entry([("a", 1)])


# ---------------------------------------------------------------- errors

def test_errors_name_function_parameter_type_path_and_value(cell):
    """A value that does not convert: ConversionError naming where, what and why."""
    with pytest.raises(ConversionError) as info:
        cell.total([1.0, "x"])
    assert str(info.value) == ("total(): argument 'xs' is a C++ const std::vector<double>&: "
                               "xs[1] should be float (C++ double), got str 'x'")
    assert isinstance(info.value, TypeError)
    with pytest.raises(ConversionError) as info:
        cell.groups({"a": [1.0, None]})
    assert "data['a'][1] should be float (C++ double), got NoneType None" in str(info.value)
    with pytest.raises(ConversionError, match=r"expected a sequence .* got int 3"):
        cell.total(3)
    with pytest.raises(ConversionError, match="expected a sequence .* got str 'abc'"):
        cell.total("abc")
    with pytest.raises(ConversionError, match="expected a dict .* got list"):
        cell.price_sum([("a", 1.0)])


def test_wrong_keys_integers_and_strings(cell):
    """Keys, integer ranges, floats for ints, tuple lengths and unencodable str."""
    with pytest.raises(ConversionError, match=r"names has the key int 3, which should be "
                                              r"str \(C\+\+ std::string\)"):
        cell.numbers({3: 3})
    with pytest.raises(ConversionError) as info:
        cell.small([256])
    assert isinstance(info.value, OverflowError)
    assert "xs[0] should be int (C++ unsigned char), got int 256, out of range" \
        in str(info.value)
    with pytest.raises(ConversionError, match=r"xs\[0\] should be int \(C\+\+ long\), "
                                              r"got float 1.5"):
        cell.total_ints([1.5])
    with pytest.raises(ConversionError, match=r"xs\[0\] should be int"):
        cell.total_ints(np.array([1.0]))  # a float array is not silently truncated
    with pytest.raises(ConversionError, match=r"xs\[0\] should be a tuple of 2 items"):
        cell.sorted_pairs([(1, "a", "extra")])
    with pytest.raises(ConversionError, match=r"cannot be encoded as UTF-8"):
        cell.join(["\ud800"])
    with pytest.raises(ConversionError, match=r"half\(\): argument 'x' is a C\+\+ "
                       r"std::optional<int>: expected int \(C\+\+ int\), got str '3'"):
        cell.half("3")


def test_python_errors_inside_a_conversion_are_raised_as_they_are(cell):
    """An element whose own code raises: that very exception reaches the caller."""
    error = RuntimeError("boom")

    class Bad:
        def __float__(self):
            raise error
    with pytest.raises(RuntimeError) as info:
        cell.total([1.0, Bad()])
    assert info.value is error
    assert cell.total([1.0]) == 1.0  # the session goes on


def test_no_result_or_reference_is_left_behind(cell):
    """Results are handed over and arguments released, after errors too."""
    values = [1.0, 2.0]
    before = sys.getrefcount(values)
    for _ in range(100):
        cell.total(values)
        cell.names()
        with pytest.raises(ConversionError):
            cell.total([values, 1])
    gc.collect()  # the errors' tracebacks hold the wrapper's frame, in cycles
    assert sys.getrefcount(values) == before
    assert containers._results == {}


def test_conversions_from_many_threads(cell):
    """Conversions take the GIL themselves: concurrent calls neither block nor mix."""
    failures = []

    def work(n):
        try:
            for _ in range(200):
                assert cell.groups({str(n): [float(n)]})[str(n)].tolist() == [n, 1.0]
        except BaseException as error:  # reported below
            failures.append(error)
    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not failures and not any(t.is_alive() for t in threads)


def test_unsupported_container_uses_are_skipped_with_a_reason(cell):
    """string_view inside a parameter container, non-const pair&, custom comparators."""
    warned = "\n".join(cell.caught_warnings)
    assert "unsupported_view" in warned and "std::string_view inside a container" in warned
    assert "unsupported_pair_ref" in warned and "cannot be filled back" in warned
    assert "unsupported_comparator" in warned and "custom less" in warned
    assert not hasattr(cell, "unsupported_view")


def test_cells_without_containers_do_not_include_their_code():
    """Container code is pasted only into cells that use it (builds stay short)."""
    plan = {"functions": [{"name": "f", "params": [], "line": 1, "index": 0,
                           "symbol": "pm_f0", "ret": {"kind": "scalar", "tag": "int"}}],
            "imports": []}
    assert "pm_cv" not in codegen.translation_unit("int f() { return 1; }", plan)
    assert containers.cpp_support(plan) == "" and containers.cdef_lines(plan) == []


def test_a_fault_after_a_conversion_costs_the_call_not_the_session():
    """A segfault in a function taking a container: CppFault, and the process goes on
    converting (the GIL was not held when C++ ran)."""
    script = textwrap.dedent("""
        import polymagic as pm
        from polymagic.errors import CppFault
        m = pm.cpp('''
        #include <vector>
        #include <map>
        #include <string>
        double crash(const std::vector<double>& xs) { return *(volatile double*)nullptr + xs[0]; }
        std::map<std::string, int> ok(std::map<std::string, int> m) { return m; }
        ''')
        try:
            m.crash([1.0])
        except CppFault as error:
            print("fault:", error.signal)
        print("after:", m.ok({"a": 1}))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "fault: SIGSEGV" in result.stdout
    assert "after: {'a': 1}" in result.stdout


# ---------------------------------------------------------------- the default standard

def test_cpp20_is_the_default_standard():
    """Without --std a cell is C++20 (std::span works); --std still chooses."""
    assert CppOptions.make().std == "c++20"
    source = ("#include <span>\nlong standard() { return __cplusplus; }\n"
              "double first(std::span<const double> xs) { return xs[0]; }\n")
    module = pm.cpp(source)
    assert module.standard() == 202002 and module.first(np.array([2.5])) == 2.5
    assert pm.cpp("long standard() { return __cplusplus; }",
                  std="c++17").standard() == 201703


def test_overload_shape_tests_tell_containers_apart():
    """overload_test (for overloads.py's conversion pass) tells a dict from a list,
    a pair from a longer tuple, and None for an optional."""
    def matches(spec, value):
        names = {}
        exact, convertible, _converted, python = containers.overload_test(spec, "v", names)
        assert eval(exact, names, {"v": value}) is False
        return eval(convertible, names, {"v": value})
    scalar = {"t": "scalar", "tag": "int", "cpp": "int"}
    vector = {"kind": "container", "type": {"t": "vector", "items": [scalar]}}
    mapping = {"kind": "container", "type": {"t": "map", "items": [scalar, scalar]}}
    pair = {"kind": "container", "type": {"t": "pair", "items": [scalar, scalar]}}
    optional = {"kind": "container", "type": {"t": "optional", "items": [scalar]}}
    out = {"kind": "container_out", "type": {"t": "vector", "items": [scalar]}}
    assert matches(vector, [1]) and matches(vector, np.arange(2)) and not matches(vector, {1: 1})
    assert matches(mapping, {1: 1}) and not matches(mapping, [1])
    assert matches(pair, (1, 2)) and not matches(pair, (1, 2, 3))
    assert matches(optional, None) and matches(optional, 3) and not matches(optional, "x")
    assert matches(out, [1]) and not matches(out, (1,))
    assert containers.overload_test(mapping, "v", {})[3] == "dict"


def test_overloads_on_container_types_dispatch_by_shape():
    """f(std::vector<int>) and f(std::map<std::string, int>): a dict reaches the map
    overload, a list the vector one; an optional takes None."""
    module = pm.cpp(r"""
        #include <map>
        #include <optional>
        #include <string>
        #include <vector>
        int f(const std::vector<int>& xs) { return 1; }
        int f(const std::map<std::string, int>& m) { return 2; }
        int g(std::optional<double> x) { return x ? 1 : 0; }
        int g(const std::string& s) { return 2; }
    """)
    assert module.f([1, 2]) == 1 and module.f({"a": 1}) == 2 and module.f(np.arange(2)) == 1
    assert module.g(None) == 0 and module.g(1.5) == 1 and module.g("x") == 2
