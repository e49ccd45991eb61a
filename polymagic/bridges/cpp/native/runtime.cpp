// The C++ half of every %%cpp module: catches what a user function throws, keeps it
// for the Python side, and carries Python exceptions raised in callbacks through C++.
//
// Compiled once per compiler and flags (build cache) and linked, with hidden
// visibility, into each cell's extension module, so every module has its own copy of
// this state. Nothing here includes Python.h: the C glue of the module reads the
// pending error after the call and turns it into a Python exception.
//
// Faults, exit() and forced interrupts (faults.h) land here too, after the jump back
// to the trampoline: they become pending errors like the others.
#include "faults.h"
#include "pm_stack.h"

#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <cstring>
#include <cxxabi.h>
#include <cstdlib>
#include <exception>
#include <stdexcept>
#include <string>
#include <typeinfo>

#define PM_API extern "C" __attribute__((visibility("hidden")))

namespace {

// Kinds of pending errors; polymagic/bridges/cpp/exceptions.py maps them to Python classes.
enum Kind { NONE = 0, PYTHON = 1, INVALID_ARGUMENT = 2, OUT_OF_RANGE = 3,
            RUNTIME_ERROR = 4, STD_EXCEPTION = 5, UNKNOWN = 6, RECURSION = 7,
            FAULT = 8, EXIT = 9, INTERRUPTED = 10, FORCED_STOP = 11 };

// A Python exception raised inside a callback, travelling up through C++ frames.
// `handle` names the original exception object, stashed on the Python side.
struct PythonError {
    long handle;
};

// Thrown by the depth guard: calling Python again would overflow the thread's stack,
// or hit Python's recursion limit at a point where Python could not report it.
struct DepthExhausted {
    const char* why;
};

// Calls that may recurse across languages (C++ -> Python -> C++ ...) stop when less
// than this much of the thread's stack is left: enough for the unwinding and for the
// Python code that turns the error into a RecursionError on the way up.
constexpr unsigned long STACK_RESERVE = 256 * 1024;
// Python frames kept in reserve below Python's recursion limit. At the limit, cffi
// could not even call the handler that carries a callback's exception through C++
// (it would be "ignored" and C++ would go on with a zero result), so C++ stops first.
constexpr int PYTHON_RESERVE = 50;

// Thrown by pm::check_interrupt() (polymagic.hpp) after a Ctrl-C.
struct Interrupted {};

struct Pending {
    int kind = NONE;
    int function = -1;
    long handle = 0;
    std::string type_name;
    std::string message;
    // A fault's name and details, in fixed buffers: the code that faulted may have
    // left the heap locked (a fault inside malloc), so landing allocates nothing.
    char stop_name[16];
    char stop_detail[200];
};

thread_local Pending pending;
// Set by a callback's onerror handler; consumed by the thunk that called the callback.
thread_local long callback_error = 0;
long live_holders = 0;

std::string demangle(const char* mangled) {
    int status = 0;
    char* readable = abi::__cxa_demangle(mangled, nullptr, nullptr, &status);
    std::string name = (status == 0 && readable) ? readable : mangled;
    std::free(readable);
    return name;
}

std::string current_type_name() {
    const std::type_info* type = abi::__cxa_current_exception_type();
    return type ? demangle(type->name()) : std::string("unknown");
}

void record(int kind, int function, const char* message) {
    pending.kind = kind;
    pending.function = function;
    pending.handle = 0;
    pending.type_name = current_type_name();
    pending.message = message ? message : "";
}

}  // namespace

// The depth guard, called before each call that may re-enter Python (a PM_PYTHON
// function, a Python callable passed as a function pointer) with the number of frames
// Python may still enter (`pm_python_room`, from the module's C glue): throws
// DepthExhausted, which the trampoline turns into a RecursionError, instead of
// overflowing the stack or failing inside cffi.
PM_API void pm_rt_stack_check(int python_room) {
    if (__builtin_expect(pm_stack_exhausted(STACK_RESERVE), 0))
        throw DepthExhausted{"less than 256 KB of the thread's stack is left"};
    if (__builtin_expect(python_room < PYTHON_RESERVE, 0))
        throw DepthExhausted{"Python's recursion limit (sys.getrecursionlimit()) is "
                             "about to be reached"};
}

PM_API void pm_rt_unconnected_import(const char* name) {
    throw std::logic_error(std::string(name) + "() is provided by Python (PM_PYTHON), "
                           "but was called before polymagic connected it (during "
                           "the library's static initialisation?)");
}

// Called from a trampoline's catch (...) block: classify the exception in flight.
PM_API void pm_rt_capture(int function) {
    try {
        throw;
    } catch (const PythonError& error) {
        pending.kind = PYTHON;
        pending.function = function;
        pending.handle = error.handle;
        pending.type_name.clear();
        pending.message.clear();
    } catch (const DepthExhausted& error) {
        record(RECURSION, function, error.why);
    } catch (const Interrupted&) {
        record(INTERRUPTED, function, "");
    } catch (const std::invalid_argument& error) {
        record(INVALID_ARGUMENT, function, error.what());
    } catch (const std::out_of_range& error) {
        record(OUT_OF_RANGE, function, error.what());
    } catch (const std::runtime_error& error) {
        record(RUNTIME_ERROR, function, error.what());
    } catch (const std::exception& error) {
        record(STD_EXCEPTION, function, error.what());
    } catch (...) {
        record(UNKNOWN, function, "");
    }
}

PM_API int pm_rt_pending(void) { return pending.kind; }

// pm::check_interrupt(): a Ctrl-C arrived during this call (faults.c counted it on the
// call's frame): unwind the C++ frames to the trampoline, as a C++ exception.
PM_API void pm_rt_check_interrupt(void) {
    pm_frame* frame = pm_fault_top;
    if (__builtin_expect(frame != nullptr && frame->kind == PM_FRAME_CPP &&
                         frame->interrupts > 0, 0)) {
        frame->interrupts = 0;
        throw Interrupted{};
    }
}

namespace {

const char* signal_name(int sig) {
    switch (sig) {
        case SIGSEGV: return "SIGSEGV";
        case SIGBUS: return "SIGBUS";
        case SIGFPE: return "SIGFPE";
        case SIGILL: return "SIGILL";
        case SIGABRT: return "SIGABRT";
        case SIGINT: return "SIGINT";
        default: return "a signal";
    }
}

// Whether `address` lies just below or at the bottom of this thread's stack: the
// fault of a runaway recursion.
bool in_stack_guard(const void* address) {
    pthread_attr_t attributes;
    void* lowest = nullptr;
    size_t size = 0;
    if (pthread_getattr_np(pthread_self(), &attributes) != 0) return false;
    int failed = pthread_attr_getstack(&attributes, &lowest, &size);
    pthread_attr_destroy(&attributes);
    if (failed || lowest == nullptr) return false;
    const char* bottom = static_cast<const char*>(lowest);
    const char* at = static_cast<const char*>(address);
    return at >= bottom - (1 << 20) && at < bottom + (64 << 10);
}

void describe_signal(const pm_frame* frame, char* out, size_t size) {
    switch (frame->signal) {
        case SIGSEGV:
            if (in_stack_guard(frame->address))
                std::snprintf(out, size, "stack overflow (a runaway recursion?) at "
                              "address 0x%lx", (unsigned long)frame->address);
            else
                std::snprintf(out, size, "invalid memory access at address 0x%lx (%s)",
                              (unsigned long)frame->address, frame->code == SEGV_ACCERR
                              ? "not allowed there" : "nothing is mapped there");
            return;
        case SIGBUS:
            std::snprintf(out, size, "bus error at address 0x%lx (a misaligned access, or "
                          "memory of a file that shrank)", (unsigned long)frame->address);
            return;
        case SIGFPE:
            std::snprintf(out, size, "%s", frame->code == FPE_INTDIV
                          ? "integer division by zero" : frame->code == FPE_INTOVF
                          ? "integer overflow" : "arithmetic exception");
            return;
        case SIGILL:
            std::snprintf(out, size, "illegal instruction at address 0x%lx "
                          "(__builtin_trap(), or code built for another CPU)",
                          (unsigned long)frame->address);
            return;
        case SIGABRT:
            std::snprintf(out, size, "abort() was called (std::terminate, a failed "
                          "assert() or a detected heap corruption also call it)");
            return;
        default:
            std::snprintf(out, size, "signal %d", frame->signal);
    }
}

}  // namespace

// A fault, exit() or forced interrupt jumped back to trampoline `function`: unblock
// the signal the jump left blocked, and make it the pending error.
PM_API void pm_rt_fault_landed(pm_frame* frame, int function) {
    if (frame->stop != PM_STOP_EXIT && frame->signal > 0) {
        sigset_t unblock;
        sigemptyset(&unblock);
        sigaddset(&unblock, frame->signal);
        pthread_sigmask(SIG_UNBLOCK, &unblock, nullptr);
    }
    pending.function = function;
    pending.handle = 0;
    if (frame->stop == PM_STOP_EXIT) {
        pending.kind = EXIT;
        pending.handle = frame->status;
        std::snprintf(pending.stop_name, sizeof pending.stop_name, "%s", frame->how);
        std::snprintf(pending.stop_detail, sizeof pending.stop_detail, "%s(%d)",
                      frame->how, frame->status);
    } else if (frame->stop == PM_STOP_INTERRUPT) {
        pending.kind = FORCED_STOP;
        std::snprintf(pending.stop_name, sizeof pending.stop_name, "SIGINT");
        std::snprintf(pending.stop_detail, sizeof pending.stop_detail,
                      "a second Ctrl-C");
    } else {
        pending.kind = FAULT;
        pending.handle = frame->signal;
        std::snprintf(pending.stop_name, sizeof pending.stop_name, "%s",
                      signal_name(frame->signal));
        describe_signal(frame, pending.stop_detail, sizeof pending.stop_detail);
    }
}

// exit() and its kin, called by a cell (linked with -Wl,--wrap=<name>): inside a call
// from Python they leave that call (pm_fault_exit jumps); elsewhere they end the
// process as usual.
extern "C" {
[[noreturn]] void __real_exit(int);
[[noreturn]] void __real__Exit(int);
[[noreturn]] void __real_quick_exit(int);
[[noreturn]] void __real__exit(int);
}
PM_API void __wrap_exit(int status) {
    pm_fault_exit("exit", status);
    __real_exit(status);
}
PM_API void __wrap__Exit(int status) {
    pm_fault_exit("_Exit", status);
    __real__Exit(status);
}
PM_API void __wrap_quick_exit(int status) {
    pm_fault_exit("quick_exit", status);
    __real_quick_exit(status);
}
PM_API void __wrap__exit(int status) {
    pm_fault_exit("_exit", status);
    __real__exit(status);
}

// Read and clear the pending error (the C glue calls this with the GIL held).
PM_API int pm_rt_take(int* function, long* handle, const char** type_name,
                      const char** message) {
    int kind = pending.kind;
    bool stopped = kind == FAULT || kind == EXIT || kind == FORCED_STOP;
    *function = pending.function;
    *handle = pending.handle;
    // valid until the next capture
    *type_name = stopped ? pending.stop_name : pending.type_name.c_str();
    *message = stopped ? pending.stop_detail : pending.message.c_str();
    pending.kind = NONE;
    return kind;
}

PM_API void pm_rt_note_callback_error(long handle) { callback_error = handle; }

// After a callback returns: if it raised, throw so the C++ frames unwind to the
// trampoline, which hands the original Python exception back to Python.
PM_API void pm_rt_check_callback(void) {
    long handle = callback_error;
    if (handle != 0) {
        callback_error = 0;
        throw PythonError{handle};
    }
}

PM_API void pm_rt_clear_callback(void) { callback_error = 0; }

PM_API void pm_rt_stale_callback(void) {
    throw std::logic_error(
        "a function pointer made from a Python callable was called after the C++ "
        "function it was passed to had returned (or from another thread)");
}

// Owners of memory handed to NumPy (returned vectors and strings) count themselves
// here, so tests can see that dropping the last array frees the vector.
PM_API void pm_rt_holder_created(void) { __atomic_add_fetch(&live_holders, 1, __ATOMIC_RELAXED); }
PM_API void pm_rt_holder_destroyed(void) { __atomic_sub_fetch(&live_holders, 1, __ATOMIC_RELAXED); }
PM_API long pm_rt_live_holders(void) { return __atomic_load_n(&live_holders, __ATOMIC_RELAXED); }
