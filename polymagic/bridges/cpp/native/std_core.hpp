// The smaller of the two standard preludes (see std_prelude.hpp): for a cell whose
// standard includes among std_prelude.hpp's are all here. Loading a precompiled
// header costs time in proportion to its size, and <algorithm>, <cmath>, <functional>
// and <memory> are most of std_prelude.hpp's. Every header here is also there.
#include <array>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>
#if __cplusplus >= 202002L
#include <span>
#endif
