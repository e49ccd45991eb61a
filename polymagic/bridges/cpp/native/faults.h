/* Native faults, exit() and Ctrl-C inside %%cpp calls, turned into Python exceptions.
 *
 * Every call from Python into a cell (a trampoline) pushes a frame on a per-thread
 * chain and marks it with sigsetjmp; every call from C++ back into Python pushes a
 * "Python" frame. When a cell faults (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, on an
 * alternate signal stack so that a stack overflow can be handled too), calls exit(),
 * _Exit(), quick_exit() or _exit() (linked with -Wl,--wrap), or ignores a second Ctrl-C,
 * and the innermost frame is a trampoline's, polymagic siglongjmps back to it: the
 * trampoline returns, and Python raises CppFault (or KeyboardInterrupt). Anywhere else
 * (Python code, a thread C++ started) the signal goes to whoever handled it before.
 *
 * The chain and the handlers are process-wide: they live in one small library
 * (faults.c) that every cell module links, whatever cache entry it comes from. The
 * trampolines reach the chain's top with one initial-exec TLS access.
 *
 * This header is C and C++; polymagic pastes it into the generated code of each cell
 * (polymagic/bridges/cpp/codegen.py) and faults.c and runtime.cpp include it. */
#ifndef POLYMAGIC_PM_FAULTS_H
#define POLYMAGIC_PM_FAULTS_H

#include <setjmp.h>

#ifdef __cplusplus
extern "C" {
#endif

enum { PM_FRAME_CPP = 1, PM_FRAME_PYTHON = 2 };
/* Why a C++ call was left by a jump (pm_frame.stop). */
enum { PM_STOP_SIGNAL = 1, PM_STOP_EXIT = 2, PM_STOP_INTERRUPT = 3 };

typedef struct pm_frame {
    sigjmp_buf jump;          /* where a stop lands (PM_FRAME_CPP frames only) */
    struct pm_frame *outer;   /* the frame this one runs inside, or NULL */
    int kind;                 /* PM_FRAME_CPP or PM_FRAME_PYTHON */
    volatile int interrupts;  /* SIGINTs received during this call, not yet answered */
    /* Set just before the jump: */
    int stop;                 /* PM_STOP_* */
    int signal;               /* the signal (PM_STOP_SIGNAL, PM_STOP_INTERRUPT) */
    int code;                 /* its si_code */
    void *address;            /* its si_addr (the faulting address, for SIGSEGV/SIGBUS) */
    int status;               /* the status given to exit() (PM_STOP_EXIT) */
    const char *how;          /* "exit", "_Exit", "quick_exit" or "_exit" */
} pm_frame;

/* The innermost frame of this thread, and whether its alternate signal stack is set.
 * Volatile: the compiler must not drop the store that pushes a frame when it sees
 * that the call it guards cannot return (a null dereference it has proven). */
extern __thread pm_frame *volatile pm_fault_top __attribute__((tls_model("initial-exec")));
extern __thread int pm_fault_thread_ready __attribute__((tls_model("initial-exec")));

/* Flags of pm_faults_setup. */
enum { PM_CATCH_FAULTS = 1, PM_CATCH_INTERRUPTS = 2 };

/* Install (or re-install, if someone replaced them) the handlers for `flags`; the
 * previous handlers are chained to. Returns the flags now in effect. */
int pm_faults_setup(int flags);
/* Give this thread an alternate signal stack (if it has none) for stack overflows. */
void pm_fault_thread_setup(void);
/* exit() and friends: leave the innermost C++ call instead, if there is one. */
void pm_fault_exit(const char *how, int status);

#ifdef __cplusplus
}
#endif

#endif
