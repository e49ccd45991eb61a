"""The kinds of a cell's own classes and structs when they cross (see types.py for the
kinds of everything else, and classes.py for the Python classes they become).

An object crosses as its address (`uintptr_t`): C++ keeps its objects where they are,
Python holds them through a wrapper (classes.py) whose `_address` is the object's.
A parameter's `form` says how the trampoline hands it on: `value` (C++ copies it),
`ref`/`cref` (a reference), `ptr`/`cptr` (a pointer; `None` is nullptr). A result's
form says who owns it: `value` is moved to the heap and owned by its wrapper, `ref`,
`cref`, `ptr`, `cptr` are borrowed (a method's result keeps its object alive), `new`
is a constructor's.

A trivially copyable standard-layout struct also has a NumPy structured dtype, so a
structured array passes as `T*` or `std::span<T>` zero-copy (`RecordSpan`) and a
returned `std::vector<T>` is a structured array over the vector's memory
(`RecordVector`).
"""
from __future__ import annotations

from ...errors import ConversionError
from . import overloads
from .types import KINDS, Context, Kind, SpanResult, Vector, contiguous_view

_POINTER_FORMS = {"ptr": "", "cptr": "const ", "ref": "", "cref": "const ", "value": ""}


class Object(Kind):
    """An object of one of the cell's classes, by value, reference or pointer."""

    name = "object"

    @property
    def cls(self) -> str:
        return self.spec["class"]

    @property
    def form(self) -> str:
        return self.spec["form"]

    def cpp(self) -> str:
        const = "const " if self.form in ("cref", "cptr") else ""
        suffix = {"ptr": "*", "cptr": "*", "ref": "&", "cref": "&"}.get(self.form, "")
        return f"{const}{self.cls.removeprefix('::')}{suffix}"

    def overload_tag(self) -> str:
        return self.cls.rpartition("::")[2]

    # ---- parameter
    def trampoline_params(self, name: str) -> list[str]:
        return [f"__UINTPTR_TYPE__ {name}"]

    def cdef_params(self) -> list[str]:
        return ["uintptr_t"]

    def call_argument(self, name: str, function: dict, position: int) -> str:
        pointer = f"reinterpret_cast<{_POINTER_FORMS[self.form]}{self.cls}*>({name})"
        return pointer if self.form in ("ptr", "cptr") else f"(*{pointer})"

    def inline_argument(self, name: str) -> str | None:
        """The receiver of a method is its own class's object: its address, read inline
        (no converter call; inherited methods are rebound when a base sits at an
        offset, see classes.py)."""
        return f"{name}._address" if self.spec.get("receiver") else None

    def argument_converter(self, context: Context, where: str):
        target, pointer = self.cls, self.form in ("ptr", "cptr")
        writable = self.form in ("ptr", "ref")
        record_array = RecordSpan.viewer_of(context, target, writable) if pointer else None

        def address(value):
            try:
                return value._address + value._offsets[target]
            except (AttributeError, KeyError):
                pass
            if value is None and pointer:
                return 0
            if record_array is not None and isinstance(value, context.numpy.ndarray):
                return int(context.ffi.cast("uintptr_t", record_array(value, where)))
            raise ConversionError(f"{where} is a C++ {self.cpp()}: pass a "
                                  f"{_python_name(target)} object, got "
                                  f"{type(value).__name__}")
        return address

    # ---- result
    def trampoline_result(self) -> str:
        return "__UINTPTR_TYPE__"

    def cdef_result(self) -> str:
        return "uintptr_t"

    def trampoline_return(self, call: str) -> tuple[str, str]:
        cast = "reinterpret_cast<__UINTPTR_TYPE__>"
        if self.form == "value":
            return f"return {cast}(new {self.cls}({call}));", "return 0;"
        if self.form in ("ref", "cref"):
            return f"return {cast}(std::addressof({call}));", "return 0;"
        return f"return {cast}({call});", "return 0;"  # ptr, cptr, new

    def result_converter(self, context: Context):
        """address -> wrapper; borrowed results of a method keep the receiver alive.
        A constructor's address stays an int: __init__ adopts it (classes.py)."""
        if self.form == "new":
            return None
        classes, form = context.classes, self.form
        owned, const = form in ("value", "new"), form in ("cref", "cptr")

        def take(address, receiver=None):
            if address == 0:
                return None
            return classes[self.cls]._adopt(address, owned=owned, const=const,
                                           keep=None if owned else receiver)
        return take

    @property
    def keeps_receiver(self) -> bool:
        return self.form in ("ref", "cref", "ptr", "cptr")


def _python_name(qualified: str) -> str:
    return qualified.removeprefix("::").replace("::", ".")


class RecordSpan(SpanResult, Kind):
    """std::span<T> (and the pointer form of Object) for a struct T with a NumPy
    structured dtype: a C-contiguous structured array of exactly that dtype, viewed."""

    name = "record_span"
    arity = 2

    def cpp(self) -> str:
        const = "const " if self.spec["const"] else ""
        return f"std::span<{const}{self.spec['class'].removeprefix('::')}>"

    def overload_tag(self) -> str:
        return f"span_{self.spec['class'].rpartition('::')[2]}"

    def trampoline_params(self, name: str) -> list[str]:
        return [f"__UINTPTR_TYPE__ {name}", f"unsigned long {name}_n"]

    def cdef_params(self) -> list[str]:
        return ["uintptr_t", "size_t"]

    def call_argument(self, name: str, function: dict, position: int) -> str:
        const = "const " if self.spec["const"] else ""
        return (f"{self.cpp()}(reinterpret_cast<{const}{self.spec['class']}*>({name}), "
                f"{name}_n)")

    @staticmethod
    def viewer_of(context: Context, qualified: str, writable: bool):
        """array -> its data pointer, if the class has a dtype (None otherwise)."""
        cls = context.classes.get(qualified)
        dtype = getattr(cls, "dtype", None)
        if dtype is None:
            return None
        ndarray, from_buffer = context.numpy.ndarray, context.ffi.from_buffer

        def view(value, where):
            if not isinstance(value, ndarray) or value.dtype != dtype:
                raise ConversionError(
                    f"{where}: C++ {cls.__name__} arrays are NumPy arrays of dtype "
                    f"{cls.__name__}.dtype ({dtype}), got "
                    f"{getattr(value, 'dtype', type(value).__name__)}")
            return contiguous_view(value, where, f"{cls.__name__} array", writable,
                                   from_buffer, "char[]")
        return view

    def _dtype(self, context: Context):
        return record_dtype(self, context)

    def result_converter(self, context: Context):
        return record_result_converter(self, context, super().result_converter)

    def argument_converter(self, context: Context, where: str):
        view = RecordSpan.viewer_of(context, self.spec["class"], not self.spec["const"])
        if view is None:  # decided once: the class has no dtype in this module
            message = (f"{where}: C++ {self.cpp()} takes an array of structs, but C++ "
                       f"says {self.spec['class']} is not trivially copyable and "
                       f"standard-layout (no NumPy dtype)")

            def refuse(value):
                raise ConversionError(message)
            return refuse
        cast = context.ffi.cast

        def convert(value):
            return int(cast("uintptr_t", view(value, where))), len(value)
        return convert


class RecordVector(Vector):
    """std::vector<T> result for a struct T with a dtype: a structured array over the
    vector's own memory (freed when the array is), as for arithmetic vectors."""

    name = "record_vector"
    import_result = False

    def cpp(self) -> str:
        return f"std::vector<{self.spec['class'].removeprefix('::')}>"

    def overload_tag(self) -> str:
        return f"vector_{self.spec['class'].rpartition('::')[2]}"

    def _dtype(self, context: Context):
        return record_dtype(self, context)

    def result_converter(self, context: Context):
        return record_result_converter(self, context, super().result_converter)


def record_dtype(kind: Kind, context: Context):
    """The dtype of the struct an array kind holds."""
    return context.classes[kind.spec["class"]].dtype


def record_result_converter(kind: Kind, context: Context, converter):
    """`converter(context)` for a struct with a dtype; for one without (C++ does not
    call it trivially copyable and standard-layout, checked at load) a converter that
    frees what C++ returned and raises, so that the rest of the cell still loads."""
    if record_dtype(kind, context) is not None:
        return converter(context)
    release, owned = context.lib.pm_release, isinstance(kind, Vector)

    def refuse(buffer, receiver=None):
        if owned:
            release(buffer.owner)
        raise ConversionError(f"{kind.cpp()}: C++ says {kind.spec['class']} is not "
                              f"trivially copyable and standard-layout, so its objects "
                              f"have no NumPy dtype to be returned as an array")
    return refuse


KINDS.update({cls.name: cls for cls in (Object, RecordSpan, RecordVector)})


def _object_test(spec: dict, var: str, names: dict) -> overloads.Test:
    """Overload matching: an object of the class or of a subclass is exact (None too,
    for a pointer); a NumPy array may be a struct array (its converter judges)."""
    exact = f"{spec['class']!r} in getattr(type({var}), '_offsets', ())"
    if spec["form"] in ("ptr", "cptr"):
        import numpy
        names["_ndarray"] = numpy.ndarray
        return overloads.Test(f"({exact} or {var} is None)",
                              f"isinstance({var}, _ndarray)", None,
                              _python_name(spec["class"]))
    return overloads.Test(exact, None, None, _python_name(spec["class"]))


def _record_array_test(spec: dict, var: str, names: dict) -> overloads.Test:
    import numpy
    names["_ndarray"] = numpy.ndarray
    return overloads.Test("False", f"isinstance({var}, _ndarray)", None,
                          f"numpy.ndarray of {_python_name(spec['class'])}.dtype")


overloads.register("object", _object_test)
overloads.register("record_span", _record_array_test)
