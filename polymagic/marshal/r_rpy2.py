"""Values through the R magics, in the conventions of rpy2's magic (its numpy + pandas
converter), so that notebooks written for rpy2's `%%R` run unchanged.

- R -> Python: every atomic vector is a numpy array, a length-1 vector included, so
  `result[0]` works; a character vector is a numpy str array (object, with None, when it
  holds NA); lists become dicts / lists of such values. Data frames, factors, dates and
  views are as in polymagic.marshal.r (numeric vectors still arrive as views).
- Python -> R: a list is simplified as rpy2 does it, with R's `simplify2array`: numbers
  or strings become an atomic vector (so `mean(lst)` works), equal-length vectors a
  matrix; a list of dates or times becomes one Date / POSIXct / difftime vector.
  Everything else crosses as polymagic.marshal.r converts it (arrays as views).

The library API (`pm.R`, calls through the hub) keeps marshal.r's rule: a length-1
attribute-free vector is a Python scalar.
"""
from __future__ import annotations

import datetime

import numpy as np

from . import r, r_dates, r_shim

_TEMPORAL = (datetime.date, datetime.timedelta, np.datetime64, np.timedelta64)


# ======================================================================================
# R -> Python

def to_python(sexp, *, copy: bool | None = None):
    """An R value as rpy2's magic would give it (see the module docstring)."""
    r._classes()
    return _from_address(r_shim.address_of(sexp), copy)


def _from_address(address, copy):
    rtype, _, attributes = r_shim.shim().describe(address)
    if rtype == r.VECSXP and not any(name == "class" for name, _ in attributes or ()):
        return _list_to_python(address, dict(attributes or ()), copy)
    value = r._from_address(address, copy, False)  # False: no length-1 scalars
    if rtype == r.STRSXP and isinstance(value, list):
        return _strings_array(value)
    return value


def _strings_array(items: list) -> np.ndarray:
    if any(item is None for item in items):
        array = np.empty(len(items), dtype=object)
        array[:] = items
        return array
    return np.array(items, dtype=str)


def _list_to_python(address, attributes, copy):
    return r.list_to_python(address, attributes, lambda item: _from_address(item, copy))


# ======================================================================================
# Python -> R

def to_r(value, *, copy: bool | None = None, shared_writes: bool = False):
    """`value` as rpy2's magic would send it (see the module docstring)."""
    if type(value) is list:
        return _list_to_r(value, copy, shared_writes)
    return r.to_r(value, copy=copy, shared_writes=shared_writes)


def _list_to_r(items: list, copy, shared_writes):
    if items and all(item is None or isinstance(item, _TEMPORAL) for item in items):
        temporal = _temporal_list_to_r(items)
        if temporal is not None:
            return temporal
    converted = r._make_list([to_r(item, copy=copy, shared_writes=shared_writes)
                              for item in items], None)
    return _simplify2array()(converted)


def _temporal_list_to_r(items: list):
    values = np.empty(len(items), dtype=object)
    values[:] = [item.item() if isinstance(item, np.generic) else item for item in items]
    return r_dates.objects_to_r(values, np.array([item is None for item in items]))


def _simplify2array():
    ri = r._classes()["ri"]
    return ri.baseenv["simplify2array"]
