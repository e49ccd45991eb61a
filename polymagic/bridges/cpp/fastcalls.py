"""Class members called straight from CPython: the C glue of fast methods and fields.

A method whose arguments and result are arithmetic (or void), and a field of arithmetic
type, need no conversion in Python: the glue gets a C function per member that
converts with cffi's own macros, calls the member's trampoline with the GIL released,
and returns, as cffi's glue does. native/glue_members.c puts them on the class as
method and getset descriptors (`install`), which CPython calls without a Python frame:
that is what makes a method call cheaper than pybind11's. Everything else about the
member (its trampoline, errors, faults, Ctrl-C) is the same as for any function.
"""
from __future__ import annotations

from . import sources
from .types import Scalar, Void, c_name, kind_of


def is_fast(member: dict) -> bool:
    """A method, getter or setter with a receiver and arithmetic values only."""
    if member.get("role") not in ("method", "getter", "setter"):
        return False
    params = member["params"]
    return bool(params) and params[0]["type"].get("receiver", False) and \
        all(isinstance(kind_of(p["type"]), Scalar) for p in params[1:]) and \
        isinstance(kind_of(member["ret"]), (Scalar, Void))


def fast_members(cls: dict) -> list:
    """The class's fast members: overloaded methods are dispatched in Python."""
    names = [m["python"] for m in cls["members"] if m.get("role") == "method"]
    return [m for m in cls["members"] if is_fast(m) and
            (m["role"] != "method" or names.count(m["python"]) == 1)]


def _unbox(tag: str, source: str) -> str:
    c_type = c_name(tag)
    if tag in ("double", "float"):
        return f"({c_type})_cffi_to_c_double({source})"
    if tag == "bool":
        return f"(_Bool)_cffi_to_c__Bool({source})"
    return f"_cffi_to_c_int({source}, {c_type})"


def _box(spec: dict) -> str:
    if isinstance(kind_of(spec), Void):
        return "Py_RETURN_NONE;"
    tag = spec["tag"]
    if tag in ("double", "float"):
        return "return PyFloat_FromDouble(result);"
    if tag == "bool":
        return "return PyBool_FromLong(result);"
    return f"return _cffi_from_c_int(result, {c_name(tag)});"


def _call_block(member: dict, count: int) -> list[str]:
    """Call the trampoline (GIL released, as cffi does) and box its result."""
    actuals = ", ".join(f"x{i}" for i in range(count))
    void = isinstance(kind_of(member["ret"]), Void)
    assign = "" if void else "result = "
    head = [] if void else [f"    {c_name(member['ret']['tag'])} result;"]
    return head + ["    Py_BEGIN_ALLOW_THREADS",
                   "    _cffi_restore_errno();",
                   f"    {{ {assign}{member['symbol']}({actuals}); }}",
                   "    _cffi_save_errno();",
                   "    Py_END_ALLOW_THREADS",
                   f"    {_box(member['ret'])}"]


def _converted(member: dict, position: int, source: str, fail: str) -> list[str]:
    tag = member["params"][position]["type"]["tag"]
    c_type = c_name(tag)
    return [f"    {c_type} x{position} = {_unbox(tag, source)};",
            f"    if (x{position} == ({c_type})-1 && PyErr_Occurred()) "
            f"{{ pm_argument_error({member['index']}, {position}, {source}); {fail} }}"]


def _method(member: dict, owner: int, wrapper: int) -> str:
    index, count = member["index"], len(member["params"])
    lines = [f"static PyObject* pm_member_{index}(PyObject* self, PyObject* const* args, "
             f"Py_ssize_t nargs, PyObject* kwnames) {{",
             f"    if (kwnames != NULL) return pm_member_by_keywords({owner}, {wrapper}, "
             f"self, args, nargs, kwnames);",
             f"    if (nargs != {count - 1}) return pm_member_arity("
             f"\"{member['export']}\", {count - 1}, nargs);",
             "    uintptr_t x0;",
             "    if (pm_receiver(self, &x0) < 0) return NULL;"]
    for position in range(1, count):
        lines += _converted(member, position, f"args[{position - 1}]", "return NULL;")
    return "\n".join(lines + _call_block(member, count) + ["}"]) + "\n"


def _getter(member: dict) -> str:
    return "\n".join([f"static PyObject* pm_member_{member['index']}(PyObject* self, "
                      f"void* closure) {{",
                      "    uintptr_t x0;",
                      "    if (pm_receiver(self, &x0) < 0) return NULL;",
                      *_call_block(member, 1), "}"]) + "\n"


def _setter(member: dict) -> str:
    lines = [f"static int pm_member_{member['index']}(PyObject* self, PyObject* value, "
             f"void* closure) {{",
             f"    if (value == NULL) return pm_field_undeletable(\"{member['export']}\");",
             "    uintptr_t x0;",
             "    if (pm_receiver(self, &x0) < 0) return -1;",
             *_converted(member, 1, "value", "return -1;"),
             "    Py_BEGIN_ALLOW_THREADS",
             "    _cffi_restore_errno();",
             f"    {{ {member['symbol']}(x0, x1); }}",
             "    pm_save_errno();",
             "    Py_END_ALLOW_THREADS",
             "    if (pm_rt_pending()) { pm_raise_pending(); return -1; }",
             "    return 0;", "}"]
    return "\n".join(lines) + "\n"


def _tables(classes: list) -> str:
    """Each class's PyMethodDef and PyGetSetDef arrays, and the table of them."""
    parts, rows = [], []
    for number, cls in enumerate(classes):
        members = fast_members(cls)
        methods = [m for m in members if m["role"] == "method"]
        getters = {m["python"]: m for m in members if m["role"] == "getter"}
        setters = {m["python"]: m for m in members if m["role"] == "setter"}
        method_rows = [f'    {{"{m["python"]}", (PyCFunction)(void(*)(void))'
                       f'pm_member_{m["index"]}, METH_FASTCALL | METH_KEYWORDS, NULL}},'
                       for m in methods]
        field_rows = [f'    {{"{name}", (getter)pm_member_{getter["index"]}, '
                      f'{_setter_name(setters.get(name))}, NULL, NULL}},'
                      for name, getter in getters.items()]
        parts.append(f"static PyMethodDef pm_methods_{number}[] = {{\n"
                     + "\n".join(method_rows) + "\n    {NULL}\n};\n"
                     f"static PyGetSetDef pm_fields_{number}[] = {{\n"
                     + "\n".join(field_rows) + "\n    {NULL}\n};\n")
        rows.append(f"    {{pm_methods_{number}, pm_fields_{number}, NULL}},")
    parts.append("static pm_class_members pm_classes_members[PM_CLASS_COUNT] = {\n"
                 + "\n".join(rows) + "\n};\n")
    return "".join(parts)


def _setter_name(setter: dict | None) -> str:
    return "NULL" if setter is None else f"(setter)pm_member_{setter['index']}"


def glue_code(plan: dict) -> str:
    """The C of every class's fast members, placed in the cell module's glue."""
    classes = plan.get("classes", [])
    if not classes:
        return ""
    parts = [f"#define PM_CLASS_COUNT {len(classes)}\n", sources.text("glue_members.c")]
    for owner, cls in enumerate(classes):
        methods = [m for m in fast_members(cls) if m["role"] == "method"]
        for member in fast_members(cls):
            if member["role"] == "method":
                parts.append(_method(member, owner, methods.index(member)))
            else:
                parts.append((_getter if member["role"] == "getter" else _setter)(member))
    parts.append(_tables(classes))
    return "".join(parts)


def cdef_lines(plan: dict) -> list[str]:
    """What cffi declares for the installer (only modules with classes define it)."""
    return ["int pm_install_members(int, uintptr_t, uintptr_t, uintptr_t);"] \
        if plan.get("classes") else []


def install(lib, index: int, cls, address_slot, wrappers: tuple) -> None:
    """Put class `index`'s fast members on `cls` (wrappers: its fast methods' Python
    wrappers, in table order, for calls with keywords)."""
    if lib.pm_install_members(index, id(cls), id(address_slot), id(wrappers)) != 0:
        raise RuntimeError(f"polymagic could not install the C++ members of "
                           f"{cls.__name__} (the error is printed above)")
