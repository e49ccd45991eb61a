"""Standard containers as parameters and results of a %%cpp cell's functions.

`std::vector`, `std::map`, `std::unordered_map`, `std::pair`, `std::tuple` and
`std::optional`, nested as C++ allows, with arithmetic, bool and `std::string`
elements, cross as copies: a vector owns its memory, and a dict is no map. (A
`std::vector<arithmetic>` *result* at the top is the zero-copy `Vector` kind of
types.py; this module does everything else.)

How: the plan stores each such type as a tree of nodes (`param_spec`, `result_spec`,
called from signatures.py). An argument reaches the trampoline as the address of the
Python object (the wrapper holds it for the call) and the C++ in native/containers*.hpp
converts it with the GIL held, reading Python objects through C functions in the
module's C glue (native/containers_glue.c, which has Python.h: the cell does not need
it; compiled once and linked into every module). A result is built the same way and
handed to the wrapper through `_results`, keyed by its address. A non-const
`std::vector<T>&` / `std::map&` parameter is an out-parameter: C++ works on a copy of
the list, dict or NumPy array given, written back after the call. The C++ is pasted
into a cell's code only when its functions use containers, one file per container
family, to keep builds short.

The kinds here are mixins: types.py makes them Kind subclasses (`kinds`), so that this
module does not import types.py, which registers them.
"""
from __future__ import annotations

import json

from ...errors import ConversionError, UnsupportedType as Unsupported, also
from . import sources

# ------------------------------------------------------------ type trees (signatures)

# Family of each container node: the native/containers_<family>.hpp it needs.
_FAMILIES = {"vector": "vector", "map": "map", "unordered_map": "map", "pair": "tuple",
             "tuple": "tuple", "optional": "optional", "string": "string",
             "string_view": "string"}
# Qualified clang name -> node type; and the default arguments each must have.
_TEMPLATES = {"std::vector": ("vector", 1, ("std::allocator",)),
              "std::map": ("map", 2, ("std::less", "std::allocator")),
              "std::unordered_map": ("unordered_map", 2,
                                     ("std::hash", "std::equal_to", "std::allocator")),
              "std::pair": ("pair", 2, ()), "std::tuple": ("tuple", None, ()),
              "std::optional": ("optional", 1, ())}
_SPELLING = {"vector": "std::vector", "map": "std::map",
             "unordered_map": "std::unordered_map", "pair": "std::pair",
             "tuple": "std::tuple", "optional": "std::optional"}


def qualified_name(declaration) -> str:
    """'std::vector', skipping inline namespaces such as std::__cxx11."""
    parts = []
    while declaration is not None and declaration.kind.name != "TRANSLATION_UNIT":
        if not declaration.spelling.startswith("__"):
            parts.append(declaration.spelling)
        declaration = declaration.semantic_parent
    return "::".join(reversed(parts))


def _template_args(type_) -> list:
    return [type_.get_template_argument_type(i)
            for i in range(type_.get_num_template_arguments())]


def _container_name(type_) -> str | None:
    """The node type of a standard container polymagic converts, else None."""
    if type_.kind.name != "RECORD":
        return None
    entry = _TEMPLATES.get(qualified_name(type_.get_declaration()))
    return entry[0] if entry else None


def _node(type_, scalars: dict, in_param: bool) -> dict:
    """The tree of a type inside (or at the top of) a container."""
    type_ = type_.get_canonical()
    kind = type_.kind.name
    if kind in scalars:
        _c, cpp, _dtype, tag = scalars[kind]
        return {"t": "scalar", "tag": tag, "cpp": cpp}
    if kind == "RECORD":
        name = qualified_name(type_.get_declaration())
        args = _template_args(type_)
        if name in ("std::basic_string", "std::basic_string_view") and args and \
                args[0].kind.name == "CHAR_S":
            if name == "std::basic_string":
                return {"t": "string", "cpp": "std::string"}
            if in_param:
                raise Unsupported("a std::string_view inside a container would view "
                                  "memory Python may free; take std::string")
            return {"t": "string_view", "cpp": "std::string_view"}
        if name in _TEMPLATES:
            return _container(name, args, scalars, in_param)
    raise Unsupported(f"'{type_.spelling}' cannot be converted inside a container "
                      f"(supported: arithmetic types, bool, std::string, std::vector, "
                      f"std::map, std::unordered_map, std::pair, std::tuple, "
                      f"std::optional)")


def _container(name: str, args: list, scalars: dict, in_param: bool) -> dict:
    node_type, count, defaults = _TEMPLATES[name]
    count = len(args) if count is None else count
    for arg, default in zip(args[count:], defaults):
        if qualified_name(arg.get_canonical().get_declaration()) != default:
            raise Unsupported(f"{name} with a custom {default.removeprefix('std::')} "
                              f"is not converted")
    items = [_node(arg, scalars, in_param) for arg in args[:count]]
    return {"t": node_type, "items": items,
            "cpp": f"{_SPELLING[node_type]}<{', '.join(i['cpp'] for i in items)}>"}


def param_spec(type_, cindex, scalars: dict) -> dict | None:
    """The spec of a parameter type this module converts (None: not a container).
    `std::vector<T>`, `const std::vector<T>&` (and the other containers) are copied
    in; `std::vector<T>&` and `std::map<K, V>&` are out-parameters."""
    form, record = "value", type_
    if type_.kind in (cindex.TypeKind.LVALUEREFERENCE, cindex.TypeKind.RVALUEREFERENCE):
        record = type_.get_pointee()
        if type_.kind == cindex.TypeKind.RVALUEREFERENCE:
            form = "value"
        else:
            form = "cref" if record.is_const_qualified() else "out"
        record = record.get_canonical()
    name = _container_name(record)
    if name is None:
        return None
    node = _node(record, scalars, in_param=True)
    if form == "out":
        if name not in ("vector", "map", "unordered_map"):
            raise Unsupported(f"a non-const {_SPELLING[name]}& cannot be filled back "
                              f"into a Python value (out-parameters: std::vector<T>&, "
                              f"std::map&, std::unordered_map&); take it by value or "
                              f"const reference")
        return {"kind": "container_out", "type": node}
    return {"kind": "container", "type": node, "form": form}


def result_spec(type_, cindex, scalars: dict) -> dict | None:
    """The spec of a result type this module converts (None: another kind's). A
    `std::vector` of arithmetic (not bool) at the top stays types.Vector (zero-copy)."""
    record = type_
    if type_.kind == cindex.TypeKind.LVALUEREFERENCE and \
            type_.get_pointee().is_const_qualified():
        record = type_.get_pointee().get_canonical()  # const T&: copied at once
    if record.kind != cindex.TypeKind.RECORD:
        return None
    name = qualified_name(record.get_declaration())
    args = _template_args(record)
    if name in ("std::basic_string", "std::basic_string_view") and args and \
            args[0].kind.name == "CHAR_S":
        if name == "std::basic_string" and record is type_:
            return None  # std::string by value: types.String
        return {"kind": "string_copy",
                "form": "view" if name == "std::basic_string_view" else "cref"}
    node_type = _container_name(record)
    if node_type is None:
        return None
    node = _node(record, scalars, in_param=False)
    item = node["items"][0]
    if record is type_ and node_type == "vector" and item["t"] == "scalar" and \
            item["tag"] != "bool":
        return None  # the zero-copy Vector kind
    return {"kind": "container", "type": node, "form": "value"}


def _walk(node: dict):
    yield node
    for item in node.get("items", ()):
        yield from _walk(item)


def _tag(node: dict) -> str:
    """A node's part of an overload's export name: vector_double, map_string_int."""
    if node["t"] == "scalar":
        return node["tag"]
    return "_".join([node["t"], *(_tag(item) for item in node.get("items", ()))])


# ------------------------------------------------------------------ the kinds (mixins)

def _c_string(text: str) -> str:
    return json.dumps(text)  # a valid C string literal for these ASCII names


class ContainerKind:
    """A container parameter (by value or const reference) or result: copied."""

    name = "container"

    @property
    def node(self) -> dict:
        return self.spec["type"]

    def cpp(self) -> str:
        cpp = self.node["cpp"]
        return f"const {cpp}&" if self.spec.get("form") == "cref" else cpp

    def overload_tag(self) -> str:
        return _tag(self.node)

    def trampoline_params(self, name: str) -> list[str]:
        return [f"__UINTPTR_TYPE__ {name}"]

    def cdef_params(self) -> list[str]:
        return ["uintptr_t"]  # the address of the Python object (alive: the argument)

    def _names(self, function: dict, position: int) -> str:
        return (f"pm_cv::names{{{_c_string(function['export'])}, "
                f"{_c_string(function['params'][position]['name'])}, "
                f"{_c_string(self.cpp())}}}")

    def call_argument(self, name: str, function: dict, position: int) -> str:
        return (f"pm_cv::argument<{self.node['cpp']}>({name}, "
                f"{self._names(function, position)})")

    def argument_converter(self, context, where: str):
        connect(context)
        return id

    def trampoline_result(self) -> str:
        return "__UINTPTR_TYPE__"

    def cdef_result(self) -> str:
        return "uintptr_t"

    def trampoline_return(self, call: str) -> tuple[str, str]:
        return f"return pm_cv::result({call});", "return 0;"

    def result_converter(self, context):
        connect(context)
        return _results.pop


class ContainerOutKind(ContainerKind):
    """A non-const std::vector<T>& or std::map&: the caller's list, dict or NumPy
    array, copied in and written back after the call."""

    name = "container_out"

    def cpp(self) -> str:
        return f"{self.node['cpp']}&"

    def overload_tag(self) -> str:
        return f"out_{_tag(self.node)}"

    def call_argument(self, name: str, function: dict, position: int) -> str:
        return (f"pm_cv::out_argument<{self.node['cpp']}>({name}, "
                f"{self._names(function, position)}).get()")


class StringCopyKind:
    """A std::string_view or const std::string& result: copied into a std::string as
    the function returns (then into a str, as a std::string result is)."""

    name = "string_copy"
    import_result = False

    def trampoline_return(self, call: str) -> tuple[str, str]:
        return f"return pm_held(std::string({call}));", "return {};"


def kinds(kind_base: type, string_kind: type) -> tuple[type, ...]:
    """The Kind classes of this module, on the room's bases (called by types.py)."""
    return (type("Container", (ContainerKind, kind_base), {}),
            type("ContainerOut", (ContainerOutKind, kind_base), {}),
            type("StringCopy", (StringCopyKind, string_kind), {}))


# ------------------------------------------------------------ overloads

def overload_test(spec: dict, var: str, names: dict) -> tuple:
    """How overloads.py may tell this kind's arguments apart: (exact, convertible,
    converted, python), its Test's fields. A container always converts (a copy), so it
    matches in the conversion pass only, by the value's shape (a sequence, a mapping,
    a tuple of N items, None for an optional); its elements are judged by the call."""
    import numpy
    names.update(_pm_array=numpy.ndarray, _pm_text=(str, bytes),
                 _pm_sequence=(list, tuple, range, numpy.ndarray))
    out = spec["kind"] == "container_out"
    return "False", _shape(spec["type"], var, out), None, _python_form(spec["type"], out)


def _shape(node: dict, var: str, out: bool = False) -> str:
    kind = node["t"]
    if kind in ("map", "unordered_map"):
        return f"isinstance({var}, dict)" if out else \
            f"(isinstance({var}, dict) or hasattr({var}, 'keys'))"
    if kind == "vector":
        return f"isinstance({var}, (list, _pm_array))" if out else \
            f"isinstance({var}, _pm_sequence)"
    if kind in ("pair", "tuple"):
        return f"(isinstance({var}, (tuple, list)) and len({var}) == {len(node['items'])})"
    if kind == "optional":
        return f"({var} is None or {_shape(node['items'][0], var)})"
    if kind in ("string", "string_view"):
        return f"isinstance({var}, _pm_text)"
    if node["tag"] == "bool":
        return f"isinstance({var}, (bool, int))"
    return f"(isinstance({var}, (int, float)) and not isinstance({var}, bool))" \
        if node["tag"] in ("float", "double") else f"isinstance({var}, int)"


def _python_form(node: dict, out: bool = False) -> str:
    forms = {"map": "dict", "unordered_map": "dict", "vector": "list or 1-D array",
             "pair": "tuple", "tuple": "tuple", "string": "str", "string_view": "str"}
    if node["t"] == "optional":
        return f"{_python_form(node['items'][0])} or None"
    if node["t"] == "vector" and out:
        return "list (filled) or 1-D array"
    if node["t"] == "scalar":
        return {"bool": "bool", "float": "float", "double": "float"}.get(node["tag"], "int")
    return forms[node["t"]]


# ------------------------------------------------------------ code the cell needs

def _functions(value):
    """Every function entry in the plan (class members too: found by their shape)."""
    if isinstance(value, dict):
        if "params" in value and "ret" in value:
            yield value
        else:
            for item in value.values():
                yield from _functions(item)
    elif isinstance(value, list):
        for item in value:
            yield from _functions(item)


def _nodes(plan: dict):
    for function in _functions([plan["functions"], plan.get("classes", [])]):
        for spec in (*(p["type"] for p in function["params"]), function["ret"]):
            if spec["kind"] in ("container", "container_out"):
                yield from _walk(spec["type"])


def cpp_support(plan: dict) -> str:
    """The C++ a cell's trampolines need (after cell_prelude.hpp): '' without
    containers, else the core and the families its types use."""
    families = {_FAMILIES[node["t"]] for node in _nodes(plan) if node["t"] in _FAMILIES}
    if not families:
        return ""
    return sources.text("containers.hpp") + "".join(
        sources.text(f"containers_{family}.hpp") for family in sorted(families))


def _uses_containers(plan: dict) -> bool:
    return next(_nodes(plan), None) is not None


def cdef_lines(plan: dict) -> list[str]:
    """What cffi is told of that C."""
    return ["int pm_cv_connect(uintptr_t tools);"] if _uses_containers(plan) else []


# ------------------------------------------------------------ the Python side

# Results on their way from C++ to the wrapper, by address (the glue puts them here
# with the GIL held; the wrapper pops its own right after the call).
_results: dict[int, object] = {}


def _describe(value) -> str:
    shown = repr(value)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return f"{type(value).__name__} {shown}"


# Reasons a value did not convert (native/containers.hpp `reason`).
_WRONG_TYPE, _OUT_OF_RANGE, _NOT_UNICODE, _BAD_KEY = range(4)


def conversion_error(function: str, param: str, cpp: str, value, path: str,
                     expected: str, bad, reason: int) -> ConversionError:
    """The error for an argument that does not convert (made by the glue):
    `f(): argument 'xs' is a C++ std::vector<double>: xs[1] should be float (C++
    double), got str 'x'`."""
    head = f"{function}(): argument {param!r} is a C++ {cpp}: "
    why = {_OUT_OF_RANGE: ", out of range", _NOT_UNICODE: ", which cannot be encoded "
           "as UTF-8"}.get(reason, "")
    if reason == _BAD_KEY:
        text = f"{param}{path} has the key {_describe(bad)}, which should be {expected}"
    elif path:
        text = f"{param}{path} should be {expected}, got {_describe(bad)}{why}"
    else:
        text = f"expected {expected}, got {_describe(bad)}{why}"
    error = ConversionError(head + text)
    return also(error, OverflowError) if reason == _OUT_OF_RANGE else error


def resized_error(function: str, param: str, cpp: str, target, size: int):
    """A NumPy array given for a std::vector<T>& that C++ resized."""
    return also(ConversionError(
        f"{function}(): argument {param!r} is a C++ {cpp}: C++ left {size} elements in "
        f"it, but the NumPy array passed holds {len(target)} and cannot change size; "
        f"pass a list to receive a resized vector"), ValueError)


def connect(context) -> None:
    """Give the module's glue what it calls (once per module)."""
    if getattr(context, "containers_connected", False):
        return
    context.containers_connected = True
    context.containers_tools = (_results, conversion_error, resized_error,
                                context.numpy.frombuffer)
    context.lib.pm_cv_connect(id(context.containers_tools))
