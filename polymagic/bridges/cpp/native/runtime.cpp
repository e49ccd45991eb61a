// The C++ half of every %%cpp module: catches what a user function throws, keeps it
// for the Python side, and carries Python exceptions raised in callbacks through C++.
//
// Compiled once per compiler and flags (build cache) and linked, with hidden
// visibility, into each cell's extension module, so every module has its own copy of
// this state. Nothing here includes Python.h: the C glue of the module reads the
// pending error after the call and turns it into a Python exception.
#include "pm_stack.h"

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

// Kinds of pending errors; polymagic/bridges/cpp/callbacks.py maps them to Python classes.
enum Kind { NONE = 0, PYTHON = 1, INVALID_ARGUMENT = 2, OUT_OF_RANGE = 3,
            RUNTIME_ERROR = 4, STD_EXCEPTION = 5, UNKNOWN = 6, RECURSION = 7 };

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

struct Pending {
    int kind = NONE;
    int function = -1;
    long handle = 0;
    std::string type_name;
    std::string message;
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

// Read and clear the pending error (the C glue calls this with the GIL held).
PM_API int pm_rt_take(int* function, long* handle, const char** type_name,
                      const char** message) {
    int kind = pending.kind;
    *function = pending.function;
    *handle = pending.handle;
    *type_name = pending.type_name.c_str();  // valid until the next capture
    *message = pending.message.c_str();
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
