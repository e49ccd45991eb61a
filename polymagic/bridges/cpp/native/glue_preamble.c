/* The per-module part of a cell module's C glue, placed by cffi after its own header
 * and before the generated glue (polymagic/bridges/cpp/codegen.py pastes it in after
 * glue_cdef.h, glue_runtime.h and `#define PM_MODULE_NAME "<module>"`; it is not
 * compiled alone). What it calls is compiled once (glue_errors.c).
 *
 * Every glue function calls the trampoline with the GIL released, then
 * `_cffi_save_errno()`, then re-takes the GIL. We redefine `_cffi_save_errno()` (used
 * only at that one call site, inside the Py_BEGIN/END_ALLOW_THREADS block) to also look
 * at the runtime's thread-local pending error: if the trampoline caught a C++ exception
 * (or a Python exception travelling through C++), Py_BLOCK_THREADS re-takes the GIL
 * (CPython's documented way to leave such a block early) and the glue returns NULL
 * with the Python exception set. The check is one call reading a thread-local int, so
 * functions with scalar arguments and results are exposed as `lib.pm_f<i>` with no
 * Python wrapper at all. */
int pm_rt_pending(void);

const char pm_module_name[] = PM_MODULE_NAME;

static void pm_save_errno(void) { _cffi_save_errno(); }
#undef _cffi_save_errno
#define _cffi_save_errno() \
    pm_save_errno(); \
    if (pm_rt_pending()) { Py_BLOCK_THREADS return pm_raise_pending(); }
