// std::pair and std::tuple <-> tuple (after containers.hpp, for cells that use them).
// In: a tuple or list of exactly as many items. Out: a tuple (a copy).
#include <tuple>
#include <utility>

namespace pm_cv {

template <class Tuple, class... T> struct tuple_cv {
    static constexpr const char* expected =
        sizeof...(T) == 2 ? "a tuple of 2 items (C++ std::pair or std::tuple)"
                          : "a tuple of as many items as the C++ std::tuple";

    template <std::size_t... I> static Tuple from(object o, std::index_sequence<I...>) {
        void* items = nullptr;
        if (checked(pm_cv_fixed(o, sizeof...(T), &items)) != 0) fail(o, expected);
        ref owned(items);
        return Tuple{item<T>(items, I)...};  // braces: the items convert in order
    }
    template <class Item> static Item item(void* items, std::size_t index) {
        try {
            return cv<Item>::from(pm_cv_item(items, index));
        } catch (failure& problem) {
            problem.prefix_index(index);
            throw;
        }
    }
    static Tuple from(object o) { return from(o, std::index_sequence_for<T...>{}); }

    template <std::size_t... I> static object to(const Tuple& value, std::index_sequence<I...>) {
        ref tuple(made(pm_cv_tuple(sizeof...(T))));
        (pm_cv_tuple_set(tuple.p, I, cv<T>::to(std::get<I>(value))), ...);
        return tuple.release();
    }
    static object to(const Tuple& value) { return to(value, std::index_sequence_for<T...>{}); }
};

template <class A, class B> struct cv<std::pair<A, B>> : tuple_cv<std::pair<A, B>, A, B> {};
template <class... T> struct cv<std::tuple<T...>> : tuple_cv<std::tuple<T...>, T...> {};

}  // namespace pm_cv
