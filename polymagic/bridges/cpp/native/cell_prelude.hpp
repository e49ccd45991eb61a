#line 1 "<polymagic trampolines>"
// The fixed part of every cell's translation unit, placed after the cell's own code
// and before its generated trampolines (polymagic/bridges/cpp/codegen.py pastes it
// in; it is not compiled on its own). The `#line` above makes compiler diagnostics in
// generated code name "<polymagic trampolines>", which the build reports as a
// polymagic bug rather than as the user's.
extern "C" {
void pm_rt_capture(int);
void pm_rt_check_callback(void);
void pm_rt_clear_callback(void);
void pm_rt_stale_callback(void);
void pm_rt_stack_check(int);
int pm_python_room(void);
void pm_rt_unconnected_import(const char*);
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
template <class T> static pm_holder<T>* pm_hold(T&& value) {
    return new pm_holder<T>(static_cast<T&&>(value));
}
template <class T> static pm_buffer pm_buffer_of(pm_holder<T>* holder) {
    return pm_buffer{holder, (void*)holder->value.data(),
                     (unsigned long)holder->value.size()};
}
// What a function-pointer parameter holds during one call: a C function pointer
// (a cffi pointer passed as such), or a Python callable (PyObject*, called through the
// module's C-API callers, polymagic/bridges/cpp/capi.py).
template <class F> struct pm_callback_slot {
    F c;
    __UINTPTR_TYPE__ py;
};
// Swap a thread-local callback slot for the duration of one call (nests correctly
// when the callback calls back into the same function).
template <class F> struct pm_slot_guard {
    F& slot;
    F saved;
    pm_slot_guard(F& target, F value) : slot(target), saved(target) { target = value; }
    ~pm_slot_guard() { slot = saved; }
};
extern "C" void pm_release(void* owner) { delete static_cast<pm_holder_base*>(owner); }
