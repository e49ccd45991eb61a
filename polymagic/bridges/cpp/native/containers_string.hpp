// std::string and std::string_view <-> str (after containers.hpp, for cells whose
// containers hold strings).
#include <string>
#include <string_view>

namespace pm_cv {

// std::string: str (UTF-8) or bytes in, str out (undecodable bytes as surrogates).
template <class C, class A> struct cv<std::basic_string<char, C, A>> {
    using string = std::basic_string<char, C, A>;
    static constexpr const char* expected = "str (C++ std::string)";
    static string from(object o) {
        const char* data = nullptr;
        std::size_t size = 0;
        int status = checked(pm_cv_to_text(o, &data, &size));
        if (status != 0) fail(o, expected, status == 2 ? NOT_UNICODE : WRONG_TYPE);
        return string(data, size);
    }
    static object to(const string& value) { return made(pm_cv_str(value.data(), value.size())); }
};

// std::string_view: results only inside containers (copied into a str); a view
// taken from an element could outlive the Python object it views.
template <class C> struct cv<std::basic_string_view<char, C>> {
    static constexpr const char* expected = "str (C++ std::string_view)";
    static object to(std::basic_string_view<char, C> value) {
        return made(pm_cv_str(value.data(), value.size()));
    }
};

}  // namespace pm_cv
