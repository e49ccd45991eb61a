/* What cffi is told about every cell module besides its trampolines (its `cdef`;
 * polymagic/bridges/cpp/codegen.py appends the cell's own prototypes). Declarations
 * only, in the subset of C that cffi's parser reads. */
typedef struct { void* owner; void* data; size_t size; } pm_buffer;
void pm_release(void* owner);
long pm_rt_live_holders(void);
void pm_rt_note_callback_error(long handle);
int pm_py_connect(uintptr_t table);
int pm_faults_setup(int flags);
