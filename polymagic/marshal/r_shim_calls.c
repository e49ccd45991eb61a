/* Python -> R calls in C, without rpy2's per-call Python work.
 *
 * call(closure, args, kwargs, raw) converts the arguments (Python scalars and None
 * here; anything else through marshal's to_r), enters R through the runtime shim's
 * hooks (R's Ctrl-C handler, the C stack guard), builds the call and evaluates it in
 * R's global environment inside R_ToplevelExec (what R_tryEval does), leaves, and
 * converts the result (plain length-1 vectors here; anything else through marshal).
 * What Python must handle comes back as one of the outcome objects given at set-up:
 * the C stack is nearly used up (nothing entered), or R failed (interrupted or not).
 *
 * The longjmp rule (r_shim.h) holds: every Python value is read before R is entered,
 * and only C runs inside the R context.
 */
#include "r_shim.h"

#define PM_STACK_EXHAUSTED 2   /* the runtime shim's enter answer (signals.c) */
#define PM_SMALL_CALL 8

typedef int (*pm_runtime_hook)(void);
static pm_runtime_hook pm_enter_r = NULL, pm_leave_r = NULL;
static PyObject *pm_argument_to_r = NULL;    /* value -> (address, keepalive) */
static PyObject *pm_result_to_python = NULL; /* preserved address -> value (releases) */
static PyObject *pm_result_raw = NULL;       /* preserved address -> rpy2 proxy (adopts) */
static PyObject *pm_outcome_stack = NULL, *pm_outcome_failed = NULL,
                *pm_outcome_interrupted = NULL;

typedef struct {
    pm_scalar_value scalar;    /* used when sexp is NULL */
    SEXP sexp;
    const char *name;          /* UTF-8 argument name, or NULL */
} pm_argument;

typedef struct {
    SEXP closure;
    Py_ssize_t count;
    pm_argument *arguments;
    SEXP result;
    int raw;         /* the result goes to Python unconverted */
    int preserved;   /* result was R_PreserveObject'ed (not a plain scalar read here) */
} pm_call_request;

/* One argument read from Python; -1 with an exception set. `keep` receives what must
 * stay alive until the call returns (or NULL). */
static int pm_read_argument(PyObject *value, pm_argument *out, PyObject **keep)
{
    PyTypeObject *type = Py_TYPE(value);
    *keep = NULL;
    out->sexp = NULL;
    /* exact types only, as marshal's to_r: subclasses go through its registry */
    if (type == &PyFloat_Type || type == &PyLong_Type || type == &PyBool_Type ||
        type == &PyUnicode_Type || type == &PyComplex_Type)
        return pm_read_scalar(value, &out->scalar) < 0 ? -1 : 0;
    if (value == Py_None) {
        out->sexp = R_NilValue;
        return 0;
    }
    PyObject *pair = PyObject_CallOneArg(pm_argument_to_r, value);
    if (pair == NULL)
        return -1;
    out->sexp = (SEXP) PyLong_AsVoidPtr(PyTuple_GET_ITEM(pair, 0));
    *keep = pair;
    return PyErr_Occurred() ? -1 : 0;
}

/* A plain attribute-free length-1 vector, or NULL: converted here, not by marshal. */
static int pm_is_simple(SEXP x)
{
    if (x == R_NilValue)
        return 1;
    int type = TYPEOF(x);
    return (type == REALSXP || type == INTSXP || type == LGLSXP || type == STRSXP ||
            type == CPLXSXP) && ATTRIB(x) == R_NilValue && pm_plain(x) && XLENGTH(x) == 1;
}

static void pm_call_body(void *data)
{
    pm_call_request *request = (pm_call_request *) data;
    SEXP call = PROTECT(Rf_allocList((int) request->count + 1));
    SET_TYPEOF(call, LANGSXP);
    SETCAR(call, request->closure);
    SEXP cell = CDR(call);
    for (Py_ssize_t i = 0; i < request->count; i++, cell = CDR(cell)) {
        pm_argument *argument = &request->arguments[i];
        SETCAR(cell, argument->sexp ? argument->sexp : pm_new_scalar(&argument->scalar));
        if (argument->name != NULL)
            SET_TAG(cell, Rf_install(argument->name));
    }
    SEXP value = Rf_eval(call, R_GlobalEnv);
    /* a plain scalar is read into Python before R allocates again (no GC can run in
     * between), so only other results need keeping */
    request->preserved = request->raw || !pm_is_simple(value);
    if (request->preserved)
        R_PreserveObject(value);
    UNPROTECT(1);
    request->result = value;
}

static PyObject *pm_convert_result(SEXP result, int preserved, int raw)
{
    if (!preserved) {
        if (result == R_NilValue)
            Py_RETURN_NONE;
        return pm_scalar_to_python(result);
    }
    PyObject *address = PyLong_FromVoidPtr(result);
    if (address == NULL) {
        R_ReleaseObject(result);
        return NULL;
    }
    PyObject *value = PyObject_CallOneArg(raw ? pm_result_raw : pm_result_to_python,
                                          address);
    Py_DECREF(address);
    return value;
}

static PyObject *pm_run_call(pm_call_request *request, int raw)
{
    if (pm_enter_r() == PM_STACK_EXHAUSTED)
        return Py_NewRef(pm_outcome_stack);
    int done = R_ToplevelExec(pm_call_body, request);
    int interrupted = pm_leave_r();
    if (!done)
        return Py_NewRef(interrupted ? pm_outcome_interrupted : pm_outcome_failed);
    if (interrupted) {
        if (request->preserved)
            R_ReleaseObject(request->result);
        PyErr_SetNone(PyExc_KeyboardInterrupt);
        return NULL;
    }
    return pm_convert_result(request->result, request->preserved, raw);
}

/* closure(*positional, **kwargs) in R: the converted result (an rpy2 proxy when raw),
 * or an outcome object. */
static PyObject *pm_call(SEXP closure, PyObject *const *values, Py_ssize_t positional,
                         PyObject *kwargs, int raw)
{
    pm_argument small[PM_SMALL_CALL];
    PyObject *small_keep[PM_SMALL_CALL] = {NULL};
    Py_ssize_t count = positional + (kwargs ? PyDict_GET_SIZE(kwargs) : 0);
    pm_call_request request = {closure, count, small, NULL, raw, 0};
    PyObject **keep = small_keep;
    if (count > PM_SMALL_CALL) {
        request.arguments = PyMem_Calloc((size_t) count, sizeof(pm_argument));
        keep = PyMem_Calloc((size_t) count, sizeof(PyObject *));
        if (request.arguments == NULL || keep == NULL) {
            PyMem_Free(request.arguments);
            PyMem_Free(keep);
            return PyErr_NoMemory();
        }
    }
    PyObject *result = NULL;
    Py_ssize_t read = 0, position = 0;
    PyObject *key, *value;
    for (; read < positional; read++) {
        request.arguments[read].name = NULL;
        if (pm_read_argument(values[read], &request.arguments[read], &keep[read]) < 0)
            goto done;
    }
    while (kwargs && PyDict_Next(kwargs, &position, &key, &value)) {
        /* the engine checked the names: str, UTF-8, no NUL */
        request.arguments[read].name = PyUnicode_AsUTF8(key);
        if (request.arguments[read].name == NULL ||
            pm_read_argument(value, &request.arguments[read], &keep[read]) < 0)
            goto done;
        read++;
    }
    result = pm_run_call(&request, raw);
done:
    for (Py_ssize_t i = 0; i < count; i++)
        Py_XDECREF(keep[i]);
    if (request.arguments != small) {
        PyMem_Free(request.arguments);
        PyMem_Free(keep);
    }
    return result;
}

/* call(closure address, args tuple, kwargs dict or None, raw) -> the converted result
 * (an rpy2 proxy when raw), or an outcome object. */
static PyObject *py_call(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void) self;
    if (nargs != 4 || !PyTuple_Check(args[1]) || pm_enter_r == NULL) {
        PyErr_SetString(PyExc_TypeError, "call(closure, args, kwargs, raw) after "
                        "set_call_hooks");
        return NULL;
    }
    SEXP closure = pm_sexp_arg(args[0]);
    if (PyErr_Occurred())
        return NULL;
    return pm_call(closure, &PyTuple_GET_ITEM(args[1], 0), PyTuple_GET_SIZE(args[1]),
                   args[2] == Py_None ? NULL : args[2], args[3] == Py_True);
}

/* set_call_hooks(enter, leave, argument_to_r, result_to_python, result_raw,
 *                stack_exhausted, failed, interrupted): the runtime shim's enter/leave
 * functions (addresses), marshal's converters, and the outcome objects. */
static PyObject *py_set_call_hooks(PyObject *self, PyObject *const *args,
                                   Py_ssize_t nargs)
{
    (void) self;
    if (nargs != 8) {
        PyErr_SetString(PyExc_TypeError, "set_call_hooks takes 8 arguments");
        return NULL;
    }
    void *enter = PyLong_AsVoidPtr(args[0]), *leave = PyLong_AsVoidPtr(args[1]);
    if (PyErr_Occurred())
        return NULL;
    pm_enter_r = (pm_runtime_hook) enter;
    pm_leave_r = (pm_runtime_hook) leave;
    Py_XSETREF(pm_argument_to_r, Py_NewRef(args[2]));
    Py_XSETREF(pm_result_to_python, Py_NewRef(args[3]));
    Py_XSETREF(pm_result_raw, Py_NewRef(args[4]));
    Py_XSETREF(pm_outcome_stack, Py_NewRef(args[5]));
    Py_XSETREF(pm_outcome_failed, Py_NewRef(args[6]));
    Py_XSETREF(pm_outcome_interrupted, Py_NewRef(args[7]));
    Py_RETURN_NONE;
}

/* ---- RFunction.__call__ in C ---------------------------------------------------------
 *
 * The R engine's RFunction is a Python class; once R is up, its __call__ becomes one
 * object of this type: a method descriptor whose vectorcall makes the call above for a
 * call with positional arguments only, from R's thread, with no Python frame of
 * polymagic's (one per hop of a deep Python <-> R recursion). Everything else (keyword
 * arguments, another thread, R not set up) goes to the Python method it replaces,
 * unchanged. What the fast path does is what that method does: the outcome objects
 * become the exception `function._failed(outcome)` gives, an exception leaving gets
 * polymagic's frames hidden, and output R held back is released after a success.
 */
typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *python_call;    /* the Python __call__: (function, *args, **kwargs) */
    PyObject *outcome_type;   /* the class of the outcome objects */
    PyObject *hide_plumbing;  /* error -> None: drops polymagic's frames */
    PyObject *session;        /* .held_stderr, .release_stderr() */
    unsigned long r_thread;
} pm_fast_call;

static PyObject *pm_names[5];   /* interned attribute names */
enum { PM_ADDRESS, PM_RAW, PM_FAILED, PM_HELD, PM_RELEASE };

/* The exception set now, with polymagic's frames hidden; NULL. */
static PyObject *pm_leave_with_error(pm_fast_call *call)
{
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    PyErr_NormalizeException(&type, &value, &traceback);
    if (value != NULL) {
        if (traceback != NULL)
            PyException_SetTraceback(value, traceback);
        PyObject *done = PyObject_CallOneArg(call->hide_plumbing, value);
        if (done == NULL)   /* hiding failed: raise the error as it is */
            PyErr_Clear();
        Py_XDECREF(done);
        Py_XSETREF(traceback, PyException_GetTraceback(value));
    }
    PyErr_Restore(type, value, traceback);
    return NULL;
}

/* What RFunction.__call__ does after the shim's call returned `result`. */
static PyObject *pm_finish_call(pm_fast_call *call, PyObject *function, PyObject *result)
{
    if (result == NULL)
        return pm_leave_with_error(call);
    if ((PyObject *) Py_TYPE(result) == call->outcome_type) {
        PyObject *error = PyObject_CallMethodOneArg(function, pm_names[PM_FAILED], result);
        Py_DECREF(result);
        if (error != NULL) {
            PyErr_SetObject((PyObject *) Py_TYPE(error), error);
            Py_DECREF(error);
        }
        return pm_leave_with_error(call);
    }
    PyObject *held = PyObject_GetAttr(call->session, pm_names[PM_HELD]);
    if (held == NULL) {
        Py_DECREF(result);
        return pm_leave_with_error(call);
    }
    if (held != Py_None) {
        PyObject *done = PyObject_CallMethodNoArgs(call->session, pm_names[PM_RELEASE]);
        if (done == NULL) {
            Py_DECREF(held);
            Py_DECREF(result);
            return pm_leave_with_error(call);
        }
        Py_DECREF(done);
    }
    Py_DECREF(held);
    return result;
}

static PyObject *pm_fast_call_vectorcall(PyObject *callable, PyObject *const *args,
                                         size_t nargsf, PyObject *kwnames)
{
    pm_fast_call *call = (pm_fast_call *) callable;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (nargs < 1 || (kwnames != NULL && PyTuple_GET_SIZE(kwnames) > 0) ||
        PyThread_get_thread_ident() != call->r_thread || pm_enter_r == NULL)
        return PyObject_Vectorcall(call->python_call, args, nargsf, kwnames);
    PyObject *function = args[0];
    PyObject *address = PyObject_GetAttr(function, pm_names[PM_ADDRESS]);
    if (address == NULL)
        return pm_leave_with_error(call);
    SEXP closure = (SEXP) PyLong_AsVoidPtr(address);
    Py_DECREF(address);
    PyObject *raw_flag = PyObject_GetAttr(function, pm_names[PM_RAW]);
    int raw = raw_flag == NULL ? -1 : PyObject_IsTrue(raw_flag);
    Py_XDECREF(raw_flag);
    if (raw < 0 || PyErr_Occurred())
        return pm_leave_with_error(call);
    /* one level of Python's recursion limit per call, as the Python frame it replaces
     * counted: deep Python <-> R recursion meets that limit before the C stack ends */
    if (Py_EnterRecursiveCall(" while calling an R function"))
        return pm_leave_with_error(call);
    PyObject *result = pm_call(closure, args + 1, nargs - 1, NULL, raw);
    Py_LeaveRecursiveCall();
    return pm_finish_call(call, function, result);
}

static PyObject *pm_fast_call_get(PyObject *self, PyObject *instance, PyObject *owner)
{
    (void) owner;
    if (instance == NULL || instance == Py_None)
        return Py_NewRef(self);
    return PyMethod_New(self, instance);
}

static void pm_fast_call_dealloc(PyObject *self)
{
    pm_fast_call *call = (pm_fast_call *) self;
    Py_XDECREF(call->python_call);
    Py_XDECREF(call->outcome_type);
    Py_XDECREF(call->hide_plumbing);
    Py_XDECREF(call->session);
    Py_TYPE(self)->tp_free(self);
}

/* Read as the Python method it replaces: name, doc, and __wrapped__ (for inspect). */
static PyObject *pm_fast_call_wrapped(PyObject *self, void *closure)
{
    (void) closure;
    return Py_NewRef(((pm_fast_call *) self)->python_call);
}

static PyObject *pm_fast_call_attribute(PyObject *self, void *name)
{
    return PyObject_GetAttrString(((pm_fast_call *) self)->python_call, (const char *) name);
}

static PyGetSetDef pm_fast_call_getset[] = {
    {"__wrapped__", pm_fast_call_wrapped, NULL, NULL, NULL},
    {"__name__", pm_fast_call_attribute, NULL, NULL, "__name__"},
    {"__qualname__", pm_fast_call_attribute, NULL, NULL, "__qualname__"},
    {"__doc__", pm_fast_call_attribute, NULL, NULL, "__doc__"},
    {NULL, NULL, NULL, NULL, NULL}
};

static PyTypeObject pm_fast_call_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "_polymagic_r_shim.RFunctionCall",
    .tp_doc = "RFunction.__call__ in C (see r_shim_calls.c).",
    .tp_basicsize = sizeof(pm_fast_call),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_METHOD_DESCRIPTOR |
                Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_vectorcall_offset = offsetof(pm_fast_call, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_descr_get = pm_fast_call_get,
    .tp_getset = pm_fast_call_getset,
    .tp_dealloc = pm_fast_call_dealloc,
};

/* fast_call(python_call, outcome_type, hide_plumbing, session, r_thread) -> the
 * descriptor to install as RFunction.__call__. */
static PyObject *py_fast_call(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void) self;
    static const char *names[] = {"_address", "_raw", "_failed", "held_stderr",
                                  "release_stderr"};
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "fast_call(python_call, outcome_type, "
                        "hide_plumbing, session, r_thread)");
        return NULL;
    }
    unsigned long r_thread = PyLong_AsUnsignedLong(args[4]);
    if (PyErr_Occurred())
        return NULL;
    for (int i = 0; i < 5; i++)
        if (pm_names[i] == NULL && (pm_names[i] = PyUnicode_InternFromString(names[i])) == NULL)
            return NULL;
    if (pm_fast_call_type.tp_flags & Py_TPFLAGS_READY ? 0 : PyType_Ready(&pm_fast_call_type) < 0)
        return NULL;
    pm_fast_call *call = PyObject_New(pm_fast_call, &pm_fast_call_type);
    if (call == NULL)
        return NULL;
    call->vectorcall = pm_fast_call_vectorcall;
    call->python_call = Py_NewRef(args[0]);
    call->outcome_type = Py_NewRef(args[1]);
    call->hide_plumbing = Py_NewRef(args[2]);
    call->session = Py_NewRef(args[3]);
    call->r_thread = r_thread;
    return (PyObject *) call;
}

PyMethodDef pm_call_methods[] = {
    {"fast_call", (PyCFunction) (void (*)(void)) py_fast_call, METH_FASTCALL,
     "fast_call(python_call, outcome_type, hide_plumbing, session, r_thread) -> "
     "RFunction.__call__ in C"},
    {"call", (PyCFunction) (void (*)(void)) py_call, METH_FASTCALL,
     "call(closure, args, kwargs, raw) -> result, or an outcome object"},
    {"set_call_hooks", (PyCFunction) (void (*)(void)) py_set_call_hooks, METH_FASTCALL,
     "set_call_hooks(enter, leave, argument_to_r, result_to_python, result_raw, "
     "stack_exhausted, failed, interrupted)"},
    {NULL, NULL, 0, NULL}
};
