"""The one Python namespace every language reaches (R's `py$f`, Julia's `py.f`,
C++'s `PM_PYTHON` declarations).

Which namespace: the one given to `use_namespace()`; else, in IPython, the shell's
user namespace (set by `%load_ext polymagic`); else the globals of the Python code that
called into polymagic (the innermost frame outside polymagic and the bridges'
libraries), so a script's module-level functions are reachable without set-up.
Names are looked up at call time, so redefining a function in any cell is seen by
every language at its next call.
"""
from __future__ import annotations

import sys

from .errors import HubNameError
from .tracebacks import is_plumbing_frame

_state = {"explicit": None, "ipython": None}

def use_namespace(namespace: dict | None) -> None:
    """Make `namespace` the shared one (None: back to the default rules)."""
    if namespace is not None and not isinstance(namespace, dict):
        raise TypeError(f"use_namespace() takes a dict (e.g. globals()), not "
                        f"{type(namespace).__name__}")
    _state["explicit"] = namespace


def set_ipython_namespace(namespace: dict | None) -> None:
    """Called by `%load_ext polymagic` with the shell's user namespace."""
    _state["ipython"] = namespace


def state() -> dict:
    """The namespaces given (keys "explicit", then "ipython": the first not None is the
    shared one), for code that reads them on a hot path without calling namespace():
    NamespaceProxy here, R's py$name in C (marshal/r_shim_hub.c)."""
    return _state


def namespace() -> dict:
    """The shared namespace, by the rules in this module's docstring."""
    for chosen in (_state["explicit"], _state["ipython"]):
        if chosen is not None:
            return chosen
    return _caller_globals()


def _caller_globals() -> dict:
    frame = sys._getframe(1)
    while frame is not None:
        if not is_plumbing_frame(frame):
            return frame.f_globals
        frame = frame.f_back
    import __main__
    return vars(__main__)


def lookup(name: str, language: str):
    """`name` from the shared namespace; HubNameError saying who asked when missing."""
    space = namespace()
    try:
        return space[name]
    except KeyError:
        raise HubNameError(
            f"{language} asked the shared Python namespace for {name!r}, which has no "
            f"such name (define it in Python, export it from a cell, or pass the "
            f"namespace with polymagic.use_namespace(globals()))") from None


def assign(name: str, value) -> None:
    """Bind `name` in the shared namespace (R's `py$x <- value`)."""
    namespace()[name] = value


class NamespaceProxy:
    """The shared namespace as an object with attributes (`py.f(3)` in Julia)."""

    __slots__ = ("_language",)

    def __init__(self, language: str):
        object.__setattr__(self, "_language", language)

    def __getattribute__(self, name: str):
        # Every non-dunder attribute is a namespace name. Overriding __getattribute__
        # (not __getattr__) spares a failed normal lookup, an AttributeError, per call.
        if name[:2] == "__" or name == "_language":
            return object.__getattribute__(self, name)
        space = _state["explicit"]
        if space is None:
            space = _state["ipython"]
            if space is None:
                space = _caller_globals()
        try:
            return space[name]
        except KeyError:
            return lookup(name, object.__getattribute__(self, "_language"))

    def __setattr__(self, name: str, value) -> None:
        assign(name, value)

    def __getitem__(self, name: str):
        return lookup(name, self._language)

    def __setitem__(self, name: str, value) -> None:
        assign(name, value)

    def __dir__(self):
        return sorted(name for name in namespace() if not name.startswith("_"))

    def __repr__(self) -> str:
        return f"<the shared Python namespace, as seen from {self._language}>"


# `from polymagic import py`: the same handle for Python and Cython code (py.fib_r(10)).
py = NamespaceProxy("Python")
