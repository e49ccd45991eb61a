/* R ALTREP vectors whose data pointer IS a Python buffer, and R functions that call Python.
 *
 * Built on first use by polymagic/marshal/r_altrep.py as a small CPython extension (no
 * numpy C API). Three ALTREP classes (real, integer, complex) share one design:
 *
 *   data1  external pointer to a pm_view {data, length, owner, shared_writes}; `owner`
 *          is a strong reference to the Python object that owns the buffer, dropped
 *          (under the GIL) by the external pointer's finalizer when R collects it.
 *   data2  R_NilValue while R reads the Python buffer; a private R vector once R asked
 *          for a writable pointer (copy-on-write), served from then on. With
 *          shared_writes the writable pointer is the Python buffer itself.
 *
 * Serialization writes an ordinary vector (Serialized_state returns NULL), so saveRDS()
 * output never refers to this process. Duplicate returns an ordinary R vector.
 *
 * Python callables become R closures `function(...) .External(<pm_call_python>, <ptr>, ...)`;
 * a Python exception comes back as a string and is turned into an R error here, after
 * every Python reference has been released (R's error longjmp must not cross Python).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#define R_NO_REMAP
#include <Rinternals.h>
#include <R_ext/Altrep.h>
#include <R_ext/Rdynload.h>
#include <limits.h>
#include <string.h>

typedef struct {
    void *data;
    R_xlen_t length;
    PyObject *owner;
    int shared_writes;
} pm_view;

static R_altrep_class_t pm_real_class, pm_integer_class, pm_complex_class;
static int pm_classes_ready = 0;
static PyObject *pm_dispatcher = NULL;   /* Python function that runs a callback */
static char pm_error_message[8192];

/* ---- lifetime of Python references held by R ------------------------------------ */

static void pm_release_owner(SEXP handle)
{
    pm_view *view = (pm_view *) R_ExternalPtrAddr(handle);
    if (view == NULL)
        return;
    R_ClearExternalPtr(handle);
    if (Py_IsInitialized()) {
        PyGILState_STATE gil = PyGILState_Ensure();
        Py_XDECREF(view->owner);
        PyGILState_Release(gil);
    }
    free(view);
}

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

/* ---- shared ALTREP methods -------------------------------------------------------- */

static pm_view *pm_view_of(SEXP x)
{
    return (pm_view *) R_ExternalPtrAddr(R_altrep_data1(x));
}

static int pm_is_materialised(SEXP x)
{
    return R_altrep_data2(x) != R_NilValue;
}

static size_t pm_elt_size(SEXP x)
{
    switch (TYPEOF(x)) {
    case REALSXP: return sizeof(double);
    case INTSXP: return sizeof(int);
    case CPLXSXP: return sizeof(Rcomplex);
    default: return 0;
    }
}

/* The pointer R reads from: the private copy once there is one, else the Python buffer. */
static const void *pm_read_ptr(SEXP x)
{
    SEXP copy = R_altrep_data2(x);
    return copy != R_NilValue ? DATAPTR_RO(copy) : pm_view_of(x)->data;
}

static R_xlen_t pm_length(SEXP x)
{
    return pm_view_of(x)->length;
}

static SEXP pm_plain_copy(SEXP x)
{
    R_xlen_t n = pm_length(x);
    SEXP copy = PROTECT(Rf_allocVector(TYPEOF(x), n));
    if (n > 0)
        memcpy(DATAPTR(copy), pm_read_ptr(x), (size_t) n * pm_elt_size(x));
    UNPROTECT(1);
    return copy;
}

static void *pm_dataptr(SEXP x, Rboolean writeable)
{
    SEXP copy = R_altrep_data2(x);
    if (copy != R_NilValue)
        return DATAPTR(copy);
    pm_view *view = pm_view_of(x);
    if (!writeable || view->shared_writes)
        return view->data;
    /* R is about to write: give it a private copy so the Python buffer stays intact. */
    copy = pm_plain_copy(x);
    R_set_altrep_data2(x, copy);
    return DATAPTR(copy);
}

static const void *pm_dataptr_or_null(SEXP x)
{
    return pm_read_ptr(x);
}

static SEXP pm_new_view(R_altrep_class_t cls, void *data, R_xlen_t length,
                        PyObject *owner, int shared_writes)
{
    pm_view *view = (pm_view *) malloc(sizeof(pm_view));
    if (view == NULL)
        Rf_error("polymagic: out of memory for a view");
    view->data = data;
    view->length = length;
    view->owner = owner;      /* the caller passes a new reference */
    view->shared_writes = shared_writes;
    SEXP handle = PROTECT(R_MakeExternalPtr(view, R_NilValue, R_NilValue));
    R_RegisterCFinalizerEx(handle, pm_release_owner, FALSE);
    SEXP vector = R_new_altrep(cls, handle, R_NilValue);
    UNPROTECT(1);
    return vector;
}

static R_altrep_class_t pm_class_of(SEXP x)
{
    return TYPEOF(x) == REALSXP ? pm_real_class
         : TYPEOF(x) == INTSXP ? pm_integer_class : pm_complex_class;
}

/* R duplicates before modifying a shared vector (and every vector handed to rpy2 counts
 * as shared). A plain copy keeps R's value semantics; with shared_writes the user asked
 * R to write into the Python buffer, so the duplicate is another view of that buffer. */
static SEXP pm_duplicate(SEXP x, Rboolean deep)
{
    (void) deep;
    pm_view *view = pm_view_of(x);
    if (!view->shared_writes || pm_is_materialised(x))
        return pm_plain_copy(x);
    PyGILState_STATE gil = PyGILState_Ensure();
    Py_INCREF(view->owner);
    PyGILState_Release(gil);
    return pm_new_view(pm_class_of(x), view->data, view->length, view->owner, 1);
}

static SEXP pm_serialized_state(SEXP x)
{
    (void) x;
    return NULL;   /* NULL: R serializes an ordinary vector (see R's serialize.c) */
}

static SEXP pm_unserialize(SEXP info, SEXP state)
{
    (void) info;
    return state;  /* never reached: nothing is serialized as this class */
}

static Rboolean pm_inspect(SEXP x, int pre, int deep, int pvec,
                           void (*inspect_subtree)(SEXP, int, int, int))
{
    (void) pre; (void) deep; (void) pvec; (void) inspect_subtree;
    pm_view *view = pm_view_of(x);
    Rprintf(" polymagic view of a Python buffer at %p, length %lld, %s%s\n",
            view->data, (long long) view->length,
            pm_is_materialised(x) ? "materialised (R writes to a private copy)"
                                  : "zero-copy",
            view->shared_writes ? ", shared writes" : "");
    return TRUE;
}

static double pm_real_elt(SEXP x, R_xlen_t i)
{
    return ((const double *) pm_read_ptr(x))[i];
}

static int pm_integer_elt(SEXP x, R_xlen_t i)
{
    return ((const int *) pm_read_ptr(x))[i];
}

static Rcomplex pm_complex_elt(SEXP x, R_xlen_t i)
{
    return ((const Rcomplex *) pm_read_ptr(x))[i];
}

static R_xlen_t pm_region(SEXP x, R_xlen_t start, R_xlen_t size, void *buffer)
{
    R_xlen_t length = pm_length(x);
    R_xlen_t count = start + size > length ? length - start : size;
    if (count <= 0)
        return 0;
    size_t elt = pm_elt_size(x);
    memcpy(buffer, (const char *) pm_read_ptr(x) + (size_t) start * elt,
           (size_t) count * elt);
    return count;
}

static R_xlen_t pm_real_region(SEXP x, R_xlen_t i, R_xlen_t n, double *buf)
{
    return pm_region(x, i, n, buf);
}

static R_xlen_t pm_integer_region(SEXP x, R_xlen_t i, R_xlen_t n, int *buf)
{
    return pm_region(x, i, n, buf);
}

static R_xlen_t pm_complex_region(SEXP x, R_xlen_t i, R_xlen_t n, Rcomplex *buf)
{
    return pm_region(x, i, n, buf);
}

static void pm_set_common_methods(R_altrep_class_t cls)
{
    R_set_altrep_Length_method(cls, pm_length);
    R_set_altrep_Duplicate_method(cls, pm_duplicate);
    R_set_altrep_Inspect_method(cls, pm_inspect);
    R_set_altrep_Serialized_state_method(cls, pm_serialized_state);
    R_set_altrep_Unserialize_method(cls, pm_unserialize);
    R_set_altvec_Dataptr_method(cls, pm_dataptr);
    R_set_altvec_Dataptr_or_null_method(cls, pm_dataptr_or_null);
}

/* ---- Python-visible functions ----------------------------------------------------- */

static PyObject *py_register_classes(PyObject *self, PyObject *args)
{
    (void) self; (void) args;
    if (!pm_classes_ready) {
        DllInfo *info = R_getEmbeddingDllInfo();
        pm_real_class = R_make_altreal_class("polymagic_real", "polymagic", info);
        pm_integer_class = R_make_altinteger_class("polymagic_integer", "polymagic", info);
        pm_complex_class = R_make_altcomplex_class("polymagic_complex", "polymagic", info);
        pm_set_common_methods(pm_real_class);
        pm_set_common_methods(pm_integer_class);
        pm_set_common_methods(pm_complex_class);
        R_set_altreal_Elt_method(pm_real_class, pm_real_elt);
        R_set_altreal_Get_region_method(pm_real_class, pm_real_region);
        R_set_altinteger_Elt_method(pm_integer_class, pm_integer_elt);
        R_set_altinteger_Get_region_method(pm_integer_class, pm_integer_region);
        R_set_altcomplex_Elt_method(pm_complex_class, pm_complex_elt);
        R_set_altcomplex_Get_region_method(pm_complex_class, pm_complex_region);
        pm_classes_ready = 1;
    }
    Py_RETURN_NONE;
}

static PyObject *py_release(PyObject *self, PyObject *arg)
{
    (void) self;
    void *address = PyLong_AsVoidPtr(arg);
    if (PyErr_Occurred())
        return NULL;
    R_ReleaseObject((SEXP) address);
    Py_RETURN_NONE;
}

/* view_info(address) -> None when the vector is not ours, else
 * (owner, buffer address, materialised, shared_writes). */
static PyObject *py_view_info(PyObject *self, PyObject *arg)
{
    (void) self;
    SEXP x = (SEXP) PyLong_AsVoidPtr(arg);
    if (PyErr_Occurred())
        return NULL;
    if (!pm_classes_ready || !ALTREP(x) ||
        !(R_altrep_inherits(x, pm_real_class) || R_altrep_inherits(x, pm_integer_class) ||
          R_altrep_inherits(x, pm_complex_class)))
        Py_RETURN_NONE;
    pm_view *view = pm_view_of(x);
    return Py_BuildValue("(ONii)", view->owner, PyLong_FromVoidPtr(view->data),
                         pm_is_materialised(x), view->shared_writes);
}

/* read_address(address) -> address of the vector's data for reading, without asking an
 * ALTREP vector for a writable pointer (which would materialise ours). */
static PyObject *py_read_address(PyObject *self, PyObject *arg)
{
    (void) self;
    SEXP x = (SEXP) PyLong_AsVoidPtr(arg);
    if (PyErr_Occurred())
        return NULL;
    return PyLong_FromVoidPtr((void *) DATAPTR_RO(x));
}

/* ---- R -> Python calls ------------------------------------------------------------ */

static SEXP pm_call_python(SEXP args)
{
    args = CDR(args);                       /* skip the routine itself */
    SEXP handle = CAR(args);
    args = CDR(args);
    PyObject *callable = (PyObject *) R_ExternalPtrAddr(handle);
    if (callable == NULL)
        Rf_error("this Python function was released");
    int failed = 0;
    SEXP out = R_NilValue;
    PyGILState_STATE gil = PyGILState_Ensure();
    R_xlen_t n = Rf_xlength(args);
    PyObject *addresses = PyTuple_New(n);
    PyObject *names = PyTuple_New(n);
    PyObject *result = NULL;
    if (addresses != NULL && names != NULL) {
        R_xlen_t i = 0;
        for (SEXP cell = args; cell != R_NilValue; cell = CDR(cell), i++) {
            PyTuple_SET_ITEM(addresses, i, PyLong_FromVoidPtr(CAR(cell)));
            SEXP tag = TAG(cell);
            PyObject *name = tag == R_NilValue ? Py_NewRef(Py_None)
                : PyUnicode_FromString(Rf_translateCharUTF8(PRINTNAME(tag)));
            PyTuple_SET_ITEM(names, i, name);
        }
        result = PyObject_CallFunctionObjArgs(pm_dispatcher, callable, addresses, names,
                                              NULL);
    }
    Py_XDECREF(addresses);
    Py_XDECREF(names);
    if (result == NULL) {
        /* The dispatcher itself failed (it normally turns errors into strings). */
        PyErr_Clear();
        snprintf(pm_error_message, sizeof pm_error_message,
                 "polymagic could not call the Python function");
        failed = 1;
    } else if (PyUnicode_Check(result)) {
        const char *text = PyUnicode_AsUTF8(result);
        snprintf(pm_error_message, sizeof pm_error_message, "%s",
                 text ? text : "Python exception");
        PyErr_Clear();
        failed = 1;
    } else {
        /* (address, keepalive): protect the R value before Python lets go of it. */
        out = (SEXP) PyLong_AsVoidPtr(PyTuple_GET_ITEM(result, 0));
        PROTECT(out);
    }
    Py_XDECREF(result);
    PyGILState_Release(gil);
    if (failed)
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

/* make_function(callable) -> address of a new, PRESERVED R closure calling `callable`. */
static PyObject *py_make_function(PyObject *self, PyObject *callable)
{
    (void) self;
    Py_INCREF(callable);
    SEXP handle = PROTECT(R_MakeExternalPtr(callable, Rf_install("polymagic_python_callable"),
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
    return PyLong_FromVoidPtr(closure);
}

/* python_callable(address) -> the Python callable behind an R function we made, or None. */
static PyObject *py_python_callable(PyObject *self, PyObject *arg)
{
    (void) self;
    SEXP x = (SEXP) PyLong_AsVoidPtr(arg);
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

/* ---- reading R objects from Python ------------------------------------------------ */

/* RBuffer: a Python buffer over an R vector's memory that keeps the vector preserved. */
typedef struct {
    PyObject_HEAD
    SEXP sexp;
    void *data;
    Py_ssize_t nbytes;
} pm_rbuffer;

static void pm_rbuffer_dealloc(pm_rbuffer *self)
{
    if (self->sexp != NULL)
        R_ReleaseObject(self->sexp);
    Py_TYPE(self)->tp_free((PyObject *) self);
}

static int pm_rbuffer_getbuffer(pm_rbuffer *self, Py_buffer *view, int flags)
{
    return PyBuffer_FillInfo(view, (PyObject *) self, self->data, self->nbytes, 0, flags);
}

static PyObject *pm_rbuffer_address(pm_rbuffer *self, void *closure)
{
    (void) closure;
    return PyLong_FromVoidPtr(self->sexp);
}

static PyBufferProcs pm_rbuffer_as_buffer = {
    (getbufferproc) pm_rbuffer_getbuffer, NULL
};

static PyGetSetDef pm_rbuffer_getset[] = {
    {"address", (getter) pm_rbuffer_address, NULL, "Address of the R vector.", NULL},
    {NULL, NULL, NULL, NULL, NULL}
};

static PyTypeObject pm_rbuffer_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "_polymagic_r_altrep.RBuffer",
    .tp_doc = "The memory of an R vector, kept alive (R_PreserveObject) while referenced.",
    .tp_basicsize = sizeof(pm_rbuffer),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_dealloc = (destructor) pm_rbuffer_dealloc,
    .tp_as_buffer = &pm_rbuffer_as_buffer,
    .tp_getset = pm_rbuffer_getset,
};

static SEXP pm_sexp_arg(PyObject *arg)
{
    return (SEXP) PyLong_AsVoidPtr(arg);
}

/* buffer(address) -> RBuffer over the vector's data (read pointer: never materialises
 * our ALTREP vectors, and other ALTREP vectors expand once, as R itself would). */
static PyObject *py_buffer(PyObject *self, PyObject *arg)
{
    (void) self;
    SEXP x = pm_sexp_arg(arg);
    if (PyErr_Occurred())
        return NULL;
    size_t elt;
    switch (TYPEOF(x)) {
    case REALSXP: elt = sizeof(double); break;
    case INTSXP: case LGLSXP: elt = sizeof(int); break;
    case CPLXSXP: elt = sizeof(Rcomplex); break;
    case RAWSXP: elt = 1; break;
    default:
        PyErr_SetString(PyExc_TypeError, "not an R numeric vector");
        return NULL;
    }
    pm_rbuffer *buffer = PyObject_New(pm_rbuffer, &pm_rbuffer_type);
    if (buffer == NULL)
        return NULL;
    buffer->sexp = NULL;
    buffer->data = (void *) DATAPTR_RO(x);
    buffer->nbytes = (Py_ssize_t) (Rf_xlength(x) * elt);
    R_PreserveObject(x);
    buffer->sexp = x;
    return (PyObject *) buffer;
}

/* describe(address) -> (type, length, attributes) where attributes is None or a tuple of
 * (name, address) read straight from ATTRIB (so compact row.names stay compact). */
static PyObject *py_describe(PyObject *self, PyObject *arg)
{
    (void) self;
    SEXP x = pm_sexp_arg(arg);
    if (PyErr_Occurred())
        return NULL;
    int type = TYPEOF(x);
    Py_ssize_t length = (type == NILSXP || Rf_isVectorAtomic(x) || type == VECSXP ||
                         type == EXPRSXP) ? (Py_ssize_t) Rf_xlength(x) : -1;
    SEXP attributes = ATTRIB(x);
    if (attributes == R_NilValue)
        return Py_BuildValue("(inO)", type, length, Py_None);
    PyObject *pairs = PyList_New(0);
    if (pairs == NULL)
        return NULL;
    for (SEXP cell = attributes; cell != R_NilValue; cell = CDR(cell)) {
        SEXP tag = TAG(cell);
        const char *name = TYPEOF(tag) == SYMSXP ? CHAR(PRINTNAME(tag)) : "";
        PyObject *pair = Py_BuildValue("(sN)", name, PyLong_FromVoidPtr(CAR(cell)));
        if (pair == NULL || PyList_Append(pairs, pair) < 0) {
            Py_XDECREF(pair);
            Py_DECREF(pairs);
            return NULL;
        }
        Py_DECREF(pair);
    }
    return Py_BuildValue("(inN)", type, length, pairs);
}

static PyObject *pm_string_value(SEXP charsxp)
{
    if (charsxp == NA_STRING)
        Py_RETURN_NONE;
    return PyUnicode_FromString(Rf_translateCharUTF8(charsxp));
}

/* scalar(address) -> element 0 of an atomic vector as a Python scalar; NA -> None. */
static PyObject *py_scalar(PyObject *self, PyObject *arg)
{
    (void) self;
    SEXP x = pm_sexp_arg(arg);
    if (PyErr_Occurred())
        return NULL;
    switch (TYPEOF(x)) {
    case REALSXP: {
        double value = REAL_ELT(x, 0);
        if (R_IsNA(value))
            Py_RETURN_NONE;
        return PyFloat_FromDouble(value);
    }
    case INTSXP: {
        int value = INTEGER_ELT(x, 0);
        if (value == NA_INTEGER)
            Py_RETURN_NONE;
        return PyLong_FromLong(value);
    }
    case LGLSXP: {
        int value = LOGICAL_ELT(x, 0);
        if (value == NA_LOGICAL)
            Py_RETURN_NONE;
        return PyBool_FromLong(value);
    }
    case CPLXSXP: {
        Rcomplex value = COMPLEX_ELT(x, 0);
        if (R_IsNA(value.r) || R_IsNA(value.i))
            Py_RETURN_NONE;
        return PyComplex_FromDoubles(value.r, value.i);
    }
    case STRSXP:
        return pm_string_value(STRING_ELT(x, 0));
    case RAWSXP:
        return PyBytes_FromStringAndSize((const char *) RAW_RO(x), 1);
    default:
        PyErr_SetString(PyExc_TypeError, "not an R atomic vector");
        return NULL;
    }
}

/* strings(address) -> list of str (None for NA) of a character vector. */
static PyObject *py_strings(PyObject *self, PyObject *arg)
{
    (void) self;
    SEXP x = pm_sexp_arg(arg);
    if (PyErr_Occurred())
        return NULL;
    if (TYPEOF(x) != STRSXP) {
        PyErr_SetString(PyExc_TypeError, "not an R character vector");
        return NULL;
    }
    R_xlen_t n = Rf_xlength(x);
    PyObject *out = PyList_New(n);
    if (out == NULL)
        return NULL;
    for (R_xlen_t i = 0; i < n; i++) {
        PyObject *item = pm_string_value(STRING_ELT(x, i));
        if (item == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, i, item);
    }
    return out;
}

/* elements(address) -> tuple of the addresses of a list's elements. */
static PyObject *py_elements(PyObject *self, PyObject *arg)
{
    (void) self;
    SEXP x = pm_sexp_arg(arg);
    if (PyErr_Occurred())
        return NULL;
    if (TYPEOF(x) != VECSXP && TYPEOF(x) != EXPRSXP) {
        PyErr_SetString(PyExc_TypeError, "not an R list");
        return NULL;
    }
    R_xlen_t n = Rf_xlength(x);
    PyObject *out = PyTuple_New(n);
    if (out == NULL)
        return NULL;
    for (R_xlen_t i = 0; i < n; i++)
        PyTuple_SET_ITEM(out, i, PyLong_FromVoidPtr(VECTOR_ELT(x, i)));
    return out;
}

/* ---- building R objects from Python (every result is R_PreserveObject'ed: the caller
 * hands it to rpy2, which takes the preservation over) ----------------------------- */

static PyObject *pm_preserved(SEXP x)
{
    R_PreserveObject(x);
    return PyLong_FromVoidPtr(x);
}

static int pm_set_dims(SEXP x, PyObject *dims)
{
    if (dims == Py_None)
        return 0;
    Py_ssize_t rank = PyTuple_Size(dims);
    if (rank < 0)
        return -1;
    SEXP dim = PROTECT(Rf_allocVector(INTSXP, rank));
    for (Py_ssize_t i = 0; i < rank; i++) {
        long extent = PyLong_AsLong(PyTuple_GET_ITEM(dims, i));
        if (extent == -1 && PyErr_Occurred()) {
            UNPROTECT(1);
            return -1;
        }
        INTEGER(dim)[i] = (int) extent;
    }
    Rf_setAttrib(x, R_DimSymbol, dim);
    UNPROTECT(1);
    return 0;
}

/* wrap(kind, owner, shared_writes, dims) -> address of a new preserved ALTREP vector over
 * owner's buffer (kind: 0 real, 1 integer, 2 complex; dims: None or a tuple). */
static PyObject *py_wrap(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void) self;
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "wrap(kind, owner, shared_writes, dims)");
        return NULL;
    }
    if (!pm_classes_ready) {
        PyErr_SetString(PyExc_RuntimeError, "register_classes() was not called");
        return NULL;
    }
    long kind = PyLong_AsLong(args[0]);
    int shared = PyObject_IsTrue(args[2]);
    if (PyErr_Occurred())
        return NULL;
    Py_buffer buffer;
    int flags = PyBUF_ANY_CONTIGUOUS | (shared ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(args[1], &buffer, flags) < 0)
        return NULL;
    size_t elt = kind == 0 ? sizeof(double) : kind == 1 ? sizeof(int) : sizeof(Rcomplex);
    /* The owner stays referenced, so its memory outlives the released Py_buffer. */
    void *data = buffer.buf;
    R_xlen_t length = (R_xlen_t) (buffer.len / (Py_ssize_t) elt);
    PyBuffer_Release(&buffer);
    R_altrep_class_t cls = kind == 0 ? pm_real_class
                         : kind == 1 ? pm_integer_class : pm_complex_class;
    SEXP vector = PROTECT(pm_new_view(cls, data, length, Py_NewRef(args[1]), shared));
    if (pm_set_dims(vector, args[3]) < 0) {
        UNPROTECT(1);
        return NULL;
    }
    UNPROTECT(1);
    return pm_preserved(vector);
}

/* alloc(type, length, dims) -> address of a new preserved ordinary R vector. */
static PyObject *py_alloc(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void) self;
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "alloc(type, length, dims)");
        return NULL;
    }
    int type = (int) PyLong_AsLong(args[0]);
    Py_ssize_t length = PyLong_AsSsize_t(args[1]);
    if (PyErr_Occurred())
        return NULL;
    SEXP vector = PROTECT(Rf_allocVector(type, (R_xlen_t) length));
    if (pm_set_dims(vector, args[2]) < 0) {
        UNPROTECT(1);
        return NULL;
    }
    UNPROTECT(1);
    return pm_preserved(vector);
}

/* scalar_to_r(value) -> preserved length-1 vector for float/int(int32 range)/bool/complex/
 * str; raises TypeError for anything else. */
static PyObject *py_scalar_to_r(PyObject *self, PyObject *value)
{
    (void) self;
    SEXP out;
    if (PyBool_Check(value)) {
        out = Rf_ScalarLogical(value == Py_True);
    } else if (PyFloat_Check(value)) {
        out = Rf_ScalarReal(PyFloat_AS_DOUBLE(value));
    } else if (PyLong_Check(value)) {
        int overflow = 0;
        long long v = PyLong_AsLongLongAndOverflow(value, &overflow);
        if (v == -1 && PyErr_Occurred())
            return NULL;
        if (overflow == 0 && v > INT_MIN && v <= INT_MAX)
            out = Rf_ScalarInteger((int) v);
        else
            out = Rf_ScalarReal(PyLong_AsDouble(value));
        if (PyErr_Occurred())
            return NULL;
    } else if (PyComplex_Check(value)) {
        Rcomplex c;
        c.r = PyComplex_RealAsDouble(value);
        c.i = PyComplex_ImagAsDouble(value);
        out = PROTECT(Rf_allocVector(CPLXSXP, 1));
        COMPLEX(out)[0] = c;
        UNPROTECT(1);
    } else if (PyUnicode_Check(value)) {
        Py_ssize_t size;
        const char *text = PyUnicode_AsUTF8AndSize(value, &size);
        if (text == NULL)
            return NULL;
        out = PROTECT(Rf_allocVector(STRSXP, 1));
        SET_STRING_ELT(out, 0, Rf_mkCharLenCE(text, (int) size, CE_UTF8));
        UNPROTECT(1);
    } else {
        PyErr_SetString(PyExc_TypeError, "not a Python scalar");
        return NULL;
    }
    return pm_preserved(out);
}

/* make_strings(sequence of str or None) -> preserved character vector (None -> NA). */
static PyObject *py_make_strings(PyObject *self, PyObject *items)
{
    (void) self;
    PyObject *fast = PySequence_Fast(items, "make_strings needs a sequence");
    if (fast == NULL)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    SEXP out = PROTECT(Rf_allocVector(STRSXP, n));
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(fast, i);
        if (item == Py_None) {
            SET_STRING_ELT(out, i, NA_STRING);
            continue;
        }
        Py_ssize_t size;
        const char *text = PyUnicode_Check(item) ? PyUnicode_AsUTF8AndSize(item, &size)
                                                 : NULL;
        if (text == NULL) {
            if (!PyErr_Occurred())
                PyErr_Format(PyExc_TypeError, "item %zd is %.100s, not str or None", i,
                             Py_TYPE(item)->tp_name);
            UNPROTECT(1);
            Py_DECREF(fast);
            return NULL;
        }
        SET_STRING_ELT(out, i, Rf_mkCharLenCE(text, (int) size, CE_UTF8));
    }
    Py_DECREF(fast);
    UNPROTECT(1);
    return pm_preserved(out);
}

/* make_list(addresses) -> preserved R list whose elements are the given (alive) objects. */
static PyObject *py_make_list(PyObject *self, PyObject *addresses)
{
    (void) self;
    PyObject *fast = PySequence_Fast(addresses, "make_list needs a sequence");
    if (fast == NULL)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    SEXP out = PROTECT(Rf_allocVector(VECSXP, n));
    for (Py_ssize_t i = 0; i < n; i++) {
        SEXP item = pm_sexp_arg(PySequence_Fast_GET_ITEM(fast, i));
        if (PyErr_Occurred()) {
            UNPROTECT(1);
            Py_DECREF(fast);
            return NULL;
        }
        SET_VECTOR_ELT(out, i, item);
    }
    Py_DECREF(fast);
    UNPROTECT(1);
    return pm_preserved(out);
}

/* set_attr(address, name, value address): Rf_setAttrib (row.names accepted compact). */
static PyObject *py_set_attr(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void) self;
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "set_attr(address, name, value)");
        return NULL;
    }
    SEXP x = pm_sexp_arg(args[0]);
    const char *name = PyUnicode_AsUTF8(args[1]);
    SEXP value = pm_sexp_arg(args[2]);
    if (PyErr_Occurred() || name == NULL)
        return NULL;
    Rf_setAttrib(x, Rf_install(name), value);
    Py_RETURN_NONE;
}

static PyMethodDef pm_methods[] = {
    {"register_classes", py_register_classes, METH_NOARGS, "Register the ALTREP classes."},
    {"wrap", (PyCFunction) (void (*)(void)) py_wrap, METH_FASTCALL,
     "wrap(kind, owner, shared_writes, dims) -> preserved ALTREP vector address"},
    {"alloc", (PyCFunction) (void (*)(void)) py_alloc, METH_FASTCALL,
     "alloc(type, length, dims) -> preserved vector address"},
    {"set_attr", (PyCFunction) (void (*)(void)) py_set_attr, METH_FASTCALL,
     "set_attr(address, name, value address)"},
    {"buffer", py_buffer, METH_O, "RBuffer over an R vector's memory."},
    {"describe", py_describe, METH_O, "(type, length, attributes or None)."},
    {"scalar", py_scalar, METH_O, "Element 0 of an atomic vector (NA -> None)."},
    {"strings", py_strings, METH_O, "A character vector as a list (NA -> None)."},
    {"elements", py_elements, METH_O, "Addresses of a list's elements."},
    {"scalar_to_r", py_scalar_to_r, METH_O, "Preserved length-1 vector of a scalar."},
    {"make_strings", py_make_strings, METH_O, "Preserved character vector."},
    {"make_list", py_make_list, METH_O, "Preserved list of the given objects."},
    {"release", py_release, METH_O, "R_ReleaseObject(address)."},
    {"view_info", py_view_info, METH_O,
     "(owner, data address, materialised, shared_writes) or None."},
    {"read_address", py_read_address, METH_O, "DATAPTR_RO(address) as an int."},
    {"set_dispatcher", py_set_dispatcher, METH_O, "Set the Python callback runner."},
    {"make_function", py_make_function, METH_O,
     "make_function(callable) -> preserved address of an R closure calling it."},
    {"python_callable", py_python_callable, METH_O,
     "The Python callable behind an R closure made by make_function, or None."},
    {NULL, NULL, 0, NULL}
};

static struct PyModuleDef pm_module = {
    PyModuleDef_HEAD_INIT, "_polymagic_r_altrep",
    "ALTREP vectors over Python buffers, and R closures calling Python.", -1, pm_methods,
    NULL, NULL, NULL, NULL
};

PyMODINIT_FUNC PyInit__polymagic_r_altrep(void)
{
    if (PyType_Ready(&pm_rbuffer_type) < 0)
        return NULL;
    PyObject *module = PyModule_Create(&pm_module);
    if (module == NULL)
        return NULL;
    if (PyModule_AddObjectRef(module, "RBuffer", (PyObject *) &pm_rbuffer_type) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
