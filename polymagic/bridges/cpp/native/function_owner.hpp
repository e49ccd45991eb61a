// Pasted into a cell's translation unit when one of its functions takes a
// std::function (polymagic/bridges/cpp/codegen.py; not compiled on its own).
//
// A std::function made from a Python callable may be kept by C++ after the call (a
// function pointer may not: see docs/cpp.md). Its copies share one owner; if any copy
// is still alive when the trampoline returns, the owner takes a reference to the
// callable (with the GIL) and drops it when the last copy is destroyed.
#include <memory>
extern "C" void pm_py_retain(__UINTPTR_TYPE__);
extern "C" void pm_py_release(__UINTPTR_TYPE__);
struct pm_py_owner {
    __UINTPTR_TYPE__ callable;
    bool owned;
    ~pm_py_owner() { if (owned) pm_py_release(callable); }
};
struct pm_py_keep {
    std::shared_ptr<pm_py_owner> owner;
    explicit pm_py_keep(__UINTPTR_TYPE__ callable)
        : owner(callable ? std::make_shared<pm_py_owner>(pm_py_owner{callable, false})
                         : nullptr) {}
    ~pm_py_keep() {
        if (owner && owner.use_count() > 1) {  // a copy outlives the call
            pm_py_retain(owner->callable);
            owner->owned = true;
        }
    }
};
