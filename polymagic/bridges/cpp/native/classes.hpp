// Pasted into the trampolines of a cell that defines classes
// (polymagic/bridges/cpp/codegen.py; not compiled on its own): how generated code
// constructs, destroys and prints the cell's objects.
#include <cstring>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <type_traits>

// A class that declares no constructor: C++'s implicit default one, if it has one.
template <class T> static T* pm_construct() {
    if constexpr (std::is_default_constructible_v<T>) {
        return new T();
    } else {
        throw std::logic_error("this class has no default constructor");
    }
}

// The owning Python object died: delete what Python's constructor or a by-value
// result allocated (a class with a private destructor is left alone).
template <class T> static void pm_destroy(T* object) {
    if constexpr (std::is_destructible_v<T>) delete object;
}

// str() of an object with an operator<<(std::ostream&, const T&).
template <class T> static std::string pm_to_string(const T& object) {
    std::ostringstream text;
    text << object;
    return text.str();
}

// Where base B's part of a D object starts, in bytes from the D object (nonzero under
// multiple inheritance). Pointer arithmetic on storage no object lives in: valid for
// the non-virtual bases this is generated for.
template <class D, class B> static long pm_base_offset() {
    alignas(D) static unsigned char storage[sizeof(D)];
    D* derived = reinterpret_cast<D*>(storage);
    return reinterpret_cast<char*>(static_cast<B*>(derived)) -
           reinterpret_cast<char*>(derived);
}

// A trivially copyable object rebuilt from its bytes (unpickling): new storage, the
// bytes copied in; deleted like any other (its destructor is trivial).
template <class T> static T* pm_from_bytes(const unsigned char* bytes) {
    if constexpr (std::is_trivially_copyable_v<T>) {
        T* object = static_cast<T*>(::operator new(sizeof(T)));
        std::memcpy(static_cast<void*>(object), bytes, sizeof(T));
        return object;
    } else {
        throw std::logic_error("only trivially copyable objects are rebuilt from bytes");
    }
}

// A Python subclass's object (directors.py): made only when C++ agrees the generated
// subclass is concrete and constructible from these arguments, else a Python error.
template <class D, class... A> static D* pm_new_director(A&&... arguments) {
    if constexpr (!std::is_abstract_v<D> && std::is_constructible_v<D, A&&...>) {
        return new D(static_cast<A&&>(arguments)...);
    } else {
        throw std::logic_error("this class cannot be subclassed in Python: a pure "
                               "virtual method Python cannot override (its arguments "
                               "or result are not arithmetic, or it is not public)");
    }
}

[[noreturn]] static void pm_director_pure(const char* cls, const char* method) {
    throw std::logic_error(std::string("pure virtual ") + cls + "::" + method +
                           " called, and the Python subclass does not define " + method);
}

// Marks one override as running on this object while it calls Python, so that the
// same method called back from Python (super()) reaches C++'s own implementation.
struct pm_busy_guard {
    unsigned long long& busy;
    unsigned long long bit;
    pm_busy_guard(unsigned long long& flags, unsigned long long mask)
        : busy(flags), bit(mask) { busy |= bit; }
    ~pm_busy_guard() { busy &= ~bit; }
};
