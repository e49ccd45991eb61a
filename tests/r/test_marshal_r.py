"""polymagic.marshal.r against a real embedded R: every row of docs/conversions-r.md."""
from __future__ import annotations

import gc
import math
import weakref

import numpy as np
import pytest

from polymagic.bridges.r import runtime as r_runtime
from polymagic.errors import ConversionError, CopyRequired

ri = r_runtime.start()

from polymagic.marshal import r as marshal  # noqa: E402  (needs R started)
from polymagic.marshal import r_shim  # noqa: E402

shim = r_shim.shim()


def ev(code: str):
    return ri.evalr(code)


def r_value(code: str):
    return marshal.to_python(ev(code))


def push(name: str, value, **options):
    marshal.assign(name, marshal.to_r(value, **options))


def r_data_address(name: str) -> int:
    """DATAPTR_RO of the R vector bound to `name` (never triggers copy-on-write)."""
    return shim.read_address(r_shim.address_of(ev(name)))


def address(array) -> int:
    return array.__array_interface__["data"][0]


def r_gc():
    gc.collect()
    ev("invisible(gc(full = TRUE))")
    gc.collect()


def assert_r_works():
    assert r_value("1L + 1L") == 2


# ---- numeric vectors, Python -> R -------------------------------------------------------

@pytest.mark.parametrize("dtype, r_type", [(np.float64, "double"), (np.int32, "integer"),
                                           (np.complex128, "complex")])
def test_numeric_array_is_an_r_view(dtype, r_type):
    """float64/int32/complex128 arrays become R vectors whose data IS the numpy buffer."""
    x = np.arange(1, 7).astype(dtype)
    push("x", x)
    assert r_value("typeof(x)") == r_type
    assert r_data_address("x") == address(x)
    assert r_value("x[3]") == x[2]


def test_python_write_is_seen_by_r():
    """A write into the numpy array after the push is visible to R (no copy was made)."""
    x = np.zeros(4)
    push("x", x)
    x[2] = 7.5
    assert r_value("x[3]") == 7.5
    assert r_value("sum(x)") == 7.5


def test_r_write_copies_on_write_and_leaves_python_buffer_alone():
    """`x[1] <- 0` in R writes to a private R copy; the numpy array is unchanged."""
    x = np.arange(1.0, 5.0)
    push("x", x)
    ev("x[1] <- 100")
    assert x[0] == 1.0
    assert r_value("x[1]") == 100.0
    assert r_data_address("x") != address(x)
    x[3] = -1.0               # R now reads its own copy
    assert r_value("x[4]") == 4.0


def test_shared_writes_let_r_write_into_the_python_buffer():
    """With shared_writes=True an R assignment lands in the numpy array itself."""
    x = np.arange(1.0, 5.0)
    push("x", x, shared_writes=True)
    ev("x[1] <- 100")
    assert x[0] == 100.0
    assert r_data_address("x") == address(x)


def test_shared_writes_refuses_read_only_array():
    """shared_writes=True on a read-only array raises ConversionError; R still works."""
    x = np.arange(3.0)
    x.flags.writeable = False
    with pytest.raises(ConversionError, match="read-only"):
        marshal.to_r(x, shared_writes=True)
    assert_r_works()


def test_read_only_array_is_a_view_and_r_writes_copy():
    """A read-only array crosses as a view; R writes go to a copy, never into it."""
    x = np.arange(3.0)
    x.flags.writeable = False
    push("x", x)
    assert r_data_address("x") == address(x)
    ev("x[2] <- 9")
    assert x[1] == 1.0 and r_value("x[2]") == 9.0


def test_r_keeps_numpy_owner_alive_and_releases_it():
    """R's vector keeps the numpy array alive after `del`; R's finalizer releases it."""
    x = np.arange(10.0)
    alive = weakref.ref(x)
    push("kept", x)
    del x
    r_gc()
    assert alive() is not None
    assert r_value("sum(kept)") == 45.0
    ev("rm(kept)")
    r_gc()
    assert alive() is None


def test_saverds_writes_an_ordinary_vector(tmp_path):
    """saveRDS/readRDS of a view round-trips the values (serialized as a plain vector)."""
    x = np.linspace(0.0, 1.0, 11)
    push("x", x)
    path = str(tmp_path / "x.rds").replace("\\", "/")
    ev(f"saveRDS(x, '{path}')")
    del x
    back = r_value(f"readRDS('{path}')")
    assert np.array_equal(back, np.linspace(0.0, 1.0, 11))
    assert r_value("is.null(attributes(x))")


def test_duplicate_is_an_ordinary_r_vector():
    """R's duplicate of a view is an ordinary vector: later Python writes do not reach it."""
    x = np.arange(3.0)
    push("x", x)
    ev("y <- x; y[1] <- 5")
    x[1] = 40.0
    assert r_value("y[2]") == 1.0 and r_value("x[2]") == 40.0


def test_inspect_names_the_view():
    """.Internal(inspect(x)) says the vector is a polymagic view."""
    x = np.arange(3.0)
    push("x", x)
    text = "\n".join(ev("capture.output(.Internal(inspect(x)))"))
    assert "polymagic view of a Python buffer" in text and "zero-copy" in text


def test_fortran_matrix_is_a_view_with_dims():
    """An F-ordered 2-D array is an R matrix view with the same dims, column-major."""
    x = np.asfortranarray(np.arange(6.0).reshape(2, 3))
    push("m", x)
    assert list(ev("dim(m)")) == [2, 3]
    assert r_data_address("m") == address(x)
    assert list(ev("m[2, ]")) == [3.0, 4.0, 5.0]


def test_c_ordered_matrix_is_copied_or_refused():
    """A C-ordered 2-D array is copied (same values), and copy=False raises CopyRequired."""
    x = np.arange(6.0).reshape(2, 3)
    push("m", x)
    assert r_data_address("m") != address(x)
    assert list(ev("m[2, ]")) == [3.0, 4.0, 5.0]
    with pytest.raises(CopyRequired, match="C-ordered"):
        marshal.to_r(x, copy=False)
    assert_r_works()


def test_non_contiguous_array_is_copied_or_refused():
    """A strided array is copied with its values, and copy=False raises CopyRequired."""
    x = np.arange(10.0)[::2]
    push("s", x)
    assert list(ev("s")) == [0.0, 2.0, 4.0, 6.0, 8.0]
    with pytest.raises(CopyRequired, match="not contiguous"):
        marshal.to_r(x, copy=False)
    assert_r_works()


def test_copy_true_always_copies():
    """copy=True gives R its own vector even when a view was possible."""
    x = np.arange(3.0)
    push("x", x, copy=True)
    x[0] = 9.0
    assert r_value("x[1]") == 0.0


@pytest.mark.parametrize("values, dtype, r_type, expected", [
    ([True, False], np.bool_, "logical", [True, False]),
    ([1, 2], np.int64, "integer", [1, 2]),
    ([1, 2], np.uint8, "integer", [1, 2]),
    ([0.5, 1.5], np.float32, "double", [0.5, 1.5]),
    ([1 + 1j], np.complex64, "complex", [1 + 1j]),
])
def test_other_dtypes_are_copied_to_the_nearest_r_type(values, dtype, r_type, expected):
    """bool, int64, small ints, float32, complex64 are copied (R has no such storage)."""
    push("v", np.array(values, dtype=dtype))
    assert r_value("typeof(v)") == r_type
    assert list(ev("v")) == expected
    with pytest.raises(CopyRequired, match=str(np.dtype(dtype))):
        marshal.to_r(np.array(values, dtype=dtype), copy=False)


def test_int64_outside_r_integer_range_is_refused():
    """int64 values beyond R's integer range raise ConversionError with a fix."""
    with pytest.raises(ConversionError, match="astype"):
        marshal.to_r(np.array([2**40], dtype=np.int64))
    assert_r_works()


def test_string_array_becomes_character_vector():
    """A numpy str array (or object array of str/None) becomes a character vector."""
    push("s", np.array(["a", "bé"]))
    assert r_value("s") == ["a", "bé"]
    push("t", np.array(["x", None], dtype=object))
    assert r_value("is.na(t[2])") is True


def test_masked_array_entries_become_na():
    """Masked entries of a numpy masked array become NA in R."""
    push("m", np.ma.MaskedArray([1.0, 2.0], mask=[False, True]))
    assert list(ev("is.na(m)")) == [False, True]


# ---- numeric vectors, R -> Python -------------------------------------------------------

@pytest.mark.parametrize("code, dtype", [("c(1.5, 2.5, 3.5)", np.float64),
                                         ("1:3", np.int32),
                                         ("c(1i, 2, 3)", np.complex128)])
def test_r_vector_is_a_numpy_view(code, dtype):
    """R double/integer/complex vectors come back as numpy views of R's memory."""
    ev(f"v <- {code}")
    array = r_value("v")
    assert array.dtype == dtype
    assert address(array) == r_data_address("v")


def test_python_write_into_r_view_is_seen_by_r():
    """Writing through the numpy view of an R vector changes the R vector."""
    ev("w <- c(1, 2, 3)")
    array = r_value("w")
    array[0] = 10.0
    assert r_value("w[1]") == 10.0


def test_numpy_view_keeps_r_vector_alive():
    """The numpy view keeps the R vector alive after R drops every reference."""
    ev("big <- as.numeric(1:1000)")
    array = r_value("big")
    ev("rm(big)")
    r_gc()
    ev("junk <- lapply(1:200, function(i) rnorm(1000)); rm(junk)")
    r_gc()
    assert array.sum() == 500500.0


def test_r_matrix_is_a_fortran_ordered_view():
    """An R matrix comes back F-ordered with R's dims, sharing R's memory."""
    ev("mm <- matrix(as.numeric(1:6), 2)")
    array = r_value("mm")
    assert array.shape == (2, 3) and array.flags.f_contiguous
    assert array[1, 2] == 6.0
    assert address(array) == r_data_address("mm")


def test_our_view_comes_back_as_view_of_original_buffer():
    """An R vector made from a numpy array comes back as a view of that same buffer."""
    x = np.asfortranarray(np.arange(6.0).reshape(3, 2))
    push("x", x)
    back = r_value("x")
    assert np.shares_memory(back, x) and back.shape == (3, 2)
    ev("x[1] <- 99")          # copy-on-write: now R's own memory comes back
    assert not np.shares_memory(r_value("x"), x)


def test_copy_true_pull_copies():
    """to_python(copy=True) returns an array that does not share R's memory."""
    ev("v <- c(1, 2)")
    array = marshal.to_python(ev("v"), copy=True)
    assert address(array) != r_data_address("v")


def test_numpy_array_outlives_python_pushed_owner():
    """Both directions: numpy view of R vector of numpy array survives del of both."""
    x = np.arange(5.0)
    push("x", x)
    back = r_value("x")
    del x
    ev("rm(x)")
    r_gc()
    assert back.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]


# ---- scalars and NA ---------------------------------------------------------------------

@pytest.mark.parametrize("code, expected", [("2.5", 2.5), ("3L", 3), ("TRUE", True),
                                            ("2+1i", 2 + 1j), ("'hé'", "hé"),
                                            ("NA_real_", None), ("NA_integer_", None),
                                            ("NA", None), ("NA_character_", None),
                                            ("NA_complex_", None)])
def test_length_one_vectors_are_python_scalars(code, expected):
    """Length-1 attribute-free vectors become Python scalars; NA becomes None."""
    value = r_value(code)
    assert value == expected and type(value) is type(expected)


def test_nan_is_not_na():
    """R's NaN comes back as float nan, distinct from NA (None)."""
    assert math.isnan(r_value("NaN"))


def test_na_inside_numeric_views():
    """NA_real_ is a NaN with payload 1954 in views; NA_integer_ is INT_MIN."""
    doubles = r_value("c(1, NA)")
    assert np.isnan(doubles[1]) and doubles.view(np.uint64)[1] & 0xFFFFFFFF == 1954
    assert r_value("c(1L, NA)")[1] == np.iinfo(np.int32).min


def test_logical_vector_is_bool_copy_with_na_masked():
    """A logical vector is a bool array copy; NAs are masked; copy=False raises."""
    assert r_value("c(TRUE, FALSE)").tolist() == [True, False]
    masked = r_value("c(TRUE, NA)")
    assert masked.mask.tolist() == [False, True]
    with pytest.raises(CopyRequired, match="logical"):
        marshal.to_python(ev("c(TRUE, FALSE)"), copy=False)
    assert_r_works()


def test_character_vector_is_list_of_str():
    """A character vector is a list of str with None for NA."""
    assert r_value("c('a', NA, 'c')") == ["a", None, "c"]


@pytest.mark.parametrize("value, r_type", [(1.5, "double"), (7, "integer"),
                                           (2**40, "double"), (True, "logical"),
                                           (1j, "complex"), ("s", "character"),
                                           (np.float64(2.0), "double"),
                                           (np.int64(3), "integer")])
def test_python_scalars_become_length_one_vectors(value, r_type):
    """Python and numpy scalars become length-1 R vectors of the matching type."""
    push("s", value)
    assert r_value("typeof(s)") == r_type and r_value("length(s)") == 1
    assert r_value("s") == value


def test_null_and_none():
    """R NULL and Python None convert to each other."""
    assert r_value("NULL") is None
    push("n", None)
    assert r_value("is.null(n)") is True


# ---- lists, factors, data frames --------------------------------------------------------

def test_named_list_and_dict():
    """A named list is a dict and a dict is a named list."""
    assert r_value("list(a = 1, b = 'x')") == {"a": 1.0, "b": "x"}
    push("d", {"k": 2, "v": [1.0, "z"]})
    assert list(ev("names(d)")) == ["k", "v"]
    assert r_value("d$v[[2]]") == "z"


def test_unnamed_list_and_list():
    """An unnamed list is a list and a list (or tuple) is an unnamed list."""
    assert r_value("list(1L, 'a', NULL)") == [1, "a", None]
    push("l", (1.5, "b"))
    assert r_value("is.null(names(l))") is True and r_value("l[[2]]") == "b"


def test_partially_named_list_keeps_names_as_pairs():
    """A list with missing or repeated names becomes (name, value) pairs."""
    assert r_value("list(a = 1, 2)") == [("a", 1.0), ("", 2.0)]


def test_factor_and_categorical():
    """A factor is a pandas.Categorical (NA -> NaN) and back, ordered kept."""
    pd = pytest.importorskip("pandas")
    categorical = r_value("factor(c('b', 'a', NA), levels = c('a', 'b'))")
    assert list(categorical.categories) == ["a", "b"]
    assert categorical.codes.tolist() == [1, 0, -1]
    push("f", pd.Categorical(["lo", "hi"], categories=["lo", "hi"], ordered=True))
    assert list(ev("class(f)")) == ["ordered", "factor"]
    assert list(ev("as.character(f)")) == ["lo", "hi"]


def test_data_frame_columns_are_views():
    """A data.frame becomes a DataFrame whose numeric columns are views of R's columns."""
    pytest.importorskip("pandas")
    ev("frame <- data.frame(a = c(1.5, 2.5), b = 1:2, s = c('x', 'y'), "
       "l = c(TRUE, NA), stringsAsFactors = FALSE)")
    frame = r_value("frame")
    assert list(frame.columns) == ["a", "b", "s", "l"]
    assert address(frame["a"].to_numpy()) == r_data_address("frame$a")
    assert address(frame["b"].to_numpy()) == r_data_address("frame$b")
    assert frame["s"].tolist() == ["x", "y"]
    assert frame["l"].isna().tolist() == [False, True]


def test_dataframe_becomes_data_frame_with_view_columns():
    """A DataFrame becomes a data.frame; float64 columns are views of pandas' memory."""
    pd = pytest.importorskip("pandas")
    values = np.array([1.0, 2.0, 3.0])
    frame = pd.DataFrame({"x": values, "n": [1, 2, 3], "s": ["a", "b", None]}, copy=False)
    push("pdf", frame)
    assert r_value("class(pdf)") == "data.frame"
    assert r_value("nrow(pdf)") == 3 and list(ev("names(pdf)")) == ["x", "n", "s"]
    assert np.shares_memory(r_value("pdf$x"), frame["x"].to_numpy())
    assert r_value("is.na(pdf$s[3])") is True and r_value("typeof(pdf$n)") == "integer"


def test_dataframe_with_string_index_has_row_names():
    """A non-default index becomes row.names and comes back as the index."""
    pd = pytest.importorskip("pandas")
    push("pdf", pd.DataFrame({"x": [1.0, 2.0]}, index=["r1", "r2"]))
    assert list(ev("rownames(pdf)")) == ["r1", "r2"]
    assert list(r_value("pdf").index) == ["r1", "r2"]


# ---- functions --------------------------------------------------------------------------

def test_r_function_becomes_rfunction():
    """An R closure comes back as polymagic.bridges.r.RFunction, and goes back unchanged."""
    from polymagic.bridges.r import RFunction
    function = r_value("function(n) n + 1")
    assert isinstance(function, RFunction)
    assert r_shim.address_of(marshal.to_r(function)) == r_shim.address_of(function.sexp)


def test_python_callable_called_from_r():
    """A Python callable is an R function: arguments and results converted, names kept."""
    seen = []

    def scale(values, factor=2.0):
        seen.append(values)
        return values * factor

    push("scale", scale)
    ev("data <- c(1, 2, 3)")
    assert list(ev("scale(data, factor = 10)")) == [10.0, 20.0, 30.0]
    assert address(seen[0]) == r_data_address("data")      # the argument was a view


def test_python_callable_round_trips_as_itself():
    """A Python callable sent to R and read back is the very same object."""
    def identity(value):
        return value
    push("identity_fn", identity)
    assert r_value("identity_fn") is identity


def test_python_exception_becomes_r_error_and_is_kept():
    """A Python exception in a callback is an R error naming it; the object is stashed."""
    def fail(value):
        raise ValueError(f"bad value {value}")

    push("fail", fail)
    with pytest.raises(Exception, match="Python exception ValueError: bad value 3"):
        ev("fail(3L)")
    error = marshal.take_pending_python_error()
    assert isinstance(error, ValueError) and str(error) == "bad value 3"
    assert marshal.take_pending_python_error() is None
    assert r_value("tryCatch(fail(1), error = function(e) 'caught')") == "caught"
    marshal.take_pending_python_error()
    assert_r_works()


def test_python_callable_released_with_r_function():
    """R's function holds the Python callable until R collects it."""
    def local(x):
        return x
    alive = weakref.ref(local)
    push("local_fn", local)
    del local
    r_gc()
    assert alive() is not None
    ev("rm(local_fn)")
    r_gc()
    assert alive() is None


# ---- unsupported types ------------------------------------------------------------------

@pytest.mark.parametrize("value, name", [(object(), "object"), ({1, 2}, "set"),
                                         (np.zeros(2, dtype=np.longdouble),
                                          "float128")])
def test_unsupported_python_values_raise_conversion_error(value, name):
    """A value with no R equivalent raises ConversionError naming its type; R works."""
    with pytest.raises(ConversionError, match=name):
        marshal.to_r(value)
    assert_r_works()


def test_dict_with_non_string_key_is_refused():
    """R names are strings: a dict with an int key raises ConversionError."""
    with pytest.raises(ConversionError, match="key 1"):
        marshal.to_r({1: 2})
    assert_r_works()


def test_r_environment_passes_through_as_rpy2_object():
    """An R environment (no Python equivalent) comes back as an rpy2 object usable in R."""
    environment = r_value("e <- new.env(); assign('z', 5, envir = e); e")
    marshal.assign("e2", marshal.to_r(environment))
    assert r_value("get('z', envir = e2)") == 5.0


def test_shared_writes_copies_alias_the_buffer():
    """With shared_writes, R's duplicates of the vector are views of the same buffer."""
    x = np.zeros(3)
    push("x", x, shared_writes=True)
    ev("y <- x; y[2] <- 5")
    assert x[1] == 5.0 and r_value("x[2]") == 5.0
