/* The R shim's module, and pm_guard (see r_shim.h). */
#include "r_shim.h"

#include <stdarg.h>
#include <string.h>

/* R's error buffer (what geterrmessage() returns); exported by libR. */
extern const char *R_curErrorBuf(void);

static PyObject *pm_conversion_error_class = NULL;  /* polymagic.errors.ConversionError */
static PyObject *pm_r_error_class = NULL;           /* polymagic.errors.RError */
static PyObject *pm_on_r_error = NULL;              /* called after a guarded R error */

PyObject *pm_conversion_error(const char *format, ...)
{
    va_list arguments;
    va_start(arguments, format);
    PyErr_FormatV(pm_conversion_error_class ? pm_conversion_error_class
                                            : PyExc_TypeError, format, arguments);
    va_end(arguments);
    return NULL;
}

/* R's message without its "Error: " / "Error in <call> : " prefix and final newline. */
static void pm_r_error_message(char *out, size_t size)
{
    const char *text = R_curErrorBuf();
    const char *found;
    size_t length;
    if (text == NULL)
        text = "";
    if (strncmp(text, "Error in ", 9) == 0 && (found = strstr(text, " : ")) != NULL)
        text = found + 3;
    else if (strncmp(text, "Error: ", 7) == 0)
        text += 7;
    snprintf(out, size, "%s", text);
    length = strlen(out);
    while (length > 0 && (out[length - 1] == '\n' || out[length - 1] == ' '))
        out[--length] = '\0';
}

static int pm_guard_raising(PyObject *error_class, const char *what,
                            void (*body)(void *), void *data)
{
    char message[1024];
    PyObject *result;
    if (R_ToplevelExec(body, data))
        return 1;
    pm_r_error_message(message, sizeof message);
    /* R printed its error as it unwound; it reaches the user as this exception. */
    if (pm_on_r_error != NULL) {
        result = PyObject_CallNoArgs(pm_on_r_error);
        if (result == NULL)
            PyErr_Clear();
        Py_XDECREF(result);
    }
    PyErr_Format(error_class, "R could not %s: %s", what,
                 message[0] ? message : "(no message)");
    return 0;
}

int pm_guard(const char *what, void (*body)(void *), void *data)
{
    return pm_guard_raising(pm_conversion_error_class ? pm_conversion_error_class
                                                      : PyExc_TypeError, what, body, data);
}

int pm_guard_r(const char *what, void (*body)(void *), void *data)
{
    return pm_guard_raising(pm_r_error_class ? pm_r_error_class : PyExc_RuntimeError,
                            what, body, data);
}

SEXP pm_sexp_arg(PyObject *arg)
{
    return (SEXP) PyLong_AsVoidPtr(arg);
}

/* set_error_handling(conversion_error, r_error, on_r_error): the exception classes
 * raised for values that cannot cross and for other R failures, and a callable run
 * after R unwound inside the shim. */
static PyObject *py_set_error_handling(PyObject *self, PyObject *const *args,
                                       Py_ssize_t nargs)
{
    (void) self;
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError,
                        "set_error_handling(conversion_error, r_error, on_r_error)");
        return NULL;
    }
    Py_XSETREF(pm_conversion_error_class, Py_NewRef(args[0]));
    Py_XSETREF(pm_r_error_class, Py_NewRef(args[1]));
    Py_XSETREF(pm_on_r_error, args[2] == Py_None ? NULL : Py_NewRef(args[2]));
    Py_RETURN_NONE;
}

static PyMethodDef pm_module_methods[] = {
    {"set_error_handling", (PyCFunction) (void (*)(void)) py_set_error_handling,
     METH_FASTCALL, "set_error_handling(conversion_error, r_error, on_r_error)"},
    {NULL, NULL, 0, NULL}
};

static struct PyModuleDef pm_module = {
    PyModuleDef_HEAD_INIT, "_polymagic_r_shim",
    "ALTREP vectors over Python buffers, R closures calling Python, R objects read and "
    "built from Python.", -1, pm_module_methods, NULL, NULL, NULL, NULL
};

PyMODINIT_FUNC PyInit__polymagic_r_shim(void)
{
    PyObject *module = PyModule_Create(&pm_module);
    if (module == NULL)
        return NULL;
    if (PyModule_AddFunctions(module, pm_view_methods) < 0 ||
        PyModule_AddFunctions(module, pm_closure_methods) < 0 ||
        PyModule_AddFunctions(module, pm_object_methods) < 0 ||
        PyModule_AddFunctions(module, pm_call_methods) < 0 ||
        PyModule_AddFunctions(module, pm_hub_methods) < 0 ||
        pm_add_object_types(module) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
