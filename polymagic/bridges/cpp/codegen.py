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
live in native/ (cell_prelude.hpp, function_owner.hpp, glue_cdef.h, glue_preamble.c).
"""
from __future__ import annotations

from . import capi, sources, types

TRAMPOLINE_FILE = "<polymagic trampolines>"


def _callback_types(spec: dict) -> tuple[str, list[str]]:
    ret = "void" if spec["ret"] is None else types.cpp_name(spec["ret"])
    return ret, [types.cpp_name(arg) for arg in spec["args"]]


def _c_params(param: dict, position: int) -> list[str]:
    """The trampoline's C parameters for one C++ parameter (a span takes two)."""
    spec, name = param["type"], f"a{position}"
    kind = spec["kind"]
    if kind == "scalar":
        return [f"{types.cpp_name(spec['tag'])} {name}"]
    if kind in ("array", "span"):
        const = "const " if spec["const"] else ""
        pointer = f"{const}{types.cpp_name(spec['tag'])}* {name}"
        return [pointer] if kind == "array" else [pointer, f"unsigned long {name}_n"]
    if kind == "cstr":
        return [f"const char* {name}"]
    if kind == "string":
        return [f"const char* {name}", f"unsigned long {name}_n"]
    if kind in ("fnptr", "function"):
        ret, args = _callback_types(spec)
        return [f"{ret} (*{name})({', '.join(args) or 'void'})",
                f"__UINTPTR_TYPE__ {name}_py"]
    raise ValueError(f"no trampoline parameter for {spec!r}")


def _cpp_argument(param: dict, position: int, function: dict) -> str:
    """The C++ expression that passes trampoline parameter(s) to the user function."""
    spec, name = param["type"], f"a{position}"
    kind = spec["kind"]
    if kind == "span":
        const = "const " if spec["const"] else ""
        return f"std::span<{const}{types.cpp_name(spec['tag'])}>({name}, {name}_n)"
    if kind == "string":
        cls = "std::string_view" if spec["form"] == "view" else "std::string"
        return f"{cls}({name}, {name}_n)"
    if kind == "fnptr":
        return f"&pm_thunk_{function['index']}_{position}"
    if kind == "function":
        ret, args = _callback_types(spec)
        formals = ", ".join(f"{arg} x{i}" for i, arg in enumerate(args))
        python = capi.caller_name(capi.signature_key(spec))
        return (f"std::function<{ret}({', '.join(args)})>([c = {name}, py = "
                f"pm_keep{position}.owner]({formals}) {{ "
                f"{_callback_body(spec, 'c', python, 'py->callable')} }})")
    return name


def _callback_body(spec: dict, c_pointer: str, python: str, callable_: str) -> str:
    """Statements calling a callback: the C pointer if set, else the Python callable
    through the module's C-API caller `python`; then a Python error is thrown."""
    ret, args = _callback_types(spec)
    actuals = [f"x{i}" for i in range(len(args))]
    c_call = f"{c_pointer}({', '.join(actuals)})"
    py_call = f"{python}({', '.join([callable_, *actuals])}"
    if ret == "void":
        return (f"pm_rt_stack_check(pm_python_room()); if ({c_pointer}) {c_call}; "
                f"else {py_call}); pm_rt_check_callback();")
    return (f"pm_rt_stack_check(pm_python_room()); {ret} r; if ({c_pointer}) r = {c_call}; "
            f"else {py_call}, &r); pm_rt_check_callback(); return r;")


def _thunk(function: dict, position: int, spec: dict) -> str:
    """A plain C++ function standing for a Python callable passed as a function pointer.

    A function pointer carries no data, so what it stands for (the callable, or a C
    pointer) sits in a thread-local slot that the trampoline fills for the duration
    of the call.
    """
    ret, args = _callback_types(spec)
    slot = f"pm_slot_{function['index']}_{position}"
    formals = ", ".join(f"{arg} x{i}" for i, arg in enumerate(args))
    python = capi.caller_name(capi.signature_key(spec))
    pointer = f"{ret} (*)({', '.join(args) or 'void'})"
    return (f"static thread_local pm_callback_slot<{pointer}> {slot} = {{nullptr, 0}};\n"
            f"static {ret} pm_thunk_{function['index']}_{position}({formals}) {{\n"
            f"    auto callback = {slot};\n"
            f"    if (!callback.c && !callback.py) pm_rt_stale_callback();\n"
            f"    {_callback_body(spec, 'callback.c', python, 'callback.py')}\n}}\n")


def _result_c_type(spec: dict) -> str:
    kind = spec["kind"]
    if kind == "void":
        return "void"
    if kind == "scalar":
        return types.cpp_name(spec["tag"])
    if kind == "cstr":
        return "const char*"
    return "pm_buffer"  # string, vector


def trampoline(function: dict) -> str:
    """The extern "C" trampoline of one function: convert, call, catch everything."""
    index, params = function["index"], function["params"]
    c_params = [p for position, param in enumerate(params)
                for p in _c_params(param, position)]
    call = f"::{function['name']}(" + ", ".join(
        _cpp_argument(param, position, function)
        for position, param in enumerate(params)) + ")"
    result = function["ret"]
    result_type = _result_c_type(result)
    if result["kind"] == "void":
        body, failed = f"{call};", "return;"
    elif result["kind"] in ("string", "vector"):
        body, failed = f"return pm_buffer_of(pm_hold({call}));", "return {};"
    else:
        body, failed = f"return {call};", "return {};"
    thunks, guards = "", ""
    for position, param in enumerate(params):
        kind = param["type"]["kind"]
        if kind == "fnptr":
            thunks += _thunk(function, position, param["type"])
            slot = f"pm_slot_{index}_{position}"
            guards += (f"    pm_slot_guard<decltype({slot})> guard{position}({slot}, "
                       f"{{a{position}, a{position}_py}});\n")
        elif kind == "function":
            guards += f"    pm_py_keep pm_keep{position}(a{position}_py);\n"
    if any(p["type"]["kind"] in ("fnptr", "function") for p in params):
        guards += "    pm_rt_clear_callback();\n"
    return (f"{thunks}extern \"C\" {result_type} {function['symbol']}"
            f"({', '.join(c_params) or 'void'}) {{\n{guards}"
            f"    try {{ {body} }} catch (...) {{ pm_rt_capture({index}); {failed} }}\n}}\n")




# ------------------------------------------------- PM_PYTHON imports (C++ side)

def _slot_params(spec: dict) -> list[str]:
    """The slot's C parameter types for one parameter of a PM_PYTHON function."""
    kind = spec["kind"]
    if kind == "scalar":
        return [types.cpp_name(spec["tag"])]
    if kind == "span":
        return [f"{'const ' if spec['const'] else ''}{types.cpp_name(spec['tag'])}*",
                "unsigned long"]
    if kind == "cstr":
        return ["const char*"]
    return ["const char*", "unsigned long"]  # string, string_view


def _slot_actuals(spec: dict, name: str) -> list[str]:
    if spec["kind"] in ("span", "string"):
        return [f"{name}.data()", f"(unsigned long){name}.size()"]
    return [name]


def _returns_through_pointer(function: dict) -> bool:
    """std::string and std::vector results are assigned by Python into the C++ result."""
    return function["ret"]["kind"] in ("string", "vector")


def _slot_declaration(function: dict) -> str:
    params = [t for param in function["params"] for t in _slot_params(param["type"])]
    result = function["ret"]
    if _returns_through_pointer(function):
        params.append("void*")
        ret = "void"
    else:
        ret = "void" if result["kind"] == "void" else types.cpp_name(result["tag"])
    return f"{ret} (*{function['slot']})({', '.join(params) or 'void'})"


def import_definition(function: dict) -> str:
    """The C++ definition of a PM_PYTHON function: call Python through its slot.

    Before calling on, the depth guard raises RecursionError (as a C++ exception the
    trampoline maps) when the thread's stack is nearly exhausted or Python is at its
    recursion limit; after the call, a
    Python exception raised by the thunk is thrown as a C++ exception so that it
    unwinds this cell's frames up to the trampoline.
    """
    slot, result = function["slot"], function["ret"]
    formals = ", ".join(f"{types.describe(p['type'])} a{i}"
                        for i, p in enumerate(function["params"]))
    actuals = [a for i, p in enumerate(function["params"])
               for a in _slot_actuals(p["type"], f"a{i}")]
    ret = types.describe(result)
    head = (f"    pm_rt_stack_check(pm_python_room());\n"
            f"    auto target = {slot};\n"
            f"    if (!target) pm_rt_unconnected_import(\"{function['name']}\");\n")
    if capi.is_fast_import(function):
        return _fast_import_definition(function, formals, ret)
    if _returns_through_pointer(function):
        call = (f"    {ret} result;\n    target({', '.join([*actuals, '&result'])});\n"
                f"    pm_rt_check_callback();\n    return result;\n")
    elif result["kind"] == "void":
        call = f"    target({', '.join(actuals)});\n    pm_rt_check_callback();\n"
    else:
        call = (f"    {ret} result = target({', '.join(actuals)});\n"
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
    if function["ret"]["kind"] == "void":
        call = (f"    if ({caller}({', '.join(actuals)}) > 0) {unconnected};\n"
                f"    pm_rt_check_callback();\n")
    else:
        call = (f"    {ret} result;\n"
                f"    if ({caller}({', '.join([*actuals, '&result'])}) > 0) {unconnected};\n"
                f"    pm_rt_check_callback();\n    return result;\n")
    return (f"{ret} {function.get('qualified', function['name'])}({formals}) {{\n"
            f"    pm_rt_stack_check(pm_python_room());\n{call}}}\n")


def _result_assigners(imports: list) -> str:
    """extern "C" helpers through which Python fills std::string / std::vector results."""
    text, tags = "", set()
    if any(f["ret"]["kind"] == "string" for f in imports):
        text += ('extern "C" void pm_assign_string(void* target, const char* data, '
                 'unsigned long size) { static_cast<std::string*>(target)->assign('
                 'data, size); }\n')
    for function in imports:
        result = function["ret"]
        if result["kind"] == "vector" and result["tag"] not in tags:
            tags.add(result["tag"])
            element = types.cpp_name(result["tag"])
            text += (f'extern "C" void pm_assign_vector_{result["tag"]}(void* target, '
                     f'const {element}* data, unsigned long size) {{ static_cast<'
                     f'std::vector<{element}>*>(target)->assign(data, data + size); }}\n')
    return text


def translation_unit(source: str, plan: dict) -> str:
    """The cell (its lines numbered as the cell's) followed by its trampolines."""
    if not source.endswith("\n"):
        source += "\n"
    imports = plan.get("imports", [])
    parts = ['#line 1 "cell"\n', source, sources.text("cell_prelude.hpp"),
             capi.cpp_declarations(plan), _result_assigners(imports)]
    if any(p["type"]["kind"] == "function" for f in plan["functions"]
           for p in f["params"]):
        parts.append(sources.text("function_owner.hpp"))
    parts += [import_definition(function) for function in imports]
    parts += [trampoline(function) for function in plan["functions"]]
    return "".join(parts)


# ---------------------------------------------------------------- cffi glue (C side)



def _c_param_types(param: dict) -> list[str]:
    spec = param["type"]
    kind = spec["kind"]
    if kind == "scalar":
        return [types.c_name(spec["tag"])]
    if kind in ("array", "span"):
        pointer = f"{'const ' if spec['const'] else ''}{types.c_name(spec['tag'])} *"
        return [pointer] if kind == "array" else [pointer, "size_t"]
    if kind == "cstr":
        return ["const char *"]
    if kind == "string":
        return ["const char *", "size_t"]
    return [types.callback_cdecl(spec), "uintptr_t"]  # a C pointer, or id(callable)


def _c_result_type(spec: dict) -> str:
    kind = spec["kind"]
    if kind == "scalar":
        return types.c_name(spec["tag"])
    if kind == "void":
        return "void"
    if kind == "cstr":
        return "const char *"
    return "pm_buffer"


def _c_prototype(function: dict) -> str:
    params = [t for param in function["params"] for t in _c_param_types(param)]
    return f"{_c_result_type(function['ret'])} {function['symbol']}" \
           f"({', '.join(params) or 'void'});"


def _c_slot_declaration(function: dict) -> str:
    """The slot of a PM_PYTHON function as a C global (cffi sets it from Python)."""
    return f"{c_slot_type(function, function['slot'])};"


def c_slot_type(function: dict, name: str = "") -> str:
    """The C type of a PM_PYTHON slot: `double (*name)(int)`; without a name, the
    cffi cdecl of a function pointer to its thunk: `double (*)(int)`."""
    params = []
    for param in function["params"]:
        spec = param["type"]
        if spec["kind"] == "scalar":
            params.append(types.c_name(spec["tag"]))
        elif spec["kind"] == "span":
            params += [f"{'const ' if spec['const'] else ''}"
                       f"{types.c_name(spec['tag'])} *", "size_t"]
        elif spec["kind"] == "cstr":
            params.append("const char *")
        else:
            params += ["const char *", "size_t"]
    result = function["ret"]
    if _returns_through_pointer(function):
        params.append("void *")
    ret = types.c_name(result["tag"]) if result["kind"] == "scalar" else "void"
    return f"{ret} (*{name})({', '.join(params) or 'void'})"


def _c_assigner_prototypes(plan: dict) -> list[str]:
    imports, lines, tags = plan.get("imports", []), [], set()
    if any(f["ret"]["kind"] == "string" for f in imports):
        lines.append("void pm_assign_string(void *, const char *, size_t);")
    for function in imports:
        result = function["ret"]
        if result["kind"] == "vector" and result["tag"] not in tags:
            tags.add(result["tag"])
            lines.append(f"void pm_assign_vector_{result['tag']}(void *, const "
                         f"{types.c_name(result['tag'])} *, size_t);")
    return lines


def _c_declarations(plan: dict) -> list[str]:
    """Prototypes of the trampolines, import slots (declared extern: the C++ side
    defines them) and result assigners."""
    return ([_c_prototype(f) for f in plan["functions"]] +
            ["extern " + _c_slot_declaration(f) for f in plan.get("imports", [])
             if not capi.is_fast_import(f)] +
            _c_assigner_prototypes(plan))


def cdef(plan: dict) -> str:
    """What cffi is told about the module: the trampolines and the runtime's helpers."""
    return sources.text("glue_cdef.h") + "\n".join(_c_declarations(plan)) + "\n"




def glue_preamble(plan: dict, module_name: str) -> str:
    """The C cffi places before its glue: polymagic's fixed glue (native/), the cell's
    prototypes and its C-API callers."""
    return (f'#define PM_MODULE_NAME "{module_name}"\n' + sources.text("glue_cdef.h") +
            sources.text("glue_preamble.c") + "\n".join(_c_declarations(plan)) + "\n" +
            capi.glue_code(plan))


def emit_glue(plan: dict, module_name: str, path) -> None:
    """Write cffi's API-mode C glue for the module to `path`."""
    import cffi
    ffi = cffi.FFI()
    ffi.cdef(cdef(plan))
    ffi.set_source(module_name, glue_preamble(plan, module_name), compiler_verbose=False)
    ffi.emit_c_code(str(path))
