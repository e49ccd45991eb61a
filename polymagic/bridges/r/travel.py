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


class TravelledFunction:
    """An unpickled R function. R unserialises it at its first call, in the thread that
    calls it: R runs in one thread, and an engine may unpickle in another (Dask's
    scheduler and workers unpickle in their event-loop threads, and call in a task
    thread)."""

    __slots__ = ("data", "name", "_session", "_reducer", "_function")

    def __init__(self, data, name, session, reducer):
        self.data, self.name = bytes(data), name
        self._session, self._reducer, self._function = session, reducer, None

    def __call__(self, *args, **kwargs):
        __tracebackhide__ = True  # plumbing: IPython leaves it out of tracebacks
        function = self._function
        if function is None:
            session = self._session()
            ri = session.ri
            sexp = ri.baseenv["unserialize"](ri.ByteSexpVector(self.data))
            function = self._function = session.marshal.to_python(sexp)
            function.name = self.name
        return function(*args, **kwargs)

    def __reduce_ex__(self, protocol):
        data = pickle.PickleBuffer(self.data) if protocol >= 5 else self.data
        return (self._reducer, (data, self.name))

    def __repr__(self) -> str:
        return f"<R function {self.name or '(anonymous)'} (unpickled)>"


def _travel_env(session):
    if not _CHECKER:
        ri = session.ri
        env = ri.baseenv["new.env"](parent=ri.baseenv)
        text = (Path(__file__).with_name("travel.R")).read_text(encoding="utf-8")
        ri.baseenv["eval"](ri.parse(text), env)
        _CHECKER.append(env)
    return _CHECKER[0]
