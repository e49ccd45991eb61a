// The out-of-line std::string and std::vector conversions of std_calls.hpp (the same
// lines, made instantiations here), and pm_release, which frees any holder: compiled
// once into polymagic's C++ runtime (polymagic/bridges/cpp/compiler.py), hidden in
// each cell module.
#include <string>
#include <vector>

#include "holders.hpp"
#define PM_STD_STRINGS 1
#define PM_STD_VECTORS 1
#define PM_HELD_INSTANCE
#include "std_calls.hpp"

extern "C" void pm_release(void* owner) { delete static_cast<pm_holder_base*>(owner); }

#ifdef PM_RUNTIME_STD
std::string pm_rt_string(const char* data, unsigned long size) {
    return std::string(data, size);
}
#endif
