"""pandas through the R converter: DataFrame -> data.frame (numeric columns as views),
Series, Categorical -> factor, datetime columns and indexes -> POSIXct. Registered by
polymagic.marshal.r the first time a pandas value crosses, so `import polymagic`
imports no pandas."""
from __future__ import annotations

import numpy as np

from ..errors import ConversionError, CopyRequired
from . import r_dates, r_shim


def register(pd, r) -> None:
    """Register pandas' types with the R converter `r` (polymagic.marshal.r, handed in
    so that this module imports nothing back)."""
    _to_r_dispatch, to_r, _make_list = r._to_r_dispatch, r.to_r, r._make_list
    _masked_to_r, _strings_to_r, _string_items = r._masked_to_r, r._strings_to_r, \
        r._string_items
    _fill_new_vector, _set_attr = r._fill_new_vector, r._set_attr
    INTSXP, NA_INTEGER = r.INTSXP, r.NA_INTEGER

    @_to_r_dispatch.register(pd.DataFrame)
    def _data_frame_to_r(frame, copy, shared_writes):
        names = [str(column) for column in frame.columns]
        columns = [_column_to_r(frame.iloc[:, index], name, copy, shared_writes)
                   for index, name in enumerate(names)]
        return _make_list(columns, names, "data.frame", _row_names_to_r(frame.index))

    @_to_r_dispatch.register(pd.Series)
    def _series_to_r(series, copy, shared_writes):
        return _series_values_to_r(series, copy, shared_writes)

    @_to_r_dispatch.register(pd.Categorical)
    def _categorical_to_r(categorical, copy, shared_writes):
        return _factor_to_r(categorical, copy)

    @_to_r_dispatch.register(pd.DatetimeIndex)
    def _datetime_index_to_r(index, copy, shared_writes):
        return r_dates.pandas_datetimes_to_r(index, copy)

    def _column_to_r(series, name, copy, shared_writes):
        try:
            return _series_values_to_r(series, copy, shared_writes)
        except ConversionError as error:  # say which column; the error keeps its class
            error.args = (f"column {name!r}: {error}", *error.args[1:])
            raise

    def _series_values_to_r(series, copy, shared_writes):
        dtype = series.dtype
        if isinstance(dtype, pd.CategoricalDtype):
            return _factor_to_r(series.array, copy)
        if isinstance(dtype, pd.DatetimeTZDtype):
            return r_dates.pandas_datetimes_to_r(series, copy)
        if isinstance(dtype, np.dtype) and dtype.kind != "O":
            return to_r(series.to_numpy(), copy=copy, shared_writes=shared_writes)
        if copy is False:
            raise CopyRequired(f"column {series.name!r} (dtype {dtype}) crosses into R "
                               f"as a copy: R has no such column type to view")
        values = series.to_numpy(dtype=object)
        missing = series.isna().to_numpy()
        temporal = r_dates.objects_to_r(values, missing) if dtype.kind == "O" else None
        if temporal is not None:  # dates or times held as Python objects
            return temporal
        if missing.any() or dtype.kind in "biuf":
            present = values[~missing]
            target = np.array(present.tolist() or [], dtype=_masked_dtype(dtype))
            filled = np.zeros(len(values), dtype=target.dtype) \
                if target.dtype.kind != "O" else np.full(len(values), None, object)
            filled[~missing] = target
            return _masked_to_r(np.ma.MaskedArray(filled, mask=missing), None)
        return _strings_to_r(_string_items(values))

    def _masked_dtype(dtype):
        kind = getattr(dtype, "kind", "O")
        return {"b": bool, "i": np.int64, "u": np.int64, "f": np.float64}.get(kind, object)

    def _factor_to_r(categorical, copy):
        if copy is False:
            raise CopyRequired("a pandas Categorical crosses into R as a copy: R factor "
                               "codes are 1-based")
        codes = np.asarray(categorical.codes, dtype=np.int32) + 1
        codes[codes == 0] = NA_INTEGER
        result = _fill_new_vector(INTSXP, codes, None)
        address = r_shim.address_of(result)
        _set_attr(address, "levels",
                  _strings_to_r([str(level) for level in categorical.categories]))
        _set_attr(address, "class", _strings_to_r(
            ["ordered", "factor"] if categorical.ordered else ["factor"]))
        return result

    def _row_names_to_r(index):
        if isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1:
            return _fill_new_vector(INTSXP, np.array([NA_INTEGER, -len(index)],
                                                     dtype=np.int32), None)
        return _strings_to_r([str(label) for label in index])
