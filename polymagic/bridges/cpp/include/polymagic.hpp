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
#ifndef POLYMAGIC_HPP
#define POLYMAGIC_HPP

// polymagic reads the annotation with libclang; the compiler needs nothing, so other
// compilers (g++) see an ordinary declaration, which polymagic's generated code defines.
#if defined(__clang__)
#define PM_PYTHON __attribute__((annotate("polymagic_python")))
#else
#define PM_PYTHON
#endif

#endif  // POLYMAGIC_HPP
