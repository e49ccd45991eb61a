/* R closures that call Python callables.
 *
 * A Python callable becomes the R closure `function(...) .External(<pm_call_python>,
 * <ptr>, ...)`, where <ptr> is an external pointer holding a strong reference to the
 * callable (dropped by its finalizer). The closure hands the argument addresses and
 * names to the dispatcher (marshal.r._run_callback), which converts them, calls, and
 * returns (result address, keepalive), or an error string for any Python exception.
 * That string becomes an R error here, after the GIL and every Python reference have
 * been released: R's error longjmp must not cross Python.
 */
#include "r_shim.h"

#include <R_ext/Rdynload.h>
#include <string.h>

static PyObject *pm_dispatcher = NULL;   /* Python function that runs a callback */
static char pm_error_message[8192];

static void pm_release_callable(SEXP handle)
{
    PyObject *callable = (PyObject *) R_ExternalPtrAddr(handle);
    if (callable == NULL)
        return;
    R_ClearExternalPtr(handle);
    if (Py_IsInitialized()) {
        PyGILState_STATE gil = PyGILState_Ensure();
        Py_DECREF(callable);
        PyGILState_Release(gil);
    }
}

/* The Python side of a call: (args, names) -> result address, or NULL with the error
 * text in pm_error_message. Runs under the GIL and calls nothing in R that can fail. */
static SEXP pm_dispatch(PyObject *callable, SEXP args, R_xlen_t n, const char **names,
                        PROTECT_INDEX result_slot)
{
    SEXP out = NULL;
    PyObject *addresses = PyTuple_New(n);
    PyObject *keywords = PyTuple_New(n);
    PyObject *result = NULL;
    if (addresses != NULL && keywords != NULL) {
        R_xlen_t i = 0;
        int failed = 0;
        for (SEXP cell = args; cell != R_NilValue; cell = CDR(cell), i++) {
            PyObject *address = PyLong_FromVoidPtr(CAR(cell));
            PyObject *name = names[i] == NULL ? Py_NewRef(Py_None)
                                              : PyUnicode_FromString(names[i]);
            failed |= address == NULL || name == NULL;
            PyTuple_SET_ITEM(addresses, i, address);
            PyTuple_SET_ITEM(keywords, i, name);
        }
        if (!failed)
            result = PyObject_CallFunctionObjArgs(pm_dispatcher, callable, addresses,
                                                  keywords, NULL);
    }
    Py_XDECREF(addresses);
    Py_XDECREF(keywords);
    if (result == NULL) {
        /* The dispatcher itself failed (it normally turns errors into strings). */
        PyErr_Clear();
        snprintf(pm_error_message, sizeof pm_error_message,
                 "polymagic could not call the Python function");
    } else if (PyUnicode_Check(result)) {
        const char *text = PyUnicode_AsUTF8(result);
        snprintf(pm_error_message, sizeof pm_error_message, "%s",
                 text ? text : "Python exception");
        PyErr_Clear();
    } else {
        /* (address, keepalive): protected before Python lets go of the keepalive.
         * REPROTECT fills a slot reserved beforehand, so it cannot fail here. */
        out = (SEXP) PyLong_AsVoidPtr(PyTuple_GET_ITEM(result, 0));
        REPROTECT(out, result_slot);
    }
    Py_XDECREF(result);
    return out;
}

static SEXP pm_call_python(SEXP args)
{
    args = CDR(args);                       /* skip the routine itself */
    SEXP handle = CAR(args);
    args = CDR(args);
    PyObject *callable = (PyObject *) R_ExternalPtrAddr(handle);
    if (callable == NULL)
        Rf_error("this Python function was released");
    if (pm_dispatcher == NULL)
        Rf_error("polymagic's callback dispatcher is not set");
    /* Everything R might fail at is done before the GIL is taken. */
    R_xlen_t n = Rf_xlength(args);
    const char **names = (const char **) R_alloc((size_t) n + 1, sizeof(char *));
    R_xlen_t i = 0;
    for (SEXP cell = args; cell != R_NilValue; cell = CDR(cell), i++)
        names[i] = TAG(cell) == R_NilValue ? NULL
                                           : Rf_translateCharUTF8(PRINTNAME(TAG(cell)));
    PROTECT_INDEX result_slot;
    PROTECT_WITH_INDEX(R_NilValue, &result_slot);
    PyGILState_STATE gil = PyGILState_Ensure();
    SEXP out = pm_dispatch(callable, args, n, names, result_slot);
    PyGILState_Release(gil);
    if (out == NULL)
        Rf_error("%s", pm_error_message);
    UNPROTECT(1);
    return out;
}

static PyObject *py_set_dispatcher(PyObject *self, PyObject *arg)
{
    (void) self;
    Py_XSETREF(pm_dispatcher, Py_NewRef(arg));
    Py_RETURN_NONE;
}

typedef struct {
    PyObject *callable;
    SEXP result;
} pm_function_request;

/* The closure is complete before the external pointer takes the callable: an R error
 * on the way leaves an empty pointer (its finalizer does nothing) and no reference. */
static void pm_make_function_body(void *data)
{
    pm_function_request *request = (pm_function_request *) data;
    SEXP handle = PROTECT(R_MakeExternalPtr(NULL, Rf_install("polymagic_python_callable"),
                                            R_NilValue));
    R_RegisterCFinalizerEx(handle, pm_release_callable, FALSE);
    SEXP routine = PROTECT(R_MakeExternalPtrFn((DL_FUNC) pm_call_python,
                                               Rf_install("native symbol"), R_NilValue));
    SEXP body = PROTECT(Rf_lang4(Rf_install(".External"), routine, handle, R_DotsSymbol));
    SEXP formals = PROTECT(Rf_cons(R_MissingArg, R_NilValue));
    SET_TAG(formals, R_DotsSymbol);
    SEXP closure = PROTECT(Rf_allocSExp(CLOSXP));
    SET_FORMALS(closure, formals);
    SET_BODY(closure, body);
    SET_CLOENV(closure, R_BaseEnv);
    R_PreserveObject(closure);
    UNPROTECT(5);
    Py_INCREF(request->callable);
    R_SetExternalPtrAddr(handle, request->callable);
    request->result = closure;
}

/* make_function(callable) -> address of a new, PRESERVED R closure calling `callable`. */
static PyObject *py_make_function(PyObject *self, PyObject *callable)
{
    (void) self;
    pm_function_request request = {callable, NULL};
    if (!pm_guard("make an R function for this Python callable", pm_make_function_body,
                  &request))
        return NULL;
    return PyLong_FromVoidPtr(request.result);
}

/* python_callable(address) -> the Python callable behind an R function we made, or None. */
static PyObject *py_python_callable(PyObject *self, PyObject *arg)
{
    (void) self;
    SEXP x = pm_sexp_arg(arg);
    if (PyErr_Occurred())
        return NULL;
    if (TYPEOF(x) != CLOSXP)
        Py_RETURN_NONE;
    SEXP body = BODY(x);
    if (TYPEOF(body) != LANGSXP || Rf_length(body) != 4)
        Py_RETURN_NONE;
    SEXP routine = CADR(body), handle = CADDR(body);
    if (TYPEOF(routine) != EXTPTRSXP || TYPEOF(handle) != EXTPTRSXP ||
        R_ExternalPtrAddrFn(routine) != (DL_FUNC) pm_call_python ||
        R_ExternalPtrAddr(handle) == NULL)
        Py_RETURN_NONE;
    return Py_NewRef((PyObject *) R_ExternalPtrAddr(handle));
}

PyMethodDef pm_closure_methods[] = {
    {"set_dispatcher", py_set_dispatcher, METH_O, "Set the Python callback runner."},
    {"make_function", py_make_function, METH_O,
     "make_function(callable) -> preserved address of an R closure calling it."},
    {"python_callable", py_python_callable, METH_O,
     "The Python callable behind an R closure made by make_function, or None."},
    {NULL, NULL, 0, NULL}
};
