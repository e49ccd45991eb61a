/* The fixed part of the C glue for class members with arithmetic arguments and
 * result (polymagic/bridges/cpp/fastcalls.py pastes it in before the members it
 * generates; not compiled on its own). Such methods and fields become CPython
 * descriptors on the class (method descriptors, getset descriptors), so a call is
 * the interpreter's own fast method call: no Python frame, no bound method, the
 * receiver's address read from its `_address` slot. Conversions and errors are
 * cffi's, as in cffi's own glue functions, and a C++ exception is raised through
 * `_cffi_save_errno()` as glue_preamble.c redefines it. */

#include <structmember.h>

/* Byte offset of the `_address` slot in every C++ object (CppObject, classes.py). */
static Py_ssize_t pm_address_offset = -1;

static int pm_receiver(PyObject* self, uintptr_t* address) {
    PyObject* value = *(PyObject**)((char*)self + pm_address_offset);
    if (value == NULL) {
        PyErr_SetString(PyExc_TypeError, "this C++ object was never constructed "
                                         "(its class's __init__ did not run)");
        return -1;
    }
    *address = (uintptr_t)PyLong_AsUnsignedLongLong(value);
    return (*address == (uintptr_t)-1 && PyErr_Occurred()) ? -1 : 0;
}

typedef struct {
    PyMethodDef* methods;  /* ends with {NULL} */
    PyGetSetDef* fields;   /* ends with {NULL} */
    PyObject* wrappers;    /* the Python wrapper of each method, for keyword calls */
} pm_class_members;
static pm_class_members pm_classes_members[PM_CLASS_COUNT];  /* fastcalls.py */

/* A call with keyword arguments: the member's Python wrapper binds them by name. */
static PyObject* pm_member_by_keywords(int owner, int wrapper, PyObject* self,
                                       PyObject* const* args, Py_ssize_t nargs,
                                       PyObject* kwnames) {
    Py_ssize_t total = nargs + PyTuple_GET_SIZE(kwnames);
    PyObject** stack = PyMem_Malloc((total + 1) * sizeof(PyObject*));
    if (stack == NULL) return PyErr_NoMemory();
    stack[0] = self;
    for (Py_ssize_t i = 0; i < total; i++) stack[i + 1] = args[i];
    PyObject* target = PyTuple_GET_ITEM(pm_classes_members[owner].wrappers, wrapper);
    PyObject* result = PyObject_Vectorcall(target, stack, nargs + 1, kwnames);
    PyMem_Free(stack);
    return result;
}

static PyObject* pm_member_arity(const char* name, Py_ssize_t expected, Py_ssize_t given) {
    PyErr_Format(PyExc_TypeError, "%s() takes %zd argument%s (%zd given)", name,
                 expected, expected == 1 ? "" : "s", given);
    return NULL;
}

static int pm_field_undeletable(const char* name) {
    PyErr_Format(PyExc_AttributeError, "cannot delete C++ field %s", name);
    return -1;
}

/* Put class `index`'s fast members on its Python class `cls` (id()s from Python:
   `address_slot` is CppObject._address's member descriptor, `wrappers` the tuple of
   Python wrappers the keyword path calls). cffi calls this with the GIL released. */
int pm_install_members(int index, uintptr_t cls, uintptr_t address_slot,
                       uintptr_t wrappers) {
    PyGILState_STATE gil = PyGILState_Ensure();
    int failed = 0;
    pm_address_offset = ((PyMemberDescrObject*)address_slot)->d_member->offset;
    Py_INCREF((PyObject*)wrappers);
    Py_XSETREF(pm_classes_members[index].wrappers, (PyObject*)wrappers);
    PyTypeObject* type = (PyTypeObject*)cls;
    for (PyMethodDef* def = pm_classes_members[index].methods; def->ml_name && !failed;
         def++) {
        PyObject* descriptor = PyDescr_NewMethod(type, def);
        failed = descriptor == NULL ||
                 PyObject_SetAttrString((PyObject*)type, def->ml_name, descriptor) < 0;
        Py_XDECREF(descriptor);
    }
    for (PyGetSetDef* def = pm_classes_members[index].fields; def->name && !failed;
         def++) {
        PyObject* descriptor = PyDescr_NewGetSet(type, def);
        failed = descriptor == NULL ||
                 PyObject_SetAttrString((PyObject*)type, def->name, descriptor) < 0;
        Py_XDECREF(descriptor);
    }
    if (failed) PyErr_Print();
    PyGILState_Release(gil);
    return failed ? -1 : 0;
}
