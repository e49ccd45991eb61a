/* The fixed part of a cell module's C glue, placed by cffi after its own header and
 * before the generated glue (polymagic/bridges/cpp/codegen.py pastes it in after
 * glue_cdef.h and `#define PM_MODULE_NAME "<module>"`; it is not compiled alone).
 *
 * Every glue function calls the trampoline with the GIL released, then
 * `_cffi_save_errno()`, then re-takes the GIL. We redefine `_cffi_save_errno()` (used
 * only at that one call site, inside the Py_BEGIN/END_ALLOW_THREADS block) to also look
 * at the runtime's thread-local pending error: if the trampoline caught a C++ exception
 * (or a Python exception travelling through C++), Py_BLOCK_THREADS re-takes the GIL
 * (CPython's documented way to leave such a block early) and the glue returns NULL
 * with the Python exception set. The check is one call reading a thread-local int, so
 * functions with scalar arguments and results are exposed as `lib.pm_f<i>` with no
 * Python wrapper at all. */
int pm_rt_pending(void);
int pm_rt_take(int* function, long* handle, const char** type_name,
               const char** message);

/* Pending kinds (runtime.cpp) that follow a Ctrl-C, after which Python's own SIGINT
   handler has a KeyboardInterrupt waiting: it is run here, so that the interrupt is
   raised once, at this call, with the C++ frame in its traceback. */
#define PM_KIND_INTERRUPTED 10
#define PM_KIND_FORCED_STOP 11

static PyObject* pm_raise_pending(void) {
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
        callbacks, "exception_from_cpp", "siilOOO", PM_MODULE_NAME, function, kind,
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
static PyObject* pm_argument_error(int function, int position, PyObject* value) {
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
        module, "argument_error", "siiOO", PM_MODULE_NAME, function, position, value,
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

static void pm_save_errno(void) { _cffi_save_errno(); }
#undef _cffi_save_errno
#define _cffi_save_errno() \
    pm_save_errno(); \
    if (pm_rt_pending()) { Py_BLOCK_THREADS return pm_raise_pending(); }
