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
