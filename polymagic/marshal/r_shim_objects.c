/* Reading R objects from Python, and building them from Python values.
 *
 * Readers run without a guard when R cannot fail: an ordinary vector's type, length,
 * attributes and elements are plain memory reads. Another package's ALTREP vector (a
 * compact 1:n, a deferred as.character(), ...) runs R code to answer, which may
 * allocate and fail, and so does translating a string that is not UTF-8 or ASCII:
 * those run inside pm_guard. Builders always allocate, so they always run inside it,
 * after every Python value has been read.
 */
#include "r_shim.h"

#include <limits.h>
#include <string.h>

/* R runs no code of its own to read `x`: not an ALTREP vector, or one of ours. */
int pm_plain(SEXP x)
{
    return !ALTREP(x) || pm_is_view(x);
}

/* ---- RBuffer: a Python buffer over an R vector's memory ---------------------------- */

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
    .tp_name = "_polymagic_r_shim.RBuffer",
    .tp_doc = "The memory of an R vector, kept alive (R_PreserveObject) while referenced.",
    .tp_basicsize = sizeof(pm_rbuffer),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_dealloc = (destructor) pm_rbuffer_dealloc,
    .tp_as_buffer = &pm_rbuffer_as_buffer,
    .tp_getset = pm_rbuffer_getset,
};

int pm_add_object_types(PyObject *module)
{
    if (PyType_Ready(&pm_rbuffer_type) < 0)
        return -1;
    return PyModule_AddObjectRef(module, "RBuffer", (PyObject *) &pm_rbuffer_type);
}

/* ---- reading ------------------------------------------------------------------------ */

typedef struct {
    SEXP x;
    const void *data;
} pm_data_request;

static void pm_read_pointer_body(void *data)
{
    pm_data_request *request = (pm_data_request *) data;
    request->data = DATAPTR_RO(request->x);
}

static void pm_preserve_body(void *data)
{
    R_PreserveObject(((pm_data_request *) data)->x);
}

/* The vector's data for reading: never materialises our ALTREP vectors; other ALTREP
 * vectors expand once, as R itself would (in a guard: expanding allocates). */
static int pm_read_pointer(SEXP x, const void **data)
{
    pm_data_request request = {x, NULL};
    if (pm_plain(x))
        request.data = DATAPTR_RO(x);
    else if (!pm_guard("read this vector's data", pm_read_pointer_body, &request))
        return -1;
    *data = request.data;
    return 0;
}

/* buffer(address) -> RBuffer over the vector's data. */
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
    const void *data;
    if (pm_read_pointer(x, &data) < 0)
        return NULL;
    pm_rbuffer *buffer = PyObject_New(pm_rbuffer, &pm_rbuffer_type);
    if (buffer == NULL)
        return NULL;
    buffer->sexp = NULL;
    buffer->data = (void *) data;
    buffer->nbytes = (Py_ssize_t) (Rf_xlength(x) * elt);
    pm_data_request request = {x, NULL};
    if (!pm_guard("keep this vector alive", pm_preserve_body, &request)) {
        Py_DECREF(buffer);
        return NULL;
    }
    buffer->sexp = x;
    return (PyObject *) buffer;
}

typedef struct {
    SEXP x;
    R_xlen_t length;
} pm_length_request;

static void pm_length_body(void *data)
{
    pm_length_request *request = (pm_length_request *) data;
    request->length = Rf_xlength(request->x);
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
    Py_ssize_t length = -1;
    if (type == NILSXP || Rf_isVectorAtomic(x) || type == VECSXP || type == EXPRSXP) {
        pm_length_request request = {x, 0};
        if (pm_plain(x))
            request.length = Rf_xlength(x);
        else if (!pm_guard("read this vector's length", pm_length_body, &request))
            return NULL;
        length = (Py_ssize_t) request.length;
    }
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

/* An R string's bytes are UTF-8 as they are: marked UTF-8, or plain ASCII. */
static int pm_utf8_as_is(SEXP charsxp)
{
    if (Rf_getCharCE(charsxp) == CE_UTF8)
        return 1;
    const unsigned char *text = (const unsigned char *) CHAR(charsxp);
    for (int i = 0, n = LENGTH(charsxp); i < n; i++)
        if (text[i] >= 0x80)
            return 0;
    return 1;
}

typedef struct {
    SEXP x;                /* STRSXP */
    R_xlen_t index;
    const char *text;      /* UTF-8, or NULL for NA */
} pm_string_request;

static void pm_string_body(void *data)
{
    pm_string_request *request = (pm_string_request *) data;
    SEXP charsxp = STRING_ELT(request->x, request->index);
    request->text = charsxp == NA_STRING ? NULL : Rf_translateCharUTF8(charsxp);
}

/* Element `index` of a character vector as a Python str (None for NA). R_alloc'd
 * translations are freed when the caller returns to R's top level. */
static PyObject *pm_string_at(SEXP x, R_xlen_t index)
{
    pm_string_request request = {x, index, NULL};
    SEXP charsxp = ALTREP(x) ? NULL : STRING_ELT(x, index);
    if (charsxp != NULL && (charsxp == NA_STRING || pm_utf8_as_is(charsxp)))
        request.text = charsxp == NA_STRING ? NULL : CHAR(charsxp);
    else {
        const void *vmax = vmaxget();
        if (!pm_guard("read this string", pm_string_body, &request))
            return NULL;
        PyObject *text = request.text == NULL ? Py_NewRef(Py_None)
                                              : PyUnicode_FromString(request.text);
        vmaxset(vmax);
        return text;
    }
    if (request.text == NULL)
        Py_RETURN_NONE;
    return PyUnicode_FromString(request.text);
}

typedef struct {
    SEXP x;
    union { double real; int integer; Rcomplex complex; } value;
} pm_element_request;

static void pm_element_body(void *data)
{
    pm_element_request *request = (pm_element_request *) data;
    switch (TYPEOF(request->x)) {
    case REALSXP: request->value.real = REAL_ELT(request->x, 0); break;
    case INTSXP: request->value.integer = INTEGER_ELT(request->x, 0); break;
    case LGLSXP: request->value.integer = LOGICAL_ELT(request->x, 0); break;
    case CPLXSXP: request->value.complex = COMPLEX_ELT(request->x, 0); break;
    default: break;
    }
}

/* Element 0 of an atomic vector (not raw) as a Python scalar; NA -> None. */
PyObject *pm_scalar_to_python(SEXP x)
{
    int type = TYPEOF(x);
    if (type == STRSXP)
        return pm_string_at(x, 0);
    pm_element_request request = {x, {0}};
    if (pm_plain(x))
        pm_element_body(&request);
    else if (!pm_guard("read this vector's element", pm_element_body, &request))
        return NULL;
    switch (type) {
    case REALSXP:
        if (R_IsNA(request.value.real))
            Py_RETURN_NONE;
        return PyFloat_FromDouble(request.value.real);
    case INTSXP:
        if (request.value.integer == NA_INTEGER)
            Py_RETURN_NONE;
        return PyLong_FromLong(request.value.integer);
    case LGLSXP:
        if (request.value.integer == NA_LOGICAL)
            Py_RETURN_NONE;
        return PyBool_FromLong(request.value.integer);
    default:
        if (R_IsNA(request.value.complex.r) || R_IsNA(request.value.complex.i))
            Py_RETURN_NONE;
        return PyComplex_FromDoubles(request.value.complex.r, request.value.complex.i);
    }
}

/* scalar(address) -> element 0 of an atomic vector as a Python scalar; NA -> None. */
static PyObject *py_scalar(PyObject *self, PyObject *arg)
{
    (void) self;
    SEXP x = pm_sexp_arg(arg);
    if (PyErr_Occurred())
        return NULL;
    int type = TYPEOF(x);
    if (type == RAWSXP) {
        const void *data;
        if (pm_read_pointer(x, &data) < 0)
            return NULL;
        return PyBytes_FromStringAndSize((const char *) data, 1);
    }
    if (type != REALSXP && type != INTSXP && type != LGLSXP && type != CPLXSXP &&
        type != STRSXP) {
        PyErr_SetString(PyExc_TypeError, "not an R atomic vector");
        return NULL;
    }
    return pm_scalar_to_python(x);
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
    pm_length_request length = {x, 0};
    if (!ALTREP(x))
        length.length = Rf_xlength(x);
    else if (!pm_guard("read this vector's length", pm_length_body, &length))
        return NULL;
    PyObject *out = PyList_New(length.length);
    if (out == NULL)
        return NULL;
    for (R_xlen_t i = 0; i < length.length; i++) {
        PyObject *item = pm_string_at(x, i);
        if (item == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, i, item);
    }
    return out;
}

typedef struct {
    SEXP x;
    PyObject *out;         /* tuple filled here; freed by the caller on failure */
} pm_elements_request;

static void pm_elements_body(void *data)
{
    pm_elements_request *request = (pm_elements_request *) data;
    for (R_xlen_t i = 0, n = PyTuple_GET_SIZE(request->out); i < n; i++) {
        PyObject *address = PyLong_FromVoidPtr(VECTOR_ELT(request->x, i));
        if (address == NULL)
            return;
        PyTuple_SET_ITEM(request->out, i, address);
    }
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
    pm_length_request length = {x, 0};
    if (!ALTREP(x))
        length.length = Rf_xlength(x);
    else if (!pm_guard("read this list's length", pm_length_body, &length))
        return NULL;
    pm_elements_request request = {x, PyTuple_New(length.length)};
    if (request.out == NULL)
        return NULL;
    if (!ALTREP(x))
        pm_elements_body(&request);
    else if (!pm_guard("read this list's elements", pm_elements_body, &request)) {
        Py_DECREF(request.out);
        return NULL;
    }
    if (PyErr_Occurred()) {
        Py_DECREF(request.out);
        return NULL;
    }
    return request.out;
}

/* read_address(address) -> address of the vector's data for reading, without asking an
 * ALTREP vector for a writable pointer (which would materialise ours). */
static PyObject *py_read_address(PyObject *self, PyObject *arg)
{
    (void) self;
    SEXP x = pm_sexp_arg(arg);
    if (PyErr_Occurred())
        return NULL;
    const void *data;
    if (pm_read_pointer(x, &data) < 0)
        return NULL;
    return PyLong_FromVoidPtr((void *) data);
}

/* ---- building (every result is R_PreserveObject'ed: the caller hands it to rpy2,
 * which takes the preservation over) ------------------------------------------------ */

int pm_read_dims(PyObject *dims, pm_dims *out)
{
    out->rank = -1;
    if (dims == Py_None)
        return 0;
    Py_ssize_t rank = PyTuple_Size(dims);
    if (rank < 0)
        return -1;
    if (rank > PM_MAX_RANK) {
        pm_conversion_error("an array of %zd dimensions cannot cross into R (at most %d)",
                            rank, PM_MAX_RANK);
        return -1;
    }
    for (Py_ssize_t i = 0; i < rank; i++) {
        long long extent = PyLong_AsLongLong(PyTuple_GET_ITEM(dims, i));
        if (extent == -1 && PyErr_Occurred())
            return -1;
        if (extent < 0 || extent > INT_MAX) {
            pm_conversion_error("dimension %zd has extent %lld; R's dimensions are at most "
                                "2**31-1", i, extent);
            return -1;
        }
        out->extents[i] = (int) extent;
    }
    out->rank = (int) rank;
    return 0;
}

void pm_set_dims(SEXP x, const pm_dims *dims)
{
    if (dims->rank < 0)
        return;
    SEXP dim = PROTECT(Rf_allocVector(INTSXP, dims->rank));
    memcpy(INTEGER(dim), dims->extents, (size_t) dims->rank * sizeof(int));
    Rf_setAttrib(x, R_DimSymbol, dim);
    UNPROTECT(1);
}

typedef struct {
    int type;
    R_xlen_t length;
    pm_dims dims;
    SEXP result;
} pm_alloc_request;

static void pm_alloc_body(void *data)
{
    pm_alloc_request *request = (pm_alloc_request *) data;
    SEXP vector = PROTECT(Rf_allocVector(request->type, request->length));
    pm_set_dims(vector, &request->dims);
    R_PreserveObject(vector);
    UNPROTECT(1);
    request->result = vector;
}

/* alloc(type, length, dims) -> address of a new preserved ordinary R vector. */
static PyObject *py_alloc(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void) self;
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "alloc(type, length, dims)");
        return NULL;
    }
    pm_alloc_request request;
    request.type = (int) PyLong_AsLong(args[0]);
    request.length = (R_xlen_t) PyLong_AsSsize_t(args[1]);
    if (PyErr_Occurred() || pm_read_dims(args[2], &request.dims) < 0)
        return NULL;
    if (!pm_guard("allocate this vector", pm_alloc_body, &request))
        return NULL;
    return PyLong_FromVoidPtr(request.result);
}

/* A Python str as UTF-8 that R can hold: no NUL, at most 2**31-1 bytes. NULL with a
 * ConversionError (naming `item` when it is not -1) otherwise. */
static const char *pm_r_string(PyObject *text, Py_ssize_t item, int *size)
{
    Py_ssize_t length;
    const char *utf8 = PyUnicode_AsUTF8AndSize(text, &length);
    if (utf8 == NULL) {
        if (PyErr_ExceptionMatches(PyExc_UnicodeEncodeError)) {
            PyObject *type, *value, *traceback;
            PyErr_Fetch(&type, &value, &traceback);
            pm_conversion_error("cannot convert a Python str to R: it is not valid "
                                "text (%S); R strings are UTF-8", value);
            Py_XDECREF(type);
            Py_XDECREF(value);
            Py_XDECREF(traceback);
        }
        return NULL;
    }
    const char *nul = memchr(utf8, 0, (size_t) length);
    if (nul != NULL) {
        if (item < 0)
            pm_conversion_error("cannot convert a Python str containing NUL (\"\\0\", "
                                "at byte %zd) to R: R strings cannot hold NUL",
                                (Py_ssize_t) (nul - utf8));
        else
            pm_conversion_error("cannot convert item %zd, a Python str containing NUL "
                                "(\"\\0\", at byte %zd), to R: R strings cannot hold NUL",
                                item, (Py_ssize_t) (nul - utf8));
        return NULL;
    }
    if (length > INT_MAX) {
        pm_conversion_error("cannot convert a Python str of %zd bytes to R: R strings "
                            "hold at most 2**31-1 bytes", length);
        return NULL;
    }
    *size = (int) length;
    return utf8;
}

SEXP pm_new_scalar(const pm_scalar_value *scalar)
{
    SEXP out;
    switch (scalar->type) {
    case LGLSXP: return Rf_ScalarLogical(scalar->value.integer);
    case INTSXP: return Rf_ScalarInteger(scalar->value.integer);
    case REALSXP: return Rf_ScalarReal(scalar->value.real);
    case CPLXSXP:
        out = Rf_allocVector(CPLXSXP, 1);
        COMPLEX(out)[0] = scalar->value.complex;
        return out;
    default:
        out = PROTECT(Rf_allocVector(STRSXP, 1));
        SET_STRING_ELT(out, 0, Rf_mkCharLenCE(scalar->text, scalar->size, CE_UTF8));
        UNPROTECT(1);
        return out;
    }
}

int pm_read_scalar(PyObject *value, pm_scalar_value *out)
{
    if (PyBool_Check(value)) {
        out->type = LGLSXP;
        out->value.integer = value == Py_True;
    } else if (PyFloat_Check(value)) {
        out->type = REALSXP;
        out->value.real = PyFloat_AS_DOUBLE(value);
    } else if (PyLong_Check(value)) {
        int overflow = 0;
        long long v = PyLong_AsLongLongAndOverflow(value, &overflow);
        if (v == -1 && PyErr_Occurred())
            return -1;
        if (overflow == 0 && v > INT_MIN && v <= INT_MAX) {
            out->type = INTSXP;
            out->value.integer = (int) v;
        } else {
            out->type = REALSXP;
            out->value.real = PyLong_AsDouble(value);
            if (PyErr_Occurred())
                return -1;
        }
    } else if (PyComplex_Check(value)) {
        out->type = CPLXSXP;
        out->value.complex.r = PyComplex_RealAsDouble(value);
        out->value.complex.i = PyComplex_ImagAsDouble(value);
    } else if (PyUnicode_Check(value)) {
        out->type = STRSXP;
        out->text = pm_r_string(value, -1, &out->size);
        if (out->text == NULL)
            return -1;
    } else
        return 0;
    return 1;
}

typedef struct {
    pm_scalar_value scalar;
    SEXP result;
} pm_scalar_request;

static void pm_scalar_body(void *data)
{
    pm_scalar_request *request = (pm_scalar_request *) data;
    SEXP out = PROTECT(pm_new_scalar(&request->scalar));
    R_PreserveObject(out);
    UNPROTECT(1);
    request->result = out;
}

/* scalar_to_r(value) -> preserved length-1 vector for float/int(int32 range)/bool/complex/
 * str; raises TypeError for anything else. */
static PyObject *py_scalar_to_r(PyObject *self, PyObject *value)
{
    (void) self;
    pm_scalar_request request;
    int read = pm_read_scalar(value, &request.scalar);
    if (read < 0)
        return NULL;
    if (read == 0) {
        PyErr_SetString(PyExc_TypeError, "not a Python scalar");
        return NULL;
    }
    if (!pm_guard("allocate a vector for this value", pm_scalar_body, &request))
        return NULL;
    return PyLong_FromVoidPtr(request.result);
}

typedef struct {
    Py_ssize_t count;
    const char **texts;    /* NULL entry: NA */
    int *sizes;
    SEXP result;
} pm_strings_request;

static void pm_strings_body(void *data)
{
    pm_strings_request *request = (pm_strings_request *) data;
    SEXP out = PROTECT(Rf_allocVector(STRSXP, request->count));
    for (Py_ssize_t i = 0; i < request->count; i++)
        SET_STRING_ELT(out, i, request->texts[i] == NULL ? NA_STRING
                       : Rf_mkCharLenCE(request->texts[i], request->sizes[i], CE_UTF8));
    R_PreserveObject(out);
    UNPROTECT(1);
    request->result = out;
}

/* make_strings(sequence of str or None) -> preserved character vector (None -> NA). */
static PyObject *py_make_strings(PyObject *self, PyObject *items)
{
    (void) self;
    PyObject *fast = PySequence_Fast(items, "make_strings needs a sequence");
    if (fast == NULL)
        return NULL;
    pm_strings_request request = {PySequence_Fast_GET_SIZE(fast), NULL, NULL, NULL};
    PyObject *result = NULL;
    request.texts = PyMem_Malloc(sizeof(char *) * (size_t) (request.count + 1));
    request.sizes = PyMem_Malloc(sizeof(int) * (size_t) (request.count + 1));
    if (request.texts == NULL || request.sizes == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    /* The UTF-8 texts live in the str objects, which `fast` keeps alive. */
    for (Py_ssize_t i = 0; i < request.count; i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(fast, i);
        request.texts[i] = NULL;
        if (item == Py_None)
            continue;
        if (!PyUnicode_Check(item)) {
            PyErr_Format(PyExc_TypeError, "item %zd is %.100s, not str or None", i,
                         Py_TYPE(item)->tp_name);
            goto done;
        }
        request.texts[i] = pm_r_string(item, i, &request.sizes[i]);
        if (request.texts[i] == NULL)
            goto done;
    }
    if (pm_guard("allocate a character vector", pm_strings_body, &request))
        result = PyLong_FromVoidPtr(request.result);
done:
    PyMem_Free(request.texts);
    PyMem_Free(request.sizes);
    Py_DECREF(fast);
    return result;
}

typedef struct {
    Py_ssize_t count;
    SEXP *items;
    SEXP result;
} pm_list_request;

static void pm_list_body(void *data)
{
    pm_list_request *request = (pm_list_request *) data;
    SEXP out = PROTECT(Rf_allocVector(VECSXP, request->count));
    for (Py_ssize_t i = 0; i < request->count; i++)
        SET_VECTOR_ELT(out, i, request->items[i]);
    R_PreserveObject(out);
    UNPROTECT(1);
    request->result = out;
}

/* make_list(addresses) -> preserved R list whose elements are the given (alive) objects. */
static PyObject *py_make_list(PyObject *self, PyObject *addresses)
{
    (void) self;
    PyObject *fast = PySequence_Fast(addresses, "make_list needs a sequence");
    if (fast == NULL)
        return NULL;
    pm_list_request request = {PySequence_Fast_GET_SIZE(fast), NULL, NULL};
    PyObject *result = NULL;
    request.items = PyMem_Malloc(sizeof(SEXP) * (size_t) (request.count + 1));
    if (request.items == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < request.count; i++) {
        request.items[i] = pm_sexp_arg(PySequence_Fast_GET_ITEM(fast, i));
        if (PyErr_Occurred())
            goto done;
    }
    if (pm_guard("allocate a list", pm_list_body, &request))
        result = PyLong_FromVoidPtr(request.result);
done:
    PyMem_Free(request.items);
    Py_DECREF(fast);
    return result;
}

typedef struct {
    SEXP x;
    const char *name;
    SEXP value;
} pm_attr_request;

static void pm_set_attr_body(void *data)
{
    pm_attr_request *request = (pm_attr_request *) data;
    Rf_setAttrib(request->x, Rf_install(request->name), request->value);
}

/* set_attr(address, name, value address): Rf_setAttrib (row.names accepted compact). */
static PyObject *py_set_attr(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void) self;
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "set_attr(address, name, value)");
        return NULL;
    }
    pm_attr_request request;
    request.x = pm_sexp_arg(args[0]);
    request.name = PyUnicode_AsUTF8(args[1]);
    request.value = pm_sexp_arg(args[2]);
    if (PyErr_Occurred() || request.name == NULL)
        return NULL;
    if (!pm_guard("set this attribute", pm_set_attr_body, &request))
        return NULL;
    Py_RETURN_NONE;
}

typedef struct {
    SEXP environment;
    const char *name;
    SEXP value;
} pm_assign_request;

static void pm_assign_body(void *data)
{
    pm_assign_request *request = (pm_assign_request *) data;
    Rf_defineVar(Rf_install(request->name), request->value, request->environment);
}

/* assign(environment address, name, value address): Rf_defineVar, which binds the
 * object itself (no duplicate, so a view stays a view). RError when R refuses (a
 * locked binding or environment). */
static PyObject *py_assign(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void) self;
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "assign(environment, name, value)");
        return NULL;
    }
    pm_assign_request request;
    int size;
    request.environment = pm_sexp_arg(args[0]);
    request.value = pm_sexp_arg(args[2]);
    if (PyErr_Occurred())
        return NULL;
    request.name = pm_r_string(args[1], -1, &size);
    if (request.name == NULL)
        return NULL;
    if (!pm_guard_r("assign this variable", pm_assign_body, &request))
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *py_release(PyObject *self, PyObject *arg)
{
    (void) self;
    SEXP x = pm_sexp_arg(arg);
    if (PyErr_Occurred())
        return NULL;
    R_ReleaseObject(x);   /* allocates nothing, cannot fail */
    Py_RETURN_NONE;
}

PyMethodDef pm_object_methods[] = {
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
    {"assign", (PyCFunction) (void (*)(void)) py_assign, METH_FASTCALL,
     "assign(environment address, name, value address): Rf_defineVar"},
    {"read_address", py_read_address, METH_O, "DATAPTR_RO(address) as an int."},
    {NULL, NULL, 0, NULL}
};
