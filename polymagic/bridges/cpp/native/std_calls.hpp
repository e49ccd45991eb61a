// Out-of-line conversions a cell's trampolines call for std::string and
// std::vector<number> (compiled once in polymagic's C++ runtime: std_calls.cpp), so
// that a cell does not instantiate and optimise their constructors, moves and
// destructors again: a third of a small cell's build. Pasted by codegen.py after
// holders.hpp when the cell's functions take or return them, with PM_STD_STRINGS
// and/or PM_STD_VECTORS defined. Only where the cell's std::string and std::vector
// are the runtime's (libstdc++'s default ABI, no debug mode); elsewhere the cell
// instantiates holders.hpp's templates itself, and pm_rt_string is inline.
#if defined(__GLIBCXX__) && _GLIBCXX_USE_CXX11_ABI && !defined(_GLIBCXX_DEBUG)
#define PM_RUNTIME_STD 1
#endif
// In a cell, `extern`: the instantiations below are the runtime's. std_calls.cpp
// defines it empty, which makes the same lines the runtime's instantiations.
#ifndef PM_HELD_INSTANCE
#define PM_HELD_INSTANCE extern
#endif

#ifdef PM_STD_STRINGS
#ifdef PM_RUNTIME_STD
std::string pm_rt_string(const char* data, unsigned long size);
PM_HELD_INSTANCE template pm_buffer pm_held<std::string>(std::string&& value);
#else
static inline std::string pm_rt_string(const char* data, unsigned long size) {
    return std::string(data, size);
}
#endif
#endif

#if defined(PM_STD_VECTORS) && defined(PM_RUNTIME_STD)
// The element types of the vectors held out of line (types.py's SCALARS but bool).
#define PM_HELD_VECTOR(T) \
    PM_HELD_INSTANCE template pm_buffer pm_held<std::vector<T>>(std::vector<T>&& value);
PM_HELD_VECTOR(signed char) PM_HELD_VECTOR(unsigned char) PM_HELD_VECTOR(short)
PM_HELD_VECTOR(unsigned short) PM_HELD_VECTOR(int) PM_HELD_VECTOR(unsigned int)
PM_HELD_VECTOR(long) PM_HELD_VECTOR(unsigned long) PM_HELD_VECTOR(long long)
PM_HELD_VECTOR(unsigned long long) PM_HELD_VECTOR(float) PM_HELD_VECTOR(double)
#undef PM_HELD_VECTOR
#endif
