/* The exact pass of an overload set, in C: `_pm_overloads.OverloadSet`, built once per
 * compiler and Python (polymagic/bridges/cpp/overloads.py builds and loads it).
 *
 * An OverloadSet is called like a function (vectorcall). It tries its overloads in
 * declaration order, each with one test per parameter, pybind11's first pass: an exact
 * int in range, a float, a bool, a str or bytes, a callable. The first overload whose
 * every test passes is called with the arguments as they are. Whatever this file does
 * not decide (keywords, NumPy integers and bools, arrays, kinds it does not know, no
 * exact match: the conversion pass and the error) goes to `fallback`, the Python
 * dispatcher of overloads.py, which applies the whole rule; so both agree by
 * construction: C only answers where its answer is the Python one.
 *
 * It is also a method descriptor (binding its first argument, as functions do), so an
 * overload set on a class is a method, called without a bound-method object. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <limits.h>
#include <stddef.h>

/* One parameter's test (overloads.py: _C_CODES). */
enum { PM_UNDECIDED = 0, PM_FLOATING = 1, PM_SIGNED = 2, PM_UNSIGNED = 3, PM_BOOL = 4,
       PM_TEXT = 5, PM_CALLABLE = 6 };

typedef struct {
    int code;
    long long low;
    unsigned long long high;
} pm_test;

typedef struct {
    PyObject* call;
    Py_ssize_t arity;
    pm_test* tests;
} pm_overload;

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject* dict;
    PyObject* fallback;
    PyObject* candidates;  /* the tuple it was made from, kept for traversal */
    PyTypeObject* np_integer;
    PyTypeObject* np_floating;
    PyTypeObject* np_bool;
    Py_ssize_t leading;
    Py_ssize_t count;
    pm_overload* overloads;
} pm_overload_set;

/* 1: it matches exactly; 0: it does not; -1: for the Python dispatcher to say. */
static int pm_exact(pm_overload_set* set, const pm_test* test, PyObject* value) {
    switch (test->code) {
    case PM_FLOATING:
        return PyFloat_Check(value) || PyObject_TypeCheck(value, set->np_floating);
    case PM_SIGNED: {
        if (!PyLong_CheckExact(value))
            return PyObject_TypeCheck(value, set->np_integer) ? -1 : 0;
        int overflow;
        long long number = PyLong_AsLongLongAndOverflow(value, &overflow);
        if (number == -1 && PyErr_Occurred()) { PyErr_Clear(); return -1; }
        if (overflow) return 0;
        return number >= test->low && (number < 0 || (unsigned long long)number <= test->high);
    }
    case PM_UNSIGNED: {
        if (!PyLong_CheckExact(value))
            return PyObject_TypeCheck(value, set->np_integer) ? -1 : 0;
        int overflow;
        long long small = PyLong_AsLongLongAndOverflow(value, &overflow);
        if (small == -1 && PyErr_Occurred()) { PyErr_Clear(); return -1; }
        if (overflow < 0 || (!overflow && small < 0)) return 0;  /* negative */
        if (!overflow) return (unsigned long long)small <= test->high;
        unsigned long long number = PyLong_AsUnsignedLongLong(value);
        if (number == (unsigned long long)-1 && PyErr_Occurred()) {
            PyErr_Clear();  /* beyond unsigned long long */
            return 0;
        }
        return number <= test->high;
    }
    case PM_BOOL:
        if (value == Py_True || value == Py_False) return 1;
        return PyObject_TypeCheck(value, set->np_bool) ? -1 : 0;
    case PM_TEXT:
        return PyUnicode_Check(value) || PyBytes_Check(value);
    case PM_CALLABLE:
        return PyCallable_Check(value);
    default:
        return -1;
    }
}

static PyObject* pm_set_call(PyObject* self, PyObject* const* args, size_t nargsf,
                             PyObject* kwnames) {
    pm_overload_set* set = (pm_overload_set*)self;
    Py_ssize_t given = PyVectorcall_NARGS(nargsf);
    if (kwnames == NULL || PyTuple_GET_SIZE(kwnames) == 0) {
        for (Py_ssize_t i = 0; i < set->count; i++) {
            pm_overload* overload = &set->overloads[i];
            if (overload->arity + set->leading != given) continue;
            int verdict = 1;  /* 1 match, 0 no, -1 undecided */
            for (Py_ssize_t k = 0; k < overload->arity && verdict != 0; k++) {
                int one = pm_exact(set, &overload->tests[k], args[set->leading + k]);
                verdict = one == 0 ? 0 : (one < 0 ? -1 : verdict);
            }
            if (verdict == 1) return PyObject_Vectorcall(overload->call, args, nargsf, NULL);
            if (verdict < 0) break;  /* an earlier overload might match: Python says */
        }
    }
    return PyObject_Vectorcall(set->fallback, args, nargsf, kwnames);
}

static int pm_read_test(PyObject* row, pm_test* test) {
    /* row: (code, low, high) */
    if (!PyTuple_Check(row) || PyTuple_GET_SIZE(row) != 3) {
        PyErr_SetString(PyExc_TypeError, "a test is (code, low, high)");
        return -1;
    }
    test->code = (int)PyLong_AsLong(PyTuple_GET_ITEM(row, 0));
    test->low = PyLong_AsLongLong(PyTuple_GET_ITEM(row, 1));
    test->high = PyLong_AsUnsignedLongLong(PyTuple_GET_ITEM(row, 2));
    return PyErr_Occurred() ? -1 : 0;
}

static void pm_free_overloads(pm_overload_set* set) {
    for (Py_ssize_t i = 0; i < set->count; i++) PyMem_Free(set->overloads[i].tests);
    PyMem_Free(set->overloads);
    set->overloads = NULL;
    set->count = 0;
}

/* OverloadSet(fallback, candidates, leading, (np.integer, np.floating, np.bool_));
   candidates: ((callable, ((code, low, high), ...)), ...) in declaration order. */
static PyObject* pm_set_new(PyTypeObject* type, PyObject* args, PyObject* kwargs) {
    (void)kwargs;
    PyObject *fallback, *candidates, *numpy_types;
    Py_ssize_t leading;
    if (!PyArg_ParseTuple(args, "OO!nO!", &fallback, &PyTuple_Type, &candidates, &leading,
                          &PyTuple_Type, &numpy_types))
        return NULL;
    if (PyTuple_GET_SIZE(numpy_types) != 3) {
        PyErr_SetString(PyExc_TypeError, "numpy types: (integer, floating, bool_)");
        return NULL;
    }
    pm_overload_set* set = (pm_overload_set*)type->tp_alloc(type, 0);
    if (set == NULL) return NULL;
    set->vectorcall = pm_set_call;
    Py_INCREF(fallback);
    set->fallback = fallback;
    Py_INCREF(candidates);
    set->candidates = candidates;
    set->np_integer = (PyTypeObject*)Py_NewRef(PyTuple_GET_ITEM(numpy_types, 0));
    set->np_floating = (PyTypeObject*)Py_NewRef(PyTuple_GET_ITEM(numpy_types, 1));
    set->np_bool = (PyTypeObject*)Py_NewRef(PyTuple_GET_ITEM(numpy_types, 2));
    set->leading = leading;
    Py_ssize_t count = PyTuple_GET_SIZE(candidates);
    set->overloads = PyMem_Calloc(count ? count : 1, sizeof(pm_overload));
    if (set->overloads == NULL) { Py_DECREF(set); return PyErr_NoMemory(); }
    set->count = count;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject* candidate = PyTuple_GET_ITEM(candidates, i);
        PyObject* tests;
        if (!PyArg_ParseTuple(candidate, "OO!", &set->overloads[i].call, &PyTuple_Type,
                              &tests)) {
            Py_DECREF(set);
            return NULL;
        }
        Py_ssize_t arity = PyTuple_GET_SIZE(tests);
        set->overloads[i].arity = arity;
        set->overloads[i].tests = PyMem_Calloc(arity ? arity : 1, sizeof(pm_test));
        if (set->overloads[i].tests == NULL) { Py_DECREF(set); return PyErr_NoMemory(); }
        for (Py_ssize_t k = 0; k < arity; k++) {
            if (pm_read_test(PyTuple_GET_ITEM(tests, k), &set->overloads[i].tests[k]) < 0) {
                Py_DECREF(set);
                return NULL;
            }
        }
    }
    return (PyObject*)set;
}

static int pm_set_traverse(PyObject* self, visitproc visit, void* arg) {
    pm_overload_set* set = (pm_overload_set*)self;
    Py_VISIT(set->dict);
    Py_VISIT(set->fallback);
    Py_VISIT(set->candidates);
    return 0;
}

static int pm_set_clear(PyObject* self) {
    pm_overload_set* set = (pm_overload_set*)self;
    Py_CLEAR(set->dict);
    Py_CLEAR(set->fallback);
    Py_CLEAR(set->candidates);  /* holds the callables the overloads point to */
    pm_free_overloads(set);
    return 0;
}

static void pm_set_dealloc(PyObject* self) {
    pm_overload_set* set = (pm_overload_set*)self;
    PyObject_GC_UnTrack(self);
    pm_set_clear(self);
    Py_XDECREF(set->np_integer);
    Py_XDECREF(set->np_floating);
    Py_XDECREF(set->np_bool);
    Py_TYPE(self)->tp_free(self);
}

/* Bound to an instance, as a function is: `obj.method` is a bound method. */
static PyObject* pm_set_get(PyObject* self, PyObject* instance, PyObject* owner) {
    (void)owner;
    if (instance == NULL || instance == Py_None) return Py_NewRef(self);
    return PyMethod_New(self, instance);
}

/* Pickles as what `__reduce__` in its dict says (overloads.py sets it to
   (getattr, (cell module, name))), like the cell's other functions. */
static PyObject* pm_set_reduce(PyObject* self, PyObject* unused) {
    (void)unused;
    pm_overload_set* set = (pm_overload_set*)self;
    PyObject* reduced = set->dict ? PyDict_GetItemString(set->dict, "__pm_reduce__") : NULL;
    if (reduced == NULL) {
        PyErr_SetString(PyExc_TypeError, "this C++ overload set cannot be pickled");
        return NULL;
    }
    return Py_NewRef(reduced);
}

static PyObject* pm_set_repr(PyObject* self) {
    pm_overload_set* set = (pm_overload_set*)self;
    PyObject* name = set->dict ? PyDict_GetItemString(set->dict, "__name__") : NULL;
    if (name == NULL) return PyUnicode_FromString("<C++ overloaded function>");
    return PyUnicode_FromFormat("<C++ overloaded function %S>", name);
}

static PyMethodDef pm_set_methods[] = {
    {"__reduce__", pm_set_reduce, METH_NOARGS, NULL},
    {NULL}
};

static PyTypeObject pm_overload_set_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "_pm_overloads.OverloadSet",
    .tp_basicsize = sizeof(pm_overload_set),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL
                | Py_TPFLAGS_METHOD_DESCRIPTOR,
    .tp_doc = "An overloaded C++ function (polymagic): see its __doc__.",
    .tp_new = pm_set_new,
    .tp_dealloc = pm_set_dealloc,
    .tp_traverse = pm_set_traverse,
    .tp_clear = pm_set_clear,
    .tp_call = PyVectorcall_Call,
    .tp_vectorcall_offset = offsetof(pm_overload_set, vectorcall),
    .tp_descr_get = pm_set_get,
    .tp_dictoffset = offsetof(pm_overload_set, dict),
    .tp_getattro = PyObject_GenericGetAttr,
    .tp_setattro = PyObject_GenericSetAttr,
    .tp_methods = pm_set_methods,
    .tp_repr = pm_set_repr,
};

static struct PyModuleDef pm_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_pm_overloads",
    .m_doc = "polymagic's C half of C++ overload dispatch (bridges/cpp/native/overloads.c).",
    .m_size = -1,
};

PyMODINIT_FUNC PyInit__pm_overloads(void) {
    if (PyType_Ready(&pm_overload_set_type) < 0) return NULL;
    PyObject* module = PyModule_Create(&pm_module);
    if (module == NULL) return NULL;
    if (PyModule_AddObjectRef(module, "OverloadSet", (PyObject*)&pm_overload_set_type) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
