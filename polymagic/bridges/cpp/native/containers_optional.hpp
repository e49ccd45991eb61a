// std::optional <-> a value or None (after containers.hpp, for cells that use it).
#include <optional>

namespace pm_cv {

template <class T> struct cv<std::optional<T>> {
    static constexpr const char* expected = "None or a value (C++ std::optional)";
    static std::optional<T> from(object o) {
        if (pm_cv_is_none(o)) return std::nullopt;
        return cv<T>::from(o);
    }
    static object to(const std::optional<T>& value) {
        return value ? cv<T>::to(*value) : made(pm_cv_none());
    }
};

}  // namespace pm_cv
