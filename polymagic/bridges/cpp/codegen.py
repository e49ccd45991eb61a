"""Generated code for a cell: extern "C" trampolines (C++) and the cffi glue (C).

A cell becomes ONE extension module made of three objects: the cell itself followed by
its trampolines (one C++ translation unit, so static and inline functions are callable
too), cffi's API-mode glue (C, from `ffi.emit_c_code`), and polymagic's C++ runtime
(runtime.cpp, compiled once). Each exported function `f` gets a trampoline `pm_f<i>`
with a C signature; cffi's glue turns it into a builtin `lib.pm_f<i>`, which the module
exposes as `f` directly when no Python-side conversion is needed.

A function the cell declares `PM_PYTHON` (an import from the shared Python namespace)
gets a C++ definition here that calls through a module-lifetime function-pointer slot,
`pm_import<j>`, which polymagic.bridges.cpp.imports fills with a Python thunk once the module
is loaded.

Only the per-cell parts are written here; the fixed C++ and C they are pasted around
live in native/ (cell_prelude.hpp, function_owner.hpp, glue_cdef.h, glue_runtime.h,
glue_preamble.c).
"""
from __future__ import annotations

import re
import sys

from . import capi, containers, directors, fastcalls, sources
from .records import all_functions
from .types import StdFunction, Void, kind_of

TRAMPOLINE_FILE = "<polymagic trampolines>"


def _params(function: dict):
    """(position, kind, C parameter name) of each parameter of `function`."""
    return [(position, kind_of(param["type"]), f"a{position}")
            for position, param in enumerate(function["params"])]


def trampoline(function: dict) -> str:
    """The extern "C" trampoline of one function: convert, call, catch everything."""
    index, params = function["index"], _params(function)
    c_params = [p for _pos, kind, name in params for p in kind.trampoline_params(name)]
    call = _call(function, [kind.call_argument(name, function, position)
                            for position, kind, name in params])
    result = kind_of(function["ret"])
    body, failed = result.trampoline_return(call)
    thunks, guards = "", ""
    for position, kind, _name in params:
        thunk, guard = kind.before_call(function, position)
        thunks, guards = thunks + thunk, guards + guard
    if any(kind.callback for _pos, kind, _name in params):
        guards += "    pm_rt_clear_callback();\n"
    return (f"{thunks}extern \"C\" {result.trampoline_result()} {function['symbol']}"
            f"({', '.join(c_params) or 'void'}) {{\n{guards}"
            f"    PM_CALL_FRAME({index}, {failed})\n"
            f"    try {{ {body} }} catch (...) {{ pm_rt_capture({index}); {failed} }}\n}}\n")


def _call(function: dict, arguments: list[str]) -> str:
    """The C++ expression a trampoline evaluates: the function called, or a class
    member's `expression` (records.py) with the arguments filled in."""
    expression = function.get("expression")
    if expression is None:
        return f"::{function['name']}({', '.join(arguments)})"
    return expression.format(*arguments, args=", ".join(arguments),
                             rest=", ".join(arguments[1:]))


# ------------------------------------------------- PM_PYTHON imports (C++ side)

def _slot_declaration(function: dict) -> str:
    params = [t for _pos, kind, _name in _params(function) for t in kind.slot_params()]
    result = kind_of(function["ret"])
    if result.held:
        params.append("void*")  # the C++ result object, which Python fills in place
    return f"{result.slot_result()} (*{function['slot']})({', '.join(params) or 'void'})"


def import_definition(function: dict) -> str:
    """The C++ definition of a PM_PYTHON function: call Python through its slot.

    Before calling on, the depth guard raises RecursionError (as a C++ exception the
    trampoline maps) when the thread's stack is nearly exhausted or Python is at its
    recursion limit; after the call, a Python exception raised by the thunk is thrown
    as a C++ exception so that it unwinds this cell's frames up to the trampoline.
    """
    slot, result = function["slot"], kind_of(function["ret"])
    params = _params(function)
    formals = ", ".join(f"{kind.cpp()} {name}" for _pos, kind, name in params)
    actuals = [a for _pos, kind, name in params for a in kind.slot_actuals(name)]
    ret = result.cpp()
    if capi.is_fast_import(function):
        return _fast_import_definition(function, formals, ret)
    head = (f"    pm_rt_stack_check(pm_python_room());\n"
            f"    auto target = {slot};\n"
            f"    if (!target) pm_rt_unconnected_import(\"{function['name']}\");\n")
    python = "pm_python_frame python_frame; "  # a signal in there is Python's
    if result.held:
        call = (f"    {ret} result;\n"
                f"    {{ {python}target({', '.join([*actuals, '&result'])}); }}\n"
                f"    pm_rt_check_callback();\n    return result;\n")
    elif isinstance(result, Void):
        call = (f"    {{ {python}target({', '.join(actuals)}); }}\n"
                f"    pm_rt_check_callback();\n")
    else:
        call = (f"    {ret} result;\n"
                f"    {{ {python}result = target({', '.join(actuals)}); }}\n"
                f"    pm_rt_check_callback();\n    return result;\n")
    return (f"extern \"C\" {{ {_slot_declaration(function)} = nullptr; }}\n"
            f"{ret} {function.get('qualified', function['name'])}({formals}) "
            f"{{\n{head}{call}}}\n")


def _fast_import_definition(function: dict, formals: str, ret: str) -> str:
    """A PM_PYTHON function with arithmetic types calls Python through the module's
    C-API caller (capi.py), which looks the name up and converts in C."""
    actuals = [f"a{i}" for i in range(len(function["params"]))]
    caller = capi.import_caller_name(function)
    unconnected = f"pm_rt_unconnected_import(\"{function['name']}\")"
    if isinstance(kind_of(function["ret"]), Void):
        call = (f"    if ({caller}({', '.join(actuals)}) > 0) {unconnected};\n"
                f"    pm_rt_check_callback();\n")
    else:
        call = (f"    {ret} result;\n"
                f"    if ({caller}({', '.join([*actuals, '&result'])}) > 0) {unconnected};\n"
                f"    pm_rt_check_callback();\n    return result;\n")
    return (f"{ret} {function.get('qualified', function['name'])}({formals}) {{\n"
            f"    pm_rt_stack_check(pm_python_room());\n{call}}}\n")


def _assigners(imports: list) -> list[tuple[str, str, str]]:
    """(C name, C++ definition, cdef line) of each helper through which Python fills
    a std::string / std::vector result, once per name."""
    found = {}
    for function in imports:
        assigner = kind_of(function["ret"]).assigner()
        if assigner is not None:
            found.setdefault(assigner[0], assigner)
    return list(found.values())


def _kinds_used(plan: dict) -> set[str]:
    """The names of the kinds of the cell's parameters and results."""
    return {kind_of(spec).name for function in all_functions(plan)
            for spec in [function["ret"], *(p["type"] for p in function["params"])]}


def _std_calls(used: set[str]) -> str:
    """native/std_calls.hpp, for the std::string and std::vector kinds `used`."""
    families = (("PM_STD_STRINGS", {"string", "string_copy"}),
                ("PM_STD_VECTORS", {"vector"}))
    defines = [f"#define {macro} 1\n" for macro, names in families if used & names]
    return "".join(defines) + sources.text("std_calls.hpp") if defines else ""


def translation_unit(source: str, plan: dict) -> str:
    """The cell (its lines numbered as the cell's) followed by its trampolines."""
    if not source.endswith("\n"):
        source += "\n"
    imports, used = plan.get("imports", []), _kinds_used(plan)
    parts = ['#line 1 "cell"\n', source, f'#line 1 "{TRAMPOLINE_FILE}"\n',
             sources.text("faults.h"), sources.text("holders.hpp"), _std_calls(used),
             sources.text("cell_prelude.hpp"),
             capi.cpp_declarations(plan), containers.cpp_support(plan),
             "".join(definition for _name, definition, _cdef in _assigners(imports))]
    if StdFunction.name in used:
        parts.append(sources.text("function_owner.hpp"))
    if plan.get("classes"):
        parts += [sources.text("classes.hpp"), directors.definitions(plan)]
    parts += [import_definition(function) for function in imports]
    parts += [trampoline(function) for function in all_functions(plan)]
    return "".join(parts)


# ---------------------------------------------------------------- cffi glue (C side)

def _c_prototype(function: dict) -> str:
    params = [t for param in function["params"]
              for t in kind_of(param["type"]).cdef_params()]
    return f"{kind_of(function['ret']).cdef_result()} {function['symbol']}" \
           f"({', '.join(params) or 'void'});"


def c_slot_type(function: dict, name: str = "") -> str:
    """The C type of a PM_PYTHON slot: `double (*name)(int)`; without a name, the
    cffi cdecl of a function pointer to its thunk: `double (*)(int)`."""
    params = [t for param in function["params"]
              for t in kind_of(param["type"]).slot_cdef_params()]
    result = kind_of(function["ret"])
    if result.held:
        params.append("void *")
    return f"{result.slot_cdef_result()} (*{name})({', '.join(params) or 'void'})"


def _c_declarations(plan: dict) -> list[str]:
    """Prototypes of the trampolines, import slots (declared extern: the C++ side
    defines them) and result assigners."""
    imports = plan.get("imports", [])
    return ([_c_prototype(f) for f in all_functions(plan)] +
            [f"extern {c_slot_type(f, f['slot'])};" for f in imports
             if not capi.is_fast_import(f)] +
            [cdef_line for _name, _definition, cdef_line in _assigners(imports)] +
            containers.cdef_lines(plan) + fastcalls.cdef_lines(plan))


def cdef(plan: dict) -> str:
    """What cffi is told about the module: the trampolines and the runtime's helpers."""
    return sources.text("glue_cdef.h") + "\n".join(_c_declarations(plan)) + "\n"


def glue_preamble(plan: dict, module_name: str) -> str:
    """The C cffi places before its glue: the per-module part of polymagic's glue
    (native/; the fixed functions it calls are compiled once, compiler.py), the cell's
    prototypes and its C-API callers."""
    return (f'#define PM_MODULE_NAME "{module_name}"\n' + sources.text("glue_cdef.h") +
            sources.text("glue_runtime.h") + sources.text("glue_preamble.c") +
            "\n".join(_c_declarations(plan)) + "\n" + sources.text("faults.h") +
            capi.glue_code(plan) + fastcalls.glue_code(plan))


def emit_glue(plan: dict, module_name: str, path) -> None:
    """Write cffi's API-mode C glue for the module to `path`."""
    ffi = _new_ffi()
    ffi.cdef(cdef(plan))
    ffi.set_source(module_name, glue_preamble(plan, module_name), compiler_verbose=False)
    ffi.emit_c_code(str(path))
    path.write_text(name_argument_errors(path.read_text(), plan))


def name_argument_errors(glue: str, plan: dict) -> str:
    """cffi's glue with each scalar argument's failed conversion (`return NULL;` after
    `x<k> = _cffi_to_c_...(arg<k>)`) raising pm_argument_error instead, which names
    the function, parameter, C++ type and value; the converting path is unchanged."""
    for function in all_functions(plan):
        head = f"\n_cffi_f_{function['symbol']}(PyObject *self, "
        start = glue.find(head)
        if start < 0:
            continue
        end = glue.index("\n}\n", start)
        body, c_index = glue[start:end], 0
        for position, param in enumerate(function["params"]):
            kind = kind_of(param["type"])
            if kind.direct:
                body = re.sub(
                    rf"(\n  x{c_index} = [^\n]*\(arg{c_index}\b[^\n]*;\n  if \(x{c_index} == "
                    rf"[^\n]*PyErr_Occurred\(\)\)\n    return )NULL;",
                    rf"\1pm_argument_error({function['index']}, {position}, arg{c_index});",
                    body, count=1)
            c_index += len(kind.cdef_params())
        glue = glue[:start] + body + glue[end:]
    return glue


def _new_ffi():
    """A cffi.FFI whose C parser is loaded. A Ctrl-C while cffi and pycparser are first
    imported would leave them half-made in sys.modules, and every later build would
    fail: then they are dropped, so that the next build imports them afresh."""
    before = set(sys.modules)
    try:
        import cffi
        ffi = cffi.FFI()
        ffi.cdef("int pm_parser_loaded(void);")  # imports the whole parser now
    except BaseException:
        for name in set(sys.modules) - before:
            if name.partition(".")[0] in ("cffi", "pycparser"):
                del sys.modules[name]
        raise
    return cffi.FFI()
