"""Dates and times between numpy / pandas / datetime and R (marshal/r.py registers these).

    numpy datetime64 (unit h...ns), datetime.datetime, pandas datetime <-> POSIXct
    numpy datetime64 (unit D, W, M, Y), datetime.date                   <-> Date
    numpy timedelta64, datetime.timedelta                               <-> difftime

R keeps all three as doubles (seconds since 1970 UTC, days since 1970, a count of
`units`), numpy as int64 counts of a unit, so every crossing is a copy (`copy=False`
raises CopyRequired). A naive datetime crosses as UTC (POSIXct `tzone` "UTC", so R shows
the same wall-clock time); a zone-aware one keeps its zone by name. Back in Python a
POSIXct is a pandas DatetimeIndex in its `tzone` (UTC when `tzone` is empty) when pandas
is installed, else numpy datetime64[us] in UTC; a Date is datetime64[D]; a difftime is
timedelta64[us]. NaT <-> NA. POSIXct's double holds about a microsecond of precision
today, so nanoseconds do not survive a round trip.

This module builds R vectors through the ALTREP shim only and imports no other marshal
module, so marshal/r.py can import it without a cycle.
"""
from __future__ import annotations

import datetime

import numpy as np

from ..errors import ConversionError, CopyRequired
from . import r_shim

REALSXP, INTSXP = 14, 13
_NAT = np.iinfo(np.int64).min
_NA_REAL = np.array([0x7FF00000000007A2], dtype=np.uint64).view(np.float64)[0]
_POSIXCT_CLASS = ["POSIXct", "POSIXt"]
# numpy timedelta units -> R difftime units, and each R unit in microseconds
_DIFFTIME_UNITS = {"W": "weeks", "D": "days", "h": "hours", "m": "mins"}
_MICROSECONDS = {"secs": 1e6, "mins": 6e7, "hours": 3.6e9, "days": 8.64e10,
                 "weeks": 6.048e11}
_SECONDS_PER_UNIT = {"weeks": 604800, "days": 86400, "hours": 3600, "mins": 60,
                     "secs": 1}


# ======================================================================================
# Python -> R

def _check_copy_in(copy, what: str) -> None:
    if copy is False:
        raise CopyRequired(f"{what} crosses into R as a copy: R stores dates and times "
                           f"as doubles, numpy as int64 counts")


def array_to_r(array: np.ndarray, copy=None):
    """A numpy datetime64 / timedelta64 array as a Date, POSIXct or difftime vector."""
    _check_copy_in(copy, f"a numpy {array.dtype} array")
    dims = array.shape if array.ndim > 1 else None
    unit, count = np.datetime_data(array.dtype)
    if array.dtype.kind == "M":
        if unit in ("Y", "M", "W", "D"):
            return _date_vector(array, dims)
        return _posixct_vector(_seconds(array, unit, count), "UTC", dims)
    return _difftime_vector(array, unit, count, dims)


def _date_vector(array, dims):
    days = array.astype("datetime64[D]").view(np.int64)
    values = days.astype(np.float64)
    values[days == _NAT] = np.nan
    return _doubles(values, dims, {"class": ["Date"]})


def _seconds(array, unit: str, count: int) -> np.ndarray:
    """Seconds since the epoch (float64, NaN for NaT) of a datetime64/timedelta64 array."""
    ticks = array.view(np.int64)
    unit_seconds = np.timedelta64(count, unit) / np.timedelta64(1, "s")
    if unit_seconds >= 1:
        values = ticks * unit_seconds
    else:  # divide by an exact integer (1e9 for ns) rather than multiply by its inverse
        values = ticks / (np.timedelta64(1, "s") / np.timedelta64(count, unit))
    values[ticks == _NAT] = np.nan
    return values


def _posixct_vector(seconds, tzone: str, dims=None):
    return _doubles(seconds, dims, {"class": _POSIXCT_CLASS, "tzone": [tzone]})


def _difftime_vector(array, unit: str, count: int, dims):
    if unit in ("Y", "M"):
        raise ConversionError(f"cannot convert a numpy {array.dtype} array to R: years "
                              f"and months have no fixed length (R's difftime needs one)")
    units = _DIFFTIME_UNITS.get(unit, "secs")
    values = _seconds(array, unit, count) / _SECONDS_PER_UNIT[units]
    return _doubles(values, dims, {"class": ["difftime"], "units": [units]})


def _doubles(values: np.ndarray, dims, attributes: dict):
    """A new R double vector holding `values` (column-major; NaN becomes NA), with
    string attributes."""
    shim = r_shim.shim()
    address = shim.alloc(REALSXP, values.size, tuple(dims) if dims else None)
    result = r_shim.adopt(address)
    target = np.frombuffer(shim.buffer(address), np.float64)
    target[:] = values.ravel(order="F")
    target[np.isnan(target)] = _NA_REAL  # NA's payload is a signalling NaN: set it last
    for name, strings in attributes.items():
        text = r_shim.adopt(shim.make_strings(list(strings)))
        shim.set_attr(address, name, r_shim.address_of(text))
    return result


def pandas_datetimes_to_r(values, copy=None):
    """A pandas Series / DatetimeIndex / DatetimeArray of datetimes as POSIXct, with
    its time zone (UTC when naive)."""
    import pandas as pd
    _check_copy_in(copy, "a pandas datetime column")
    index = pd.DatetimeIndex(values)
    tzone = "UTC"
    if index.tz is not None:
        tzone = tz_name(index.tz)
        index = index.tz_convert("UTC").tz_localize(None)
    array = index.to_numpy()
    unit, count = np.datetime_data(array.dtype)
    return _posixct_vector(_seconds(array, unit, count), tzone)


def tz_name(tz) -> str:
    """The IANA name R understands for a Python time zone object."""
    for attribute in ("key", "zone"):  # zoneinfo.ZoneInfo, pytz
        name = getattr(tz, attribute, None)
        if isinstance(name, str):
            return name
    offset = tz.utcoffset(None)
    if offset is not None and offset % datetime.timedelta(hours=1) == datetime.timedelta(0):
        hours = offset // datetime.timedelta(hours=1)
        return "UTC" if hours == 0 else f"Etc/GMT{-hours:+d}"  # POSIX sign is reversed
    raise ConversionError(f"cannot convert a datetime in time zone {tz!r} to R: it has no "
                          f"name R knows; convert it first, e.g. .tz_convert('UTC')")


def objects_to_r(values: np.ndarray, missing: np.ndarray):
    """An object array of dates, datetimes or timedeltas (None where `missing`) as an R
    vector; None when the present values are not all one of these kinds."""
    present = [value for value, absent in zip(values.tolist(), missing.tolist())
               if not absent]
    if not present:
        return None
    if all(isinstance(value, datetime.datetime) for value in present):
        return _datetimes_to_r(values, missing, present)
    if all(isinstance(value, datetime.date) for value in present):
        dtype = "datetime64[D]"
    elif all(isinstance(value, datetime.timedelta) for value in present):
        dtype = "timedelta64[us]"
    else:
        return None
    filled = np.array([None if absent else value for value, absent
                       in zip(values.tolist(), missing.tolist())], dtype=dtype)
    return array_to_r(filled)


def _datetimes_to_r(values, missing, present):
    """datetime objects as POSIXct: naive ones as UTC; zone-aware ones as instants,
    shown in the first value's zone."""
    aware = {value.tzinfo is not None for value in present}
    if len(aware) > 1:
        raise ConversionError("cannot convert datetimes that mix naive and zone-aware "
                              "values to one R POSIXct vector")
    instants = [None if absent else _naive_utc(value)
                for value, absent in zip(values.tolist(), missing.tolist())]
    seconds = _seconds(np.array(instants, dtype="datetime64[us]"), "us", 1)
    return _posixct_vector(seconds, tz_name(present[0].tzinfo) if True in aware else "UTC")


def _naive_utc(value: datetime.datetime) -> datetime.datetime:
    if value.tzinfo is None:
        return value
    return value.astimezone(datetime.timezone.utc).replace(tzinfo=None)


def _datetime_to_r(value: datetime.datetime, copy, shared_writes):
    _check_copy_in(copy, "a datetime")
    return _datetimes_to_r(np.array([value], dtype=object), np.array([False]), [value])


def _date_to_r(value: datetime.date, copy, shared_writes):
    return array_to_r(np.array([value], dtype="datetime64[D]"), copy)


def _timedelta_to_r(value: datetime.timedelta, copy, shared_writes):
    return array_to_r(np.array([value], dtype="timedelta64[us]"), copy)


def _numpy_scalar_to_r(value, copy, shared_writes):
    return array_to_r(np.array([value]), copy)


# type -> rule(value, copy, shared_writes) for marshal/r.py's to_r registry
SCALAR_RULES = {datetime.datetime: _datetime_to_r, datetime.date: _date_to_r,
                datetime.timedelta: _timedelta_to_r, np.datetime64: _numpy_scalar_to_r,
                np.timedelta64: _numpy_scalar_to_r}


# ======================================================================================
# R -> Python

def _values(address, rtype) -> np.ndarray:
    """An R double or integer vector's values as float64 (NA -> NaN), copied."""
    raw = np.frombuffer(r_shim.shim().buffer(address),
                        np.float64 if rtype == REALSXP else np.int32)
    if rtype == REALSXP:
        values = raw.copy()
        values[np.isnan(values)] = np.nan  # NA is a signalling NaN: quiet it for arithmetic
        return values
    values = raw.astype(np.float64)
    values[raw == np.iinfo(np.int32).min] = np.nan
    return values


def _first_string(attributes, name: str) -> str:
    address = attributes.get(name)
    strings = r_shim.shim().strings(address) if address is not None else []
    return strings[0] if strings and strings[0] else ""


def _ticks(values: np.ndarray, scale: float, what: str) -> np.ndarray:
    """round(values * scale) as int64, NaT for NA/NaN; ConversionError for values
    outside int64's range (infinite dates among them)."""
    missing = np.isnan(values)
    scaled = np.where(missing, 0.0, values) * scale
    if not np.all(np.abs(scaled) < 2.0 ** 63):
        bad = values[~missing & ~(np.abs(scaled) < 2.0 ** 63)][0]
        raise ConversionError(f"cannot convert R {what} value {bad} to numpy: it lies "
                              f"outside the range numpy can hold")
    ticks = np.round(scaled).astype(np.int64)
    ticks[missing] = _NAT
    return ticks


def _check_copy(copy, what: str) -> None:
    if copy is False:
        raise CopyRequired(f"copy=False was asked, but an R {what} vector can only "
                           f"cross as a copy: R stores it as doubles, numpy as int64")


def _shaped(array, attributes):
    dims = attributes.get("dim")
    if dims is None:
        return array
    shape = tuple(np.frombuffer(r_shim.shim().buffer(dims), np.int32).tolist())
    return array.reshape(shape, order="F")


def posixct_to_python(address, rtype, attributes, copy, pandas):
    """POSIXct -> pandas DatetimeIndex in its tzone (pandas installed, no dim), else
    datetime64[us] in UTC."""
    _check_copy(copy, "POSIXct")
    ticks = _ticks(_values(address, rtype), 1e6, "POSIXct")
    array = _shaped(ticks.view("datetime64[us]"), attributes)
    if pandas is None or array.ndim != 1:
        return array
    tzone = _first_string(attributes, "tzone") or "UTC"
    index = pandas.DatetimeIndex(array).tz_localize("UTC")
    try:
        return index.tz_convert(tzone)
    except Exception as error:  # pandas raises the zone library's own error classes
        raise ConversionError(f"R time zone {tzone!r} is unknown to Python ({error}); "
                              f"set another with attr(x, 'tzone') <- 'UTC'") from error


def date_to_python(address, rtype, attributes, copy, pandas):
    """Date -> datetime64[D] (days are floored, as R prints them)."""
    _check_copy(copy, "Date")
    values = np.floor(_values(address, rtype))
    return _shaped(_ticks(values, 1.0, "Date").view("datetime64[D]"), attributes)


def difftime_to_python(address, rtype, attributes, copy, pandas):
    """difftime -> timedelta64[us] (any of R's units)."""
    _check_copy(copy, "difftime")
    units = _first_string(attributes, "units") or "secs"
    if units not in _MICROSECONDS:
        raise ConversionError(f"cannot convert an R difftime in units {units!r} to "
                              f"numpy: known units are {sorted(_MICROSECONDS)}")
    ticks = _ticks(_values(address, rtype), _MICROSECONDS[units], "difftime")
    return _shaped(ticks.view("timedelta64[us]"), attributes)


# R class -> rule(address, rtype, attributes, copy, pandas) for marshal/r.py
CLASS_RULES = {"POSIXct": posixct_to_python, "Date": date_to_python,
               "difftime": difftime_to_python}


def class_rule(r_class):
    """The rule for the first date/time class in `r_class` (a list of strings), or None."""
    for name in r_class:
        rule = CLASS_RULES.get(name)
        if rule is not None:
            return rule
    return None
