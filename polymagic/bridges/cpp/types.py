"""The C++ types that cross between Python and a %%cpp cell: one class per kind.

A function's signature is stored in the plan (JSON, so a cache hit needs no libclang)
as plain dicts, "type specs", each with a `kind`. `kind_of(spec)` gives the object
that knows everything about that kind, in one place (as cffi's model classes do):

* its C++ spelling (messages, generated C++) and its C spelling (cffi's cdef);
* how a trampoline takes it from C and passes it to the user's function (exports);
* how a PM_PYTHON function passes it to its slot (imports);
* its conversions on the Python side, bound to a module's ffi (`Context`).

Adding a kind is a class here, plus the line in signatures.py that recognises it in
clang's types. docs/cpp.md holds the table, with view or copy per row.
"""
from __future__ import annotations

import operator

from ...errors import ConversionError, UnsupportedType
from . import containers

# clang TypeKind name -> (C spelling, C++ spelling, NumPy dtype char, short tag)
SCALARS = {
    "BOOL": ("_Bool", "bool", "?", "bool"),
    "SCHAR": ("signed char", "signed char", "b", "int8"),
    "UCHAR": ("unsigned char", "unsigned char", "B", "uint8"),
    "SHORT": ("short", "short", "h", "short"),
    "USHORT": ("unsigned short", "unsigned short", "H", "ushort"),
    "INT": ("int", "int", "i", "int"),
    "UINT": ("unsigned int", "unsigned int", "I", "uint"),
    "LONG": ("long", "long", "l", "long"),
    "ULONG": ("unsigned long", "unsigned long", "L", "ulong"),
    "LONGLONG": ("long long", "long long", "q", "longlong"),
    "ULONGLONG": ("unsigned long long", "unsigned long long", "Q", "ulonglong"),
    "FLOAT": ("float", "float", "f", "float"),
    "DOUBLE": ("double", "double", "d", "double"),
}
_BY_TAG = {row[3]: row for row in SCALARS.values()}

# A C++ type that cannot cross (raised while reading signatures, caught there).
Unsupported = UnsupportedType


def c_name(tag: str) -> str:
    return _BY_TAG[tag][0]


def cpp_name(tag: str) -> str:
    return _BY_TAG[tag][1]


def dtype_char(tag: str) -> str:
    return _BY_TAG[tag][2]


def _const(spec: dict) -> str:
    return "const " if spec["const"] else ""


class Context:
    """What the Python-side conversions of one loaded module are bound to."""

    def __init__(self, ffi, lib):
        import numpy
        self.numpy, self.ffi, self.lib = numpy, ffi, lib


class Kind:
    """A kind of C++ type; subclasses say where it may appear and how it crosses.

    Parameter of an exported function: `trampoline_params` (C++) and `cdef_params` (C)
    are what the trampoline takes for it, `call_argument` the C++ expression passing
    them on, `argument_converter` the Python value -> C argument(s) conversion (`arity`
    of them; None: cffi passes the value as it is). Result of an exported function:
    `trampoline_result`, `cdef_result`, `result_converter`. Parameter and result of a
    PM_PYTHON function (an import): `slot_params`, `slot_cdef_params`, `slot_actuals`,
    `thunk_formals`, `thunk_converter`; `slot_result`, `python_result`.
    """

    name = ""
    direct = False  # cffi converts it by itself: no Python wrapper is needed
    arity = 1
    callback = False
    # Exports return it through a heap-held pm_buffer; imports fill it through a pointer.
    held = False
    import_result = False  # a PM_PYTHON function may return it
    # Why a PM_PYTHON function cannot take it (None: it can).
    import_param_hint: str | None = ("Python functions take arithmetic values, "
                                     "std::span<T>, const char* and strings")

    def __init__(self, spec: dict):
        self.spec = spec

    @classmethod
    def make(cls, **fields) -> dict:
        """A spec of this kind (what the plan stores)."""
        return {"kind": cls.name, **fields}

    def cpp(self) -> str:
        """How the type reads in C++ ("const double*", "std::span<int>")."""
        raise NotImplementedError

    def overload_tag(self) -> str:
        """Its part of an overload's export name (name__<tags>)."""
        return self.name

    # ---- parameter of an exported function (Python -> trampoline -> user's function)
    def trampoline_params(self, name: str) -> list[str]:
        raise ValueError(f"no trampoline parameter for {self.spec!r}")

    def cdef_params(self) -> list[str]:
        raise ValueError(f"no trampoline parameter for {self.spec!r}")

    def call_argument(self, name: str, function: dict, position: int) -> str:
        return name

    def before_call(self, function: dict, position: int) -> tuple[str, str]:
        """(definitions placed before the trampoline, statements opening it)."""
        return "", ""

    def argument_converter(self, context: Context, where: str):
        return None

    # ---- result of an exported function
    def trampoline_result(self) -> str:
        raise ValueError(f"no trampoline result for {self.spec!r}")

    def cdef_result(self) -> str:
        raise ValueError(f"no trampoline result for {self.spec!r}")

    def trampoline_return(self, call: str) -> tuple[str, str]:
        """(the statement returning `call`'s value, the one returning after a throw)."""
        return f"return {call};", "return {};"

    def result_converter(self, context: Context):
        return None

    # ---- parameter of a PM_PYTHON function (C++ -> slot -> Python thunk)
    def slot_params(self) -> list[str]:
        raise ValueError(f"no PM_PYTHON parameter for {self.spec!r}")

    def slot_cdef_params(self) -> list[str]:
        return self.cdef_params()

    def slot_actuals(self, name: str) -> list[str]:
        return [name]

    def thunk_formals(self, name: str) -> list[str]:
        return [name]

    def thunk_converter(self, context: Context):
        """C values of the thunk's formals -> the Python argument (None: as they are)."""
        return None

    # ---- result of a PM_PYTHON function
    def slot_result(self) -> str:
        return "void"

    def slot_cdef_result(self) -> str:
        return "void"

    def python_result(self, context: Context, function: dict):
        """The check/conversion of what the Python function returned (None: cffi's)."""
        return None

    def assigner(self) -> tuple[str, str, str] | None:
        """For a result Python fills in place: (C name, C++ definition, cdef line)."""
        return None


class Void(Kind):
    name = "void"
    direct = True
    import_result = True

    def cpp(self) -> str:
        return "void"

    def trampoline_result(self) -> str:
        return "void"

    def cdef_result(self) -> str:
        return "void"

    def trampoline_return(self, call: str) -> tuple[str, str]:
        return f"{call};", "return;"


class Scalar(Kind):
    """Arithmetic types and bool: values, converted by cffi itself."""

    name = "scalar"
    direct = True
    import_result = True
    import_param_hint = None

    @classmethod
    def spec_of(cls, clang_kind: str) -> dict:
        """The spec of an arithmetic type given its clang TypeKind name."""
        return cls.make(tag=SCALARS[clang_kind][3])

    @classmethod
    def of(cls, tag: str) -> "Scalar":
        return cls(cls.make(tag=tag))

    @property
    def tag(self) -> str:
        return self.spec["tag"]

    def cpp(self) -> str:
        return cpp_name(self.tag)

    def c(self) -> str:
        return c_name(self.tag)

    def overload_tag(self) -> str:
        return self.tag

    def trampoline_params(self, name: str) -> list[str]:
        return [f"{self.cpp()} {name}"]

    def cdef_params(self) -> list[str]:
        return [self.c()]

    def slot_params(self) -> list[str]:
        return [self.cpp()]

    def trampoline_result(self) -> str:
        return self.cpp()

    def cdef_result(self) -> str:
        return self.c()

    def slot_result(self) -> str:
        return self.cpp()

    def slot_cdef_result(self) -> str:
        return self.c()

    def python_result(self, context: Context, function: dict):
        if self.tag in ("float", "double"):
            return None  # cffi takes int, float and NumPy floats itself
        if self.tag == "bool":
            numpy_bool = context.numpy.bool_

            def bool_result(value):
                if isinstance(value, (bool, int, numpy_bool)):
                    return bool(value)
                raise result_error(function, value)
            return bool_result
        return lambda value: int_result(value, function)

    # ---- in the C-API callers (capi.py): boxed and unboxed in C, as cffi would
    _SIGNED_LIMITS = {"int8": ("SCHAR_MIN", "SCHAR_MAX"), "short": ("SHRT_MIN", "SHRT_MAX"),
                      "int": ("INT_MIN", "INT_MAX"), "long": ("LONG_MIN", "LONG_MAX"),
                      "longlong": ("LLONG_MIN", "LLONG_MAX"), "bool": ("0", "1")}
    _UNSIGNED_LIMITS = {"uint8": "UCHAR_MAX", "ushort": "USHRT_MAX", "uint": "UINT_MAX",
                        "ulong": "ULONG_MAX", "ulonglong": "ULLONG_MAX"}

    def c_box(self, name: str) -> str:
        """C expression: a new Python object for C value `name` (as cffi converts it)."""
        if self.tag in ("double", "float"):
            return f"PyFloat_FromDouble((double){name})"
        if self.tag == "bool":
            return f"PyBool_FromLong({name})"
        if self.tag in self._UNSIGNED_LIMITS:
            return f"PyLong_FromUnsignedLongLong((unsigned long long){name})"
        return f"PyLong_FromLongLong((long long){name})"

    def c_unbox(self, converter: str) -> str:
        """C statements: `result` (a Python object) into `*out`; `goto done` on error.
        Exact ints in range are taken in C; others go through `converter` (cffi's rules)."""
        c_type = self.c()
        if self.tag in ("double", "float"):
            # cffi converts with PyFloat_AsDouble too (ints, NumPy floats, __float__).
            return ("        double number = PyFloat_AsDouble(result);\n"
                    "        if (number == -1.0 && PyErr_Occurred()) goto done;\n"
                    f"        *out = ({c_type})number;\n")
        if self.tag in self._UNSIGNED_LIMITS:
            return ("        unsigned long long number;\n"
                    f"        if (pm_unsigned_result(result, {converter}, "
                    f"{self._UNSIGNED_LIMITS[self.tag]}, &number)) goto done;\n"
                    f"        *out = ({c_type})number;\n")
        low, high = self._SIGNED_LIMITS[self.tag]
        return ("        long long number;\n"
                f"        if (pm_signed_result(result, {converter}, {low}, {high}, "
                f"&number)) goto done;\n"
                f"        *out = ({c_type})number;\n")


def int_result(value, function: dict) -> int:
    """An int for an integer result: NumPy integers and bools, and integral floats
    (R's numbers are doubles: 3.0 is a fine int); anything else is refused."""
    if type(value) is int:
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    try:
        return operator.index(value)
    except TypeError:
        raise result_error(function, value) from None


class _ArrayLike(Kind):
    """T*, const T*, std::span<T>: a C-contiguous NumPy array of exactly T, as a view."""

    @property
    def tag(self) -> str:
        return self.spec["tag"]

    def overload_tag(self) -> str:
        return f"{self.name}{'c' if self.spec['const'] else ''}_{self.tag}"

    def _pointer(self) -> str:
        return f"{_const(self.spec)}{cpp_name(self.tag)}*"

    def _c_pointer(self) -> str:
        return f"{_const(self.spec)}{c_name(self.tag)} *"

    def _viewer(self, context: Context, where: str):
        """value -> a cffi pointer into the array's own memory, or ConversionError."""
        numpy, from_buffer = context.numpy, context.ffi.from_buffer
        expected = numpy.dtype(dtype_char(self.tag))
        wanted = f"{self.cpp()} takes a NumPy array of {expected}"
        cdecl, writable = f"{c_name(self.tag)}[]", not self.spec["const"]
        ndarray, spelled = numpy.ndarray, self.cpp()

        def view(value):
            if not isinstance(value, ndarray):
                raise ConversionError(f"{where}: C++ {wanted}, got {type(value).__name__}")
            if value.dtype != expected:
                raise ConversionError(f"{where}: C++ {wanted}, got an array of "
                                      f"{value.dtype} (convert it with "
                                      f".astype({expected.name!r}), a copy)")
            flags = value.flags
            if flags.c_contiguous and (flags.writeable or not writable):
                return from_buffer(cdecl, value, require_writable=writable)
            return contiguous_view(value, where, spelled, writable, from_buffer, cdecl)
        return view


def contiguous_view(value, where: str, cpp: str, writable: bool, from_buffer, cdecl: str):
    """A cffi pointer into the memory of `value`, an array of the right dtype, if it is
    C-contiguous and (when C++ may write to it, `writable`) writable."""
    if not value.flags.c_contiguous:
        raise ConversionError(f"{where}: C++ {cpp} takes contiguous memory; this array "
                              f"is strided (np.ascontiguousarray copies it)")
    if writable and not value.flags.writeable:
        raise ConversionError(f"{where}: C++ {cpp} may write to the array, but it is "
                              f"read-only (use a const pointer in C++, or pass a "
                              f"writable array)")
    return from_buffer(cdecl, value, require_writable=writable)


class Array(_ArrayLike):
    name = "array"
    import_param_hint = "declare it std::span<T> so that Python gets the length"

    def cpp(self) -> str:
        return self._pointer()

    def trampoline_params(self, name: str) -> list[str]:
        return [f"{self._pointer()} {name}"]

    def cdef_params(self) -> list[str]:
        return [self._c_pointer()]

    def argument_converter(self, context: Context, where: str):
        return self._viewer(context, where)


class SpanResult:
    """A std::span result: a view of memory C++ keeps (a method's keeps its object
    alive), with the element dtype `_dtype(context)` of the class it is mixed into."""

    keeps_receiver = True

    def trampoline_result(self) -> str:
        return "pm_buffer"

    def cdef_result(self) -> str:
        return "pm_buffer"

    def trampoline_return(self, call: str) -> tuple[str, str]:
        return (f"auto pm_span = {call}; return pm_buffer{{nullptr, (void*)pm_span.data(), "
                f"(unsigned long)pm_span.size()}};", "return {};")

    def result_converter(self, context: Context):
        """pm_buffer -> a NumPy view of that memory (read-only for a span of const T)."""
        numpy, ffi = context.numpy, context.ffi
        dtype, const = self._dtype(context), self.spec["const"]

        def take_span(buffer, receiver=None):
            if buffer.size == 0:
                return numpy.empty(0, dtype)
            data = ffi.gc(ffi.cast("char *", buffer.data),
                          lambda _data, _keep=receiver: None)
            array = numpy.frombuffer(ffi.buffer(data, buffer.size * dtype.itemsize), dtype)
            array.flags.writeable = not const
            return array
        return take_span


class Span(SpanResult, _ArrayLike):
    name = "span"
    arity = 2
    import_param_hint = None

    def cpp(self) -> str:
        return f"std::span<{_const(self.spec)}{cpp_name(self.tag)}>"

    def trampoline_params(self, name: str) -> list[str]:
        return [f"{self._pointer()} {name}", f"unsigned long {name}_n"]

    def cdef_params(self) -> list[str]:
        return [self._c_pointer(), "size_t"]

    def call_argument(self, name: str, function: dict, position: int) -> str:
        return f"{self.cpp()}({name}, {name}_n)"

    def argument_converter(self, context: Context, where: str):
        view = self._viewer(context, where)
        return lambda value: (view(value), value.size)

    def slot_params(self) -> list[str]:
        return [self._pointer(), "unsigned long"]

    def slot_actuals(self, name: str) -> list[str]:
        return [f"{name}.data()", f"(unsigned long){name}.size()"]

    def thunk_formals(self, name: str) -> list[str]:
        return [name, f"{name}_n"]

    def _dtype(self, context: Context):
        return context.numpy.dtype(dtype_char(self.tag))

    def thunk_converter(self, context: Context):
        """A NumPy view of the C++ span (valid during the call), read-only if const."""
        numpy, buffer = context.numpy, context.ffi.buffer
        dtype, const = numpy.dtype(dtype_char(self.tag)), self.spec["const"]

        def view(pointer, size):
            if size == 0:
                return numpy.empty(0, dtype)
            array = numpy.frombuffer(buffer(pointer, size * dtype.itemsize), dtype)
            if const:
                array.flags.writeable = False
            return array
        return view


def _to_bytes(kind: Kind, where: str):
    """str (UTF-8) or bytes -> bytes, for a string parameter."""
    def convert(value):
        if isinstance(value, str):
            try:
                return value.encode("utf-8")
            except UnicodeEncodeError as error:
                raise ConversionError(f"{where} is a C++ {kind.cpp()}, but the str cannot "
                                      f"be encoded as UTF-8 ({error.reason} at index "
                                      f"{error.start})") from None
        if isinstance(value, bytes):
            return value
        raise ConversionError(f"{where} is a C++ {kind.cpp()}: pass a str, got "
                              f"{type(value).__name__}")
    return convert


class CString(Kind):
    """const char*: a str or bytes in; a str out (copied)."""

    name = "cstr"
    import_param_hint = None

    def cpp(self) -> str:
        return "const char*"

    def trampoline_params(self, name: str) -> list[str]:
        return [f"const char* {name}"]

    def cdef_params(self) -> list[str]:
        return ["const char *"]

    def slot_params(self) -> list[str]:
        return ["const char*"]

    def argument_converter(self, context: Context, where: str):
        to_bytes = _to_bytes(self, where)

        def convert(value):
            data = to_bytes(value)
            if b"\0" in data:
                raise ConversionError(f"{where} contains a NUL character, which ends a "
                                      f"const char*")
            return data
        return convert

    def trampoline_result(self) -> str:
        return "const char*"

    def cdef_result(self) -> str:
        return "const char *"

    def result_converter(self, context: Context):
        ffi = context.ffi
        null, string = ffi.NULL, ffi.string
        return lambda pointer: None if pointer == null else \
            string(pointer).decode("utf-8", "surrogateescape")

    def thunk_converter(self, context: Context):
        string = context.ffi.string
        return lambda pointer: string(pointer).decode("utf-8", "surrogateescape")


class _HeldBuffer(Kind):
    """A result C++ owns (a string, a vector): the trampoline moves it into a holder
    and returns its buffer; Python releases the holder when done with the memory."""

    def trampoline_result(self) -> str:
        return "pm_buffer"

    def cdef_result(self) -> str:
        return "pm_buffer"

    def trampoline_return(self, call: str) -> tuple[str, str]:
        return f"return pm_held({call});", "return {};"


class String(_HeldBuffer):
    """std::string, const std::string&, std::string_view ("form": value, cref, view)."""

    name = "string"
    arity = 2
    held = True
    import_result = True
    import_param_hint = None
    _SPELLING = {"value": "std::string", "cref": "const std::string&",
                 "view": "std::string_view"}

    def cpp(self) -> str:
        return self._SPELLING[self.spec["form"]]

    def trampoline_params(self, name: str) -> list[str]:
        return [f"const char* {name}", f"unsigned long {name}_n"]

    def cdef_params(self) -> list[str]:
        return ["const char *", "size_t"]

    def call_argument(self, name: str, function: dict, position: int) -> str:
        if self.spec["form"] == "view":
            return f"std::string_view({name}, {name}_n)"
        return f"pm_rt_string({name}, {name}_n)"  # std_calls.hpp

    def argument_converter(self, context: Context, where: str):
        to_bytes = _to_bytes(self, where)

        def convert(value):
            data = to_bytes(value)
            return data, len(data)
        return convert

    def result_converter(self, context: Context):
        ffi, release = context.ffi, context.lib.pm_release

        def take_string(buffer):
            try:
                data = ffi.unpack(ffi.cast("char *", buffer.data), buffer.size)
            finally:
                release(buffer.owner)
            return data.decode("utf-8", "surrogateescape")
        return take_string

    def slot_params(self) -> list[str]:
        return ["const char*", "unsigned long"]

    def slot_actuals(self, name: str) -> list[str]:
        return [f"{name}.data()", f"(unsigned long){name}.size()"]

    def thunk_formals(self, name: str) -> list[str]:
        return [name, f"{name}_n"]

    def thunk_converter(self, context: Context):
        unpack = context.ffi.unpack
        return lambda pointer, size: unpack(pointer, size).decode("utf-8",
                                                                  "surrogateescape")

    def python_result(self, context: Context, function: dict):
        assign = context.lib.pm_assign_string

        def string_result(value, out):
            if isinstance(value, str):
                value = value.encode("utf-8", "surrogateescape")
            elif not isinstance(value, bytes):
                raise result_error(function, value)
            assign(out, value, len(value))
        return string_result

    def assigner(self) -> tuple[str, str, str]:
        return ("pm_assign_string",
                'extern "C" void pm_assign_string(void* target, const char* data, '
                'unsigned long size) { static_cast<std::string*>(target)->assign('
                'data, size); }\n',
                "void pm_assign_string(void *, const char *, size_t);")


class Vector(_HeldBuffer):
    """std::vector<T> (results only): exports hand NumPy the vector's own memory."""

    name = "vector"
    held = True
    import_result = True

    @property
    def tag(self) -> str:
        return self.spec["tag"]

    def cpp(self) -> str:
        return f"std::vector<{cpp_name(self.tag)}>"

    def _dtype(self, context: Context):
        return context.numpy.dtype(dtype_char(self.tag))

    def result_converter(self, context: Context):
        """A NumPy array over the vector's own memory; freed when the array is."""
        numpy, ffi, release = context.numpy, context.ffi, context.lib.pm_release
        dtype = self._dtype(context)

        def take_vector(buffer):
            if buffer.size == 0:
                release(buffer.owner)
                return numpy.empty(0, dtype)
            owner = buffer.owner
            data = ffi.gc(ffi.cast("char *", buffer.data), lambda _data: release(owner))
            return numpy.frombuffer(ffi.buffer(data, buffer.size * dtype.itemsize), dtype)
        return take_vector

    def python_result(self, context: Context, function: dict):
        """Copy a NumPy array (or a sequence) into the std::vector C++ returns."""
        numpy, ffi = context.numpy, context.ffi
        dtype = numpy.dtype(dtype_char(self.tag))
        assign, cdecl = getattr(context.lib, self.assigner()[0]), f"{c_name(self.tag)}[]"

        def vector_result(value, out):
            try:
                array = numpy.ascontiguousarray(value, dtype=dtype)
            except (TypeError, ValueError):
                raise result_error(function, value) from None
            if array.ndim != 1:
                raise result_error(function, value)
            assign(out, ffi.from_buffer(cdecl, array), array.size)
        return vector_result

    def assigner(self) -> tuple[str, str, str]:
        name, element = f"pm_assign_vector_{self.tag}", cpp_name(self.tag)
        return (name,
                f'extern "C" void {name}(void* target, const {element}* data, '
                f'unsigned long size) {{ static_cast<std::vector<{element}>*>(target)'
                f'->assign(data, data + size); }}\n',
                f"void {name}(void *, const {c_name(self.tag)} *, size_t);")


class _Callback(Kind):
    """A C++ callable parameter with arithmetic types: any Python callable (called by
    the module's C-API caller for its signature) or a cffi function pointer."""

    arity = 2
    callback = True

    def cpp_types(self) -> tuple[str, list[str]]:
        ret = self.spec["ret"]
        return ("void" if ret is None else cpp_name(ret)), \
            [cpp_name(arg) for arg in self.spec["args"]]

    def signature(self) -> str:
        ret, args = self.cpp_types()
        return f"{ret}({', '.join(args)})"

    def cdecl(self) -> str:
        """The cffi declaration of its function pointer: 'double(*)(double)'."""
        ret = "void" if self.spec["ret"] is None else c_name(self.spec["ret"])
        args = ", ".join(c_name(arg) for arg in self.spec["args"]) or "void"
        return f"{ret}(*)({args})"

    def signature_key(self) -> tuple:
        """(result tag or None, argument tags): one C-API caller per key."""
        return self.spec["ret"], tuple(self.spec["args"])

    def caller_name(self) -> str:
        return caller_name(self.signature_key())

    def trampoline_params(self, name: str) -> list[str]:
        ret, args = self.cpp_types()
        return [f"{ret} (*{name})({', '.join(args) or 'void'})",
                f"__UINTPTR_TYPE__ {name}_py"]

    def cdef_params(self) -> list[str]:
        return [self.cdecl(), "uintptr_t"]  # a C pointer, or id(callable)

    def call_body(self, c_pointer: str, callable_: str) -> str:
        """Statements calling the callback: the C pointer if set, else the Python
        callable through the module's C-API caller; then a Python error is thrown."""
        ret, args = self.cpp_types()
        actuals = [f"x{i}" for i in range(len(args))]
        c_call = f"{c_pointer}({', '.join(actuals)})"
        py_call = f"{self.caller_name()}({', '.join([callable_, *actuals])}"
        if ret == "void":
            return (f"pm_rt_stack_check(pm_python_room()); if ({c_pointer}) {c_call}; "
                    f"else {py_call}); pm_rt_check_callback();")
        return (f"pm_rt_stack_check(pm_python_room()); {ret} r; if ({c_pointer}) r = "
                f"{c_call}; else {py_call}, &r); pm_rt_check_callback(); return r;")

    def formals(self) -> str:
        _ret, args = self.cpp_types()
        return ", ".join(f"{arg} x{i}" for i, arg in enumerate(args))

    def argument_converter(self, context: Context, where: str):
        """(C function pointer, callable's address): a cffi function pointer of the
        parameter's type is passed as such; any other callable is called by the
        module's C glue (capi.py), which holds no reference to it: the call (the
        wrapper's argument) keeps it alive."""
        ffi = context.ffi
        pointer_type, cdata, null = ffi.typeof(self.cdecl()), ffi.CData, ffi.NULL

        def convert(value):
            if isinstance(value, cdata) and ffi.typeof(value) == pointer_type:
                return value, 0
            if not callable(value):
                raise ConversionError(f"{where} is a C++ {self.cpp()}: pass a callable, "
                                      f"got {type(value).__name__}")
            return null, id(value)
        return convert


def caller_name(key: tuple) -> str:
    """`pm_pycall_double__double_int`: the C caller for one callback signature."""
    ret, args = key
    return f"pm_pycall_{ret or 'void'}__{'_'.join(args) or 'void'}"


class FunctionPointer(_Callback):
    """R (*)(Args...): valid during the call only. A function pointer carries no data,
    so C++ gets a per-parameter thunk that finds the callable in a thread-local slot
    set for the duration of the call."""

    name = "fnptr"

    def cpp(self) -> str:
        return self.signature().replace("(", "(*)(", 1)

    def call_argument(self, name: str, function: dict, position: int) -> str:
        return f"&pm_thunk_{function['index']}_{position}"

    def before_call(self, function: dict, position: int) -> tuple[str, str]:
        ret, args = self.cpp_types()
        slot = f"pm_slot_{function['index']}_{position}"
        pointer = f"{ret} (*)({', '.join(args) or 'void'})"
        thunk = (f"static thread_local pm_callback_slot<{pointer}> {slot} = "
                 f"{{nullptr, 0}};\n"
                 f"static {ret} pm_thunk_{function['index']}_{position}"
                 f"({self.formals()}) {{\n"
                 f"    auto callback = {slot};\n"
                 f"    if (!callback.c && !callback.py) pm_rt_stale_callback();\n"
                 f"    {self.call_body('callback.c', 'callback.py')}\n}}\n")
        guard = (f"    pm_slot_guard<decltype({slot})> guard{position}({slot}, "
                 f"{{a{position}, a{position}_py}});\n")
        return thunk, guard


class StdFunction(_Callback):
    """std::function<R(Args...)>: may be kept by C++ (see native/function_owner.hpp)."""

    name = "function"

    def cpp(self) -> str:
        return f"std::function<{self.signature()}>"

    def call_argument(self, name: str, function: dict, position: int) -> str:
        return (f"{self.cpp()}([c = {name}, py = pm_keep{position}.owner]"
                f"({self.formals()}) {{ {self.call_body('c', 'py->callable')} }})")

    def before_call(self, function: dict, position: int) -> tuple[str, str]:
        return "", f"    pm_py_keep pm_keep{position}(a{position}_py);\n"


KINDS = {cls.name: cls for cls in (*containers.kinds(Kind, String),  # containers.py
                                   Void, Scalar, Array, Span, CString, String, Vector,
                                   FunctionPointer, StdFunction)}


def kind_of(spec: dict) -> Kind:
    """The kind object of a type spec."""
    try:
        return KINDS[spec["kind"]](spec)
    except KeyError:
        raise ValueError(f"unknown type spec {spec!r}") from None


def describe(spec: dict) -> str:
    """How a spec reads in C++, for messages ("const double*", "std::span<int>")."""
    return kind_of(spec).cpp()


def describe_import(function: dict) -> str:
    """'PM_PYTHON double fib_py(int n)', for messages."""
    params = ", ".join(f"{describe(p['type'])} {p['name']}" for p in function["params"])
    return f"PM_PYTHON {describe(function['ret'])} {function['name']}({params})"


def result_error(function: dict, value) -> ConversionError:
    """What Python returned for a PM_PYTHON function is not its declared type."""
    shown = repr(value)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return ConversionError(
        f"C++ declared {describe_import(function)} (cell line {function['line']}), but "
        f"the Python side returned {shown} ({type(value).__name__}), which is not a "
        f"{describe(function['ret'])}")
