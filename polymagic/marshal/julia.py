"""Conversions between Python and Julia values (through juliacall / PythonCall.jl).

numpy -> Julia: a numeric array whose memory Julia can read column-major (1-D contiguous,
F-ordered, 0-d) crosses without a copy. By default it becomes PythonCall's read-only
`PyArray` view, so Julia can read the numpy memory but never write into it (the
project's contract: no foreign writes into a Python buffer unless asked; a Julia Array
has no copy-on-write to hook, so a write raises in Julia). With `shared_writes=True`
(a writeable array) it becomes a real Julia `Array{T,N}` built by `unsafe_wrap` on the
buffer: writes are shared, and methods typed `::Vector{Float64}` accept it; a finalizer
on the Julia array's memory holds the numpy array until Julia frees it. Anything else (C-ordered 2-D, strided, byte-swapped, unaligned) is copied into an
F-ordered numpy array first, or raises CopyRequired when copy=False.

Julia -> numpy: PythonCall's `ArrayValue` exposes `__array_interface__` (and the buffer
protocol) for arrays of bits types with strides, so `np.asarray` shares Julia's memory
and the numpy array holds the ArrayValue, which holds the Julia array.

The decisions (`plan_push`) are plain Python, testable without Julia; the Julia half
lives in `JULIA_SOURCE`, evaluated once when the bridge starts.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConversionError, CopyRequired
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

JULIA_SOURCE = r'''
using PythonCall: PythonCall, Py, PyArray, pyconvert

const ELEMENT_TYPES = Dict{String,DataType}(
    "Float64" => Float64, "Float32" => Float32, "Float16" => Float16,
    "Int64" => Int64, "Int32" => Int32, "Int16" => Int16, "Int8" => Int8,
    "UInt64" => UInt64, "UInt32" => UInt32, "UInt16" => UInt16, "UInt8" => UInt8,
    "ComplexF64" => ComplexF64, "ComplexF32" => ComplexF32, "Bool" => Bool)

# A finalizer that holds the Python owner of a buffer until Julia frees the array.
struct KeepOwner
    owner::Any
end
(keep::KeepOwner)(_) = nothing

# Julia >= 1.11 arrays share a Memory object (reshape, views of it...), so pin that.
memory_root(a::Array) = isdefined(Base, :Memory) ? getfield(a, :ref).mem : a

function wrap_buffer(type_name::String, address::Integer, dims, owner)
    T = ELEMENT_TYPES[type_name]
    shape = Tuple(Int(d) for d in dims)
    array = unsafe_wrap(Array, Ptr{T}(UInt(address)), shape; own = false)
    root = memory_root(array)
    finalizer(KeepOwner(owner), ismutable(root) ? root : array)
    return array
end

# juliacall already turned a numpy argument into a PyArray (its "array" rule), which is
# read-only when numpy's array is; a plain Py is wrapped the same way.
readonly_view(x::PyArray) = x
readonly_view(x::Py) = PyArray(x; copy = false)

# A Python callable seen from Julia: calls it and converts the result back to Julia.
struct PythonFunction <: Function
    callable::Py
end
(f::PythonFunction)(args...; kwargs...) = pyconvert(Any, f.callable(args...; kwargs...))
python_function(callable::Py) = PythonFunction(callable)

# 0: keep the juliacall wrapper, 1: a Julia function, 2: a wrapped Python callable.
value_kind(x) = x isa PythonFunction ? 2 : x isa Function ? 1 : 0
python_callable(f::PythonFunction) = f.callable
'''


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
    """to_julia / to_python, given juliacall, the bridge's Julia helper module and the
    engine's `call(function, *args, **kwargs)` (marshal imports no bridge)."""

    def __init__(self, juliacall, helpers, call):
        self._juliacall = juliacall
        self._helpers = helpers
        self.call = call

    # -- Python -> Julia -------------------------------------------------------------
    def to_julia(self, value, copy: bool | None = None, shared_writes: bool = False):
        """A value juliacall passes to Julia as we want it (arrays as views, callables
        as Julia functions); other values go through PythonCall's own rules."""
        if isinstance(value, np.ndarray):
            return self.array_to_julia(value, copy, shared_writes)
        if isinstance(value, JuliaFunction):
            return value.julia_function
        if isinstance(value, tuple):
            return tuple(self.to_julia(item, copy) for item in value)
        julia_value_type = getattr(self._juliacall, "ValueBase", self._juliacall.AnyValue)
        if callable(value) and not isinstance(value, (julia_value_type, type)):
            return self._helpers.python_function(self.python_callable_for_julia(value))
        return value

    def array_to_julia(self, array: np.ndarray, copy: bool | None = None,
                       shared_writes: bool = False):
        plan = plan_push(array, copy, shared_writes)
        if plan.kind == READONLY_VIEW:
            return self._helpers.readonly_view(plan.array)
        address = plan.array.__array_interface__["data"][0]
        return self._helpers.wrap_buffer(plan.julia_type, address, plan.array.shape,
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
        functions as `JuliaFunction`, tuples/dicts element by element."""
        juliacall = self._juliacall
        if isinstance(value, juliacall.ArrayValue):
            return self.array_to_python(value, copy)
        if isinstance(value, tuple):
            return tuple(self.to_python(item, copy) for item in value)
        if isinstance(value, juliacall.DictValue):
            return {self.to_python(k): self.to_python(v, copy) for k, v in value.items()}
        if type(value) is juliacall.AnyValue:
            kind = self._helpers.value_kind(value)
            if kind == 1:
                return JuliaFunction(value, self)
            if kind == 2:
                return self._helpers.python_callable(value).__wrapped__
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
