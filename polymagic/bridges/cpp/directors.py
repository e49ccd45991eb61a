"""Python subclasses of C++ classes whose virtual methods C++ calls (cppyy's cross
inheritance, pybind11's trampolines): the C++ side.

For a polymorphic class (records.py `director`), the cell gets a C++ subclass,
`pm_director_<n>`, that inherits the constructors and overrides every virtual method
with arithmetic arguments and result. A Python subclass's object is one of these: its
constructor (`director_ctor` members) makes it, and `director_connect` hands it the
Python object's bound methods, one per virtual method the Python class overrides (0:
not overridden). An override calls its bound method through the module's C-API caller
for that signature (capi.py), as a callback is called, so a Python exception unwinds
through C++ to whoever called; a method Python does not override runs C++'s own (a
pure one throws). While one override runs, calling the same method on the same object
from Python again (`super().area()`) reaches C++'s implementation, not Python's.
"""
from __future__ import annotations

from .types import caller_name, cpp_name


def signature_keys(plan: dict) -> list[tuple]:
    """(result tag or None, argument tags) of every director slot, for capi.layout."""
    return [_key(slot) for cls in plan.get("classes", ()) if cls.get("director")
            for slot in cls["director"]["slots"]]


def _key(slot: dict) -> tuple:
    ret = None if slot["ret"]["kind"] == "void" else slot["ret"]["tag"]
    return ret, tuple(p["type"]["tag"] for p in slot["params"])


def definitions(plan: dict) -> str:
    """The C++ subclasses of the plan's classes that Python may subclass."""
    return "".join(_definition(cls) for cls in plan.get("classes", ())
                   if cls.get("director"))


def _definition(cls: dict) -> str:
    director, base = cls["director"], cls["qualified"]
    slots = director["slots"]
    lines = [f"struct {director['class']} final : {base} {{",
             f"    using {base}::{cls['name']};",
             f"    __UINTPTR_TYPE__ pm_callables[{len(slots)}] = {{}};",
             "    mutable unsigned long long pm_busy = 0;",
             "    void pm_connect(const unsigned long* callables) {",
             f"        for (int i = 0; i < {len(slots)}; ++i) pm_callables[i] = callables[i];",
             "    }"]
    lines += [_override(cls, slot, number) for number, slot in enumerate(slots)]
    return "\n".join(lines) + "\n};\n"


def _override(cls: dict, slot: dict, number: int) -> str:
    ret, args = _key(slot)
    result = "void" if ret is None else cpp_name(ret)
    formals = ", ".join(f"{cpp_name(tag)} x{i}" for i, tag in enumerate(args))
    actuals = [f"pm_callables[{number}]", *(f"x{i}" for i in range(len(args)))]
    const = " const" if slot["const"] else ""
    bit = f"(1ull << {number})"
    if ret is None:
        python = f"{caller_name((ret, args))}({', '.join(actuals)}); pm_rt_check_callback(); return;"
    else:
        python = (f"{result} r; {caller_name((ret, args))}({', '.join([*actuals, '&r'])}); "
                  f"pm_rt_check_callback(); return r;")
    if slot["pure"]:
        fallback = (f'pm_director_pure("{cls["name"]}", "{slot["python"]}");'
                    + ("" if ret is None else f" return {result}{{}};"))
    else:
        call = f"{cls['qualified']}::{slot['name']}({', '.join(f'x{i}' for i in range(len(args)))})"
        fallback = f"return {call};"
    return (f"    {result} {slot['name']}({formals}){const} override {{\n"
            f"        if (pm_callables[{number}] && !(pm_busy & {bit})) {{\n"
            f"            pm_busy_guard guard(pm_busy, {bit});\n"
            f"            pm_rt_stack_check(pm_python_room());\n"
            f"            {python}\n"
            f"        }}\n"
            f"        {fallback}\n"
            f"    }}")
