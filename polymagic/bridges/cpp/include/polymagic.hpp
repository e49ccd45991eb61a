// polymagic.hpp: declarations a %%cpp cell can use (found automatically; no -I needed).
//
//     #include <polymagic.hpp>
//     PM_PYTHON double fib_py(int n);   // provided by the shared Python namespace
//
// A function declared PM_PYTHON (no body) is defined by polymagic: each call looks
// `fib_py` up in the shared Python namespace (polymagic.hub) at call time and calls
// it, converting arguments and the result by the %%cpp type table. Anything callable
// that is bound there answers: a Python function, an R or Julia function, a function
// of another C++ or Cython cell. A Python exception raised there unwinds through the
// C++ frames and reaches the Python caller as the same exception object. See
// docs/cpp.md, "Calling Python (and every other language) from C++".
//
//     for (long i = 0; i < n; ++i) {
//         if (i % 100000 == 0) pm::check_interrupt();   // Ctrl-C stops the loop here
//         ...
//     }
//
// pm::check_interrupt() (R users know it as Rcpp::checkUserInterrupt()) throws when
// Ctrl-C was pressed during the call: the C++ frames unwind (destructors run) and
// Python raises KeyboardInterrupt. It costs a few nanoseconds. A loop that never checks
// is stopped by a second Ctrl-C, by force (see docs/cpp.md, "Faults").
#ifndef POLYMAGIC_HPP
#define POLYMAGIC_HPP

// polymagic reads the annotation with libclang; the compiler needs nothing, so other
// compilers (g++) see an ordinary declaration, which polymagic's generated code defines.
#if defined(__clang__)
#define PM_PYTHON __attribute__((annotate("polymagic_python")))
#else
#define PM_PYTHON
#endif

extern "C" void pm_rt_check_interrupt(void);  // polymagic's runtime (native/runtime.cpp)

namespace pm {
// Throws (to the Python caller, as KeyboardInterrupt) if Ctrl-C was pressed during this
// call from Python; otherwise returns at once.
inline void check_interrupt() { pm_rt_check_interrupt(); }
}  // namespace pm

#endif  // POLYMAGIC_HPP
