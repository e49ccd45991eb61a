"""R functions that pickle, the way R serialises them: `serialize()` of the closure with
its environments (engine.RFunction.__reduce__), `unserialize()` on the other side.

What R's serialize() keeps is what travels: the function's own environments and what
they hold. The global environment and package namespaces travel by name, so a function
finds the receiving R's globals and packages, not the sender's. External pointers do
not travel (serialize() writes them as NULL): a function that reaches one raises
ConversionError naming where it is, rather than arriving broken.
"""
from __future__ import annotations

import pickle
from pathlib import Path

from ...errors import ConversionError

_CHECKER: list = []  # travel.R's environment, once R runs


def serialized(function, session, protocol: int):
    """The bytes of R's serialize() of `function` (an engine.RFunction), a PickleBuffer
    (out of band where the pickler takes buffers) from protocol 5 on."""
    ri = session.ri
    parts = list(_travel_env(session)["untravelled_parts"](function.sexp))
    if parts:
        name = function.name or "<anonymous>"
        raise ConversionError(
            f"R function {name} cannot be pickled: {', '.join(parts)} "
            f"{'is an external pointer' if len(parts) == 1 else 'are external pointers'} "
            "(memory of this process, e.g. a connection or a C library's handle), which "
            "R's serialize() cannot carry to another process. Create it where the "
            "function runs instead (e.g. inside the function)")
    raw = ri.baseenv["serialize"](function.sexp, ri.NULL)
    data = bytes(raw)
    return pickle.PickleBuffer(data) if protocol >= 5 else data


def unserialized(data, session):
    """The R object serialized as `data` (bytes-like), unserialised in this R."""
    ri = session.ri
    return ri.baseenv["unserialize"](ri.ByteSexpVector(bytes(data)))


def _travel_env(session):
    if not _CHECKER:
        ri = session.ri
        env = ri.baseenv["new.env"](parent=ri.baseenv)
        text = (Path(__file__).with_name("travel.R")).read_text(encoding="utf-8")
        ri.baseenv["eval"](ri.parse(text), env)
        _CHECKER.append(env)
    return _CHECKER[0]
