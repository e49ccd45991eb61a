/* R closures that call Python callables.
 *
 * A Python callable becomes the R closure `function(...) .External(<pm_call_python>,
 * <ptr>, ...)`, where <ptr> is an external pointer holding a strong reference to the
 * callable (dropped by its finalizer). The closure's arguments are converted here
 * (plain scalars) or by marshal, the callable is called, and its result is read here
 * (float/int/bool/complex, None) or converted by marshal. Any Python exception becomes
 * an R error here, after the GIL and every Python reference have been released: R's
 * error longjmp must not cross Python (marshal keeps the exception to re-raise it).
 */
#include "r_shim.h"

#include <R_ext/Rdynload.h>
#include <string.h>

/* Set by set_callback_hooks: marshal's converters for what the C paths here do not
 * convert, what turns a Python exception into R's error text, and the runtime shim's
 * functions that give Python its SIGINT handler while the callable runs. */
static PyObject *pm_value_from_r = NULL;  /* address -> Python value */
static PyObject *pm_value_to_r = NULL;    /* value -> (address, keepalive) */
static PyObject *pm_callback_failed = NULL;  /* exception -> error text (str) */
static int (*pm_python_section_begin)(void) = NULL;   /* -> what end is given */
static int (*pm_python_section_end)(int) = NULL;
static char pm_error_message[8192];

typedef struct {
    SEXP handle;       /* the external pointer that is to hold the callable */
    SEXP result;       /* the closure */
    int preserve;      /* R_PreserveObject the closure */
} pm_function_request;
static void pm_make_function_body(void *data);

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

/* One argument from R as a Python value: plain attribute-free scalars here, anything
 * else through marshal. */
static PyObject *pm_argument_from_r(SEXP x)
{
    int type = TYPEOF(x);
    if (x == R_NilValue)
        Py_RETURN_NONE;
    if ((type == REALSXP || type == INTSXP || type == LGLSXP || type == CPLXSXP ||
         type == STRSXP) && ATTRIB(x) == R_NilValue && pm_plain(x) && XLENGTH(x) == 1)
        return pm_scalar_to_python(x);
    PyObject *address = PyLong_FromVoidPtr(x);
    if (address == NULL)
        return NULL;
    PyObject *value = PyObject_CallOneArg(pm_value_from_r, address);
    Py_DECREF(address);
    return value;
}

/* The callable's arguments: positional ones in order, named ones as keywords. */
static int pm_callback_arguments(SEXP args, R_xlen_t n, const char **names,
                                 PyObject **positional, PyObject **keywords)
{
    R_xlen_t unnamed = 0, i = 0;
    for (i = 0; i < n; i++)
        unnamed += names[i] == NULL;
    *positional = PyTuple_New(unnamed);
    *keywords = unnamed == n ? NULL : PyDict_New();
    if (*positional == NULL || (unnamed != n && *keywords == NULL))
        return -1;
    R_xlen_t slot = 0;
    i = 0;
    for (SEXP cell = args; cell != R_NilValue; cell = CDR(cell), i++) {
        PyObject *value = pm_argument_from_r(CAR(cell));
        if (value == NULL)
            return -1;
        if (names[i] == NULL)
            PyTuple_SET_ITEM(*positional, slot++, value);
        else {
            int failed = PyDict_SetItemString(*keywords, names[i], value);
            Py_DECREF(value);
            if (failed < 0)
                return -1;
        }
    }
    return 0;
}

/* What the callable returned, for R once the GIL is released. */
typedef struct {
    pm_scalar_value scalar;
    int is_scalar;           /* exact float/int/bool/complex, read into `scalar` */
    PyObject *function;      /* a plain Python function (a reference we own) */
} pm_callback_value;

/* The callable's result for R: exact float/int/bool/complex and plain functions kept
 * in `value` (built in R once the GIL is released), None as NULL, anything else
 * converted by marshal and protected in `result_slot`. 0, or -1 with an exception set. */
static int pm_callback_result(PyObject *result, pm_callback_value *value, SEXP *out,
                              PROTECT_INDEX result_slot)
{
    PyTypeObject *type = Py_TYPE(result);
    if (type == &PyFloat_Type || type == &PyLong_Type || type == &PyBool_Type ||
        type == &PyComplex_Type) {
        value->is_scalar = 1;
        return pm_read_scalar(result, &value->scalar) < 0 ? -1 : 0;
    }
    /* as marshal's to_r: a function that does not pretend to be an R object */
    if (type == &PyFunction_Type) {
        int r_object = PyObject_HasAttrString(result, "__sexp__");
        if (!r_object) {
            value->function = Py_NewRef(result);
            return 0;
        }
    }
    if (result == Py_None) {
        *out = R_NilValue;
        return 0;
    }
    PyObject *pair = PyObject_CallOneArg(pm_value_to_r, result);
    if (pair == NULL)
        return -1;
    /* protected before Python lets go of the keepalive; REPROTECT fills a slot
     * reserved beforehand, so it cannot fail here */
    *out = (SEXP) PyLong_AsVoidPtr(PyTuple_GET_ITEM(pair, 0));
    REPROTECT(*out, result_slot);
    Py_DECREF(pair);
    return 0;
}

/* The exception now set as R's error text, returned (a static buffer: use it before
 * the next failure); marshal keeps the exception object to re-raise it when the R call
 * fails. Under the GIL. */
const char *pm_note_failure(void)
{
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    PyErr_NormalizeException(&type, &value, &traceback);
    if (traceback != NULL && value != NULL)
        PyException_SetTraceback(value, traceback);
    PyObject *text = value == NULL ? NULL : PyObject_CallOneArg(pm_callback_failed, value);
    const char *utf8 = text != NULL && PyUnicode_Check(text) ? PyUnicode_AsUTF8(text) : NULL;
    snprintf(pm_error_message, sizeof pm_error_message, "%s",
             utf8 ? utf8 : "polymagic could not call the Python function");
    PyErr_Clear();
    Py_XDECREF(text);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(traceback);
    return pm_error_message;
}

int pm_python_section_enter(void)
{
    return pm_python_section_begin != NULL ? pm_python_section_begin() : 0;
}

void pm_python_section_leave(int outer)
{
    if (pm_python_section_end != NULL)
        pm_python_section_end(outer);
}

PyObject *pm_value_to_r_pair(PyObject *value)
{
    if (pm_value_to_r == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "polymagic's callback hooks are not set");
        return NULL;
    }
    return PyObject_CallOneArg(pm_value_to_r, value);
}

#define PM_SMALL_CALLBACK 8

/* callable(*args) for a few unnamed arguments, without a tuple: NULL with an exception
 * set when an argument cannot be converted or the call raised. */
static PyObject *pm_call_unnamed(PyObject *callable, SEXP args, R_xlen_t n)
{
    PyObject *values[PM_SMALL_CALLBACK];
    R_xlen_t read = 0;
    for (SEXP cell = args; cell != R_NilValue; cell = CDR(cell), read++)
        if ((values[read] = pm_argument_from_r(CAR(cell))) == NULL)
            break;
    PyObject *result = NULL;
    if (read == n) {
        int outer = pm_python_section_enter();
        result = PyObject_Vectorcall(callable, values, (size_t) n, NULL);
        pm_python_section_leave(outer);
    }
    for (R_xlen_t i = 0; i < read; i++)
        Py_DECREF(values[i]);
    return result;
}

/* The Python side of a call, under the GIL, calling nothing in R that can fail:
 * 1 with the result in *out or *value, 0 with the error text in pm_error_message.
 * `names` is NULL for at most PM_SMALL_CALLBACK arguments, none named. */
static int pm_dispatch(PyObject *callable, SEXP args, R_xlen_t n, const char **names,
                       PROTECT_INDEX result_slot, SEXP *out, pm_callback_value *value)
{
    PyObject *positional = NULL, *keywords = NULL, *result = NULL;
    int ok = 0;
    if (names == NULL && n <= PM_SMALL_CALLBACK) {
        result = pm_call_unnamed(callable, args, n);
        ok = result != NULL;
    } else if (pm_callback_arguments(args, n, names, &positional, &keywords) == 0) {
        /* Ctrl-C in a long Python callback raises KeyboardInterrupt there */
        int outer = pm_python_section_enter();
        result = PyObject_Call(callable, positional, keywords);
        pm_python_section_leave(outer);
        ok = result != NULL;
    }
    ok = ok && pm_callback_result(result, value, out, result_slot) == 0;
    if (!ok)
        pm_note_failure();
    Py_XDECREF(positional);
    Py_XDECREF(keywords);
    Py_XDECREF(result);
    return ok;
}

/* A new R closure over `function`, whose reference it takes over; R's error (the
 * reference dropped first) when R cannot make it. */
SEXP pm_closure_over(PyObject *function)
{
    pm_function_request request = {NULL, NULL, 0};
    if (!R_ToplevelExec(pm_make_function_body, &request)) {
        PyGILState_STATE gil = PyGILState_Ensure();
        Py_DECREF(function);
        PyGILState_Release(gil);
        Rf_error("R could not make an R function for the Python function returned");
    }
    R_SetExternalPtrAddr(request.handle, function);   /* allocates nothing */
    return request.result;
}

static SEXP pm_call_python(SEXP args)
{
    args = CDR(args);                       /* skip the routine itself */
    SEXP handle = CAR(args);
    args = CDR(args);
    PyObject *callable = (PyObject *) R_ExternalPtrAddr(handle);
    if (callable == NULL)
        Rf_error("this Python function was released");
    if (pm_value_from_r == NULL)
        Rf_error("polymagic's callback hooks are not set");
    /* Everything R might fail at is done before the GIL is taken. */
    R_xlen_t n = 0, named = 0;
    for (SEXP cell = args; cell != R_NilValue; cell = CDR(cell), n++)
        named += TAG(cell) != R_NilValue;
    const char **names = NULL;   /* NULL: a few unnamed arguments (pm_dispatch) */
    if (named || n > PM_SMALL_CALLBACK) {
        names = (const char **) R_alloc((size_t) n + 1, sizeof(char *));
        R_xlen_t i = 0;
        for (SEXP cell = args; cell != R_NilValue; cell = CDR(cell), i++)
            names[i] = TAG(cell) == R_NilValue
                           ? NULL : Rf_translateCharUTF8(PRINTNAME(TAG(cell)));
    }
    PROTECT_INDEX result_slot;
    PROTECT_WITH_INDEX(R_NilValue, &result_slot);
    SEXP out = R_NilValue;
    pm_callback_value value = {.is_scalar = 0, .function = NULL};
    PyGILState_STATE gil = PyGILState_Ensure();
    int ok = pm_dispatch(callable, args, n, names, result_slot, &out, &value);
    PyGILState_Release(gil);
    if (!ok)
        Rf_error("%s", pm_error_message);
    if (value.is_scalar)
        out = pm_new_scalar(&value.scalar);      /* no Python reference is held now */
    else if (value.function != NULL)
        out = pm_closure_over(value.function);
    UNPROTECT(1);
    return out;
}

/* set_callback_hooks(value_from_r, value_to_r, callback_failed, section_begin,
 * section_end): marshal's converters and error noter, and the addresses of the runtime
 * shim's functions that give Python its SIGINT handler during a callback (0: none). */
static PyObject *py_set_callback_hooks(PyObject *self, PyObject *const *args,
                                       Py_ssize_t nargs)
{
    (void) self;
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "set_callback_hooks takes 5 arguments");
        return NULL;
    }
    void *begin = PyLong_AsVoidPtr(args[3]), *end = PyLong_AsVoidPtr(args[4]);
    if (PyErr_Occurred())
        return NULL;
    Py_XSETREF(pm_value_from_r, Py_NewRef(args[0]));
    Py_XSETREF(pm_value_to_r, Py_NewRef(args[1]));
    Py_XSETREF(pm_callback_failed, Py_NewRef(args[2]));
    pm_python_section_begin = (int (*)(void)) begin;
    pm_python_section_end = (int (*)(int)) end;
    Py_RETURN_NONE;
}

/* The closure is complete before the external pointer takes the callable (the caller
 * hands it over once the body returned): an R error on the way leaves an empty pointer
 * (its finalizer does nothing) and no reference. */
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
    if (request->preserve)
        R_PreserveObject(closure);
    UNPROTECT(5);
    request->handle = handle;
    request->result = closure;
}

/* make_function(callable) -> address of a new, PRESERVED R closure calling `callable`. */
static PyObject *py_make_function(PyObject *self, PyObject *callable)
{
    (void) self;
    pm_function_request request = {NULL, NULL, 1};
    if (!pm_guard("make an R function for this Python callable", pm_make_function_body,
                  &request))
        return NULL;
    Py_INCREF(callable);
    R_SetExternalPtrAddr(request.handle, callable);
    return PyLong_FromVoidPtr(request.result);
}

PyObject *pm_closure_callable(SEXP x)
{
    if (TYPEOF(x) != CLOSXP)
        return NULL;
    SEXP body = BODY(x);
    if (TYPEOF(body) != LANGSXP || Rf_length(body) != 4)
        return NULL;
    SEXP routine = CADR(body), handle = CADDR(body);
    if (TYPEOF(routine) != EXTPTRSXP || TYPEOF(handle) != EXTPTRSXP ||
        R_ExternalPtrAddrFn(routine) != (DL_FUNC) pm_call_python)
        return NULL;
    return (PyObject *) R_ExternalPtrAddr(handle);
}

/* python_callable(address) -> the Python callable behind an R function we made, or None. */
static PyObject *py_python_callable(PyObject *self, PyObject *arg)
{
    (void) self;
    SEXP x = pm_sexp_arg(arg);
    if (PyErr_Occurred())
        return NULL;
    PyObject *callable = pm_closure_callable(x);
    if (callable == NULL)
        Py_RETURN_NONE;
    return Py_NewRef(callable);
}

PyMethodDef pm_closure_methods[] = {
    {"set_callback_hooks", (PyCFunction) (void (*)(void)) py_set_callback_hooks,
     METH_FASTCALL, "set_callback_hooks(value_from_r, value_to_r, callback_failed, "
     "section_begin, section_end)"},
    {"make_function", py_make_function, METH_O,
     "make_function(callable) -> preserved address of an R closure calling it."},
    {"python_callable", py_python_callable, METH_O,
     "The Python callable behind an R closure made by make_function, or None."},
    {NULL, NULL, 0, NULL}
};
