"""Overloaded C++ functions as ONE Python callable that picks the overload by the types
of the arguments, with pybind11's rule (cppyy's is alike).

The rule
--------
1. The exact pass: in declaration order, the first overload whose every parameter takes
   its argument without conversion: a Python int (or NumPy integer) in range for an
   integral parameter, a float (or NumPy floating) for float/double, a bool (or NumPy
   bool) for bool, a str or bytes for a string kind, a C-contiguous NumPy array of
   exactly T (writable if the C++ side may write) for `T*`/`std::span<T>`, a callable
   for a callback.
2. The conversion pass: in declaration order, the first overload whose parameters take
   the arguments allowing conversions: int (or NumPy integer) -> float/double, a bool
   (or NumPy bool) -> an integral, an int 0 or 1 -> bool, and for `const T*` /
   `std::span<const T>` an array of another dtype that casts safely to T, or a strided
   one, which is COPIED into a C-contiguous array of T (C++ cannot write to it, so the
   copy loses nothing; `T*` never takes a copy: the writes would be lost).
3. Nothing matches: `polymagic.errors.OverloadError` (a `ConversionError`, so a
   `TypeError`), listing every overload's C++ signature with the Python types it
   takes, and the types of the arguments given (pybind11's "incompatible function
   arguments").

API
---
``dispatcher(name, candidates, leading=0)`` -> a callable named `name`.
    `candidates`: ``[(entry, call), ...]`` in declaration order. `entry` is a plan
    entry (a dict with "name", "params": [{"name", "type": spec}], "ret" and "line";
    optional "callee", the C++ name shown, e.g. ``twice<double>``); `call` takes the
    arguments of that overload, positionally, leading ones first, and does the call
    (cffi's builtin, or the generated wrapper that converts arrays and strings).
    `leading`: how many leading positional arguments (``self``) go to `call` as they
    are, unchecked, before the checked ones. It binds as functions do (a descriptor),
    so set on a class it is a method whose `self` is the leading argument. Its
    ``__doc__`` lists every overload; ``__overloads__`` is `candidates`. Keyword
    arguments are bound by the C++ parameter names (the slow path below).

``register(kind_name, matcher)`` teaches the dispatcher a kind of types.py.
    ``matcher(spec, var, names) -> Test``: Python expressions over the variable named
    `var` (``exact``: it matches without conversion; ``convertible``: it matches with
    one, None if never; ``converted``: the value to pass after a conversion, None for
    `var` itself) and ``python``, how the kind reads in messages ("float"). Names the
    expressions use are put into the dict `names`. A kind no matcher knows matches in
    the conversion pass only, and its own argument converter judges the value.

How: the rule is generated Python code (one `if` per overload and pass, no loop, no
call per test), `__wrapped__`. In front of it, native/overloads.c's OverloadSet
(built once per compiler and Python) runs the exact pass in C for ints, floats,
bools, strings and callables and calls the chosen overload through vectorcall;
whatever it cannot decide (keywords, arrays, NumPy scalars, other kinds, no exact
match) it hands to the Python code. So `twice(2.5)` costs ~15-30 ns more than the
overload called alone (bench/bench_cpp.py). A function that is not overloaded is
not dispatched at all: it stays cffi's builtin.
"""
from __future__ import annotations

import functools
import sysconfig
import types as pytypes
from pathlib import Path
from typing import Callable, NamedTuple

from ... import build
from ...errors import BridgeUnavailable, CompileError, OverloadError
from ...toolchain import compiler, compiler_identity, load_extension
from . import callbacks, containers, processes, sources, types


class Test(NamedTuple):
    exact: str
    convertible: str | None
    converted: str | None
    python: str
    exact_argument: str | None = None  # what to pass after an exact match (None: var)


MATCHERS: dict[str, Callable[[dict, str, dict], Test]] = {}


def register(kind_name: str, matcher: Callable[[dict, str, dict], Test]) -> None:
    """Use `matcher` for parameters of the kind named `kind_name` (see the docstring)."""
    MATCHERS[kind_name] = matcher


def _numpy_names(names: dict):
    import numpy
    names.update(_ndarray=numpy.ndarray, _np_integer=numpy.integer,
                 _np_floating=numpy.floating, _np_bool=numpy.bool_,
                 _can_cast=numpy.can_cast, _contiguous=numpy.ascontiguousarray)
    return numpy


def _scalar(spec: dict, var: str, names: dict) -> Test:
    numpy, tag = _numpy_names(names), spec["tag"]
    if tag == "bool":
        # a NumPy bool is exact, as in pybind11, but cffi takes Python's bools only
        return Test(f"(type({var}) is bool or isinstance({var}, _np_bool))",
                    f"(type({var}) is int and 0 <= {var} <= 1)", f"bool({var})", "bool",
                    exact_argument=f"bool({var})")
    if tag in ("float", "double"):
        names["_floating"] = (float, numpy.floating)
        names["_real"] = (int, numpy.integer)
        return Test(f"(type({var}) is float or isinstance({var}, _floating))",
                    f"isinstance({var}, _real)",
                    None, "float")
    limits = numpy.iinfo(numpy.dtype(types.dtype_char(tag)))
    in_range = f"{limits.min} <= {var} <= {limits.max}"
    names["_integral"] = (int, numpy.integer, numpy.bool_)
    return Test(f"((type({var}) is int or isinstance({var}, _np_integer)) and {in_range})",
                f"(isinstance({var}, _integral) and {in_range})", f"int({var})", "int")


def _array(spec: dict, var: str, names: dict) -> Test:
    numpy, tag = _numpy_names(names), spec["tag"]
    dtype = numpy.dtype(types.dtype_char(tag))
    names[f"_dtype_{tag}"] = dtype
    writable = not spec["const"]
    exact = (f"(isinstance({var}, _ndarray) and {var}.dtype == _dtype_{tag} and "
             f"{var}.flags.c_contiguous{f' and {var}.flags.writeable' if writable else ''})")
    python = f"numpy.ndarray of {dtype.name}{'' if writable else ' (read-only allowed)'}"
    if writable:
        return Test(exact, None, None, python + ", writable")
    return Test(exact, f"(isinstance({var}, _ndarray) and "
                       f"_can_cast({var}.dtype, _dtype_{tag}, 'safe'))",
                f"_contiguous({var}, _dtype_{tag})", python)


def _text(spec: dict, var: str, names: dict) -> Test:
    names["_text"] = (str, bytes)
    return Test(f"isinstance({var}, _text)", None, None, "str")


def _callback(spec: dict, var: str, names: dict) -> Test:
    return Test(f"callable({var})", None, None, f"callable {types.describe(spec)}")


for _kinds, _matcher in ((("scalar",), _scalar), (("array", "span"), _array),
                         (("cstr", "string"), _text), (("fnptr", "function"), _callback)):
    for _kind in _kinds:
        register(_kind, _matcher)
for _kind in ("container", "container_out"):  # by the value's shape (containers.py)
    register(_kind, lambda spec, var, names: Test(*containers.overload_test(spec, var, names)))


def _unknown(spec: dict, var: str, names: dict) -> Test:
    """A kind with no matcher: tried in the conversion pass; its converter judges."""
    return Test("False", "True", None, types.describe(spec))


def _test(spec: dict, var: str, names: dict) -> Test:
    return MATCHERS.get(spec["kind"], _unknown)(spec, var, names)


def cpp_signature(entry: dict) -> str:
    """'double twice<double>(double x)', as the overload reads in C++."""
    params = ", ".join(f"{types.describe(p['type'])} {p['name']}" for p in entry["params"])
    return f"{types.describe(entry['ret'])} {entry.get('callee', entry['name'])}({params})"


class _Candidate:
    """One overload while the dispatcher is generated: its tests and code lines."""

    def __init__(self, number: int, entry: dict, names: dict):
        self.number, self.entry = number, entry
        self.arity = len(entry["params"])
        self.variables = [f"x{k}" for k in range(self.arity)]
        self.tests = [_test(param["type"], var, names)
                      for param, var in zip(entry["params"], self.variables)]

    def exact(self) -> tuple[str, list[str]]:
        """(condition, arguments) of the exact pass."""
        return " and ".join(t.exact for t in self.tests) or "True", \
            [t.exact_argument or var for t, var in zip(self.tests, self.variables)]

    def converting(self) -> tuple[str, list[str]] | None:
        """(condition, arguments) of the conversion pass; None if it is the exact pass."""
        if all(t.convertible is None for t in self.tests):
            return None
        conditions = [t.exact if t.convertible is None else f"({t.exact} or {t.convertible})"
                      for t in self.tests]
        arguments = [(t.converted if t.convertible else t.exact_argument) or var
                     for t, var in zip(self.tests, self.variables)]
        return " and ".join(conditions), arguments

    def python_form(self) -> str:
        return ", ".join(f"{p['name']}: {t.python}"
                         for p, t in zip(self.entry["params"], self.tests)) or "no arguments"


def _source(candidates: list, leading: int) -> str:
    """The dispatcher's code. Its parameters are positional, one per argument of the
    longest overload, defaulting to _NO (absent): a call without keywords binds them
    with no tuple or dict made. Per number of arguments present: the exact pass, then
    the conversion pass, one `if` per overload. Then, per overload, its two tests as
    functions, for calls with keywords or too many arguments (the slow path)."""
    passed = [f"s{k}" for k in range(leading)]
    longest = max(c.arity for c in candidates)
    formals = passed + [f"x{k}" for k in range(longest)]
    present = f"_present(({''.join(f + ', ' for f in formals)}))"
    lines = [f"def _dispatch({''.join(f + '=_NO, ' for f in formals)}/, *more, **kwargs):",
             "    if more or kwargs:",
             f"        return _slow({present} + more, kwargs)"]
    for arity in sorted({c.arity for c in candidates}):
        group = [c for c in candidates if c.arity == arity]
        count = leading + arity
        guards = ([f"{formals[count - 1]} is not _NO"] if count else []) + \
            ([f"{formals[count]} is _NO"] if count < len(formals) else [])
        indent = "        " if guards else "    "
        if guards:
            lines += [f"    if {' and '.join(guards)}:"]
        passes = [c.exact() for c in group] + [c.converting() for c in group]
        for candidate, found in zip(group + group, passes):
            if found is not None:
                condition, arguments = found
                lines += [f"{indent}if {condition}:",
                          f"{indent}    return _c{candidate.number}"
                          f"({', '.join(passed + arguments)})"]
    lines += [f"    raise _no_match({present}, kwargs)"]
    for candidate in candidates:
        variables = ", ".join(candidate.variables)
        for label, found in (("exact", candidate.exact()),
                             ("convert", candidate.converting() or candidate.exact())):
            condition, arguments = found
            lines += [f"def _{label}{candidate.number}({variables}):",
                      f"    return ({''.join(a + ', ' for a in arguments)}) "
                      f"if {condition} else None"]
    return "\n".join(lines) + "\n"


_NO = object()  # an absent argument (the dispatcher's parameters default to it)


def _present(values: tuple) -> tuple:
    """The arguments given: `values` up to the first absent one."""
    for position, value in enumerate(values):
        if value is _NO:  # by identity: `in` would compare NumPy arrays with ==
            return values[:position]
    return values


def dispatcher(name: str, candidates, leading: int = 0):
    """One callable for the overloads `candidates` ([(entry, call)], in declaration
    order) of the function `name`; see the module docstring."""
    candidates = list(candidates)
    names: dict = {}
    generated = [_Candidate(number, entry, names)
                 for number, (entry, _call) in enumerate(candidates)]
    for number, (_entry, call) in enumerate(candidates):
        names[f"_c{number}"] = call
    names["_no_match"] = lambda args, kwargs: _no_match(name, generated, leading,
                                                        args, kwargs)
    names.update(_NO=_NO, _present=_present)
    names["_slow"] = lambda args, kwargs: _by_keywords(
        name, generated, candidates, names, leading, args, kwargs)
    filename = callbacks.plumbing_filename(f"overloads of {name}")
    exec(compile(_source(generated, leading), filename, "exec"), names)
    function = names["_dispatch"]
    function.__name__ = function.__qualname__ = name
    function.__doc__ = _doc(generated)
    function.__overloads__ = candidates
    function.__signature__ = _signature()
    overload_set = _native_type()
    if overload_set is None:
        return function
    import numpy
    native = overload_set(function, tuple((call, tuple(_c_test(p["type"])
                                                       for p in entry["params"]))
                                          for entry, call in candidates),
                          leading, (numpy.integer, numpy.floating, numpy.bool_))
    native.__name__ = native.__qualname__ = name
    native.__doc__, native.__overloads__, native.__wrapped__ = \
        function.__doc__, candidates, function
    native.__signature__ = function.__signature__
    return native


@functools.lru_cache(maxsize=None)
def _signature():
    """`(*args, **kwargs)`: what help() shows (not the generated parameters)."""
    import inspect
    return inspect.Signature([
        inspect.Parameter("args", inspect.Parameter.VAR_POSITIONAL),
        inspect.Parameter("kwargs", inspect.Parameter.VAR_KEYWORD)])


# ------------------------------------------------- the exact pass in C (native/overloads.c)
#
# The generated Python dispatcher costs a Python frame per call. native/overloads.c's
# OverloadSet tries the exact pass in C for the tests it knows and calls the chosen
# overload through vectorcall; anything else it hands to the Python dispatcher, so
# the rule is the same. It is a small extension module, built once per compiler and
# Python (cached like a cell); where it cannot be built (no compiler in a process
# that unpickled a cell), the Python dispatcher serves alone, with the same results.

_UNDECIDED, _FLOATING, _SIGNED, _UNSIGNED, _BOOL, _TEXT, _CALLABLE = range(7)


def _c_test(spec: dict) -> tuple[int, int, int]:
    """(code, low, high): a parameter's exact test as native/overloads.c reads it."""
    kind = spec["kind"]
    if kind in ("cstr", "string"):
        return _TEXT, 0, 0
    if kind in ("fnptr", "function"):
        return _CALLABLE, 0, 0
    if kind != "scalar":
        return _UNDECIDED, 0, 0
    tag = spec["tag"]
    if tag == "bool":
        return _BOOL, 0, 0
    if tag in ("float", "double"):
        return _FLOATING, 0, 0
    import numpy
    limits = numpy.iinfo(numpy.dtype(types.dtype_char(tag)))
    return (_SIGNED if limits.min < 0 else _UNSIGNED), int(limits.min), int(limits.max)


_NATIVE_FLAGS = ("-x", "c", "-O2", "-fPIC", "-shared")


@functools.lru_cache(maxsize=None)
def _native_type():
    """native/overloads.c's OverloadSet type, built once (None if it cannot be built
    here: the Python dispatcher then serves alone)."""
    try:
        cc = compiler("c++")
        name = "_pm_overloads"
        artifact = f"{name}{sysconfig.get_config_var('EXT_SUFFIX')}"
        key = build.cache_key("cpp-overloads", sources.text("overloads.c"), _NATIVE_FLAGS,
                              compiler_identity(cc))
        includes = sorted({sysconfig.get_paths()["include"],
                           sysconfig.get_paths()["platinclude"]})

        def produce(staging: Path) -> None:
            processes.run([cc, *_NATIVE_FLAGS, *(f"-I{path}" for path in includes),
                           str(sources.NATIVE / "overloads.c"), "-o",
                           str(staging / artifact)], "polymagic's C++ overload dispatch")
        library = build.cached_build(key, artifact, produce, language="C++")
        return load_extension(name, library).OverloadSet
    except (BridgeUnavailable, CompileError, OSError, ImportError):
        return None


def _by_keywords(name, generated, candidates, names, leading, args, kwargs):
    """A call with keywords: each overload's parameters bound by their C++ names,
    then the same two passes."""
    bound = [(candidate, _bind(candidate.entry, args, kwargs, leading))
             for candidate in generated]
    for label in ("exact", "convert"):
        for candidate, values in bound:
            if values is None:
                continue
            arguments = names[f"_{label}{candidate.number}"](*values[leading:])
            if arguments is not None:
                return candidates[candidate.number][1](*values[:leading], *arguments)
    raise _no_match(name, generated, leading, args, kwargs)


def _bind(entry: dict, args: tuple, kwargs: dict, leading: int) -> list | None:
    """args and kwargs as the positional arguments of `entry`, or None if they do not
    fit its parameters."""
    params = [p["name"] for p in entry["params"]]
    if len(args) > leading + len(params):
        return None
    values = list(args)
    remaining = dict(kwargs)
    for param in params[len(args) - leading:]:
        if param not in remaining:
            return None
        values.append(remaining.pop(param))
    return None if remaining else values


def _doc(generated: list) -> str:
    lines = ["An overloaded C++ function: the types of the arguments choose one of:"]
    lines += [f"    {c.number + 1}. {cpp_signature(c.entry)}  "
              f"[{c.python_form()}; cell line {c.entry['line']}]" for c in generated]
    lines += ["", "The first overload (in this order) whose parameters match the "
              "arguments' types exactly is called; failing that, the first that takes "
              "them with a conversion (int -> float, a const array of another dtype "
              "copied); with none, OverloadError (a TypeError)."]
    return "\n".join(lines)


def _shown(value) -> str:
    """An argument as the error shows it: its value (short) and its type."""
    shape = getattr(value, "shape", None)
    dtype = getattr(value, "dtype", None)
    if shape is not None and dtype is not None:
        layout = "" if getattr(value, "flags", None) is None or value.flags.c_contiguous \
            else ", strided"
        return f"numpy.ndarray of {dtype}, shape {shape}{layout}"
    shown = repr(value)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return f"{shown} ({type(value).__name__})"


def _no_match(name: str, generated: list, leading: int, args: tuple,
              kwargs: dict) -> OverloadError:
    lines = [f"{name}(): incompatible function arguments. The following argument types "
             f"are supported:"]
    lines += [f"    {c.number + 1}. {cpp_signature(c.entry)}  "
              f"[{c.python_form()}; cell line {c.entry['line']}]" for c in generated]
    given = [_shown(value) for value in args[leading:]]
    given += [f"{key}={_shown(value)}" for key, value in kwargs.items()]
    lines += ["", f"Invoked with: {', '.join(given) or 'no arguments'}"]
    return OverloadError("\n".join(lines))


def bind_overload_sets(module, functions: list) -> None:
    """Bind each overloaded name of a cell module (plan entries with `overload_of`)
    to its dispatcher, over the overloads' callables (bound under their own export
    names), in the order the cell declares them; the names join `__exports__`."""
    sets: dict[str, list] = {}
    for function in functions:
        if "overload_of" in function:
            sets.setdefault(function["overload_of"], []).append(function)
    for name, group in sets.items():
        group.sort(key=lambda f: f.get("instantiated_at", f["line"]))
        overload_set = dispatcher(name, [(f, getattr(module, f["export"])) for f in group])
        if not isinstance(overload_set, pytypes.FunctionType):  # (travel wraps those)
            overload_set.__pm_reduce__ = (getattr, (module, name))  # pickles as a name
        setattr(module, name, overload_set)
        module.__exports__.append(name)
