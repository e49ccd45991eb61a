/* R ALTREP vectors whose data pointer IS a Python buffer.
 *
 * Three ALTREP classes (real, integer, complex) share one design:
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
 */
#include "r_shim.h"

#include <string.h>

typedef struct {
    void *data;
    R_xlen_t length;
    PyObject *owner;
    int shared_writes;
} pm_view;

static R_altrep_class_t pm_real_class, pm_integer_class, pm_complex_class;
static int pm_classes_ready = 0;

int pm_is_view(SEXP x)
{
    return pm_classes_ready && ALTREP(x) &&
        (R_altrep_inherits(x, pm_real_class) || R_altrep_inherits(x, pm_integer_class) ||
         R_altrep_inherits(x, pm_complex_class));
}

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

/* ---- ALTREP methods (called by R) ---------------------------------------------------- */

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

/* A new view of `data` (R context: may unwind). Everything that can fail comes first;
 * the owner is referenced last, so an R error leaves no reference behind. */
static SEXP pm_new_view(R_altrep_class_t cls, void *data, R_xlen_t length,
                        PyObject *owner, int shared_writes)
{
    SEXP handle = PROTECT(R_MakeExternalPtr(NULL, R_NilValue, R_NilValue));
    R_RegisterCFinalizerEx(handle, pm_release_owner, FALSE);
    SEXP vector = PROTECT(R_new_altrep(cls, handle, R_NilValue));
    pm_view *view = (pm_view *) malloc(sizeof(pm_view));
    if (view == NULL)
        Rf_error("polymagic: out of memory for a view");
    view->data = data;
    view->length = length;
    view->owner = owner;
    view->shared_writes = shared_writes;
    PyGILState_STATE gil = PyGILState_Ensure();
    Py_INCREF(owner);
    PyGILState_Release(gil);
    R_SetExternalPtrAddr(handle, view);
    UNPROTECT(2);
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

static void pm_register_classes_body(void *unused)
{
    (void) unused;
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

static PyObject *py_register_classes(PyObject *self, PyObject *args)
{
    (void) self; (void) args;
    if (!pm_classes_ready &&
        !pm_guard("register polymagic's ALTREP classes", pm_register_classes_body, NULL))
        return NULL;
    Py_RETURN_NONE;
}

typedef struct {
    R_altrep_class_t cls;
    void *data;
    R_xlen_t length;
    PyObject *owner;
    int shared_writes;
    pm_dims dims;
    SEXP result;
} pm_wrap_request;

static void pm_wrap_body(void *data)
{
    pm_wrap_request *request = (pm_wrap_request *) data;
    SEXP vector = PROTECT(pm_new_view(request->cls, request->data, request->length,
                                      request->owner, request->shared_writes));
    pm_set_dims(vector, &request->dims);
    R_PreserveObject(vector);
    UNPROTECT(1);
    request->result = vector;
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
    pm_wrap_request request;
    long kind = PyLong_AsLong(args[0]);
    request.shared_writes = PyObject_IsTrue(args[2]);
    if (PyErr_Occurred() || pm_read_dims(args[3], &request.dims) < 0)
        return NULL;
    Py_buffer buffer;
    int flags = PyBUF_ANY_CONTIGUOUS | (request.shared_writes ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(args[1], &buffer, flags) < 0)
        return NULL;
    size_t elt = kind == 0 ? sizeof(double) : kind == 1 ? sizeof(int) : sizeof(Rcomplex);
    /* The view references the owner, so its memory outlives the released Py_buffer. */
    request.data = buffer.buf;
    request.length = (R_xlen_t) (buffer.len / (Py_ssize_t) elt);
    PyBuffer_Release(&buffer);
    request.cls = kind == 0 ? pm_real_class
                : kind == 1 ? pm_integer_class : pm_complex_class;
    request.owner = args[1];
    if (!pm_guard("make a view of this array", pm_wrap_body, &request))
        return NULL;
    return PyLong_FromVoidPtr(request.result);
}

/* view_info(address) -> None when the vector is not ours, else
 * (owner, buffer address, materialised, shared_writes). */
static PyObject *py_view_info(PyObject *self, PyObject *arg)
{
    (void) self;
    SEXP x = pm_sexp_arg(arg);
    if (PyErr_Occurred())
        return NULL;
    if (!pm_is_view(x))
        Py_RETURN_NONE;
    pm_view *view = pm_view_of(x);
    return Py_BuildValue("(ONii)", view->owner, PyLong_FromVoidPtr(view->data),
                         pm_is_materialised(x), view->shared_writes);
}

PyMethodDef pm_view_methods[] = {
    {"register_classes", py_register_classes, METH_NOARGS, "Register the ALTREP classes."},
    {"wrap", (PyCFunction) (void (*)(void)) py_wrap, METH_FASTCALL,
     "wrap(kind, owner, shared_writes, dims) -> preserved ALTREP vector address"},
    {"view_info", py_view_info, METH_O,
     "(owner, data address, materialised, shared_writes) or None."},
    {NULL, NULL, 0, NULL}
};
