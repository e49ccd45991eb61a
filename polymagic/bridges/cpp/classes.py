"""The Python classes a cell's C++ classes become (plan entries: records.py).

A Python object of such a class holds a C++ object by address (`_address`). Who owns
it is fixed when the Python object is made, and documented in docs/cpp.md:

* made by the class's constructor, or returned by value: Python owns it, and the
  destructor runs when the Python object dies (`_owned`);
* returned by reference or pointer from a method: borrowed from the receiver, which
  the new object keeps alive (`_keep`, pybind11's reference_internal);
* returned by reference or pointer from a function: borrowed from C++, which owns it.

A const reference or pointer gives a const view: a subclass whose non-const methods
and setters refuse. Methods are the generated wrappers of module.py (overloads: one
dispatcher, overloads.py), with the receiver's address read inline; a base class at a
nonzero offset (multiple inheritance) gets its inherited methods rebound, and an object
passed where its base is expected is shifted by the same offset (`_offsets`).
"""
from __future__ import annotations

import copyreg
import types as pytypes
from collections import defaultdict

from ...errors import ConversionError
from . import fastcalls, overloads

# Members that are dunders but a const view must know (and shifted bases rebind).
_DUNDER_MEMBERS = {"__call__", "__getitem__", "__setitem__", "__iadd__", "__isub__", "__imul__",
                   "__itruediv__"}


class CppClass(type):
    """The type of a C++ class's Python class (it pickles by name in its cell)."""


class CppObject(metaclass=CppClass):
    """Base of the Python classes of C++ classes: a C++ object held by address."""

    __slots__ = ("_address", "_owned", "_keep", "__weakref__")
    _cpp_name = "?"
    _offsets: dict = {}

    def __repr__(self):
        owner = "owned by Python" if getattr(self, "_owned", False) else "borrowed"
        address = getattr(self, "_address", None)
        where = "not constructed" if address is None else f"at 0x{address:x}, {owner}"
        return f"<C++ {self._cpp_name.removeprefix('::')} {where}>"

    def __del__(self):
        if getattr(self, "_owned", False):
            self._owned = False
            type(self)._destroy(self._address)

    def __reduce_ex__(self, protocol):
        return _reduce_object(self)

    @classmethod
    def _adopt(cls, address: int, owned: bool, const: bool = False, keep=None):
        """A Python object for the C++ object at `address` (see the module docstring)."""
        made = object.__new__(_const_class(cls) if const else cls)
        made._address, made._owned, made._keep = address, owned, keep
        return made


class _BaseView:
    """The receiver passed to a base's method when the base sits at an offset."""

    __slots__ = ("_address", "_keep")

    def __init__(self, address: int, keep):
        self._address, self._keep = address, keep


def make_classes(plan: dict, module, context, wrap) -> dict:
    """{qualified C++ name: Python class} for the plan's classes; `wrap(member)` is
    module.py's generated wrapper of one member function."""
    classes = context.classes
    for index, entry in enumerate(plan.get("classes", ())):
        cls = classes[entry["qualified"]] = _make_class(entry, module, context, wrap)
        fast = [m for m in fastcalls.fast_members(entry) if m["role"] == "method"]
        fastcalls.install(context.lib, index, cls, CppObject.__dict__["_address"],
                          tuple(cls._wrappers[m["python"]] for m in fast))
    return classes


def _make_class(entry: dict, module, context, wrap):
    bases = tuple(context.classes[name] for name in entry["bases"]) or (CppObject,)
    director = entry.get("director")
    namespace = {"__slots__": (), "_cpp_name": entry["qualified"], "_module": module,
                 "_context": context, "__module__": module.__name__,
                 "__qualname__": _python_path(entry), "_mutating": set(), "_fields": [],
                 "_base_offsets": {},
                 "_director_slots": director["slots"] if director else (),
                 "__doc__": f"C++ {entry['qualified'].removeprefix('::')} "
                            f"[cell line {entry['line']}]"}
    groups = defaultdict(list)
    for member in entry["members"]:
        groups[member["role"], member["python"]].append(member)
    properties = {}
    for (role, python), members in groups.items():
        _add_member(namespace, properties, role, python, members, context, wrap)
    for name, (getter, setter) in properties.items():
        namespace[name] = property(getter, setter, doc=getter.__doc__)
    _add_protocols(namespace, entry)
    namespace["_wrappers"] = {name: value for name, value in namespace.items()
                              if isinstance(value, (property, pytypes.FunctionType))
                              and not name.startswith("_") or name in _DUNDER_MEMBERS}
    cls = CppClass(entry["name"], bases, namespace)
    cls._offsets = _offsets(cls, entry, context)
    _rebind_shifted_bases(cls, entry, context)
    _set_dtype(cls, entry, context)
    return cls


def _add_protocols(namespace: dict, entry: dict) -> None:
    """Python's protocols a C++ class implies: len() and iteration from size() and
    operator[] (C++'s [] does not check bounds, so iteration stops at size()), and an
    abstract class refusing construction."""
    if "size" in namespace:
        namespace["__len__"] = lambda self: self.size()
        if "__getitem__" in namespace:
            namespace["__iter__"] = lambda self: (self[i] for i in range(self.size()))
    if entry["abstract"]:
        pure = ", ".join(m["python"] for m in entry["members"] if m.get("pure")) or "?"

        def __init__(self, *args, **kwargs):
            if "_cpp_name" not in vars(type(self)) and hasattr(self, "_director_new"):
                return _construct_director(self, args, kwargs)
            raise TypeError(f"{entry['name']} is abstract in C++ (pure virtual: {pure}): "
                            f"construct one of its concrete subclasses")
        namespace["__init__"] = __init__


def _add_member(namespace, properties, role, python, members, context, wrap) -> None:
    raw = getattr(context.lib, members[0]["symbol"])
    if role in ("dtor", "layout", "director_dtor"):
        namespace[{"dtor": "_destroy", "layout": "_layout_ok",
                   "director_dtor": "_director_destroy"}[role]] = raw
    elif role == "director_ctor":
        namespace["_director_new"] = staticmethod(_callable(python, members, wrap, 0))
    elif role == "director_connect":
        namespace["_director_connect"] = wrap(members[0])
    elif role == "offset":
        namespace["_base_offsets"][python] = raw()
    elif role == "from_bytes":
        namespace["_from_bytes"] = staticmethod(wrap(members[0]))
    elif role == "ctor":
        namespace["__init__"] = _constructor(members, wrap)
    elif role in ("getter", "setter"):
        pair = properties.setdefault(python, [None, None])
        pair[role == "setter"] = wrap(members[0])
        if role == "setter":
            namespace["_fields"].append(python)
    elif role == "static":
        namespace[python] = staticmethod(_callable(python, members, wrap, leading=0))
    else:
        method = _callable(python, members, wrap, leading=1)
        if role == "operator" and python not in ("__getitem__", "__setitem__", "__call__"):
            method = _operator(python, method)
        namespace[python] = method
        if not all(m.get("const") or role == "str" for m in members):
            namespace["_mutating"].add(python)


def _callable(python: str, members: list, wrap, leading: int):
    if len(members) == 1:
        return wrap(members[0])
    candidates = [(dict(m, params=m["params"][leading:]), wrap(m)) for m in members]
    return overloads.dispatcher(python, candidates, leading=leading)


def _operator(python: str, method):
    """A binary operator whose operand is not C++'s type returns NotImplemented, so that
    Python tries the other operand; in-place ones return the receiver."""
    in_place = python.startswith("__i")

    def operator(self, *operands):
        try:
            result = method(self, *operands)
        except ConversionError:
            return NotImplemented
        return self if in_place else result
    operator.__name__ = operator.__qualname__ = python
    operator.__doc__ = method.__doc__
    return operator


def _constructor(members: list, wrap):
    """__init__: the C++ constructor (overloads dispatched) makes the object Python
    owns; a class with only C++'s implicit constructor also takes its public fields
    as arguments, in order or by name, as aggregate initialisation does. An object of
    a Python subclass is made by the class's director (directors.py), if it has one."""
    construct = _callable("__init__", members, wrap, leading=0)
    implicit = members[0].get("implicit")

    def __init__(self, *args, **fields):
        if getattr(self, "_owned", False):
            self._owned = False
            type(self)._destroy(self._address)
        if "_cpp_name" not in vars(type(self)) and hasattr(self, "_director_new"):
            return _construct_director(self, args, fields)
        address = construct() if implicit else construct(*args, **fields)
        self._address, self._owned, self._keep = address, True, None
        if implicit:
            _initialise_fields(self, args, fields)
    __init__.__doc__ = getattr(construct, "__doc__", None)
    return __init__


def _construct_director(self, args: tuple, fields: dict) -> None:
    """A Python subclass's object: C++'s subclass of the class, connected to the
    methods the Python class overrides (bound, held by the object: a cycle the
    garbage collector breaks), and deleted as that subclass when the object dies."""
    cpp_class = next(k for k in type(self).__mro__ if "_cpp_name" in vars(k))
    slots, bound = cpp_class._director_slots, []
    for slot in slots:
        overridden = getattr(type(self), slot["python"]) is not \
            getattr(cpp_class, slot["python"], None)
        if slot["pure"] and not overridden:
            raise TypeError(f"{type(self).__name__} must define {slot['python']}(): it "
                            f"is pure virtual in C++ {cpp_class.__name__}")
        bound.append(getattr(self, slot["python"]) if overridden else None)
    address = cpp_class._director_new(*args, **fields)
    self._address, self._owned, self._keep = address, True, tuple(bound)
    if vars(type(self)).get("_destroy") is not cpp_class._director_destroy:
        type(self)._destroy = cpp_class._director_destroy
    numpy = cpp_class._context.numpy
    cpp_class._director_connect(self, numpy.array(
        [0 if method is None else id(method) for method in bound], dtype=numpy.uint))


def _initialise_fields(self, args: tuple, fields: dict) -> None:
    names = next(klass._fields for klass in type(self).__mro__ if "_fields" in vars(klass))
    if len(args) > len(names):
        raise TypeError(f"{type(self).__name__}() takes at most {len(names)} field "
                        f"values ({', '.join(names)}), got {len(args)}")
    for name, value in [*zip(names, args), *fields.items()]:
        if name not in names:
            raise TypeError(f"{type(self).__name__}() has no public field {name!r} "
                            f"(fields: {', '.join(names)})")
        setattr(self, name, value)


def _offsets(cls, entry: dict, context) -> dict:
    """{qualified base name: byte offset of that base in this class}, itself included."""
    offsets = {entry["qualified"]: 0}
    for base_name in entry["bases"]:
        base, shift = context.classes[base_name], cls._base_offsets[base_name]
        for name, offset in base._offsets.items():
            offsets.setdefault(name, shift + offset)
    return offsets


def _rebind_shifted_bases(cls, entry: dict, context) -> None:
    """Members of a base at a nonzero offset, called with the base's address."""
    for base_name in entry["bases"]:
        shift = cls._offsets[base_name]
        if shift == 0:
            continue
        for klass in context.classes[base_name].__mro__[::-1]:
            for name, value in vars(klass).get("_wrappers", {}).items():
                if name in vars(cls):
                    continue
                if isinstance(value, property):
                    value = property(_shifted(value.fget, shift),
                                     value.fset and _shifted(value.fset, shift))
                else:
                    value = _shifted(value, shift)
                setattr(cls, name, value)


def _shifted(method, shift: int):
    def call(self, *args, **kwargs):
        return method(_BaseView(self._address + shift, self), *args, **kwargs)
    call.__name__, call.__doc__ = method.__name__, method.__doc__
    return call


def _set_dtype(cls, entry: dict, context) -> None:
    """The NumPy structured dtype of a struct C++ says is trivially copyable and
    standard-layout (checked once at load: `_layout_ok`)."""
    layout = entry.get("layout")
    if layout is None or not cls._layout_ok():
        cls.dtype = None
        return
    from .types import dtype_char
    names, formats, offsets = zip(*[(name, dtype_char(tag), offset)
                                    for name, tag, offset in layout["fields"]])
    cls.dtype = context.numpy.dtype({"names": list(names), "formats": list(formats),
                                     "offsets": list(offsets),
                                     "itemsize": layout["size"]})


def _const_class(cls):
    """The const view of `cls`: its non-const methods and field setters refuse."""
    view = cls.__dict__.get("_const_view")
    if view is not None:
        return view
    namespace = {"__slots__": (), "__qualname__": cls.__qualname__, "_const_of": cls,
                 "__module__": cls.__module__}
    for klass in reversed(cls.__mro__):
        for name in klass.__dict__.get("_mutating", ()):
            namespace[name] = _refuse(cls, name)
        for name in klass.__dict__.get("_fields", ()):
            namespace[name] = property(getattr(cls, name).__get__, _refuse(cls, name))
    view = CppClass(f"const {cls.__name__}", (cls,), namespace)
    cls._const_view = view
    return view


def _refuse(cls, name: str):
    def refuse(self, *args, **kwargs):
        raise TypeError(f"{name}: this {cls.__name__} is a const reference (C++ returned "
                        f"const {cls._cpp_name.removeprefix('::')}&), and {name} would "
                        f"change it")
    return refuse


def _python_path(entry: dict) -> str:
    return ".".join([*entry["namespace"], entry["name"]])


# ---------------------------------------------------------------- pickling

def _reduce_class(cls):
    """A C++ class pickles as an attribute path of its cell module (which travels)."""
    return (_find_class, (cls._module, cls.__qualname__, "_const_of" in vars(cls)))


def _find_class(module, path: str, const: bool = False):
    found = module
    for part in path.split("."):
        found = getattr(found, part)
    return _const_class(found) if const else found


def _reduce_object(obj):
    """An object of a struct with a dtype pickles as its bytes; others cannot."""
    cls = type(obj)
    if getattr(cls, "dtype", None) is None:
        raise TypeError(f"cannot pickle a C++ {cls.__name__} object: it is not a "
                        f"trivially copyable struct of arithmetic fields, so it has no "
                        f"byte image (pickle the values you need instead)")
    return (_object_from_bytes, (cls, _bytes_of(obj)))


def _bytes_of(obj) -> bytes:
    ffi = type(obj)._context.ffi
    return bytes(ffi.buffer(ffi.cast("char *", obj._address), type(obj).dtype.itemsize))


def _object_from_bytes(cls, data: bytes):
    """A struct rebuilt from its bytes (C++ copies them into a new object)."""
    numpy = cls._context.numpy
    return cls._adopt(cls._from_bytes(numpy.frombuffer(data, numpy.uint8)), owned=True)


copyreg.pickle(CppClass, _reduce_class)
