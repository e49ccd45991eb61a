// What holds a std::string or std::vector a cell returns, for as long as Python needs
// its memory: pasted into every cell's translation unit (codegen.py, before
// cell_prelude.hpp) and included by std_calls.cpp, which is compiled once into
// polymagic's C++ runtime; pm_release (there) deletes any of them.
#ifndef POLYMAGIC_HOLDERS_HPP
#define POLYMAGIC_HOLDERS_HPP
extern "C" {
void pm_rt_holder_created(void);
void pm_rt_holder_destroyed(void);
// The C++ side of pm_buffer must match glue_cdef.h, field by field.
struct pm_buffer { void* owner; void* data; unsigned long size; };
}
// Owns a returned vector or string for as long as NumPy (or Python) needs its memory.
struct pm_holder_base {
    pm_holder_base() { pm_rt_holder_created(); }
    virtual ~pm_holder_base() { pm_rt_holder_destroyed(); }
};
template <class T> struct pm_holder : pm_holder_base {
    T value;
    explicit pm_holder(T&& moved) : value(static_cast<T&&>(moved)) {}
};
template <class T> pm_holder<T>* pm_hold(T&& value) {
    return new pm_holder<T>(static_cast<T&&>(value));
}
template <class T> pm_buffer pm_buffer_of(pm_holder<T>* holder) {
    return pm_buffer{holder, (void*)holder->value.data(),
                     (unsigned long)holder->value.size()};
}
// A result moved into a new holder, as the buffer Python gets. std_calls.hpp declares
// its instantiations for std::string and vectors of numbers `extern`: they are compiled
// once in the runtime, not in every cell (instantiations, not overloads: the overloads
// would all be weighed, and their vector classes instantiated, at each call).
template <class T> pm_buffer pm_held(T&& value) {
    return pm_buffer_of(pm_hold(static_cast<T&&>(value)));
}
#endif
