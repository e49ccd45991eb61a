/* SIGINT while embedded R runs: ask R to stop at its next interrupt check.
 *
 * rpy2 leaves R without a SIGINT handler, and Python's own handler only runs between
 * bytecodes, which never come while R loops in C. This handler is async-signal-safe:
 * it only sets R's exported `R_interrupts_pending` (R polls it in
 * R_CheckUserInterrupt, every few milliseconds of R work) and a flag of our own, so
 * the caller can tell an interrupt from an R error once R has unwound.
 *
 * Installed when the outermost R evaluation starts and removed when it ends, so
 * Python's handler is in place whenever Python code runs outside R.
 *
 * R's blocking waits (Sys.sleep, socket reads: R_SelectEx) swap in a SIGINT handler of
 * their own, so a Ctrl-C there never reaches ours: R just unwinds to the top level. An R
 * error always writes its message to R's error buffer first; an interrupt never does.
 * Each evaluation therefore starts with that buffer's first byte cleared (and restored
 * if nothing wrote it, so geterrmessage() keeps its value): an evaluation that failed
 * with the byte still clear unwound without an error, i.e. was interrupted.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <string.h>

#include "pm_stack.h"

static volatile int *r_interrupts_pending = 0;
static volatile sig_atomic_t interrupted = 0;
static struct sigaction python_action;
static int depth = 0;

extern const char *R_curErrorBuf(void);   /* R's error buffer (libR), a static array */
static char *error_buffer = 0;
#define PM_TRACKED_DEPTH 4096              /* deeper evaluations are not tracked */
static char saved_first_byte[PM_TRACKED_DEPTH];
static int unwound_silently = 0;

static void on_sigint(int signum)
{
    (void)signum;
    interrupted = 1;
    if (r_interrupts_pending)
        *r_interrupts_pending = 1;
}

/* Called once: where R keeps its pending-interrupt flag (and R is running). */
void pm_sigint_target(int *pending)
{
    r_interrupts_pending = pending;
    error_buffer = (char *) R_curErrorBuf();
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
    if (depth < PM_TRACKED_DEPTH && error_buffer) {
        saved_first_byte[depth] = error_buffer[0];
        error_buffer[0] = '\0';
    }
    if (depth++ > 0)
        return 0;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_sigint;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    return sigaction(SIGINT, &action, &python_action);
}

/* Leave an R evaluation; the outermost one puts Python's handler back.
 * Returns 1 when a SIGINT arrived since the last call (and clears it). */
int pm_sigint_leave(void)
{
    int was_interrupted;
    unwound_silently = 0;
    if (depth > 0) {
        if (--depth < PM_TRACKED_DEPTH && error_buffer) {
            unwound_silently = error_buffer[0] == '\0';
            if (unwound_silently)
                error_buffer[0] = saved_first_byte[depth];
        }
        if (depth == 0)
            sigaction(SIGINT, &python_action, 0);
    }
    was_interrupted = interrupted;
    if (was_interrupted) {
        interrupted = 0;
        /* R may not have reached an interrupt check before it returned. */
        if (depth == 0 && r_interrupts_pending)
            *r_interrupts_pending = 0;
    }
    return was_interrupted;
}

/* 1 when the evaluation that last left wrote no R error message: if it failed, R
 * unwound without an error (an interrupt R's own handler took). */
int pm_unwound_silently(void)
{
    return unwound_silently;
}

/* Python code runs inside R (a callback): Python's handler is back for its duration,
 * so Ctrl-C raises KeyboardInterrupt in that Python code. */
int pm_sigint_pause(void)
{
    if (depth == 0)
        return 0;
    return sigaction(SIGINT, &python_action, 0);
}

int pm_sigint_resume(void)
{
    struct sigaction action;
    if (depth == 0)
        return 0;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_sigint;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    return sigaction(SIGINT, &action, 0);
}
