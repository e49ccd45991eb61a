"""C++ -> Python calls through CPython's C API (no ffi.callback): the generated C.

A cell's extension module is built by polymagic, so its C glue (compiled with Python.h)
can call a Python callable itself: take the GIL (`PyGILState_Ensure`: the trampoline
runs with the GIL released by cffi, or on a thread C++ started), box the arguments,
`PyObject_Vectorcall`, unbox the result, release the GIL. This module writes those C
functions and says which Python objects they need (`layout`):

* one caller per callback signature (`double(*)(double)`, `std::function<void(int)>`)
  used by the cell's parameters: `int pm_pycall_double__double(uintptr_t callable,
  double x0, double* out)`;
* one caller per `PM_PYTHON` import with arithmetic parameters and result:
  `int pm_import_3_call(int a0, double* out)`, which looks the name up in the shared
  namespace (polymagic.hub) at each call.

A caller returns 0, or -1 after a Python exception: it is stashed
(`callbacks.stash`) and its handle given to the runtime (`pm_rt_note_callback_error`),
so the C++ side throws it through its frames exactly as after an ffi.callback error.
An import caller returns 1 when the module is not connected yet.

Results follow the rules of the path they replace. Exact `int`/`bool`/`float` results
are unboxed in C; any other result goes through a Python converter from the module's
table (`imports.connect_c_api`), which applies cffi's conversion (or, for an
import, `imports`' rules first) and returns an exact value or raises cffi's error.

The Python objects the C needs sit in one tuple, the module's table, set once by
`pm_py_connect` (`layout` gives its shape, shared by the generator and the loader).
"""
from __future__ import annotations

from . import directors, sources, types
from .records import all_functions
from .types import Scalar, Void, caller_name, kind_of

from .callbacks import C_API_TABLE_HEAD as TABLE_HEAD

def import_caller_name(function: dict) -> str:
    return f"{function['slot']}_call"


def is_fast_import(function: dict) -> bool:
    """Arithmetic parameters and an arithmetic or void result: called through C."""
    return all(isinstance(kind_of(p["type"]), Scalar) for p in function["params"]) \
        and isinstance(kind_of(function["ret"]), (Scalar, Void))


def layout(plan: dict) -> dict:
    """The callback signatures and the fast imports of a plan, in table order."""
    signatures = []
    for function in all_functions(plan):
        for param in function["params"]:
            kind = kind_of(param["type"])
            if kind.callback:
                key = kind.signature_key()
                if key not in signatures:
                    signatures.append(key)
    for key in directors.signature_keys(plan):
        if key not in signatures:
            signatures.append(key)
    fast = [f for f in plan.get("imports", []) if is_fast_import(f)]
    return {"signatures": signatures, "imports": fast}


def plan_entry(plan: dict) -> dict:
    """What the loader needs of `layout`, stored in the plan (JSON): the result tag of
    each callback signature, and the index and C caller of each fast import."""
    shape = layout(plan)
    return {"results": [ret for ret, _args in shape["signatures"]],
            "imports": [{"index": f["index"], "caller": import_caller_name(f)}
                        for f in shape["imports"]]}


# ------------------------------------------------------------------ C declarations

def _c_type(tag: str | None) -> str:
    return "void" if tag is None else types.c_name(tag)


def cpp_declarations(plan: dict) -> str:
    """extern "C" prototypes of the glue's callers, for the cell's translation unit."""
    shape = layout(plan)
    lines = []
    for key in shape["signatures"]:
        ret, args = key
        params = ["__UINTPTR_TYPE__", *(types.cpp_name(a) for a in args)]
        if ret is not None:
            params.append(f"{types.cpp_name(ret)}*")
        lines.append(f"int {caller_name(key)}({', '.join(params)});")
    for function in shape["imports"]:
        params = [types.cpp_name(p["type"]["tag"]) for p in function["params"]]
        if isinstance(kind_of(function["ret"]), Scalar):
            params.append(f"{types.cpp_name(function['ret']['tag'])}*")
        lines.append(f"int {import_caller_name(function)}({', '.join(params) or 'void'});")
    if not lines:
        return ""
    return 'extern "C" {\n' + "\n".join(lines) + "\n}\n"


# ------------------------------------------------------------------ the C (glue side)

def _call_body(args: list, ret: str | None, target: str, converter: str,
               void_must_be_none: bool) -> str:
    """The GIL-held part of a caller: box, call `target`, unbox, clean up."""
    count = len(args)
    boxes = "".join(f"    argv[{i + 1}] = {Scalar.of(tag).c_box(f'x{i}')};\n"
                    f"    if (argv[{i + 1}] == NULL) goto done;\n"
                    for i, tag in enumerate(args))
    if ret is None and void_must_be_none:
        unbox = ("        if (result != Py_None) {\n"
                 "            PyErr_SetString(PyExc_TypeError, \"callback with the return "
                 "type 'void' must return None\");\n            goto done;\n        }\n")
    elif ret is None:
        unbox = ""
    else:
        unbox = Scalar.of(ret).c_unbox(converter)
    return (f"    PyObject* argv[{count + 1}] = {{NULL}};\n"
            f"    PyObject* result = NULL;\n    int status = -1;\n"
            f"{boxes}"
            f"    result = PyObject_Vectorcall({target}, argv + 1, "
            f"{count} | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);\n"
            f"    if (result != NULL) {{\n{unbox}        status = 0;\n    }}\n"
            f"done:\n    Py_XDECREF(result);\n"
            + "".join(f"    Py_XDECREF(argv[{i + 1}]);\n" for i in range(count)) +
            "    if (status != 0) pm_py_failed();\n")


def _signature_caller(key: tuple, index: int) -> str:
    ret, args = key
    params = ["uintptr_t callable", *(f"{_c_type(a)} x{i}" for i, a in enumerate(args))]
    if ret is not None:
        params.append(f"{_c_type(ret)}* out")
    converter = f"PM_TABLE({len(TABLE_HEAD) + index})"
    return (f"int {caller_name(key)}({', '.join(params)}) {{\n"
            "    PM_ENTER_PYTHON\n    PyGILState_STATE gil = PyGILState_Ensure();\n"
            + _call_body(list(args), ret, "(PyObject*)callable", converter, True) +
            "    PyGILState_Release(gil);\n    PM_LEAVE_PYTHON\n    return status;\n}\n")


def _import_caller(function: dict, index: int, signatures: int) -> str:
    args = [p["type"]["tag"] for p in function["params"]]
    result = function["ret"]
    ret = result["tag"] if isinstance(kind_of(result), Scalar) else None
    params = [f"{_c_type(a)} x{i}" for i, a in enumerate(args)]
    if ret is not None:
        params.append(f"{_c_type(ret)}* out")
    entry = len(TABLE_HEAD) + signatures + 2 * index
    body = _call_body(args, ret, "target", f"PM_TABLE({entry + 1})", False)
    body = body.replace("    PyObject* result = NULL;\n",
                        "    PyObject* result = NULL;\n"
                        f"    PyObject* target = pm_hub_find(PM_TABLE({entry}));\n"
                        "    if (target == NULL) goto done;\n", 1)
    body = body.replace("done:\n", "done:\n    Py_XDECREF(target);\n", 1)
    return (f"int {import_caller_name(function)}({', '.join(params) or 'void'}) {{\n"
            "    if (pm_table == NULL) return 1;\n"
            "    PM_ENTER_PYTHON\n    PyGILState_STATE gil = PyGILState_Ensure();\n"
            + body + "    PyGILState_Release(gil);\n    PM_LEAVE_PYTHON\n    return status;\n}\n")


def glue_code(plan: dict) -> str:
    """The C of the module's callers and connection, placed in cffi's glue."""
    shape = layout(plan)
    parts = [_signature_caller(key, i) for i, key in enumerate(shape["signatures"])]
    parts += [_import_caller(f, i, len(shape["signatures"]))
              for i, f in enumerate(shape["imports"])]
    return "".join(parts)
