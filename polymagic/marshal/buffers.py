"""Language-neutral buffer logic: can a foreign language use a numpy array's memory as
it is, and if not, why; the one view-or-copy decision every language's push makes.

R and Julia are both column-major, so their rules are the same: a native-endian,
aligned, F-contiguous (or 1-D contiguous) array crosses as a view; anything else is
copied, or raises `CopyRequired` with the reason when `copy=False` was asked. The
element types each language can view are its own (marshal/r.py, marshal/julia.py).
"""
from __future__ import annotations

import numpy as np

from ..errors import ConversionError, CopyRequired

VIEW = "view"      # the foreign value points at the numpy buffer
COPY = "copy"      # the foreign value owns a copy


def layout_problem(array: np.ndarray, language: str) -> str:
    """Why a column-major `language` cannot use `array`'s memory as it is ('' when it
    can), phrased for the user with the way out."""
    if not array.dtype.isnative:
        return "its bytes are not in this machine's byte order"
    if not array.flags.aligned:
        return "its data is not aligned"
    if not array.flags.f_contiguous:
        if array.ndim >= 2 and array.flags.c_contiguous:
            return (f"it is C-ordered (row-major) and {language} arrays are column-major; "
                    "pass np.asfortranarray(x), or x.T to share it transposed")
        return "it is not contiguous in memory (a strided slice)"
    return ""


def decide(array: np.ndarray, language: str, *, copy: bool | None,
           shared_writes: bool, element_problem: str = "") -> tuple[str, str]:
    """(VIEW or COPY, reason) for pushing `array` into `language`.

    copy: None = a view when possible, True = always copy, False = a view or
    CopyRequired. `element_problem` says why the element type itself cannot be viewed
    ('' when it can). shared_writes needs a view of a writable array."""
    if copy is True:
        return COPY, "copy=True was asked"
    reason = element_problem or layout_problem(array, language)
    if reason:
        if copy is False or shared_writes:
            wanted = "shared_writes=True" if shared_writes else "copy=False"
            raise CopyRequired(f"{wanted} was asked, but this numpy array (dtype "
                               f"{array.dtype}, shape {array.shape}) can only cross into "
                               f"{language} as a copy: {reason}")
        return COPY, reason
    if shared_writes and not array.flags.writeable:
        raise ConversionError("shared_writes=True needs a writable array, but this numpy "
                              "array is read-only")
    return VIEW, ""
