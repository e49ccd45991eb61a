"""Errors that code written for rpy2 still catches.

An R error is also an instance of rpy2's `RRuntimeError`, a parse error also of
`RParsingError`, and, once the user's code has imported rpy2's magic module
(`rpy2.ipython.rmagic`), both are also its `RInterpreterError`. Only classes already in
`sys.modules` are used, so polymagic never imports rpy2's magic (or robjects) itself.
(The magics' values follow rpy2's conventions too: polymagic.marshal.r_rpy2.)
"""
from __future__ import annotations

import sys

from ...errors import also

_RPY2_RUNTIME = ("rpy2.rinterface_lib.embedded", "RRuntimeError")
_RPY2_PARSING = ("rpy2.rinterface_lib._rinterface_capi", "RParsingError")
_RPY2_MAGIC = ("rpy2.ipython.rmagic", "RInterpreterError")


def compatible(error, *, parsing: bool = False):
    """`error` (an RError), made an instance of the rpy2 classes rpy2 code catches for
    it; returned for `raise compatible(RError(...))`."""
    wanted = [_RPY2_RUNTIME, _RPY2_PARSING] if parsing else [_RPY2_RUNTIME]
    magic_error = _loaded(*_RPY2_MAGIC)
    if magic_error is not None:
        # rpy2's magic handler prints these two, and users read them
        error.err, error.stdout = error.message, error.output
    bases = [_loaded(*where) for where in wanted] + [magic_error]
    return also(error, *[base for base in bases if base is not None])


def _loaded(module_name: str, class_name: str):
    module = sys.modules.get(module_name)
    return getattr(module, class_name, None) if module is not None else None
