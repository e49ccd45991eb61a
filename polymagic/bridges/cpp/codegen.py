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
"""
from __future__ import annotations

from . import capi, types

TRAMPOLINE_FILE = "<polymagic trampolines>"

# The C++ side of pm_buffer must match the cdef below, field by field.
_PRELUDE = r"""
#line 1 "<polymagic trampolines>"
extern "C" {
void pm_rt_capture(int);
void pm_rt_check_callback(void);
void pm_rt_clear_callback(void);
void pm_rt_stale_callback(void);
void pm_rt_stack_check(int);
int pm_python_room(void);
void pm_rt_unconnected_import(const char*);
void pm_rt_holder_created(void);
void pm_rt_holder_destroyed(void);
struct pm_buffer { void* owner; void* data; unsigned long size; };
}
// Owns a returned vector or string for as long as NumPy (or Python) needs its memory.
struct pm_holder_base {
    pm_holder_base() { pm_rt_holder_created(); }
    virtual ~pm_holder_base() { pm_rt_holder_destroyed(); }
};
template <class T> struct pm_holder : pm_holder_base {
    T value;
    explicit pm_holder(T&& moved) : value(static_cast<T&&>(moved)) {}
};
template <class T> static pm_holder<T>* pm_hold(T&& value) {
    return new pm_holder<T>(static_cast<T&&>(value));
}
template <class T> static pm_buffer pm_buffer_of(pm_holder<T>* holder) {
    return pm_buffer{holder, (void*)holder->value.data(),
                     (unsigned long)holder->value.size()};
}
// What a function-pointer parameter holds during one call: a C function pointer
// (a cffi pointer passed as such), or a Python callable (PyObject*, called through the
// module's C-API callers, polymagic/bridges/cpp/capi.py).
template <class F> struct pm_callback_slot {
    F c;
    __UINTPTR_TYPE__ py;
};
// Swap a thread-local callback slot for the duration of one call (nests correctly
// when the callback calls back into the same function).
template <class F> struct pm_slot_guard {
    F& slot;
    F saved;
    pm_slot_guard(F& target, F value) : slot(target), saved(target) { target = value; }
    ~pm_slot_guard() { slot = saved; }
};
extern "C" void pm_release(void* owner) { delete static_cast<pm_holder_base*>(owner); }
"""


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


# A std::function made from a Python callable may be kept by C++ after the call (a
# function pointer may not: see docs/cpp.md). Its copies share one owner; if any copy
# is still alive when the trampoline returns, the owner takes a reference to the
# callable (with the GIL) and drops it when the last copy is destroyed.
_FUNCTION_OWNER = r"""
#include <memory>
extern "C" void pm_py_retain(__UINTPTR_TYPE__);
extern "C" void pm_py_release(__UINTPTR_TYPE__);
struct pm_py_owner {
    __UINTPTR_TYPE__ callable;
    bool owned;
    ~pm_py_owner() { if (owned) pm_py_release(callable); }
};
struct pm_py_keep {
    std::shared_ptr<pm_py_owner> owner;
    explicit pm_py_keep(__UINTPTR_TYPE__ callable)
        : owner(callable ? std::make_shared<pm_py_owner>(pm_py_owner{callable, false})
                         : nullptr) {}
    ~pm_py_keep() {
        if (owner && owner.use_count() > 1) {  // a copy outlives the call
            pm_py_retain(owner->callable);
            owner->owned = true;
        }
    }
};
"""


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
    parts = ['#line 1 "cell"\n', source, _PRELUDE, capi.cpp_declarations(plan),
             _result_assigners(imports)]
    if any(p["type"]["kind"] == "function" for f in plan["functions"]
           for p in f["params"]):
        parts.append(_FUNCTION_OWNER)
    parts += [import_definition(function) for function in imports]
    parts += [trampoline(function) for function in plan["functions"]]
    return "".join(parts)


# ---------------------------------------------------------------- cffi glue (C side)

_CDEF_COMMON = """
typedef struct { void* owner; void* data; size_t size; } pm_buffer;
void pm_release(void* owner);
long pm_rt_live_holders(void);
void pm_rt_note_callback_error(long handle);
int pm_py_connect(uintptr_t table);
"""


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
    return _CDEF_COMMON + "\n".join(_c_declarations(plan)) + "\n"


# Placed by cffi after its own header, before the generated glue. Every glue function
# calls the trampoline with the GIL released, then `_cffi_save_errno()`, then re-takes
# the GIL. We redefine `_cffi_save_errno()` (used only at that one call site, inside
# the Py_BEGIN/END_ALLOW_THREADS block) to also look at the runtime's thread-local
# pending error: if the trampoline caught a C++ exception (or a Python exception
# travelling through C++), Py_BLOCK_THREADS re-takes the GIL (CPython's documented
# way to leave such a block early) and the glue returns NULL with the Python exception
# set. The check is one call reading a thread-local int, so functions with scalar
# arguments and results are exposed as `lib.pm_f<i>` with no Python wrapper at all.
_GLUE_PREAMBLE = r"""
typedef struct { void* owner; void* data; size_t size; } pm_buffer;
void pm_release(void* owner);
long pm_rt_live_holders(void);
void pm_rt_note_callback_error(long handle);
int pm_rt_pending(void);
int pm_rt_take(int* function, long* handle, const char** type_name,
               const char** message);
%(prototypes)s

static PyObject* pm_raise_pending(void) {
    int function; long handle; const char* type_name; const char* message;
    int kind = pm_rt_take(&function, &handle, &type_name, &message);
    PyObject* callbacks = PyImport_ImportModule("polymagic.bridges.cpp.callbacks");
    if (callbacks == NULL) return NULL;
    PyObject* error = PyObject_CallMethod(
        callbacks, "exception_from_cpp", "siilyy", "%(module)s", function, kind,
        handle, type_name, message);
    Py_DECREF(callbacks);
    if (error == NULL) return NULL;
    PyObject* error_type = PyObject_Type(error);
    PyErr_SetObject(error_type, error);
    Py_DECREF(error_type);
    Py_DECREF(error);
    return NULL;
}

/* How many more frames Python may enter on this thread before its recursion limit
   (runtime.cpp's depth guard reads it before C++ calls Python). Called without the
   GIL: the thread state is this thread's own, and nothing changes it meanwhile. */
int pm_python_room(void) {
    PyThreadState* state = PyGILState_GetThisThreadState();
    if (state == NULL) return 1 << 30;
#if PY_VERSION_HEX >= 0x030E0000
    return state->py_recursion_remaining;
#elif PY_VERSION_HEX >= 0x030C0000
    return state->py_recursion_remaining < state->c_recursion_remaining
        ? state->py_recursion_remaining : state->c_recursion_remaining;
#elif PY_VERSION_HEX >= 0x030B0000
    return state->recursion_remaining;
#else
    return 1 << 30;  /* 3.10 keeps the limit out of reach without the GIL */
#endif
}

static void pm_save_errno(void) { _cffi_save_errno(); }
#undef _cffi_save_errno
#define _cffi_save_errno() \
    pm_save_errno(); \
    if (pm_rt_pending()) { Py_BLOCK_THREADS return pm_raise_pending(); }
"""


def glue_preamble(plan: dict, module_name: str) -> str:
    prototypes = "\n".join(_c_declarations(plan))
    return (_GLUE_PREAMBLE % {"prototypes": prototypes, "module": module_name} +
            capi.glue_code(plan))


def emit_glue(plan: dict, module_name: str, path) -> None:
    """Write cffi's API-mode C glue for the module to `path`."""
    import cffi
    ffi = cffi.FFI()
    ffi.cdef(cdef(plan))
    ffi.set_source(module_name, glue_preamble(plan, module_name), compiler_verbose=False)
    ffi.emit_c_code(str(path))
