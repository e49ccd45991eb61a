/* SIGINT while embedded R runs: ask R to stop at its next interrupt check.
 *
 * rpy2 leaves R without a SIGINT handler, and Python's own handler only runs between
 * bytecodes, which never come while R loops in C. This handler is async-signal-safe:
 * it only sets R's exported `R_interrupts_pending` (R polls it in
 * R_CheckUserInterrupt, every few milliseconds of R work) and a flag of our own, so
 * the caller can tell an interrupt from an R error once R has unwound.
 *
 * Installed when the outermost R evaluation starts and removed when it ends, so
 * Python's handler is in place whenever Python code runs outside R. Python code that R
 * calls back (pm_sigint_pause .. pm_sigint_resume) gets Python's handler without a
 * system call: ours stays installed and hands the signal to Python's while that code
 * runs (R code it calls in turn is R's again). Swapping handlers there cost two
 * sigaction calls, ~0.5 us, per callback. (Python's handler is the one saved at the
 * outermost entry; a callback that installs another one by signal.signal() leaves
 * Python's in place for the rest of that outermost R evaluation: Ctrl-C then reaches R
 * through Python's handler and rpy2's event polling, as it did in nested R before.)
 *
 * R's blocking waits (Sys.sleep, socket reads: R_SelectEx) swap in a SIGINT handler of
 * their own for their duration, so a Ctrl-C there never reaches ours: R unwinds to the
 * top level without an error message. R calls options("interrupt") for every
 * interrupt no R handler took, whichever handler caught the signal; the option set
 * here notes the interrupt in the same flag (only while polymagic evaluates R).
 */
#define _GNU_SOURCE
#include <signal.h>
#include <string.h>

#define R_NO_REMAP
#include <Rinternals.h>
#include <R_ext/Rdynload.h>

#include "pm_stack.h"

static volatile int *r_interrupts_pending = 0;
static volatile sig_atomic_t interrupted = 0;
static struct sigaction python_action;
static volatile sig_atomic_t depth = 0;
/* The R depth at which Python code called back from R runs now (0: none). */
static volatile sig_atomic_t python_depth = 0;

/* Python's handler for this signal, as if it were installed. */
static void to_python(int signum, siginfo_t *info, void *context)
{
    if (python_action.sa_flags & SA_SIGINFO)
        python_action.sa_sigaction(signum, info, context);
    else if (python_action.sa_handler == SIG_DFL) {
        sigaction(SIGINT, &python_action, 0);   /* the default action, once unblocked */
        raise(signum);
    } else if (python_action.sa_handler != SIG_IGN)
        python_action.sa_handler(signum);
}

static void on_sigint(int signum, siginfo_t *info, void *context)
{
    if (python_depth != 0 && python_depth == depth) {
        to_python(signum, info, context);
        return;
    }
    interrupted = 1;
    if (r_interrupts_pending)
        *r_interrupts_pending = 1;
}

/* Called once: where R keeps its pending-interrupt flag. */
void pm_sigint_target(int *pending)
{
    r_interrupts_pending = pending;
}

/* Deep recursion across languages (Python -> R -> Python -> R ...) must end in an error,
 * never a segfault: R is not entered when less than this much C stack is left. */
#define PM_STACK_MARGIN (1024 * 1024)

/* Enter an R evaluation; the outermost one swaps our handler in. 0 on success,
 * PM_STACK_EXHAUSTED (nothing entered) when the C stack is nearly used up. */
#define PM_STACK_EXHAUSTED 2
int pm_sigint_enter(void)
{
    struct sigaction action;
    if (pm_stack_exhausted(PM_STACK_MARGIN))
        return PM_STACK_EXHAUSTED;
    if (depth++ > 0)
        return 0;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = on_sigint;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART | SA_SIGINFO;
    return sigaction(SIGINT, &action, &python_action);
}

/* Leave an R evaluation; the outermost one puts Python's handler back.
 * Returns 1 when a SIGINT arrived since the last call (and clears it). */
int pm_sigint_leave(void)
{
    int was_interrupted;
    if (depth > 0 && --depth == 0)
        sigaction(SIGINT, &python_action, 0);
    was_interrupted = interrupted;
    if (was_interrupted) {
        interrupted = 0;
        /* R may not have reached an interrupt check before it returned. */
        if (depth == 0 && r_interrupts_pending)
            *r_interrupts_pending = 0;
    }
    return was_interrupted;
}

/* .External routine of options("interrupt"): R is handling an interrupt. */
static SEXP note_interrupt(SEXP args)
{
    (void) args;
    if (depth > 0)
        interrupted = 1;
    return R_NilValue;
}

static void set_interrupt_option(void *unused)
{
    (void) unused;
    SEXP routine = PROTECT(R_MakeExternalPtrFn((DL_FUNC) note_interrupt,
                                               Rf_install("native symbol"), R_NilValue));
    SEXP closure = PROTECT(Rf_allocSExp(CLOSXP));
    SET_FORMALS(closure, R_NilValue);
    SET_BODY(closure, Rf_lang2(Rf_install(".External"), routine));
    SET_CLOENV(closure, R_BaseEnv);
    SEXP call = PROTECT(Rf_lang2(Rf_install("options"), closure));
    SET_TAG(CDR(call), Rf_install("interrupt"));
    Rf_eval(call, R_BaseEnv);
    UNPROTECT(3);
}

/* Called once R runs: options(interrupt = <note_interrupt>). 0 on success. */
int pm_note_r_interrupts(void)
{
    return R_ToplevelExec(set_interrupt_option, NULL) ? 0 : -1;
}

/* Python code runs inside R (a callback): Python's handler answers for its duration,
 * so Ctrl-C raises KeyboardInterrupt in that Python code. Returns what
 * pm_sigint_resume must be given when the callback returns. */
int pm_sigint_pause(void)
{
    int outer = python_depth;
    python_depth = depth;
    return outer;
}

int pm_sigint_resume(int outer)
{
    python_depth = outer;
    return 0;
}
