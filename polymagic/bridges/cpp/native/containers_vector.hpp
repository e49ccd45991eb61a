// std::vector <-> Python (after containers.hpp, for cells that use vectors).
// In: a list, tuple, any iterable but str/bytes/dict/set, or a NumPy array (an array
// of exactly the element type is copied at once, others element by element). Out: a
// NumPy array for arithmetic elements (a copy), a list otherwise.
#include <vector>

namespace pm_cv {

template <class T, class A> struct cv<std::vector<T, A>> {
    using vector = std::vector<T, A>;
    static constexpr const char* expected =
        "a sequence (list, tuple or 1-D NumPy array; C++ std::vector)";

    static bool from_buffer(object o, vector& out) {
        if constexpr (std::is_arithmetic_v<T>) {
            void* view = nullptr;
            void* data = nullptr;
            std::size_t size = 0;
            if (checked(pm_cv_buffer(o, buffer_kind<T>(), sizeof(T), 0, &view, &data,
                                     &size)) != 0)
                return false;
            const T* first = static_cast<const T*>(data);
            out.assign(first, first + size);
            pm_cv_buffer_release(view);
            return true;
        }
        return false;
    }

    static vector from(object o) {
        vector out;
        if (from_buffer(o, out)) return out;
        void* items = nullptr;
        std::size_t size = 0;
        if (checked(pm_cv_sequence(o, &items, &size)) != 0) fail(o, expected);
        ref owned(items);
        out.reserve(size);
        for (std::size_t i = 0; i < size; ++i) {
            object item = pm_cv_item(items, i);
            if (item == nullptr) break;  // the object's own code shortened it
            ref held = borrow(item);
            try {
                out.push_back(cv<T>::from(item));
            } catch (failure& problem) {
                problem.prefix_index(i);
                throw;
            }
        }
        return out;
    }

    static object to(const vector& value) {
        if constexpr (std::is_arithmetic_v<T>) {
            if constexpr (std::is_same_v<T, bool>) {  // packed: unpack into bools
                std::vector<unsigned char> bools(value.begin(), value.end());
                return made(pm_cv_array(bools.data(), bools.size(), 1, "?"));
            } else {
                return made(pm_cv_array(value.data(), value.size(), sizeof(T),
                                        dtype_code<T>()));
            }
        } else {
            return to_list(value);
        }
    }

    static object to_list(const vector& value) {
        ref list(made(pm_cv_list(value.size())));
        for (std::size_t i = 0; i < value.size(); ++i)
            pm_cv_list_set(list.p, i, cv<T>::to(value[i]));
        return list.release();
    }

    // An out-parameter is a list (refilled), or a NumPy array of exactly T (written in
    // place; it cannot change size).
    static void check_target(object target) {
        if (pm_cv_target_kind(target) == 1) return;
        if constexpr (std::is_arithmetic_v<T>) {
            void* view = nullptr;
            void* data = nullptr;
            std::size_t size = 0;
            if (checked(pm_cv_buffer(target, buffer_kind<T>(), sizeof(T), 1, &view, &data,
                                     &size)) == 0) {
                pm_cv_buffer_release(view);
                return;
            }
            fail(target, "a list, or a writable NumPy array of exactly the element "
                         "type (C++ fills it: std::vector<T>&)");
        }
        fail(target, "a list (C++ fills it: std::vector<T>&)");
    }

    static void write_back(object target, const vector& value, const names& where) {
        if (pm_cv_target_kind(target) == 1) {
            if (pm_cv_write_back(target, to_list(value)) < 0) python_failed();
            return;
        }
        if constexpr (std::is_arithmetic_v<T>) {
            void* view = nullptr;
            void* data = nullptr;
            std::size_t size = 0;
            checked(pm_cv_buffer(target, buffer_kind<T>(), sizeof(T), 1, &view, &data,
                                 &size));
            if (size != value.size()) {
                pm_cv_buffer_release(view);
                pm_cv_resized(where.function, where.param, where.cpp, target, value.size());
                pm_rt_check_callback();
            }
            T* out = static_cast<T*>(data);
            for (std::size_t i = 0; i < size; ++i) out[i] = value[i];
            pm_cv_buffer_release(view);
        }
    }
};

}  // namespace pm_cv
