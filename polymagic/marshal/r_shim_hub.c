/* R's `py$name` (and `py[["name"]]`): the value bound to `name` in the shared Python
 * namespace, looked up at every use, in C.
 *
 * The R engine registers the closure made here, `function(x, name) .External(
 * <pm_hub_get>, name)`, as the `$` method of R's `py` object (and `[[` calls it). A callable
 * becomes an R closure calling it (r_shim_closures.c); that closure is kept per name in
 * an R environment and handed out again while the name is bound to the very same
 * callable, so `py$f(x)` in a loop makes no new R object. Rebinding the name in Python
 * is seen at the next lookup: the kept closure is used only when its callable IS the
 * value the namespace holds now. A name bound to something else drops its closure.
 *
 * Any other value is converted as a callback's result is (plain scalars here, the rest
 * by marshal's to_r). A missing name raises the hub's HubNameError in Python, which
 * becomes R's error here (and is re-raised as itself when the R call fails), after the
 * GIL and every Python reference were released: the longjmp rule of r_shim.h.
 */
#include "r_shim.h"

#include <R_ext/Rdynload.h>

static PyObject *pm_hub_state = NULL;      /* hub._state: "explicit", "ipython" */
static PyObject *pm_hub_chosen[2] = {NULL, NULL};   /* those two keys */
static PyObject *pm_hub_namespace = NULL;  /* () -> the shared namespace (a mapping) */
static PyObject *pm_hub_missing = NULL;    /* name -> value, or raises HubNameError */
static SEXP pm_hub_closures = NULL;        /* R environment: name -> closure (preserved) */

enum { PM_HUB_FAILED, PM_HUB_KEPT, PM_HUB_SCALAR, PM_HUB_FUNCTION, PM_HUB_CONVERTED };

typedef struct {
    pm_scalar_value scalar;    /* PM_HUB_SCALAR */
    PyObject *function;        /* PM_HUB_FUNCTION: a reference we own */
    SEXP converted;            /* PM_HUB_CONVERTED: protected in the caller's slot */
    int keep;                  /* converted is a closure of ours over the value */
    const char *error;         /* PM_HUB_FAILED: R's error text */
} pm_hub_value;

/* The shared namespace (new ref): a namespace the hub was given, read here as
 * hub.namespace() reads it (a Python call less per lookup), else hub.namespace(). */
static PyObject *pm_hub_space(void)
{
    for (int i = 0; i < 2; i++) {
        PyObject *space = PyDict_GetItemWithError(pm_hub_state, pm_hub_chosen[i]);
        if (space == NULL && PyErr_Occurred())
            return NULL;
        if (space != NULL && space != Py_None)
            return Py_NewRef(space);
    }
    return PyObject_CallNoArgs(pm_hub_namespace);
}

/* namespace[name], or what the hub's missing-name rule gives (it raises). New ref. */
static PyObject *pm_hub_value_of(const char *name)
{
    PyObject *key = PyUnicode_FromString(name);
    if (key == NULL)
        return NULL;
    PyObject *space = pm_hub_space();
    PyObject *value = space == NULL ? NULL : PyObject_GetItem(space, key);
    Py_XDECREF(space);
    if (value == NULL && PyErr_ExceptionMatches(PyExc_KeyError)) {
        PyErr_Clear();
        value = PyObject_CallOneArg(pm_hub_missing, key);
    }
    Py_DECREF(key);
    return value;
}

/* A value that is not kept nor a plain scalar: a plain function (its closure is made
 * once the GIL is released), or marshal's conversion. 0, or -1 with an exception set. */
static int pm_hub_convert(PyObject *value, pm_hub_value *out, PROTECT_INDEX slot)
{
    if (Py_TYPE(value) == &PyFunction_Type && !PyObject_HasAttrString(value, "__sexp__")) {
        out->function = Py_NewRef(value);
        return PM_HUB_FUNCTION;
    }
    if (value == Py_None) {
        out->converted = R_NilValue;
        return PM_HUB_CONVERTED;
    }
    /* marshal's converters run Python code of any length: Ctrl-C is Python's there */
    int outer = pm_python_section_enter();
    PyObject *pair = pm_value_to_r_pair(value);
    pm_python_section_leave(outer);
    if (pair == NULL)
        return -1;
    out->converted = (SEXP) PyLong_AsVoidPtr(PyTuple_GET_ITEM(pair, 0));
    REPROTECT(out->converted, slot);   /* before Python lets go of the keepalive */
    Py_DECREF(pair);
    out->keep = pm_closure_callable(out->converted) == value;
    return PM_HUB_CONVERTED;
}

/* The Python side of a lookup, under the GIL, calling nothing in R that can fail. */
static int pm_hub_find(const char *name, PyObject *kept_callable, pm_hub_value *out,
                       PROTECT_INDEX slot)
{
    int kind = PM_HUB_FAILED;
    PyObject *value = pm_hub_value_of(name);
    if (value != NULL) {
        PyTypeObject *type = Py_TYPE(value);
        if (kept_callable != NULL && value == kept_callable)
            kind = PM_HUB_KEPT;
        else if (type == &PyFloat_Type || type == &PyLong_Type || type == &PyBool_Type ||
                 type == &PyComplex_Type)
            kind = pm_read_scalar(value, &out->scalar) < 0 ? PM_HUB_FAILED : PM_HUB_SCALAR;
        else {
            int converted = pm_hub_convert(value, out, slot);
            kind = converted < 0 ? PM_HUB_FAILED : converted;
        }
        Py_DECREF(value);
    }
    if (kind == PM_HUB_FAILED)
        out->error = pm_note_failure();
    return kind;
}

/* The closure kept for `symbol`, or R_NilValue. */
static SEXP pm_hub_kept(SEXP symbol)
{
    SEXP kept = Rf_findVarInFrame(pm_hub_closures, symbol);
    return TYPEOF(kept) == CLOSXP ? kept : R_NilValue;
}

static SEXP pm_hub_get(SEXP args)
{
    SEXP name = CADR(args);
    if (TYPEOF(name) != STRSXP || XLENGTH(name) != 1 || STRING_ELT(name, 0) == NA_STRING)
        Rf_error("py[[name]] takes one name, a string");
    if (pm_hub_namespace == NULL)
        Rf_error("polymagic's hub is not set up");
    /* everything R might fail at before the GIL is taken */
    const char *utf8 = Rf_translateCharUTF8(STRING_ELT(name, 0));
    /* a name R has no symbol for ("", over 10,000 bytes) is looked up, never kept */
    int length = LENGTH(STRING_ELT(name, 0));
    SEXP symbol = length > 0 && length <= 10000 ? Rf_installTrChar(STRING_ELT(name, 0))
                                                 : R_NilValue;
    /* protected: Python code run by the lookup may rebind the name through R */
    SEXP kept = PROTECT(symbol == R_NilValue ? R_NilValue : pm_hub_kept(symbol));
    PyObject *kept_callable = kept == R_NilValue ? NULL : pm_closure_callable(kept);
    PROTECT_INDEX slot;
    PROTECT_WITH_INDEX(R_NilValue, &slot);
    pm_hub_value value = {.function = NULL, .converted = R_NilValue, .keep = 0};
    PyGILState_STATE gil = PyGILState_Ensure();
    int kind = pm_hub_find(utf8, kept_callable, &value, slot);
    PyGILState_Release(gil);
    SEXP result = R_NilValue;
    switch (kind) {
    case PM_HUB_FAILED:
        Rf_error("%s", value.error);
    case PM_HUB_KEPT:
        result = kept;
        break;
    case PM_HUB_SCALAR:
        result = pm_new_scalar(&value.scalar);   /* no Python reference is held now */
        break;
    case PM_HUB_FUNCTION:
        result = pm_closure_over(value.function);
        value.keep = 1;
        break;
    default:
        result = value.converted;
    }
    if (kind != PM_HUB_KEPT && symbol != R_NilValue && (value.keep || kept != R_NilValue)) {
        REPROTECT(result, slot);
        if (value.keep)   /* handed out again: R must copy it before changing it */
            MARK_NOT_MUTABLE(result);
        Rf_defineVar(symbol, value.keep ? result : R_NilValue, pm_hub_closures);
    }
    UNPROTECT(2);
    return result;
}

typedef struct {
    SEXP getter;
} pm_hub_request;

static void pm_make_getter_body(void *data)
{
    pm_hub_request *request = (pm_hub_request *) data;
    SEXP call = PROTECT(Rf_lang3(Rf_install("new.env"), Rf_ScalarLogical(1), R_EmptyEnv));
    SEXP closures = PROTECT(Rf_eval(call, R_BaseEnv));
    SEXP routine = PROTECT(R_MakeExternalPtrFn((DL_FUNC) pm_hub_get,
                                               Rf_install("native symbol"), R_NilValue));
    SEXP body = PROTECT(Rf_lang3(Rf_install(".External"), routine, Rf_install("name")));
    SEXP formals = PROTECT(Rf_list2(R_MissingArg, R_MissingArg));
    SET_TAG(formals, Rf_install("x"));
    SET_TAG(CDR(formals), Rf_install("name"));
    SEXP getter = PROTECT(Rf_allocSExp(CLOSXP));
    SET_FORMALS(getter, formals);
    SET_BODY(getter, body);
    SET_CLOENV(getter, R_BaseEnv);
    R_PreserveObject(closures);
    R_PreserveObject(getter);
    UNPROTECT(6);
    pm_hub_closures = closures;
    request->getter = getter;
}

/* hub_getter(state, namespace, missing) -> address of a preserved R closure
 * `function(x, name)`: `py$name` for R. state is hub._state (a namespace given
 * under "explicit", else "ipython", is the shared one), namespace() gives it otherwise,
 * missing(name) answers for a name it lacks (raising the hub's error). */
static PyObject *py_hub_getter(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void) self;
    if (nargs != 3 || !PyDict_Check(args[0]) || !PyCallable_Check(args[1]) ||
        !PyCallable_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "hub_getter(state, namespace, missing) takes a "
                        "dict and two callables");
        return NULL;
    }
    if (pm_hub_chosen[0] == NULL &&
        ((pm_hub_chosen[0] = PyUnicode_InternFromString("explicit")) == NULL ||
         (pm_hub_chosen[1] = PyUnicode_InternFromString("ipython")) == NULL))
        return NULL;
    pm_hub_request request = {NULL};
    if (!pm_guard("make the hub's getter", pm_make_getter_body, &request))
        return NULL;
    Py_XSETREF(pm_hub_state, Py_NewRef(args[0]));
    Py_XSETREF(pm_hub_namespace, Py_NewRef(args[1]));
    Py_XSETREF(pm_hub_missing, Py_NewRef(args[2]));
    return PyLong_FromVoidPtr(request.getter);
}

PyMethodDef pm_hub_methods[] = {
    {"hub_getter", (PyCFunction) (void (*)(void)) py_hub_getter, METH_FASTCALL,
     "hub_getter(state, namespace, missing) -> preserved address of R's py$name "
     "method."},
    {NULL, NULL, 0, NULL}
};
