// Standard containers <-> Python objects, for the cells whose functions take or return
// them: the core (scalars, strings, how an argument, a result and an out-parameter
// are converted). Each container family has its own file (containers_vector.hpp ...),
// pasted in after this one only when a cell uses it, as is this file
// (polymagic/bridges/cpp/containers.py; it is not compiled on its own).
//
// Python objects are read and built through the module's C glue
// (native/containers_glue.c, compiled with Python.h), so the cell itself is compiled
// without Python's headers. Trampolines run without the GIL: each conversion takes it
// once (pm_cv::gil). A value that does not convert throws pm_cv::failure, which each
// container level prefixes with where it was (`[2]`, `['a']`); at the top it becomes
// a ConversionError in Python (containers.conversion_error). Every conversion copies.
#if __cplusplus < 201703L
#error "polymagic converts standard containers in C++17 or later (--std c++17 or c++20)"
#endif
// The core includes only light headers (<string> and <memory> cost ~0.25 s each to
// parse): strings are a family of their own (containers_string.hpp).
#include <cstddef>
#include <cstring>
#include <exception>
#include <limits>
#include <new>
#include <type_traits>
#include <utility>

extern "C" {
int pm_cv_gil_take(void);
void pm_cv_gil_give(int);
void pm_cv_incref(void*);
void pm_cv_decref(void*);
int pm_cv_is_none(void*);
void pm_cv_python_failed(void);
int pm_cv_to_signed(void*, long long, long long, long long*);
int pm_cv_to_unsigned(void*, unsigned long long, unsigned long long*);
int pm_cv_to_double(void*, double*);
int pm_cv_to_bool(void*, int*);
int pm_cv_to_text(void*, const char**, std::size_t*);
int pm_cv_sequence(void*, void**, std::size_t*);
void* pm_cv_item(void*, std::size_t);
int pm_cv_fixed(void*, std::size_t, void**);
int pm_cv_mapping(void*, void**);
long pm_cv_dict_size(void*);
int pm_cv_dict_next(void*, long*, void**, void**);
int pm_cv_buffer(void*, char, std::size_t, int, void**, void**, std::size_t*);
void pm_cv_buffer_release(void*);
int pm_cv_target_kind(void*);
void pm_cv_repr(void*, char*, std::size_t);
void* pm_cv_long(long long);
void* pm_cv_ulong(unsigned long long);
void* pm_cv_double(double);
void* pm_cv_bool(int);
void* pm_cv_none(void);
void* pm_cv_str(const char*, std::size_t);
void* pm_cv_list(std::size_t);
void pm_cv_list_set(void*, std::size_t, void*);
void* pm_cv_tuple(std::size_t);
void pm_cv_tuple_set(void*, std::size_t, void*);
void* pm_cv_dict(void);
int pm_cv_dict_set(void*, void*, void*);
void* pm_cv_array(const void*, std::size_t, std::size_t, const char*);
__UINTPTR_TYPE__ pm_cv_keep_result(void*);
void pm_cv_argument_failed(const char*, const char*, const char*, void*, const char*,
                           const char*, void*, int);
int pm_cv_write_back(void*, void*);
void pm_cv_resized(const char*, const char*, const char*, void*, std::size_t);
}

namespace pm_cv {

using object = void*;

// The GIL for the length of one conversion. Code run in there is Python's (a
// number's __index__, a mapping's keys()): a signal in it is Python's to handle.
struct gil {
    pm_python_frame frame;
    int state;
    gil() : state(pm_cv_gil_take()) {}
    ~gil() { pm_cv_gil_give(state); }
    gil(const gil&) = delete;
    gil& operator=(const gil&) = delete;
};

// An owned reference (copied and dropped with the GIL held, as all of this code runs).
struct ref {
    object p;
    explicit ref(object o = nullptr) : p(o) {}
    ref(const ref& other) : p(other.p) { if (p) pm_cv_incref(p); }
    ref(ref&& other) noexcept : p(other.p) { other.p = nullptr; }
    ref& operator=(ref other) noexcept { std::swap(p, other.p); return *this; }
    ~ref() { if (p) pm_cv_decref(p); }
    object release() { object o = p; p = nullptr; return o; }
};

inline ref borrow(object o) { pm_cv_incref(o); return ref(o); }

// Why a value did not convert (kept in Python's message): 0 wrong type, 1 out of
// range, 2 a str that is not valid Unicode; `key`: the failing object is a dict key.
enum reason { WRONG_TYPE = 0, OUT_OF_RANGE = 1, NOT_UNICODE = 2, BAD_KEY = 3 };

struct failure {
    char path[256];        // where below the argument: "[2]['a']", "" for the argument
    const char* expected;  // "float (C++ double)"
    ref bad;               // the object that did not convert
    int why;

    // Put `where` in front of the path (cut, marked "...", when it gets too long).
    void prefix(const char* where) {
        const std::size_t room = sizeof path - 1;
        std::size_t add = std::strlen(where), had = std::strlen(path);
        if (add > room) add = room;
        if (add + had > room) {
            had = room - add;
            if (had >= 3) std::memcpy(path + had - 3, "...", 3);
        }
        std::memmove(path + add, path, had);
        std::memcpy(path, where, add);
        path[add + had] = '\0';
    }
    void prefix_index(std::size_t index) {
        char text[32], digits[24];
        int count = 0;
        do digits[count++] = char('0' + index % 10); while ((index /= 10) != 0);
        int length = 0;
        text[length++] = '[';
        while (count) text[length++] = digits[--count];
        text[length++] = ']';
        text[length] = '\0';
        prefix(text);
    }
    void prefix_key(object key);  // "[repr(key)]"
};

[[noreturn]] inline void fail(object o, const char* expected, int why = WRONG_TYPE) {
    throw failure{{}, expected, borrow(o), why};
}

// A Python error is set (MemoryError, an error raised by an object's own code): it
// unwinds the C++ frames as a callback's error does, and Python raises it as it is.
[[noreturn]] inline void python_failed() {
    pm_cv_python_failed();
    pm_rt_check_callback();
    throw std::bad_alloc();  // not reached: the line above throws the Python error
}

inline object made(object o) {
    if (o == nullptr) python_failed();
    return o;
}

// Reads a status of the glue's reading functions: -1 is a Python error.
inline int checked(int status) {
    if (status < 0) python_failed();
    return status;
}

inline void failure::prefix_key(object key) {
    char text[72];
    text[0] = '[';
    pm_cv_repr(key, text + 1, sizeof text - 2);
    std::strcat(text, "]");
    prefix(text);
}

// The converter of each type: static T from(object) and static object to(const T&)
// (a new reference), and `expected`, the Python form named in messages.
template <class T, class = void> struct cv;

template <class T> constexpr const char* scalar_message() {
    if constexpr (std::is_same_v<T, bool>) return "bool (C++ bool)";
    else if constexpr (std::is_same_v<T, double>) return "float (C++ double)";
    else if constexpr (std::is_same_v<T, float>) return "float (C++ float)";
    else if constexpr (std::is_same_v<T, signed char>) return "int (C++ signed char)";
    else if constexpr (std::is_same_v<T, unsigned char>) return "int (C++ unsigned char)";
    else if constexpr (std::is_same_v<T, short>) return "int (C++ short)";
    else if constexpr (std::is_same_v<T, unsigned short>) return "int (C++ unsigned short)";
    else if constexpr (std::is_same_v<T, int>) return "int (C++ int)";
    else if constexpr (std::is_same_v<T, unsigned int>) return "int (C++ unsigned int)";
    else if constexpr (std::is_same_v<T, long>) return "int (C++ long)";
    else if constexpr (std::is_same_v<T, unsigned long>) return "int (C++ unsigned long)";
    else if constexpr (std::is_same_v<T, long long>) return "int (C++ long long)";
    else if constexpr (std::is_same_v<T, unsigned long long>)
        return "int (C++ unsigned long long)";
    else return "a number";
}

// Arithmetic types and bool: Python int, float, bool (and NumPy's numbers).
template <class T> struct cv<T, std::enable_if_t<std::is_arithmetic_v<T>>> {
    static constexpr const char* expected = scalar_message<T>();
    static T from(object o) {
        int status;
        if constexpr (std::is_same_v<T, bool>) {
            int value = 0;
            status = checked(pm_cv_to_bool(o, &value));
            if (status == 0) return value != 0;
        } else if constexpr (std::is_floating_point_v<T>) {
            double value = 0;
            status = checked(pm_cv_to_double(o, &value));
            if (status == 0) return static_cast<T>(value);
        } else if constexpr (std::is_signed_v<T>) {
            long long value = 0;
            status = checked(pm_cv_to_signed(o, std::numeric_limits<T>::min(),
                                             std::numeric_limits<T>::max(), &value));
            if (status == 0) return static_cast<T>(value);
        } else {
            unsigned long long value = 0;
            status = checked(pm_cv_to_unsigned(o, std::numeric_limits<T>::max(), &value));
            if (status == 0) return static_cast<T>(value);
        }
        fail(o, expected, status == 2 ? OUT_OF_RANGE : WRONG_TYPE);
    }
    static object to(T value) {
        if constexpr (std::is_same_v<T, bool>) return made(pm_cv_bool(value));
        else if constexpr (std::is_floating_point_v<T>) return made(pm_cv_double(value));
        else if constexpr (std::is_signed_v<T>) return made(pm_cv_long(value));
        else return made(pm_cv_ulong(value));
    }
};

// NumPy's name for an arithmetic type, and what the glue's buffer check calls its kind.
template <class T> constexpr const char* dtype_code() {
    if constexpr (std::is_same_v<T, bool>) return "?";
    else if constexpr (std::is_floating_point_v<T>) return sizeof(T) == 4 ? "f4" : "f8";
    else if constexpr (std::is_signed_v<T>)
        return sizeof(T) == 1 ? "i1" : sizeof(T) == 2 ? "i2" : sizeof(T) == 4 ? "i4" : "i8";
    else return sizeof(T) == 1 ? "u1" : sizeof(T) == 2 ? "u2" : sizeof(T) == 4 ? "u4" : "u8";
}

template <class T> constexpr char buffer_kind() {
    return std::is_same_v<T, bool> ? 'b' : std::is_floating_point_v<T> ? 'f'
         : std::is_signed_v<T> ? 'i' : 'u';
}

// An argument (the Python object the wrapper holds alive for the call): converted
// with the GIL held; a failure becomes the ConversionError Python raises.
// Names the function, the parameter and its C++ type, for messages.
struct names {
    const char* function;
    const char* param;
    const char* cpp;
};

[[noreturn]] inline void argument_failed(const names& where, object value,
                                         const failure& problem) {
    pm_cv_argument_failed(where.function, where.param, where.cpp, value,
                          problem.path, problem.expected, problem.bad.p,
                          problem.why);
    pm_rt_check_callback();  // throws the ConversionError
    throw std::bad_alloc();  // not reached
}

template <class T> T argument(__UINTPTR_TYPE__ value, names where) {
    gil lock;
    try {
        return cv<T>::from(reinterpret_cast<object>(value));
    } catch (failure& problem) {
        argument_failed(where, reinterpret_cast<object>(value), problem);
    }
}
// A result: converted with the GIL held and kept for the Python wrapper, which takes
// it by the handle returned (its address).
template <class T> __UINTPTR_TYPE__ result(const T& value) {
    gil lock;
    __UINTPTR_TYPE__ handle = pm_cv_keep_result(cv<T>::to(value));
    if (handle == 0) python_failed();
    return handle;
}

// A non-const reference parameter: C++ works on a copy of the caller's list, dict or
// NumPy array, whose contents are written back after the call (not when it throws).
// Lives until the end of the trampoline's call expression.
template <class T> struct out_argument {
    object target;
    names where;
    int unwinding;
    T value;
    out_argument(__UINTPTR_TYPE__ given, names where_)
        : target(reinterpret_cast<object>(given)), where(where_),
          unwinding(std::uncaught_exceptions()), value(take()) {}
    T& get() { return value; }
    T take() {
        gil lock;
        try {
            cv<T>::check_target(target);
            return cv<T>::from(target);
        } catch (failure& problem) {
            argument_failed(where, target, problem);
        }
    }
    ~out_argument() noexcept(false) {
        if (std::uncaught_exceptions() > unwinding) return;  // the call threw
        gil lock;
        cv<T>::write_back(target, value, where);
    }
};

}  // namespace pm_cv
