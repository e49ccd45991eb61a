/* The R shim: one small CPython extension (built on first use by r_shim.py from every
 * r_shim*.c file here) through which Python values and R objects cross.
 *
 *   r_shim.c           the module, and pm_guard: R code run so that an R error cannot
 *                      longjmp over Python frames
 *   r_shim_views.c     ALTREP vectors whose data pointer IS a Python buffer
 *   r_shim_closures.c  R closures that call Python callables
 *   r_shim_objects.c   reading R objects from Python, building them from Python values
 *   r_shim_calls.c     Python -> R calls evaluated in C
 *   r_shim_hub.c       R's py$name: the shared Python namespace read from R
 *
 * Functions take and return R objects as integer addresses. Every function that
 * creates an R object returns it R_PreserveObject'ed (r_shim.py hands the preservation
 * to rpy2).
 *
 * The rule all parts keep: an R error (Rf_error, or an R allocation failing) unwinds
 * with a longjmp, which must never cross a Python frame or skip a Python reference
 * count. Called from Python, every R call that can fail runs inside pm_guard; called
 * from R (ALTREP methods, the closure body), Python work is done between
 * PyGILState_Ensure/Release with nothing in between that can fail in R.
 */
#ifndef POLYMAGIC_R_SHIM_H
#define POLYMAGIC_R_SHIM_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#define R_NO_REMAP
#include <Rinternals.h>
#include <R_ext/Altrep.h>

/* ---- r_shim.c ----------------------------------------------------------------------- */

/* Run body(data) in a top-level R context. 1 when it returned; 0 when R unwound
 * instead, with a Python ConversionError set that says R could not `what` and why. */
int pm_guard(const char *what, void (*body)(void *), void *data);

/* The same, for R failures that are not about the value crossing (assigning to a
 * locked binding): an RError with R's message. */
int pm_guard_r(const char *what, void (*body)(void *), void *data);

/* Set a ConversionError (the class polymagic.errors gives at load) with a message. */
PyObject *pm_conversion_error(const char *format, ...);

SEXP pm_sexp_arg(PyObject *arg);

/* ---- r_shim_views.c ----------------------------------------------------------------- */

extern PyMethodDef pm_view_methods[];
int pm_is_view(SEXP x);            /* one of our ALTREP vectors */

/* ---- r_shim_closures.c -------------------------------------------------------------- */

extern PyMethodDef pm_closure_methods[];
/* R context: a new closure calling `function`, whose reference it takes over (dropped
 * first when R fails, then R's error). */
SEXP pm_closure_over(PyObject *function);
/* The callable behind a closure made here (borrowed; NULL for any other R object). */
PyObject *pm_closure_callable(SEXP x);
/* Under the GIL: */
const char *pm_note_failure(void);   /* the exception set, as R's error text (cleared) */
int pm_python_section_enter(void);   /* Python's SIGINT handler answers, until */
void pm_python_section_leave(int outer);  /* this, given what enter returned */
PyObject *pm_value_to_r_pair(PyObject *value);  /* marshal's to_r: (address, keepalive) */

/* ---- r_shim_hub.c ------------------------------------------------------------------- */

extern PyMethodDef pm_hub_methods[];

/* ---- r_shim_calls.c ---------------------------------------------------------------- */

extern PyMethodDef pm_call_methods[];

/* ---- r_shim_objects.c --------------------------------------------------------------- */

extern PyMethodDef pm_object_methods[];
int pm_add_object_types(PyObject *module);  /* RBuffer; -1 with an exception set */
int pm_plain(SEXP x);   /* R runs no code of its own to read x (not a foreign ALTREP) */

/* A Python scalar read for R: a bool, float, int, complex or str. */
typedef struct {
    int type;                      /* LGLSXP, INTSXP, REALSXP, CPLXSXP or STRSXP */
    union { double real; int integer; Rcomplex complex; } value;
    const char *text;              /* STRSXP: UTF-8 owned by the Python str */
    int size;
} pm_scalar_value;
/* 1 read, 0 not such a scalar, -1 with an exception set (a str R cannot hold). */
int pm_read_scalar(PyObject *value, pm_scalar_value *out);
SEXP pm_new_scalar(const pm_scalar_value *scalar);   /* R context: may unwind */
/* Element 0 of a REAL/INT/LGL/CPLX/STR vector as a Python scalar (NA -> None). */
PyObject *pm_scalar_to_python(SEXP x);

/* The dims of a new vector, read from a Python tuple (or None) before any R call, so
 * that the guarded part touches no Python object. */
#define PM_MAX_RANK 64
typedef struct {
    int rank;                      /* -1: no dims */
    int extents[PM_MAX_RANK];
} pm_dims;
int pm_read_dims(PyObject *dims, pm_dims *out);   /* -1 with an exception set */
void pm_set_dims(SEXP x, const pm_dims *dims);   /* R context: may unwind */

#endif
