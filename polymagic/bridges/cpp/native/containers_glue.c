/* The Python side of standard-container conversions: small C functions, compiled with
 * Python.h once (glue_errors.c says how) and linked into every cell module, that
 * native/containers.hpp (C++, compiled without Python's headers) calls to read and
 * build Python objects. Python objects travel as void*.
 *
 * Every function but pm_cv_gil_take/pm_cv_connect runs with the GIL held (the C++
 * side takes it once per conversion, since trampolines run without it). Statuses: 0
 * ok; 1 the object is not of the expected type (no Python error set); -1 a Python
 * error is set (MemoryError, an error raised by the object's own methods...). */
#include <Python.h>
#include <stdint.h>
#include "glue_runtime.h"

/* (results, conversion_error, resized_error, numpy.frombuffer): set by pm_cv_connect. */
static PyObject* pm_cv_tools = NULL;

int pm_cv_connect(uintptr_t tools) {
    PyGILState_STATE gil = PyGILState_Ensure();
    PyObject* previous = pm_cv_tools;
    Py_INCREF((PyObject*)tools);
    pm_cv_tools = (PyObject*)tools;
    Py_XDECREF(previous);
    PyGILState_Release(gil);
    return 0;
}

int pm_cv_gil_take(void) { return (int)PyGILState_Ensure(); }
void pm_cv_gil_give(int state) { PyGILState_Release((PyGILState_STATE)state); }
void pm_cv_incref(void* o) { Py_INCREF((PyObject*)o); }
void pm_cv_decref(void* o) { Py_DECREF((PyObject*)o); }
int pm_cv_is_none(void* o) { return o == Py_None; }

/* The Python error just set goes to the stash; the C++ side then throws it. */
void pm_cv_python_failed(void) { pm_py_failed(); }

/* ---- reading */

static int pm_cv_type_error(void) {
    if (PyErr_ExceptionMatches(PyExc_TypeError) || PyErr_ExceptionMatches(PyExc_ValueError)) {
        PyErr_Clear();
        return 1;
    }
    return -1;
}

/* An integer (int, NumPy integer, anything with __index__; not a float) in [low, high]:
   2 when out of range. */
int pm_cv_to_signed(void* o, long long low, long long high, long long* out) {
    PyObject* number = PyNumber_Index((PyObject*)o);
    if (number == NULL) return pm_cv_type_error();
    int overflow = 0;
    long long value = PyLong_AsLongLongAndOverflow(number, &overflow);
    Py_DECREF(number);
    if (value == -1 && PyErr_Occurred()) return -1;
    if (overflow || value < low || value > high) return 2;
    *out = value;
    return 0;
}

int pm_cv_to_unsigned(void* o, unsigned long long high, unsigned long long* out) {
    PyObject* number = PyNumber_Index((PyObject*)o);
    if (number == NULL) return pm_cv_type_error();
    int overflow = 0;
    long long as_signed = PyLong_AsLongLongAndOverflow(number, &overflow);
    unsigned long long value = 0;
    int status = 0;
    if (as_signed == -1 && !overflow && PyErr_Occurred()) status = -1;
    else if (overflow < 0 || (!overflow && as_signed < 0)) status = 2;  /* negative */
    else {
        value = PyLong_AsUnsignedLongLong(number);
        if (value == (unsigned long long)-1 && PyErr_Occurred()) {
            status = PyErr_ExceptionMatches(PyExc_OverflowError) ? 2 : -1;
            if (status == 2) PyErr_Clear();
        } else if (value > high) {
            status = 2;
        }
    }
    Py_DECREF(number);
    if (status == 0) *out = value;
    return status;
}

/* A real number: float, int, NumPy numbers, anything with __float__ or __index__. */
int pm_cv_to_double(void* o, double* out) {
    if (PyUnicode_Check((PyObject*)o) || PyBytes_Check((PyObject*)o)) return 1;
    double value = PyFloat_AsDouble((PyObject*)o);
    if (value == -1.0 && PyErr_Occurred()) {
        if (PyErr_ExceptionMatches(PyExc_OverflowError)) { PyErr_Clear(); return 2; }
        return pm_cv_type_error();
    }
    *out = value;
    return 0;
}

/* True or False (also numpy.bool_, and the ints 0 and 1, as cffi takes for bool). */
int pm_cv_to_bool(void* o, int* out) {
    PyObject* object = (PyObject*)o;
    if (PyBool_Check(object)) { *out = object == Py_True; return 0; }
    const char* name = Py_TYPE(object)->tp_name;
    if (strcmp(name, "numpy.bool") == 0 || strcmp(name, "numpy.bool_") == 0) {
        int truth = PyObject_IsTrue(object);
        if (truth < 0) return -1;
        *out = truth;
        return 0;
    }
    if (PyLong_Check(object)) {
        int overflow = 0;
        long long value = PyLong_AsLongLongAndOverflow(object, &overflow);
        if (value == -1 && PyErr_Occurred()) return -1;
        if (!overflow && (value == 0 || value == 1)) { *out = (int)value; return 0; }
        return 2;
    }
    return 1;
}

/* The bytes of a str (UTF-8, kept by the str) or of a bytes object; 2: a str that
   cannot be encoded (a lone surrogate). */
int pm_cv_to_text(void* o, const char** data, size_t* size) {
    PyObject* object = (PyObject*)o;
    Py_ssize_t length;
    if (PyUnicode_Check(object)) {
        *data = PyUnicode_AsUTF8AndSize(object, &length);
        if (*data == NULL) {
            if (!PyErr_ExceptionMatches(PyExc_UnicodeEncodeError)) return -1;
            PyErr_Clear();
            return 2;
        }
    } else if (PyBytes_Check(object)) {
        char* bytes;
        if (PyBytes_AsStringAndSize(object, &bytes, &length) < 0) return -1;
        *data = bytes;
    } else {
        return 1;
    }
    *size = (size_t)length;
    return 0;
}

static int pm_cv_is_text(PyObject* o) {
    return PyUnicode_Check(o) || PyBytes_Check(o) || PyByteArray_Check(o);
}

/* A sequence's items (a new reference: a list or tuple): lists, tuples, NumPy
   arrays, any iterable but strings, bytes, dicts and sets. */
int pm_cv_sequence(void* o, void** items, size_t* size) {
    PyObject* object = (PyObject*)o;
    if (pm_cv_is_text(object) || PyAnySet_Check(object) || PyDict_Check(object)) return 1;
    PyObject* fast = PySequence_Fast(object, "not iterable");
    if (fast == NULL) return pm_cv_type_error();
    *items = fast;
    *size = (size_t)PySequence_Fast_GET_SIZE(fast);
    return 0;
}

/* Item i of what pm_cv_sequence gave (borrowed; NULL past the end, if the object's
   own code shortened it meanwhile). */
void* pm_cv_item(void* items, size_t i) {
    PyObject* fast = (PyObject*)items;
    if ((Py_ssize_t)i >= PySequence_Fast_GET_SIZE(fast)) return NULL;
    return PySequence_Fast_GET_ITEM(fast, (Py_ssize_t)i);
}

/* A sequence of exactly `count` items (a tuple or list): 1 otherwise. */
int pm_cv_fixed(void* o, size_t count, void** items) {
    PyObject* object = (PyObject*)o;
    if (!PyTuple_Check(object) && !PyList_Check(object)) return 1;
    if ((size_t)PySequence_Fast_GET_SIZE(object) != count) return 1;
    Py_INCREF(object);
    *items = object;
    return 0;
}

/* A dict (a new reference) with the items of a dict or any mapping (an object with
   keys()); 1 for anything else (lists of pairs included). */
int pm_cv_mapping(void* o, void** dict) {
    PyObject* object = (PyObject*)o;
    if (PyDict_Check(object)) {
        Py_INCREF(object);
        *dict = object;
        return 0;
    }
    if (PyList_Check(object) || PyTuple_Check(object) || pm_cv_is_text(object)) return 1;
    int has_keys = PyObject_HasAttrString(object, "keys");
    if (!has_keys) return 1;
    PyObject* copy = PyDict_New();
    if (copy == NULL) return -1;
    if (PyDict_Merge(copy, object, 1) < 0) {
        Py_DECREF(copy);
        return pm_cv_type_error();
    }
    *dict = copy;
    return 0;
}

Py_ssize_t pm_cv_dict_size(void* dict) { return PyDict_GET_SIZE((PyObject*)dict); }

/* The next (key, value) of a dict, borrowed; 0 at the end. */
int pm_cv_dict_next(void* dict, Py_ssize_t* position, void** key, void** value) {
    PyObject *k, *v;
    if (!PyDict_Next((PyObject*)dict, position, &k, &v)) return 0;
    *key = k;
    *value = v;
    return 1;
}

/* Whether the object's buffer is a 1-D C-contiguous array of one native number type
   of this kind ('f' floating, 'i' signed, 'u' unsigned, 'b' bool) and item size. */
static int pm_cv_format_matches(const Py_buffer* view, char kind, size_t itemsize) {
    const char* format = view->format ? view->format : "B";
    if (view->ndim != 1 || (size_t)view->itemsize != itemsize) return 0;
    if (*format == '@' || *format == '=' || *format == '<') format++;
    if (format[0] == '\0' || format[1] != '\0') return 0;
    switch (format[0]) {
    case 'f': case 'd': return kind == 'f';
    case 'b': case 'h': case 'i': case 'l': case 'q': case 'n': return kind == 'i';
    case 'B': case 'H': case 'I': case 'L': case 'Q': case 'N': return kind == 'u';
    case '?': return kind == 'b';
    default: return 0;
    }
}

/* A read of the object's memory when it is such an array (a NumPy array of exactly
   that type): *view is released with pm_cv_buffer_release. 1: not such an array. */
int pm_cv_buffer(void* o, char kind, size_t itemsize, int writable, void** view,
                 void** data, size_t* size) {
    PyObject* object = (PyObject*)o;
    if (!PyObject_CheckBuffer(object) || pm_cv_is_text(object)) return 1;
    Py_buffer* buffer = (Py_buffer*)PyMem_Malloc(sizeof(Py_buffer));
    if (buffer == NULL) { PyErr_NoMemory(); return -1; }
    int flags = PyBUF_FORMAT | PyBUF_C_CONTIGUOUS | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(object, buffer, flags) < 0) {
        PyMem_Free(buffer);
        return pm_cv_type_error();
    }
    if (!pm_cv_format_matches(buffer, kind, itemsize)) {
        PyBuffer_Release(buffer);
        PyMem_Free(buffer);
        return 1;
    }
    *view = buffer;
    *data = buffer->buf;
    *size = (size_t)(buffer->len / buffer->itemsize);
    return 0;
}

void pm_cv_buffer_release(void* view) {
    PyBuffer_Release((Py_buffer*)view);
    PyMem_Free(view);
}

/* What an out-parameter may be: 1 a list, 2 a dict, 0 anything else. */
int pm_cv_target_kind(void* o) {
    if (PyList_Check((PyObject*)o)) return 1;
    if (PyDict_Check((PyObject*)o)) return 2;
    return 0;
}

/* repr(o), cut to `capacity` - 1 bytes with "..." (for paths in messages). */
void pm_cv_repr(void* o, char* out, size_t capacity) {
    PyObject* text = PyObject_Repr((PyObject*)o);
    const char* utf8 = text ? PyUnicode_AsUTF8(text) : NULL;
    if (utf8 == NULL) {
        PyErr_Clear();
        utf8 = "?";
    }
    size_t length = strlen(utf8);
    if (length >= capacity) {
        memcpy(out, utf8, capacity - 4);
        strcpy(out + capacity - 4, "...");
    } else {
        memcpy(out, utf8, length + 1);
    }
    Py_XDECREF(text);
}

/* ---- building (new references; NULL with a Python error set) */

void* pm_cv_long(long long value) { return PyLong_FromLongLong(value); }
void* pm_cv_ulong(unsigned long long value) { return PyLong_FromUnsignedLongLong(value); }
void* pm_cv_double(double value) { return PyFloat_FromDouble(value); }
void* pm_cv_bool(int value) { return PyBool_FromLong(value); }
void* pm_cv_none(void) { Py_RETURN_NONE; }
void* pm_cv_str(const char* data, size_t size) {
    return PyUnicode_DecodeUTF8(data, (Py_ssize_t)size, "surrogateescape");
}
void* pm_cv_list(size_t size) { return PyList_New((Py_ssize_t)size); }
void pm_cv_list_set(void* list, size_t i, void* item) {
    PyList_SET_ITEM((PyObject*)list, (Py_ssize_t)i, (PyObject*)item);
}
void* pm_cv_tuple(size_t size) { return PyTuple_New((Py_ssize_t)size); }
void pm_cv_tuple_set(void* tuple, size_t i, void* item) {
    PyTuple_SET_ITEM((PyObject*)tuple, (Py_ssize_t)i, (PyObject*)item);
}
void* pm_cv_dict(void) { return PyDict_New(); }
/* dict[key] = value, taking over both references; -1 with an error set. */
int pm_cv_dict_set(void* dict, void* key, void* value) {
    int status = PyDict_SetItem((PyObject*)dict, (PyObject*)key, (PyObject*)value);
    Py_DECREF((PyObject*)key);
    Py_DECREF((PyObject*)value);
    return status;
}

/* A new 1-D NumPy array (dtype `code`) holding a copy of `count` items at `data`. */
void* pm_cv_array(const void* data, size_t count, size_t itemsize, const char* code) {
    PyObject* bytes = PyByteArray_FromStringAndSize((const char*)data,
                                                    (Py_ssize_t)(count * itemsize));
    if (bytes == NULL) return NULL;
    PyObject* array = PyObject_CallFunction(PyTuple_GET_ITEM(pm_cv_tools, 3), "Os",
                                            bytes, code);
    Py_DECREF(bytes);
    return array;
}

/* ---- outcomes */

/* A result, kept in the results dict under its address until the Python wrapper
   takes it; 0 with an error set. Takes over the reference. */
uintptr_t pm_cv_keep_result(void* o) {
    PyObject* key = PyLong_FromVoidPtr(o);
    int status = key ? PyDict_SetItem(PyTuple_GET_ITEM(pm_cv_tools, 0), key,
                                      (PyObject*)o) : -1;
    Py_XDECREF(key);
    Py_DECREF((PyObject*)o);
    return status < 0 ? 0 : (uintptr_t)o;
}

/* `error` (a new reference, or NULL with an error set) is set and goes to the stash. */
static void pm_cv_raise(PyObject* error) {
    if (error != NULL) {
        PyObject* type = PyObject_Type(error);
        PyErr_SetObject(type, error);
        Py_DECREF(type);
        Py_DECREF(error);
    }
    pm_py_failed();
}

/* An argument that does not convert: the ConversionError (containers.conversion_error)
   goes to the stash, as a callback's error does, and the C++ side throws it. */
void pm_cv_argument_failed(const char* function, const char* param, const char* cpp,
                           void* value, const char* path, const char* expected,
                           void* bad, int reason) {
    PyObject* error = PyObject_CallFunction(
        PyTuple_GET_ITEM(pm_cv_tools, 1), "sssOssOi", function, param, cpp,
        (PyObject*)value, path, expected, bad ? (PyObject*)bad : Py_None, reason);
    pm_cv_raise(error);
}

/* The final contents of an out-parameter go back into the caller's list, dict or
   array (`value`, taken over, is a list or dict made for it); -1 with an error set. */
int pm_cv_write_back(void* target, void* value) {
    PyObject* object = (PyObject*)target;
    PyObject* contents = (PyObject*)value;
    int status;
    if (PyDict_Check(object)) {
        PyDict_Clear(object);
        status = PyDict_Update(object, contents);
    } else {
        status = PyList_SetSlice(object, 0, PY_SSIZE_T_MAX, contents);
    }
    Py_DECREF(contents);
    return status;
}

/* A NumPy array out-parameter whose vector C++ resized: the error goes to the stash. */
void pm_cv_resized(const char* function, const char* param, const char* cpp,
                   void* target, size_t size) {
    pm_cv_raise(PyObject_CallFunction(PyTuple_GET_ITEM(pm_cv_tools, 2), "sssOn",
                                      function, param, cpp, (PyObject*)target,
                                      (Py_ssize_t)size));
}
