/* What the once-compiled part of a cell module's C glue (glue_errors.c,
 * glue_callers.c, containers_glue.c: polymagic/bridges/cpp/compiler.py builds them
 * once per compiler and Python) gives the per-cell glue cffi generates: pasted into
 * that glue by codegen.py, and included by those files. Needs Python.h, and faults.h
 * where PM_ENTER_PYTHON is used. Every symbol is hidden: each module links its own
 * copy, so a module's table and tools are its own. */
#ifndef POLYMAGIC_GLUE_RUNTIME_H
#define POLYMAGIC_GLUE_RUNTIME_H
#define PM_HIDDEN __attribute__((visibility("hidden")))

/* The module's name, for the Python side's error makers (glue_preamble.c). */
extern PM_HIDDEN const char pm_module_name[];

/* The Python exception for the C++ exception or stop a trampoline just caught. */
PM_HIDDEN PyObject* pm_raise_pending(void);
/* The ConversionError for a scalar argument cffi could not convert. */
PM_HIDDEN PyObject* pm_argument_error(int function, int position, PyObject* value);

/* C++ calling Python: push a frame that tells faults.c this is Python, not C++ (a
 * signal raised here is not polymagic's to turn into an exception). */
#define PM_ENTER_PYTHON \
    pm_frame pm_python_; \
    pm_python_.outer = pm_fault_top; \
    pm_python_.kind = PM_FRAME_PYTHON; \
    pm_fault_top = &pm_python_;
#define PM_LEAVE_PYTHON pm_fault_top = pm_python_.outer;
/* The module's table of Python objects, set once by pm_py_connect (capi.py). */
extern PM_HIDDEN PyObject* pm_table;
#define PM_TABLE(i) PyTuple_GET_ITEM(pm_table, (i))

/* The helpers of the generated C-API callers (glue_callers.c). */
PM_HIDDEN int pm_py_failed(void);
PM_HIDDEN int pm_signed_in_range(PyObject* value, long long low, long long high,
                                 long long* out);
PM_HIDDEN int pm_unsigned_in_range(PyObject* value, unsigned long long high,
                                   unsigned long long* out);
PM_HIDDEN int pm_signed_result(PyObject* result, PyObject* converter, long long low,
                               long long high, long long* out);
PM_HIDDEN int pm_unsigned_result(PyObject* result, PyObject* converter,
                                 unsigned long long high, unsigned long long* out);
PM_HIDDEN PyObject* pm_hub_find(PyObject* name);

/* Called through cffi (containers_glue.c). */
PM_HIDDEN int pm_cv_connect(uintptr_t tools);
#endif
