// Out-of-line conversions a cell's trampolines call for std::string and
// std::vector<number> (compiled once in polymagic's C++ runtime: std_calls.cpp), so
// that a cell does not instantiate and optimise their constructors, moves and
// destructors again: a third of a small cell's build. Pasted by codegen.py after
// holders.hpp when the cell's functions take or return them, with PM_STD_STRINGS
// and/or PM_STD_VECTORS defined. Only where the cell's std::string and std::vector
// are the runtime's (libstdc++'s default ABI, no debug mode); elsewhere the templates
// of holders.hpp serve, and pm_rt_string is inline.
#if defined(__GLIBCXX__) && _GLIBCXX_USE_CXX11_ABI && !defined(_GLIBCXX_DEBUG)
#define PM_RUNTIME_STD 1
#endif

#ifdef PM_STD_STRINGS
#ifdef PM_RUNTIME_STD
std::string pm_rt_string(const char* data, unsigned long size);
template <> pm_buffer pm_held<std::string>(std::string&& value);
#else
static inline std::string pm_rt_string(const char* data, unsigned long size) {
    return std::string(data, size);
}
#endif
#endif

// The element types of the vectors held out of line (types.py's SCALARS but bool).
#define PM_VECTOR_ELEMENTS(X) X(signed char) X(unsigned char) X(short) \
    X(unsigned short) X(int) X(unsigned int) X(long) X(unsigned long) X(long long) \
    X(unsigned long long) X(float) X(double)
#if defined(PM_STD_VECTORS) && defined(PM_RUNTIME_STD)
#define PM_HELD_VECTOR(T) \
    template <> pm_buffer pm_held<std::vector<T>>(std::vector<T>&& value);
PM_VECTOR_ELEMENTS(PM_HELD_VECTOR)
#undef PM_HELD_VECTOR
#endif
