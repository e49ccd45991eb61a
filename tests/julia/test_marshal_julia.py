"""The view-or-copy decisions for numpy arrays going to Julia (marshal/julia.py's
plan_push): plain Python, no Julia needed. What a real Julia then sees is tested in
test_bridge_julia.py."""
import numpy as np
import pytest

from polymagic.errors import ConversionError, CopyRequired
from polymagic.marshal import julia as marshal


@pytest.mark.parametrize("array", [
    np.arange(6.0),
    np.asfortranarray(np.arange(12.0).reshape(3, 4)),
    np.array(3.5),
    np.arange(4, dtype=np.int32),
    np.ones(3, dtype=bool),
    np.arange(3) + 1j,
], ids=["1-D", "F-ordered 2-D", "0-d", "int32", "bool", "complex128"])
def test_shareable_arrays_are_planned_as_views(array):
    """1-D, F-ordered and 0-d arrays of supported dtypes cross as views of their memory:
    read-only for Julia by default, writable Julia Arrays with shared_writes."""
    plan = marshal.plan_push(array, copy=False)
    assert plan.kind == marshal.READONLY_VIEW and plan.array is array
    shared = marshal.plan_push(array, copy=False, shared_writes=True)
    assert shared.kind == marshal.VIEW and shared.array is array


def test_c_ordered_matrix_is_copied_column_major():
    """A C-ordered 2-D array is copied into an F-ordered array with the same values."""
    array = np.arange(12.0).reshape(3, 4)
    plan = marshal.plan_push(array)
    assert plan.kind == marshal.COPY and "column-major" in plan.reason
    assert plan.array.flags.f_contiguous and np.array_equal(plan.array, array)
    assert not np.shares_memory(plan.array, array)


def test_c_ordered_matrix_with_copy_false_raises_copy_required():
    """copy=False on a C-ordered 2-D array raises CopyRequired explaining why."""
    with pytest.raises(CopyRequired, match="column-major"):
        marshal.plan_push(np.zeros((2, 3)), copy=False)


@pytest.mark.parametrize("array, why", [
    (np.arange(10.0)[::2], "strided"),
    (np.arange(4.0).astype(">f8"), "byte order"),
], ids=["strided", "byte-swapped"])
def test_unshareable_layouts_are_copied(array, why):
    """Strided and byte-swapped arrays are copied (to native, F-ordered), with the reason."""
    plan = marshal.plan_push(array)
    assert plan.kind == marshal.COPY and why in plan.reason
    assert plan.array.dtype.isnative and np.array_equal(plan.array, array)


def test_copy_true_always_copies():
    """copy=True gives an independent copy even when a view was possible."""
    array = np.arange(5.0)
    plan = marshal.plan_push(array, copy=True)
    assert plan.kind == marshal.COPY and not np.shares_memory(plan.array, array)


def test_read_only_arrays_become_read_only_views():
    """A read-only numpy array crosses as a read-only view, never a writable Julia Array."""
    array = np.arange(3.0)
    array.flags.writeable = False
    assert marshal.plan_push(array).kind == marshal.READONLY_VIEW
    with pytest.raises(ConversionError, match="read-only"):
        marshal.plan_push(array, shared_writes=True)


@pytest.mark.parametrize("array", [np.array(["a", "b"]), np.array([object()]),
                                   np.zeros(2, dtype=[("a", "f8")])],
                         ids=["str", "object", "structured"])
def test_unsupported_dtypes_are_a_conversion_error(array):
    """dtypes with no Julia element type raise ConversionError naming the dtype."""
    with pytest.raises(ConversionError) as info:
        marshal.plan_push(array)
    assert str(array.dtype) in str(info.value)


def test_julia_code_ships_as_a_file():
    """The Julia half of the conversions is a real .jl file beside marshal/julia.py,
    defining the module the engine loads."""
    text = marshal.JULIA_SOURCE_FILE.read_text()
    assert marshal.JULIA_SOURCE_FILE.suffix == ".jl"
    assert f"module {marshal.JULIA_MODULE}" in text
