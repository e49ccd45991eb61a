/* The error paths of a cell module's C glue: a C++ exception or stop caught by a
 * trampoline, and a scalar argument cffi could not convert, raised as Python
 * exceptions. Compiled once per compiler and Python (polymagic/bridges/cpp/compiler.py,
 * with glue_callers.c and containers_glue.c) and linked into every cell module, whose
 * per-cell glue (glue_preamble.c) calls them; hidden, so each module has its own. */
#include <Python.h>
#include <stdint.h>
#include "glue_cdef.h"
#include "faults.h"
#include "glue_runtime.h"

int pm_rt_take(int* function, long* handle, const char** type_name,
               const char** message);

/* Pending kinds (runtime.cpp) that follow a Ctrl-C, after which Python's own SIGINT
   handler has a KeyboardInterrupt waiting: it is run here, so that the interrupt is
   raised once, at this call, with the C++ frame in its traceback. */
#define PM_KIND_INTERRUPTED 10
#define PM_KIND_FORCED_STOP 11

PyObject* pm_raise_pending(void) {
    int function; long handle; const char* type_name; const char* message;
    int kind = pm_rt_take(&function, &handle, &type_name, &message);
    /* Copied now: Python code run below may call C++ again, which reuses the buffers. */
    PyObject* name = PyBytes_FromString(type_name);
    PyObject* text = PyBytes_FromString(message);
    PyObject* raised = NULL;
    if (name == NULL || text == NULL) goto failed;
    if ((kind == PM_KIND_INTERRUPTED || kind == PM_KIND_FORCED_STOP) &&
            PyErr_CheckSignals() < 0) {
        PyObject *type, *traceback;
        PyErr_Fetch(&type, &raised, &traceback);
        PyErr_NormalizeException(&type, &raised, &traceback);
        if (traceback != NULL && raised != NULL) PyException_SetTraceback(raised, traceback);
        Py_XDECREF(type);
        Py_XDECREF(traceback);
    }
    PyObject* callbacks = PyImport_ImportModule("polymagic.bridges.cpp.callbacks");
    if (callbacks == NULL) goto failed;
    PyObject* error = PyObject_CallMethod(
        callbacks, "exception_from_cpp", "siilOOO", pm_module_name, function, kind,
        handle, name, text, raised != NULL ? raised : Py_None);
    Py_DECREF(callbacks);
    if (error == NULL) goto failed;
    PyObject* error_type = PyObject_Type(error);
    PyErr_SetObject(error_type, error);
    Py_DECREF(error_type);
    Py_DECREF(error);
failed:
    Py_XDECREF(name);
    Py_XDECREF(text);
    Py_XDECREF(raised);
    return NULL;
}

/* A scalar argument cffi could not convert (its TypeError or OverflowError is set)
   becomes a ConversionError naming the function, the parameter, the C++ type and the
   value (argument_error in polymagic/bridges/cpp/module.py). codegen.py puts the call
   on cffi's failure path only, so a call that converts costs nothing more. */
PyObject* pm_argument_error(int function, int position, PyObject* value) {
    PyObject *type, *cause, *traceback;
    PyErr_Fetch(&type, &cause, &traceback);
    PyErr_NormalizeException(&type, &cause, &traceback);
    if (cause == NULL || (!PyErr_GivenExceptionMatches(cause, PyExc_TypeError) &&
                          !PyErr_GivenExceptionMatches(cause, PyExc_OverflowError))) {
        PyErr_Restore(type, cause, traceback);  /* e.g. KeyboardInterrupt: as it is */
        return NULL;
    }
    PyObject* module = PyImport_ImportModule("polymagic.bridges.cpp.module");
    PyObject* error = module == NULL ? NULL : PyObject_CallMethod(
        module, "argument_error", "siiOO", pm_module_name, function, position, value,
        cause);
    Py_XDECREF(module);
    if (error == NULL) {  /* the message could not be made: cffi's own error */
        PyErr_Clear();
        PyErr_Restore(type, cause, traceback);
        return NULL;
    }
    PyObject* error_type = PyObject_Type(error);
    PyErr_SetObject(error_type, error);
    Py_DECREF(error_type);
    Py_DECREF(error);
    Py_XDECREF(type);
    Py_XDECREF(cause);
    Py_XDECREF(traceback);
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
