"""Conversions between Python and Julia values (through juliacall / PythonCall.jl).

numpy -> Julia: a numeric array whose memory Julia can read column-major (1-D contiguous,
F-ordered, 0-d) crosses without a copy. By default it becomes a read-only PythonCall
`PyArray` (an AbstractArray, not an Array) on that memory, so Julia reads the numpy
memory but never writes into it (the project's contract: no foreign writes into a
Python buffer unless asked; a Julia Array has no copy-on-write to hook, so a write is a
MethodError in Julia). The read-only wrapper is made in Julia (julia.jl) and stays
there. With `shared_writes=True` (a writeable array) it becomes a real Julia
`Array{T,N}` built by `unsafe_wrap` on the buffer: writes are shared, and methods typed
`::Vector{Float64}` accept it; a finalizer on the Julia array's memory holds the numpy
array until Julia frees it. Anything else (C-ordered 2-D, strided, byte-swapped,
unaligned) is copied into an F-ordered numpy array first, or raises CopyRequired when
copy=False.

Julia -> numpy: PythonCall's `ArrayValue` exposes `__array_interface__` (and the buffer
protocol) for arrays of bits types with strides, so `np.asarray` shares Julia's memory
and the numpy array holds the ArrayValue, which holds the Julia array.

The decisions (`plan_push`) are plain Python, testable without Julia; the Julia half
lives in julia.jl beside this file, included once when the bridge starts.
"""
from __future__ import annotations

import copy as copying
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConversionError, CopyRequired
from ..tracebacks import entry_point
from . import buffers

# numpy dtype name -> Julia element type name; same size and layout on both sides.
JULIA_ELEMENT_TYPES = {
    "float64": "Float64", "float32": "Float32", "float16": "Float16",
    "int64": "Int64", "int32": "Int32", "int16": "Int16", "int8": "Int8",
    "uint64": "UInt64", "uint32": "UInt32", "uint16": "UInt16", "uint8": "UInt8",
    "complex128": "ComplexF64", "complex64": "ComplexF32", "bool": "Bool",
}

VIEW = "view"                    # a Julia Array on the numpy buffer
READONLY_VIEW = "readonly-view"  # PythonCall's PyArray on the buffer; writes raise
COPY = "copy"                    # an F-ordered numpy copy, then wrapped as a view

# The Julia half of these conversions (wrap_buffer, read-only views, Python callables
# as Julia functions), included into Main as module PolymagicConversions at start-up.
JULIA_SOURCE_FILE = Path(__file__).with_suffix(".jl")
JULIA_MODULE = "PolymagicConversions"


@dataclass(frozen=True)
class PushPlan:
    """How a numpy array will cross into Julia: `kind`, and the array Julia will see."""

    kind: str
    array: np.ndarray
    julia_type: str
    reason: str = ""


def julia_element_type(array: np.ndarray) -> str:
    """The Julia element type for `array`'s dtype; ConversionError when there is none."""
    name = JULIA_ELEMENT_TYPES.get(array.dtype.newbyteorder("=").name)
    if name is None:
        raise ConversionError(
            f"a numpy array of dtype {array.dtype} cannot cross into Julia: supported "
            f"dtypes are {', '.join(sorted(JULIA_ELEMENT_TYPES))}")
    return name


def plan_push(array: np.ndarray, copy: bool | None = None,
              shared_writes: bool = False) -> PushPlan:
    """Decide view or copy for a numpy array going to Julia (copy: None=view if possible,
    True=always copy, False=view or CopyRequired); views are read-only for Julia unless
    `shared_writes`."""
    julia_type = julia_element_type(array)
    how, reason = buffers.decide(array, "Julia", copy=copy, shared_writes=shared_writes)
    if how == buffers.COPY:
        return PushPlan(COPY, _fortran_copy(array), julia_type, reason)
    kind = VIEW if shared_writes else READONLY_VIEW
    return PushPlan(kind, array, julia_type)


def _fortran_copy(array: np.ndarray) -> np.ndarray:
    return np.array(array, dtype=array.dtype.newbyteorder("="), order="F", copy=True)


class JuliaConverter:
    """to_julia / to_python, given juliacall, the PolymagicConversions module loaded
    from julia.jl, and the engine's `call(function, *args, **kwargs)` (marshal imports
    no bridge)."""

    def __init__(self, juliacall, julia_module, call):
        self._juliacall = juliacall
        self._julia = julia_module
        self._julia_value_type = getattr(juliacall, "ValueBase", juliacall.AnyValue)
        self.call = call

    # -- Python -> Julia -------------------------------------------------------------
    def to_julia(self, value, copy: bool | None = None, shared_writes: bool = False):
        """A value juliacall passes to Julia as we want it (arrays as views, callables
        as Julia functions); other values go through PythonCall's own rules.

        A view that Julia must not write stays the numpy array here: PythonCall turns
        it into a PyArray as it crosses, and julia.jl's `julia_value` makes that
        read-only on arrival (the engine passes every value through it)."""
        if isinstance(value, np.ndarray):
            return self.array_to_julia(value, copy, shared_writes)
        if isinstance(value, JuliaFunction):
            return value.julia_function
        if isinstance(value, tuple):
            return tuple(self.to_julia(item, copy) for item in value)
        if callable(value) and not isinstance(value, (self._julia_value_type, type)):
            return self._julia.python_function(self.python_callable_for_julia(value),
                                               value)
        return value

    def array_to_julia(self, array: np.ndarray, copy: bool | None = None,
                       shared_writes: bool = False):
        """The numpy array itself (a read-only view once in Julia), or a Julia Array on
        its memory (shared_writes) or on an F-ordered copy."""
        plan = plan_push(array, copy, shared_writes)
        if plan.kind == READONLY_VIEW:
            return plan.array
        address = plan.array.__array_interface__["data"][0]
        return self._julia.wrap_buffer(plan.julia_type, address, plan.array.shape,
                                       plan.array)

    def python_callable_for_julia(self, function):
        """Wrap `function` so Julia's arguments arrive as numpy views and its result
        goes back by the same table; Python exceptions pass through unchanged."""
        def call_from_julia(*args, **kwargs):
            args = [self.to_python(arg) for arg in args]
            kwargs = {key: self.to_python(arg) for key, arg in kwargs.items()}
            return self.to_julia(function(*args, **kwargs))
        call_from_julia.__wrapped__ = function
        call_from_julia.__name__ = getattr(function, "__name__", "python_callable")
        return call_from_julia

    # -- Julia -> Python -------------------------------------------------------------
    def to_python(self, value, copy: bool | None = None):
        """A Python value for a juliacall result: arrays as numpy views where possible,
        functions as `JuliaFunction`, tuples/dicts element by element. A value that
        was a Python object all along (PythonCall unwraps PyArray, PyList... to it)
        comes back as that object, or as a deep copy of it when copy=True."""
        juliacall = self._juliacall
        if isinstance(value, juliacall.ArrayValue):
            return self.array_to_python(value, copy)
        if isinstance(value, tuple):
            return tuple(self.to_python(item, copy) for item in value)
        if isinstance(value, juliacall.DictValue):
            return {self.to_python(k): self.to_python(v, copy) for k, v in value.items()}
        if type(value) is juliacall.AnyValue:
            kind = self._julia.value_kind(value)
            if kind == 1:
                return JuliaFunction(value, self)
            if kind == 2:
                return self._julia.python_callable(value)
        if copy is True and isinstance(value, _MUTABLE_PYTHON_VALUES):
            return copying.deepcopy(value)
        return value

    def array_to_python(self, value, copy: bool | None = None):
        """numpy view of a Julia array of bits; a copy (or CopyRequired) otherwise."""
        if hasattr(value, "__array_interface__"):  # strided bits array: shareable
            return np.array(value, copy=True) if copy else np.asarray(value)
        if copy is False:
            raise CopyRequired(
                "copy=False, but this Julia array cannot be shared with numpy (its "
                "elements are not plain numbers, or it is not strided in memory)")
        collected = value.to_numpy()
        if collected.ndim == 1 and collected.dtype == object:
            return [self.to_python(item) for item in collected]
        return collected


# Python objects a copy=True pull copies (what Julia held were live wrappers of them).
_MUTABLE_PYTHON_VALUES = (np.ndarray, list, dict, set, bytearray)


@entry_point
class JuliaFunction:
    """A Julia function called from Python: arguments and result cross by the table."""

    def __init__(self, julia_function, converter: JuliaConverter):
        self.julia_function = julia_function
        self._converter = converter

    def __call__(self, *args, **kwargs):
        return self._converter.call(self, *args, **kwargs)

    @property
    def __name__(self):
        return str(self.julia_function.__name__)

    def __repr__(self):
        return f"<Julia function {self.__name__}>"
