/* What keeps embedded R from ending or crashing the Python process around it.
 *
 * quit() / q(): R's do_quit calls the embedder's clean-up hook (ptr_R_CleanUp) and then
 * exit()s, so returning from the hook cannot stop the exit. The hook installed here
 * raises an R error instead: R unwinds from quit() to whoever evaluated it, like any
 * error, and the process goes on. A fatal error inside R (R_Suicide, SA_SUICIDE) still
 * goes to the previous hook: R cannot continue then.
 *
 * C stack: R checks its recursion against R_CStackStart / R_CStackLimit, which R sets
 * for the main thread. When R is started from another thread, rpy2 turns the check
 * off (the main thread's numbers would be wrong there), and deep recursion segfaults;
 * pm_use_this_thread_stack gives R this thread's own stack instead.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>

#define R_NO_REMAP
#define R_INTERFACE_PTRS
#define CSTACK_DEFNS
#define HAVE_UINTPTR_T
#include <Rinternals.h>
#include <Rinterface.h>

static void (*previous_clean_up)(SA_TYPE, int, int) = 0;

static void refuse_quit(SA_TYPE save, int status, int run_last)
{
    if (save == SA_SUICIDE || previous_clean_up == 0) {
        if (previous_clean_up)
            previous_clean_up(save, status, run_last);
        return;
    }
    Rf_error("quit() was not run: R lives inside this Python process, and quitting "
             "R would end Python and lose the session. Restart the kernel (or end "
             "the Python program) instead.");
}

/* Called once R is running (after rpy2 set its own hooks). */
void pm_guard_quit(void)
{
    if (ptr_R_CleanUp != refuse_quit) {
        previous_clean_up = ptr_R_CleanUp;
        ptr_R_CleanUp = refuse_quit;
    }
}

/* R's stack check measured on the calling thread's stack (R will run in this thread
 * only). 0 on success, -1 when the stack cannot be read (the check stays off). The
 * limit keeps a tenth of the stack back: R needs some to report the overflow. */
int pm_use_this_thread_stack(void)
{
    pthread_attr_t attributes;
    void *lowest = 0;
    size_t size = 0;
    int failed;
    if (pthread_getattr_np(pthread_self(), &attributes) != 0)
        return -1;
    failed = pthread_attr_getstack(&attributes, &lowest, &size);
    pthread_attr_destroy(&attributes);
    if (failed || lowest == 0 || size == 0)
        return -1;
    R_CStackStart = (uintptr_t) lowest + size;   /* the stack grows down from here */
    R_CStackLimit = (uintptr_t) (size / 10 * 9);
    return 0;
}
