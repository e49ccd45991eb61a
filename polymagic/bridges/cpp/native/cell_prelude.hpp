// The fixed part of every cell's translation unit, placed after the cell's own code,
// faults.h and holders.hpp, before its generated trampolines
// (polymagic/bridges/cpp/codegen.py pastes it in after
// `#line 1 "<polymagic trampolines>"`, so that diagnostics in generated code are
// reported as a polymagic bug; it is not compiled on its own).
extern "C" {
void pm_rt_capture(int);
void pm_rt_check_callback(void);
void pm_rt_clear_callback(void);
void pm_rt_stale_callback(void);
void pm_rt_stack_check(int);
int pm_python_room(void);
void pm_rt_unconnected_import(const char*);
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

// One call from Python (a trampoline) on this thread's chain of frames (faults.h),
// taken off however the call ends.
extern "C" void pm_rt_fault_landed(pm_frame*, int);
struct pm_call_frame : pm_frame {
    pm_call_frame() {
        outer = pm_fault_top;
        kind = PM_FRAME_CPP;
        interrupts = 0;
        if (__builtin_expect(!pm_fault_thread_ready, 0)) pm_fault_thread_setup();
    }
    ~pm_call_frame() { pm_fault_top = outer; }
};
// Opens every trampoline, after its argument guards: the point a fault, exit() or a
// forced Ctrl-C jumps back to (sigsetjmp must run in the trampoline's own frame; 0:
// the signal mask is not saved, which keeps it cheap, and the landing unblocks the
// signal), then the frame goes on the chain.
#define PM_CALL_FRAME(index, failed) \
    pm_call_frame pm_frame_; \
    if (__builtin_expect(sigsetjmp(pm_frame_.jump, 0) != 0, 0)) { \
        pm_rt_fault_landed(&pm_frame_, index); \
        failed \
    } \
    pm_fault_top = &pm_frame_;
// C++ calling Python: a signal there is Python's (or its C extensions') to handle.
struct pm_python_frame : pm_frame {
    pm_python_frame() { outer = pm_fault_top; kind = PM_FRAME_PYTHON; pm_fault_top = this; }
    ~pm_python_frame() { pm_fault_top = outer; }
};
