/* The fixed part of the C-API callers in a cell module's C glue: the module's table of
 * Python objects, references for kept std::functions, the error path, result
 * conversion and the shared-namespace lookup, for the callers
 * polymagic/bridges/cpp/capi.py generates for the cell (one per callback signature,
 * one per PM_PYTHON import with arithmetic types). Compiled once (glue_errors.c
 * says how); declared in glue_runtime.h. */
#include <Python.h>
#include <stdint.h>
#include "glue_cdef.h"
#include "faults.h"
#include "glue_runtime.h"

PyObject* pm_table = NULL;

int pm_py_connect(uintptr_t table) {
    PyGILState_STATE gil = PyGILState_Ensure();
    PyObject* previous = pm_table;
    Py_INCREF((PyObject*)table);
    pm_table = (PyObject*)table;
    Py_XDECREF(previous);
    PyGILState_Release(gil);
    return 0;
}

/* A std::function made from a Python callable outlived its call: hold the callable. */
void pm_py_retain(uintptr_t callable) {
    PM_ENTER_PYTHON
    PyGILState_STATE gil = PyGILState_Ensure();
    Py_INCREF((PyObject*)callable);
    PyGILState_Release(gil);
    PM_LEAVE_PYTHON
}

void pm_py_release(uintptr_t callable) {
    if (!Py_IsInitialized()) return;  /* a static std::function destroyed after Python */
    PM_ENTER_PYTHON
    PyGILState_STATE gil = PyGILState_Ensure();
    Py_DECREF((PyObject*)callable);
    PyGILState_Release(gil);
    PM_LEAVE_PYTHON
}

/* The Python exception just raised (GIL held) goes to the stash; the runtime gets its
   handle and the C++ caller throws it (pm_rt_check_callback). */
int pm_py_failed(void) {
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    PyErr_NormalizeException(&type, &value, &traceback);
    if (traceback != NULL && value != NULL) PyException_SetTraceback(value, traceback);
    long handle = -1;  /* no stash entry: exception_from_cpp reports the loss */
    PyObject* stashed = value ? PyObject_CallOneArg(PM_TABLE(0), value) : NULL;
    if (stashed != NULL) {
        handle = PyLong_AsLong(stashed);
        Py_DECREF(stashed);
    }
    if (stashed == NULL || handle == -1) {
        PyErr_WriteUnraisable(value);
        handle = -1;
    }
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(traceback);
    pm_rt_note_callback_error(handle);
    return -1;
}

/* Whether `value` is an int in range, stored in *out (any error cleared). */
int pm_signed_in_range(PyObject* value, long long low, long long high,
                       long long* out) {
    if (!PyLong_Check(value)) return 0;
    int overflow = 0;
    long long number = PyLong_AsLongLongAndOverflow(value, &overflow);
    if (overflow || (number == -1 && PyErr_Occurred()) || number < low || number > high) {
        PyErr_Clear();
        return 0;
    }
    *out = number;
    return 1;
}

int pm_unsigned_in_range(PyObject* value, unsigned long long high,
                         unsigned long long* out) {
    if (!PyLong_Check(value)) return 0;
    unsigned long long number = PyLong_AsUnsignedLongLong(value);
    if ((number == (unsigned long long)-1 && PyErr_Occurred()) || number > high) {
        PyErr_Clear();
        return 0;
    }
    *out = number;
    return 1;
}

static int pm_out_of_range(PyObject* converted) {
    Py_DECREF(converted);
    PyErr_SetString(PyExc_SystemError, "polymagic: a C++ result converter returned "
                    "a value out of range");
    return -1;
}

/* A result for a C integer type in [low, high]: ints (bool included) in range
   directly; anything else through `converter` (Python, cffi's rules), which returns
   an int in range or raises. 0 on success, -1 with an exception set. */
int pm_signed_result(PyObject* result, PyObject* converter, long long low,
                     long long high, long long* out) {
    if (pm_signed_in_range(result, low, high, out)) return 0;
    PyObject* converted = PyObject_CallOneArg(converter, result);
    if (converted == NULL) return -1;
    if (!pm_signed_in_range(converted, low, high, out)) return pm_out_of_range(converted);
    Py_DECREF(converted);
    return 0;
}

int pm_unsigned_result(PyObject* result, PyObject* converter,
                       unsigned long long high, unsigned long long* out) {
    if (pm_unsigned_in_range(result, high, out)) return 0;
    PyObject* converted = PyObject_CallOneArg(converter, result);
    if (converted == NULL) return -1;
    if (!pm_unsigned_in_range(converted, high, out)) return pm_out_of_range(converted);
    Py_DECREF(converted);
    return 0;
}

/* The callable bound to `name` in the shared namespace (new reference), as
   polymagic.hub.lookup finds it: the explicit namespace, else IPython's; a dict
   subclass, a missing name or the caller-globals rule go to hub.lookup itself. */
PyObject* pm_hub_find(PyObject* name) {
    PyObject* state = PM_TABLE(1);
    PyObject* space = PyDict_GetItemWithError(state, PM_TABLE(3));
    if (space == NULL || space == Py_None) {
        if (PyErr_Occurred()) return NULL;
        space = PyDict_GetItemWithError(state, PM_TABLE(4));
        if (space == NULL && PyErr_Occurred()) return NULL;
    }
    if (space != NULL && space != Py_None && PyDict_CheckExact(space)) {
        Py_INCREF(space);
        PyObject* found = PyDict_GetItemWithError(space, name);
        Py_XINCREF(found);
        Py_DECREF(space);
        if (found != NULL) return found;
        if (PyErr_Occurred()) return NULL;
    }
    return PyObject_CallFunctionObjArgs(PM_TABLE(2), name, PM_TABLE(5), NULL);
}
