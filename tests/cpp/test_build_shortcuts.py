"""What makes a new %%cpp cell build faster without changing what it means: libclang
reads the cell without its function bodies, std::string and std::vector<number>
conversions are compiled once in the runtime, the fixed C glue once per compiler."""
import os
import shutil

import numpy as np
import pytest

import polymagic as pm
from polymagic.bridges.cpp import signatures
from polymagic.bridges.cpp.options import CppOptions
from polymagic.toolchain import compiler as find_compiler

if shutil.which(os.environ.get("CXX", "c++")) is None and shutil.which("g++") is None:
    pytest.skip("no C++ compiler on PATH", allow_module_level=True)

pytestmark = pytest.mark.usefixtures("private_cache")

CELLS = {
    "std types": ("#include <string>\n#include <vector>\n"
                  "std::vector<double> ramp(int n) { return std::vector<double>(n); }\n"
                  "std::string greet(const std::string& s) { return \"hi \" + s; }\n"),
    "declared, deleted, extern C": (
        "int declared(int);\nint add(int a, int b) { return a + b; }\n"
        "extern \"C\" { int c_add(int a) { return a; } }\nint deleted(int) = delete;\n"
        "int a1(), a2(int);\nint a3(int x) noexcept { return x; }\n"),
    "classes": (
        "struct A { virtual double f(double) const = 0; virtual ~A() = default; };\n"
        "struct B : A { double f(double x) const override { return x; } };\n"
        "struct P { double x; P(double v) : x(v) {} double get() const { return x; }\n"
        "  void set(double); P() = default; ~P(); };\n"
        "void P::set(double v) { x = v; }\nP::~P() {}\n"
        "double call(const A& a, double x) { return a.f(x); }\n"),
    "deduced results": ("auto deduced(int x) { return x * 2.0; }\n"
                        "struct S { auto twice(int x) const { return 2 * x; } };\n"),
    "bodies the source does not show": (
        "#define BODY { return 1; }\nint via_macro() BODY\n"
        "int commented(int x) /* c */ // d\n{ return x; }\n"
        "double tried(double x) try { return x; } catch (...) { return 0; }\n"
        "namespace geo { int f() { return 1; } int g(); }\n"),
    "spans in declarations only": (
        "#include <span>\n#include <vector>\n"
        "struct H { void fill(std::span<const float> xs) { n += xs.size(); }\n"
        "  void fixed(std::span<const float, 4> xs) {} long n = 0; };\n"
        "double total(std::span<const double> xs) { return xs.empty() ? 0 : xs[0]; }\n"),
    "templates": ("template <class T> T twice(T x) { return x + x; }\n"
                  "template double twice<double>(double);\n"),
}


def clang_args() -> list[str]:
    options = CppOptions()
    return signatures.clang_args(find_compiler("c++"), options.std, options.include_dirs,
                                 options.preprocessor_flags())


def without_errors(plan: dict) -> dict:
    return {key: value for key, value in plan.items() if key != "parse_errors"}


@pytest.mark.parametrize("cell", list(CELLS.values()), ids=list(CELLS))
def test_a_reading_without_bodies_is_the_full_reading(cell):
    args = clang_args()
    full = signatures.parse(cell, args)
    assert full["functions"] or full["classes"]
    assert without_errors(signatures.parse(cell, args, skip_bodies=True)) == \
        without_errors(full)


def test_a_span_parameter_of_a_method_body_unread_is_exported():
    """A method whose body is skipped leaves its std::span parameter type incomplete
    (a top-level definition's are completed all the same): its extent is read from
    the type's spelling (only dynamic spans are exported)."""
    plan = signatures.parse(CELLS["spans in declarations only"], clang_args(),
                            skip_bodies=True)
    members = [member["name"] for member in plan["classes"][0]["members"]]
    assert "fill" in members and "fixed" not in members
    assert any(entry["name"] == "fixed" and "dynamic-extent" in entry["reason"]
               for entry in plan["skipped"])


def test_the_bodies_are_skipped():
    """An error inside a body is not libclang's to see when bodies are skipped (g++
    reports it), and one in a declaration still is."""
    args = clang_args()
    in_body = "int f() { return no_such_name; }\n"
    assert signatures.parse(in_body, args)["parse_errors"]
    assert not signatures.parse(in_body, args, skip_bodies=True)["parse_errors"]
    in_declaration = "no_such_type f() { return 1; }\n"
    assert signatures.parse(in_declaration, args, skip_bodies=True)["parse_errors"]


def test_a_cell_body_error_is_reported_at_its_line():
    with pytest.raises(pm.CompileError) as raised:
        pm.cpp("#include <vector>\nint ok() { return 1; }\n"
               "int bad() {\n  return no_such_name;\n}\n")
    assert raised.value.lines == [4]
    assert "no_such_name" in str(raised.value)


@pytest.mark.parametrize("flags", ["", "-D_GLIBCXX_DEBUG", "-D_GLIBCXX_USE_CXX11_ABI=0"])
def test_strings_and_vectors_cross_whatever_the_library_mode(flags):
    """The runtime's out-of-line conversions serve libstdc++'s default ABI; a cell in
    debug mode or with the old string ABI gets its own, and works the same."""
    module = pm.cpp(CELLS["std types"] + "std::vector<int> count(int n) "
                    "{ std::vector<int> v(n); for (int i = 0; i < n; ++i) v[i] = i; "
                    "return v; }\n", compile_args=flags)
    assert module.greet("you") == "hi you"
    assert module.greet("nul\0inside") == "hi nul\0inside"
    assert module.ramp(3).tolist() == [0.0, 0.0, 0.0]
    counted = module.count(4)
    assert counted.dtype == np.dtype("intc") and counted.tolist() == [0, 1, 2, 3]


def test_each_module_has_its_own_glue_state(space):
    """The once-compiled glue is linked hidden into each module: two cells calling
    Python each reach the namespace through their own table."""
    first = pm.cpp("#include <polymagic.hpp>\nPM_PYTHON double scale(double);\n"
                   "double use_first(double x) { return scale(x); }\n")
    second = pm.cpp("#include <polymagic.hpp>\nPM_PYTHON double shift(double);\n"
                    "double use_second(double x) { return shift(x); }\n")
    space.update(scale=lambda x: 10 * x, shift=lambda x: x + 1)
    assert first.use_first(2.0) == 20.0
    assert second.use_second(2.0) == 3.0
