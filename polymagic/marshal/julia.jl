# The Julia half of polymagic's Python <-> Julia conversions (the Python half, and the
# tables they follow, are in julia.py beside this file). The Julia bridge includes this
# file into Main once, when Julia starts, before its own module (PolymagicBridge).
#
# Every value that crosses from Python through polymagic (assignments, arguments of
# calls, results of Python callbacks) passes through `julia_value` here, on the Julia
# side: a view must be made read-only in Julia and stay in Julia, because PythonCall
# hands a PyArray back to Python as the numpy array it wraps (`Py(x::PyArray) = x.py`,
# PythonCall src/Wrap/PyArray.jl), and converts that array to a *writable* PyArray again
# whenever numpy's WRITEABLE flag is set (`pyarray_get_M`, same file).
module PolymagicConversions

using PythonCall: PythonCall, Py, PyArray, PyDict, PyList, PySet, pyconvert

const SOURCE_FILE = @__FILE__

const ELEMENT_TYPES = Dict{String,DataType}(
    "Float64" => Float64, "Float32" => Float32, "Float16" => Float16,
    "Int64" => Int64, "Int32" => Int32, "Int16" => Int16, "Int8" => Int8,
    "UInt64" => UInt64, "UInt32" => UInt32, "UInt16" => UInt16, "UInt8" => UInt8,
    "ComplexF64" => ComplexF64, "ComplexF32" => ComplexF32, "Bool" => Bool)

# -- numpy buffers as Julia Arrays (copies, and views with shared writes) ---------------

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

# -- read-only views ---------------------------------------------------------------------

# A PyArray whose mutability parameter M is false: PythonCall defines setindex! only for
# PyArray{T,N,true} (src/Wrap/PyArray.jl), so a write is a MethodError, and asking for
# M = false is allowed even when numpy's array is writable (pyarray_make checks only
# `M && !M′`).
const ReadOnlyPyArray = PyArray{T,N,false} where {T,N}

readonly_view(x::ReadOnlyPyArray) = x
readonly_view(x::PyArray) = ReadOnlyPyArray(Py(x); copy = false)

# What a Python value becomes in Julia when it crosses through polymagic: PyArrays
# (numpy arrays PythonCall converted by its array rule) read-only; Julia Arrays made by
# wrap_buffer (copies, shared writes) and everything else unchanged.
julia_value(x) = x
julia_value(x::PyArray) = readonly_view(x)
julia_value(x::Tuple) = map(julia_value, x)

# copy=True: a Julia-owned copy of a value that would otherwise stay a live wrapper of
# the Python object (PythonCall's PyArray, PyList, PyDict, PySet).
owned_copy(x) = x
owned_copy(x::PyArray) = copy(x)
owned_copy(x::PyList) = [owned_copy(item) for item in x]
owned_copy(x::PyDict) = Dict(owned_copy(key) => owned_copy(value) for (key, value) in x)
owned_copy(x::PySet) = Set(owned_copy(item) for item in x)
owned_copy(x::Tuple) = map(owned_copy, x)

arriving(x, copy::Bool) = copy ? owned_copy(x) : julia_value(x)

# -- Python callables --------------------------------------------------------------------

# A Python callable seen from Julia. Calling it goes through `call`, the wrapper
# marshal/julia.py made (arguments and result cross by polymagic's tables); its
# properties are those of `object`, the user's callable (f.name reads object.name).
struct PythonFunction <: Function
    call::Py
    object::Py
end
(f::PythonFunction)(args...; kwargs...) =
    julia_value(pyconvert(Any, getfield(f, :call)(args...; kwargs...)))
Base.getproperty(f::PythonFunction, name::Symbol) = getproperty(getfield(f, :object), name)
Base.setproperty!(f::PythonFunction, name::Symbol, value) =
    setproperty!(getfield(f, :object), name, value)
Base.propertynames(f::PythonFunction, private::Bool = false) =
    propertynames(getfield(f, :object), private)

# Untyped: PythonCall may already have converted a callable object by another of its
# rules (a callable sequence becomes a PyList); Py() gives the Python object back.
python_function(call, object) = PythonFunction(Py(call), Py(object))

# 0: keep the juliacall wrapper, 1: a Julia function, 2: a wrapped Python callable.
value_kind(x) = x isa PythonFunction ? 2 : x isa Function ? 1 : 0
python_callable(f::PythonFunction) = getfield(f, :object)

end
