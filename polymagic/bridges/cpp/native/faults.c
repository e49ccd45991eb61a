/* The process-wide half of polymagic's fault handling for %%cpp cells (see faults.h).
 *
 * Built once per compiler into a small shared library that every cell module links
 * (by soname, found through the cell's RUNPATH), so there is one chain of frames per
 * thread and one set of handlers per process, however many cells are loaded.
 *
 * The handlers only read the chain's top, fill in the frame and siglongjmp: nothing
 * here allocates or locks. When the innermost frame is not a C++ call (Python code,
 * a C++ thread with no trampoline above it), the handler that was installed before
 * polymagic's gets the signal, as if polymagic were not there. */
#define _GNU_SOURCE
#include "faults.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

__thread pm_frame *volatile pm_fault_top __attribute__((tls_model("initial-exec"))) = 0;
__thread int pm_fault_thread_ready __attribute__((tls_model("initial-exec"))) = 0;

/* PM_CATCH_* now in effect (read by the handlers). */
static volatile sig_atomic_t catching = 0;
static int faults_installed = 0;
static const int FAULT_SIGNALS[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
/* The handler each signal had before ours, to pass signals on to. */
static struct sigaction previous[NSIG];

/* Room for the handler on a thread whose stack is exhausted. */
#define PM_ALTSTACK_SIZE (128 * 1024)
/* An alternate stack we keep if a thread already has one this large (faulthandler's). */
#define PM_ALTSTACK_ENOUGH (16 * 1024)

static void pass_on(int sig, siginfo_t *info, void *context)
{
    const struct sigaction *before = &previous[sig];
    if (before->sa_handler == SIG_DFL || before->sa_handler == SIG_IGN) {
        /* Let the default action happen: a fault caused by an instruction recurs when
         * the handler returns; a signal that was sent is sent again. */
        sigaction(sig, before, NULL);
        if (info == NULL || info->si_code <= 0)
            raise(sig);
        return;
    }
    if (before->sa_flags & SA_SIGINFO)
        before->sa_sigaction(sig, info, context);
    else
        before->sa_handler(sig);
}

static pm_frame *cpp_call(void)
{
    pm_frame *frame = pm_fault_top;
    return frame != NULL && frame->kind == PM_FRAME_CPP ? frame : NULL;
}

static void on_fault(int sig, siginfo_t *info, void *context)
{
    pm_frame *frame = cpp_call();
    if (frame != NULL && (catching & PM_CATCH_FAULTS)) {
        frame->stop = PM_STOP_SIGNAL;
        frame->signal = sig;
        frame->code = info != NULL ? info->si_code : 0;
        frame->address = info != NULL ? info->si_addr : NULL;
        siglongjmp(frame->jump, 1);
    }
    pass_on(sig, info, context);
}

/* Python's own handler runs first (so Python raises KeyboardInterrupt when the call
 * returns, or at pm::check_interrupt()); a second Ctrl-C during a call that never
 * answered the first one stops the call by force. */
static void on_interrupt(int sig, siginfo_t *info, void *context)
{
    int saved_errno = errno;
    pm_frame *frame;
    pass_on(sig, info, context);
    frame = cpp_call();
    if (frame != NULL) {
        frame->interrupts += 1;
        if (frame->interrupts >= 2 && (catching & PM_CATCH_FAULTS)) {
            frame->stop = PM_STOP_INTERRUPT;
            frame->signal = sig;
            frame->code = info != NULL ? info->si_code : 0;
            frame->address = NULL;
            errno = saved_errno;
            siglongjmp(frame->jump, 1);
        }
    }
    errno = saved_errno;
}

/* Put `handler` in place for `sig`, remembering the one it replaces; 1 if ours is in
 * place afterwards. With `only_over_a_handler`, a default or ignored disposition is
 * left alone (the program asked for it: Ctrl-C kills, or is ignored). */
static int install(int sig, void (*handler)(int, siginfo_t *, void *),
                   int only_over_a_handler)
{
    struct sigaction current, ours;
    if (sigaction(sig, NULL, &current) != 0)
        return 0;
    if ((current.sa_flags & SA_SIGINFO) && current.sa_sigaction == handler)
        return 1;
    if (only_over_a_handler &&
        (current.sa_handler == SIG_DFL || current.sa_handler == SIG_IGN))
        return 0;
    previous[sig] = current;
    memset(&ours, 0, sizeof ours);
    sigemptyset(&ours.sa_mask);
    ours.sa_sigaction = handler;
    /* Keep whether interrupted system calls restart, as the program chose. */
    ours.sa_flags = SA_SIGINFO | SA_ONSTACK | (current.sa_flags & SA_RESTART);
    return sigaction(sig, &ours, NULL) == 0;
}

int pm_faults_setup(int flags)
{
    int effective = 0;
    size_t i;
    if (!pm_fault_thread_ready)
        pm_fault_thread_setup();
    if (flags & PM_CATCH_FAULTS) {
        /* Installed once: a handler someone puts in front of ours later chains to ours
         * or replaces it on purpose, and fighting over it would loop (faulthandler). */
        if (!faults_installed) {
            for (i = 0; i < sizeof FAULT_SIGNALS / sizeof FAULT_SIGNALS[0]; ++i)
                install(FAULT_SIGNALS[i], on_fault, 0);
            faults_installed = 1;
        }
        effective |= PM_CATCH_FAULTS;
    }
    /* SIGINT is put back each time: Jupyter's kernel sets Python's handler before
     * every cell, which removes ours. */
    if ((flags & PM_CATCH_INTERRUPTS) && install(SIGINT, on_interrupt, 1))
        effective |= PM_CATCH_INTERRUPTS;
    catching = effective;
    return effective;
}

static pthread_key_t stack_key;
static pthread_once_t stack_key_once = PTHREAD_ONCE_INIT;

static void free_alternate_stack(void *memory)
{
    stack_t disable;
    memset(&disable, 0, sizeof disable);
    disable.ss_flags = SS_DISABLE;
    sigaltstack(&disable, NULL);
    munmap(memory, PM_ALTSTACK_SIZE);
}

static void make_stack_key(void)
{
    pthread_key_create(&stack_key, free_alternate_stack);
}

void pm_fault_thread_setup(void)
{
    stack_t current, stack;
    void *memory;
    pm_fault_thread_ready = 1;
    if (sigaltstack(NULL, &current) == 0 && !(current.ss_flags & SS_DISABLE) &&
        current.ss_size >= PM_ALTSTACK_ENOUGH)
        return;
    memory = mmap(NULL, PM_ALTSTACK_SIZE, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (memory == MAP_FAILED)
        return;  /* no alternate stack: a stack overflow stays fatal on this thread */
    memset(&stack, 0, sizeof stack);
    stack.ss_sp = memory;
    stack.ss_size = PM_ALTSTACK_SIZE;
    if (sigaltstack(&stack, NULL) != 0) {
        munmap(memory, PM_ALTSTACK_SIZE);
        return;
    }
    pthread_once(&stack_key_once, make_stack_key);
    pthread_setspecific(stack_key, memory);  /* freed when the thread ends */
}

void pm_fault_exit(const char *how, int status)
{
    pm_frame *frame = cpp_call();
    if (frame != NULL && (catching & PM_CATCH_FAULTS)) {
        frame->stop = PM_STOP_EXIT;
        frame->signal = 0;
        frame->status = status;
        frame->how = how;
        siglongjmp(frame->jump, 1);
    }
}
