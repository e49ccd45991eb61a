"""Conversions between Python objects and R objects (rpy2 `rinterface` proxies).

`to_r(value, copy=None, shared_writes=False)` and `to_python(sexp, copy=None)`; the table
with the reason for each view or copy is docs/conversions-r.md. Numeric arrays cross as
views both ways: numpy float64 / int32 / complex128 arrays (1-D or F-ordered) become R
vectors over the numpy buffer (ALTREP, r_shim_views.c), and R double / integer / complex
vectors come back as numpy arrays over R's memory. `copy=None` views when possible and
copies otherwise, `copy=True` always copies, `copy=False` raises CopyRequired instead of
copying. R never writes into a Python buffer (copy-on-write) unless shared_writes=True.

Hot paths (a numpy array, a Python scalar) are tested first by exact type; everything
else goes through the `functools.singledispatch` registry `to_r.register(type)`.
"""
from __future__ import annotations

import functools
import sys

import numpy as np

from ..errors import ConversionError, CopyRequired
from . import buffers, r_dates, r_pandas, r_shim
from .r_shim import KIND_COMPLEX, KIND_INTEGER, KIND_REAL

# R's SEXPTYPE codes (Rinternals.h).
NILSXP, SYMSXP, LISTSXP, CLOSXP, ENVSXP = 0, 1, 2, 3, 4
SPECIALSXP, BUILTINSXP = 7, 8
LGLSXP, INTSXP, REALSXP, CPLXSXP, STRSXP, VECSXP = 10, 13, 14, 15, 16, 19
RAWSXP = 24
NA_INTEGER = -2**31          # NA_integer_ and NA (logical) as stored in int32
INT32_MAX = 2**31 - 1

_NUMERIC_DTYPES = {REALSXP: np.dtype(np.float64), INTSXP: np.dtype(np.int32),
                   CPLXSXP: np.dtype(np.complex128), LGLSXP: np.dtype(np.int32),
                   RAWSXP: np.dtype(np.uint8)}
_FUNCTION_TYPES = (CLOSXP, BUILTINSXP, SPECIALSXP)
_ATOMIC_TYPES = (REALSXP, INTSXP, CPLXSXP, LGLSXP, STRSXP, RAWSXP)
_SCALAR_TYPES = (float, int, bool, complex, str)

_state: dict = {"pending_error": None, "dispatcher": False, "classes": None}


def _classes():
    """rinterface proxy classes, resolved once R is up."""
    classes = _state["classes"]
    if classes is None:
        r_shim.shim()
        import rpy2.rinterface as ri
        classes = _state["classes"] = {
            KIND_REAL: ri.FloatSexpVector, KIND_INTEGER: ri.IntSexpVector,
            KIND_COMPLEX: ri.ComplexSexpVector, "list": ri.ListSexpVector,
            "closure": ri.SexpClosure, "NULL": ri.NULL, "strings": ri.StrSexpVector,
            "ri": ri}
    return classes


# ======================================================================================
# Python -> R

def to_r(value, *, copy: bool | None = None, shared_writes: bool = False):
    """`value` as an rpy2 rinterface object (a view of numeric arrays when possible).

    copy: None = view when possible, True = always copy, False = raise CopyRequired
    rather than copy. shared_writes=True lets R write into a (writable) numpy buffer
    instead of copying on write.
    """
    kind = type(value)
    if kind is np.ndarray:
        return _array_to_r(value, copy, shared_writes)
    if kind in _SCALAR_TYPES:
        _classes()
        return r_shim.adopt(r_shim.shim().scalar_to_r(value))
    return _to_r_dispatch(value, copy, shared_writes)


@functools.singledispatch
def _to_r_dispatch(value, copy, shared_writes):
    if _is_r_object(value):
        return value
    if type(value) is r_shim.engine.get("function_class"):
        return value.sexp                     # an RFunction goes back as its R function
    if callable(value):
        return _callable_to_r(value)
    if type(value).__module__.startswith("pandas") and _pandas() is not None \
            and _to_r_dispatch.dispatch(type(value)) is not _to_r_dispatch.registry[object]:
        return _to_r_dispatch(value, copy, shared_writes)
    raise ConversionError(
        f"cannot convert a Python {type(value).__module__}.{type(value).__qualname__} "
        f"to R: no conversion is registered for this type (see `python -m polymagic help "
        f"r`; register one with polymagic.marshal.r.to_r.register)")


to_r.register = _to_r_dispatch.register
to_r.registry = _to_r_dispatch.registry


def _is_r_object(value) -> bool:
    return hasattr(value, "__sexp__")


@_to_r_dispatch.register(type(None))
def _none_to_r(value, copy, shared_writes):
    return _classes()["NULL"]


@_to_r_dispatch.register(float)
@_to_r_dispatch.register(int)
@_to_r_dispatch.register(complex)
@_to_r_dispatch.register(str)
def _scalar_to_r(value, copy, shared_writes):
    _classes()
    return r_shim.adopt(r_shim.shim().scalar_to_r(value))


@_to_r_dispatch.register(np.generic)
def _numpy_scalar_to_r(value, copy, shared_writes):
    if isinstance(value, (np.datetime64, np.timedelta64, np.void)):
        raise ConversionError(f"cannot convert a numpy {value.dtype} scalar to R: "
                              f"R has no such type")
    return to_r(value.item(), copy=copy, shared_writes=shared_writes)


for _type, _rule in r_dates.SCALAR_RULES.items():  # dates and times (more specific
    _to_r_dispatch.register(_type)(_rule)          # than np.generic's rule above)


@_to_r_dispatch.register(bytes)
def _bytes_to_r(value, copy, shared_writes):
    if copy is False:
        raise CopyRequired("bytes cross into R as a raw vector copy (R owns raw memory)")
    return _fill_new_vector(RAWSXP, np.frombuffer(value, dtype=np.uint8), None)


@_to_r_dispatch.register(list)
@_to_r_dispatch.register(tuple)
def _list_to_r(value, copy, shared_writes):
    items = [to_r(item, copy=copy, shared_writes=shared_writes) for item in value]
    return _make_list(items, None)


@_to_r_dispatch.register(dict)
def _dict_to_r(value, copy, shared_writes):
    names = list(value)
    for name in names:
        if not isinstance(name, str):
            raise ConversionError(f"cannot convert a dict with key {name!r} "
                                  f"({type(name).__name__}) to an R named list: "
                                  f"R names are strings")
    items = [to_r(item, copy=copy, shared_writes=shared_writes) for item in value.values()]
    return _make_list(items, names)


def _make_list(items, names, r_class=None, row_count=None):
    shim = r_shim.shim()
    result = r_shim.adopt(shim.make_list([r_shim.address_of(item) for item in items]),
                            _classes()["list"])
    address = r_shim.address_of(result)
    if names is not None:
        _set_attr(address, "names", _strings_to_r(names))
    if r_class is not None:
        _set_attr(address, "class", _strings_to_r([r_class]))
    if row_count is not None:
        _set_attr(address, "row.names", row_count)
    return result


def _set_attr(address, name, value_sexp):
    r_shim.shim().set_attr(address, name, r_shim.address_of(value_sexp))


def _strings_to_r(items, dims=None):
    _classes()
    result = r_shim.adopt(r_shim.shim().make_strings(items))
    if dims is not None:
        _set_attr(r_shim.address_of(result), "dim", to_r(np.asarray(dims, np.int32)))
    return result


# ---- numpy arrays ----------------------------------------------------------------------

_VIEW_KINDS = {np.dtype(np.float64): KIND_REAL, np.dtype(np.int32): KIND_INTEGER,
               np.dtype(np.complex128): KIND_COMPLEX}
_KIND_TO_SEXPTYPE = {KIND_REAL: REALSXP, KIND_INTEGER: INTSXP, KIND_COMPLEX: CPLXSXP}


@_to_r_dispatch.register(np.ndarray)
def _array_to_r_dispatch(value, copy, shared_writes):
    if isinstance(value, np.ma.MaskedArray):
        return _masked_to_r(value, copy)
    return _array_to_r(value, copy, shared_writes)


def _array_to_r(array, copy, shared_writes):
    kind = _VIEW_KINDS.get(array.dtype)
    element_problem = "" if kind is not None else (
        f"R stores numbers as float64, int32 or complex128 (and logicals as int32); "
        f"{array.dtype} must be converted")
    how, _ = buffers.decide(array, "R", copy=copy, shared_writes=shared_writes,
                            element_problem=element_problem)
    if how == buffers.VIEW:
        dims = array.shape if array.ndim > 1 else None
        return r_shim.wrap(kind, array, shared_writes, dims, _classes()[kind])
    return _array_copy_to_r(array)


def _array_copy_to_r(array):
    kind = array.dtype.kind
    dims = array.shape if array.ndim > 1 else None
    if kind in "USTO":
        return _strings_to_r(_string_items(array), dims)
    if kind == "f" and array.dtype.itemsize <= 8:
        return _fill_new_vector(REALSXP, array, dims)
    if kind == "c" and array.dtype.itemsize <= 16:
        return _fill_new_vector(CPLXSXP, array, dims)
    if kind == "b":
        return _fill_new_vector(LGLSXP, array, dims)
    if kind in "iu":
        _check_int32_range(array)
        return _fill_new_vector(INTSXP, array, dims)
    if kind in "Mm":
        return r_dates.array_to_r(array)
    raise ConversionError(f"cannot convert a numpy array of dtype {array.dtype} to R: "
                          f"R has no such type")


def _string_items(array):
    items = array.ravel(order="F").tolist()
    for index, item in enumerate(items):
        if isinstance(item, bytes):
            items[index] = item.decode("utf-8")
        elif item is not None and not isinstance(item, str):
            raise ConversionError(f"cannot convert a numpy {array.dtype} array holding "
                                  f"a {type(item).__name__} ({item!r}) to an R "
                                  f"character vector: only str and None can cross")
    return items


def _check_int32_range(array) -> None:
    if array.dtype.itemsize < 4 or array.size == 0 or (
            array.dtype.itemsize == 4 and array.dtype.kind == "i"):
        if array.dtype.itemsize == 4 and array.size and array.min() == NA_INTEGER:
            raise ConversionError(f"cannot convert int32 value {NA_INTEGER} to R: it is "
                                  f"NA_integer_ there")
        return
    low, high = array.min(), array.max()
    if low <= NA_INTEGER or high > INT32_MAX:
        raise ConversionError(
            f"cannot convert a numpy {array.dtype} array to an R integer vector: values "
            f"{low}..{high} lie outside R's integer range (-2**31+1 .. 2**31-1); convert "
            f"it with .astype(np.float64) first")


def _fill_new_vector(sexptype, source, dims):
    """A new ordinary R vector of `sexptype` holding `source` (one copy, with casting)."""
    _classes()
    result = r_shim.adopt(r_shim.shim().alloc(sexptype, source.size, dims))
    target = _numeric_view(r_shim.address_of(result), sexptype, source.shape or None)
    np.copyto(target, source.reshape(target.shape) if source.ndim == 0 else source,
              casting="unsafe")
    return result


def _masked_to_r(array, copy):
    if copy is False:
        raise CopyRequired("a numpy masked array crosses into R as a copy: masked "
                           "entries become NA")
    data = np.ma.getdata(array)
    mask = np.ma.getmaskarray(array)
    kind = data.dtype.kind
    if kind in "USTO":
        items = _string_items(np.where(mask, None, data).astype(object))
        return _strings_to_r(items, data.shape if data.ndim > 1 else None)
    result = _array_copy_to_r(np.where(mask, 0, data).astype(data.dtype))
    sexptype = {"f": REALSXP, "c": CPLXSXP}.get(kind, INTSXP if kind != "b" else LGLSXP)
    target = _numeric_view(r_shim.address_of(result), sexptype, data.shape or None)
    if kind == "f":
        target[mask] = _NA_REAL
    elif kind == "c":
        target[mask] = complex(_NA_REAL, _NA_REAL)
    else:
        target[mask] = NA_INTEGER
    return result


_NA_REAL = np.frombuffer(np.array([1954, 0x7FF00000], dtype=np.uint32).tobytes(),
                         dtype=np.float64)[0]


# ---- functions -------------------------------------------------------------------------

def _callable_to_r(function):
    """An R function that calls `function` (arguments and result converted)."""
    shim = r_shim.shim()
    if not _state["dispatcher"]:
        begin, end = r_shim.engine["python_section"]()
        shim.set_callback_hooks(_callback_argument, _argument_to_r, _callback_failed,
                                begin, end)
        _state["dispatcher"] = True
    return r_shim.adopt(shim.make_function(function), _classes()["closure"])


def _callback_argument(address):
    """An argument of a call from R the shim does not convert itself."""
    return _from_address(address, None, True)


def _callback_failed(error):
    """A Python callback called from R raised `error` (any exception must reach R as
    an R error): R's error text; the engine re-raises this very object."""
    _state["pending_error"] = error
    return f"Python exception {type(error).__name__}: {error}"


# ---- calls into R ---------------------------------------------------------------------

def connect_calls(enter, leave, stack_exhausted, failed, interrupted):
    """The shim's `call(closure address, args, kwargs, raw)`, set up with the runtime
    shim's enter/leave functions (addresses) and the engine's outcome objects."""
    shim = r_shim.shim()
    shim.set_call_hooks(enter, leave, _argument_to_r, _result_to_python, _result_raw,
                        stack_exhausted, failed, interrupted)
    return shim.call


def _argument_to_r(value):
    """A call's argument the shim does not build itself: (address, keepalive)."""
    sexp = to_r(value)
    return (r_shim.address_of(sexp), sexp)


def _result_to_python(address):
    """A call's result the shim does not convert itself; it comes preserved."""
    try:
        return _from_address(address, None, True)
    finally:
        r_shim.shim().release(address)


def _result_raw(address):
    return r_shim.adopt(address)


def take_pending_python_error():
    """The exception raised by the last failed Python callback called from R (or None),
    cleared; the R engine re-raises this very object when the R call fails."""
    error, _state["pending_error"] = _state["pending_error"], None
    return error


def assign(name: str, value, environment=None) -> None:
    """Bind `value` (an rinterface object) to `name` in `environment` (globalenv) WITHOUT
    the copy rpy2's `environment[name] = value` makes (it calls Rf_duplicate), so a view
    stays a view."""
    ri = _classes()["ri"]
    environment = ri.globalenv if environment is None else environment
    # in the shim, where an R refusal (a locked binding) is an RError, not a crash
    r_shim.shim().assign(r_shim.address_of(environment), name, r_shim.address_of(value))


# ---- pandas ----------------------------------------------------------------------------

def _pandas():
    """pandas (its converters registered on first use), or None when not installed."""
    if "pandas" not in _state:
        try:
            import pandas
        except ImportError:
            _state["pandas"] = None
        else:
            r_pandas.register(pandas, sys.modules[__name__])
            _state["pandas"] = pandas
    return _state["pandas"]


# ======================================================================================
# R -> Python

def to_python(sexp, *, copy: bool | None = None):
    """An rinterface object as a Python object (numeric vectors as numpy views).

    Length-1 attribute-free vectors become Python scalars (NA -> None). copy: None =
    view when possible, True = always copy, False = raise CopyRequired rather than copy.
    """
    _classes()
    return _from_address(r_shim.address_of(sexp), copy, True)


def _from_address(address, copy, scalar_ok):
    shim = r_shim.shim()
    rtype, length, attributes = shim.describe(address)
    if attributes is None:
        if rtype in _ATOMIC_TYPES:
            if length == 1 and scalar_ok and rtype != RAWSXP:
                return shim.scalar(address)
            return _atomic_to_python(address, rtype, None, copy)
        if rtype == NILSXP:
            return None
        if rtype == VECSXP:
            return [_from_address(item, copy, True) for item in shim.elements(address)]
    if rtype in _FUNCTION_TYPES:
        return _function_to_python(address)
    attributes = dict(attributes or ())
    r_class = shim.strings(attributes["class"]) if "class" in attributes else ()
    temporal = r_dates.class_rule(r_class) if rtype in (REALSXP, INTSXP) else None
    if temporal is not None:  # POSIXct, Date, difftime
        return temporal(address, rtype, attributes, copy, _pandas())
    if rtype == INTSXP and "factor" in r_class:
        return _factor_to_python(address, attributes, r_class, copy)
    if rtype == VECSXP and "data.frame" in r_class:
        return _data_frame_to_python(address, attributes, copy)
    if rtype in _ATOMIC_TYPES:
        dims = _dims(attributes)
        return _atomic_to_python(address, rtype, dims, copy)
    if rtype == VECSXP:
        return _list_to_python(address, attributes, copy)
    if rtype == NILSXP:
        return None
    # environments, S4 objects, language objects...: no Python equivalent; they are
    # returned as rpy2 proxies, which go back to R unchanged.
    return r_shim.borrow(address)


def _dims(attributes):
    dim = attributes.get("dim")
    if dim is None:
        return None
    return tuple(_numeric_view(dim, INTSXP, None).tolist())


def _numeric_view(address, sexptype, dims):
    """A numpy view of an R vector's memory; the array keeps the R vector preserved."""
    array = np.frombuffer(r_shim.shim().buffer(address), _NUMERIC_DTYPES[sexptype])
    if dims is not None:
        array = array.reshape(dims, order="F")
    return array


def _atomic_to_python(address, rtype, dims, copy):
    if rtype in (REALSXP, INTSXP, CPLXSXP, RAWSXP):
        array = _python_owned_view(address, dims) if rtype != RAWSXP else None
        if array is None:
            array = _numeric_view(address, rtype, dims)
        return array.copy(order="F") if copy else array
    if copy is False:
        what = "logical" if rtype == LGLSXP else "character"
        raise CopyRequired(
            f"copy=False was asked, but an R {what} vector can only cross as a copy: "
            + ("R stores logicals as 4-byte ints with NA, numpy bools are 1 byte"
               if rtype == LGLSXP else "R strings are not Python str objects"))
    if rtype == LGLSXP:
        return _logical_to_python(address, dims)
    items = r_shim.shim().strings(address)
    if dims is None:
        return items
    return np.array(items, dtype=object).reshape(dims, order="F")


def _python_owned_view(address, dims):
    """For an R vector that IS a view of a Python buffer (our ALTREP, not yet copied on
    write): a numpy view of that original buffer, else None."""
    info = r_shim.shim().view_info(address)
    if info is None or info[2]:
        return None
    owner = info[0]
    flat = owner.reshape(-1, order="F") if owner.ndim != 1 else owner
    return flat.reshape(dims, order="F") if dims is not None else flat.view()


def _logical_to_python(address, dims):
    ints = _numeric_view(address, LGLSXP, dims)
    missing = ints == NA_INTEGER
    values = ints != 0
    if missing.any():
        return np.ma.MaskedArray(values, mask=missing)
    return values


def _list_to_python(address, attributes, copy):
    return list_to_python(address, attributes, lambda item: _from_address(item, copy, True))


def list_to_python(address, attributes, convert_item):
    """An R list as a Python list; a dict when every element is named, uniquely; else
    (name, value) pairs. Elements are converted by `convert_item(address)`."""
    shim = r_shim.shim()
    items = [convert_item(item) for item in shim.elements(address)]
    names_address = attributes.get("names")
    if names_address is None:
        return items
    names = shim.strings(names_address)
    if all(names) and len(set(names)) == len(names):
        return dict(zip(names, items))
    return list(zip(names, items))


def _function_to_python(address):
    original = r_shim.shim().python_callable(address)
    if original is not None:
        return original               # a Python callable we exported comes back as itself
    return r_shim.engine["function_class"](r_shim.borrow(address))


def _levels(attributes):
    return r_shim.shim().strings(attributes["levels"]) if "levels" in attributes else []


def _factor_to_python(address, attributes, r_class, copy):
    if copy is False:
        raise CopyRequired("copy=False was asked, but an R factor can only cross as a "
                           "copy: its codes are 1-based and pandas' are 0-based")
    codes = _numeric_view(address, INTSXP, None)
    levels = _levels(attributes)
    pd = _pandas()
    if pd is None:
        return [None if code == NA_INTEGER else levels[code - 1] for code in codes.tolist()]
    zero_based = np.where(codes == NA_INTEGER, -1, codes - 1)
    return pd.Categorical.from_codes(zero_based, categories=levels,
                                     ordered="ordered" in r_class)


def _data_frame_to_python(address, attributes, copy):
    shim = r_shim.shim()
    names = shim.strings(attributes["names"]) if "names" in attributes else []
    columns = [_column_to_python(item, copy) for item in shim.elements(address)]
    pd = _pandas()
    if pd is None:
        return dict(zip(names, columns))
    frame = pd.DataFrame(dict(zip(names, columns)), copy=False)
    row_names = attributes.get("row.names")
    if row_names is not None and shim.describe(row_names)[0] == STRSXP:
        frame.index = shim.strings(row_names)
    return frame


def _column_to_python(address, copy):
    rtype = r_shim.shim().describe(address)[0]
    value = _from_address(address, copy, False)
    if rtype == STRSXP:
        return np.array(value, dtype=object)
    if isinstance(value, np.ma.MaskedArray) and rtype == LGLSXP:
        pd = _pandas()
        return pd.arrays.BooleanArray(np.ma.getdata(value), np.ma.getmaskarray(value))
    return value
