// The standard headers a %%cpp cell most often includes, precompiled once per
// compiler and flags (polymagic/bridges/cpp/prelude.py) and force-included before a
// cell whose own includes allow it, so that g++ and libclang load them instead of
// parsing them again for every new cell. Not compiled on its own.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <numeric>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>
#if __cplusplus >= 202002L
#include <span>
#endif
