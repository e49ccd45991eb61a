// std::map and std::unordered_map <-> dict (after containers.hpp, for cells that use
// them). In: a dict or any mapping (an object with keys()). Out: a dict (a copy).
#include <map>
#include <unordered_map>

namespace pm_cv {

template <class M> struct map_cv {
    using K = typename M::key_type;
    using V = typename M::mapped_type;
    static constexpr const char* expected = "a dict (C++ std::map)";

    static M from(object o) {
        void* dict = nullptr;
        if (checked(pm_cv_mapping(o, &dict)) != 0) fail(o, expected);
        ref owned(dict);
        M out;
        long position = 0;
        void* key = nullptr;
        void* value = nullptr;
        while (pm_cv_dict_next(dict, &position, &key, &value)) {
            ref held_key = borrow(key), held_value = borrow(value);
            K converted = [&] {
                try {
                    return cv<K>::from(key);
                } catch (failure& problem) {  // a key of the wrong type: said so
                    if (problem.path[0] == '\0') problem.why = BAD_KEY;
                    throw;
                }
            }();
            V mapped = [&] {
                try {
                    return cv<V>::from(value);
                } catch (failure& problem) {
                    problem.prefix_key(key);
                    throw;
                }
            }();
            out.emplace(std::move(converted), std::move(mapped));
        }
        return out;
    }

    static object to(const M& value) {
        ref dict(made(pm_cv_dict()));
        for (const auto& item : value) {
            ref key(cv<K>::to(item.first));
            ref mapped(cv<V>::to(item.second));
            if (pm_cv_dict_set(dict.p, key.release(), mapped.release()) < 0)
                python_failed();
        }
        return dict.release();
    }

    // An out-parameter is a dict, cleared and refilled after the call.
    static void check_target(object target) {
        if (pm_cv_target_kind(target) != 2)
            fail(target, "a dict (C++ fills it: a std::map& parameter)");
    }

    static void write_back(object target, const M& value, const names&) {
        if (pm_cv_write_back(target, to(value)) < 0) python_failed();
    }
};

template <class K, class V, class C, class A>
struct cv<std::map<K, V, C, A>> : map_cv<std::map<K, V, C, A>> {};
template <class K, class V, class H, class E, class A>
struct cv<std::unordered_map<K, V, H, E, A>> : map_cv<std::unordered_map<K, V, H, E, A>> {};

}  // namespace pm_cv
