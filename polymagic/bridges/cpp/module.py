"""The module-like object a C++ cell becomes: its functions, ready to call.

A function whose arguments and result cffi converts by itself (arithmetic types,
bool, void) is cffi's builtin `lib.pm_f<i>` itself: no Python frame per call. Others
get a small generated Python wrapper that turns NumPy arrays into pointers (zero-copy,
`ffi.from_buffer`), str into bytes, callables into function pointers, and returned
vectors into NumPy arrays that own the vector's memory.
"""
from __future__ import annotations

import keyword
import types as pytypes
import warnings

from ...errors import ConversionError, UnsupportedSignature
from . import callbacks, imports, types


def warn_skipped(plan: dict) -> None:
    """One warning per function left out because of its types (also on cache hits)."""
    for entry in plan["skipped"]:
        if entry.get("warn"):
            warnings.warn(f"C++ function {entry['name']!r} (cell line {entry['line']}) "
                          f"is not exported: {entry['reason']}", UnsupportedSignature,
                          stacklevel=4)


class ModuleInfo:
    """What the exception path needs to know about a loaded cell module."""

    def __init__(self, functions: list, source: str, filename: str):
        self.functions, self.source, self.filename = functions, source, filename
        self.imports = {}  # PM_PYTHON slot -> the function pointer it holds (alive)


def make_module(name: str, extension, plan: dict, source: str, filename: str):
    """A ModuleType holding the cell's exported functions."""
    ffi, lib = extension.ffi, extension.lib
    info = ModuleInfo(plan["functions"], source, filename)
    imports.connect_c_api(info, ffi, lib, plan)
    if plan.get("imports"):
        imports.connect(info, ffi, lib, plan["imports"], plan["c_api"])
    # Held for the life of the process, like the library itself: the PM_PYTHON slots
    # point into `info.imports`, whatever becomes of the module object.
    callbacks.modules[extension.__name__] = info
    module = pytypes.ModuleType(name, f"C++ cell compiled by polymagic ({filename})")
    module.__file__ = extension.__file__
    module.ffi, module.lib = ffi, lib
    module.__signatures__ = {f["export"]: f for f in plan["functions"]}
    module.__skipped__ = list(plan["skipped"])
    module.__exports__ = [f["export"] for f in plan["functions"]]
    module.__imports__ = info.imports
    helpers = _Helpers(ffi, lib)
    for function in plan["functions"]:
        setattr(module, function["export"], _callable(function, lib, helpers))
    return module


def _callable(function: dict, lib, helpers: "_Helpers"):
    raw = getattr(lib, function["symbol"])
    kinds = {p["type"]["kind"] for p in function["params"]} | {function["ret"]["kind"]}
    if kinds <= types.DIRECT_KINDS:
        return raw
    return _wrapper(function, raw, helpers)


def _python_name(name: str) -> str:
    return f"{name}_" if keyword.iskeyword(name) or name in _RESERVED else name


_RESERVED = {"_raw", "_h", "_specs"}


def _wrapper(function: dict, raw, helpers: "_Helpers"):
    """Generate `def f(a, b): return _h.result(_raw(_h.array(a, ...), b))`."""
    names = [_python_name(p["name"]) for p in function["params"]]
    if len(set(names)) != len(names):
        names = [f"arg{i}" for i in range(len(names))]
    specs, actuals = [], []
    for name, param in zip(names, function["params"]):
        spec = dict(param["type"], function=function["export"], param=param["name"])
        specs.append(spec)
        convert = _ARGUMENT_CONVERTERS.get(spec["kind"])
        actuals.append(f"{name}" if convert is None else
                       f"{'*' if spec['kind'] in _TWO_ARGUMENTS else ''}"
                       f"_h.{convert}({name}, _specs[{len(specs) - 1}])")
    call = f"_raw({', '.join(actuals)})"
    result = function["ret"]
    convert = _RESULT_CONVERTERS.get(result["kind"])
    body = f"return {call}" if convert is None else \
        f"return _h.{convert}({call}, _specs[{len(specs)}])"
    specs.append(dict(result, function=function["export"]))
    text = f"def {function['export']}({', '.join(names)}):\n    {body}\n"
    namespace = {"_raw": raw, "_h": helpers, "_specs": specs}
    exec(compile(text, callbacks.plumbing_filename(f"wrapper of {function['export']}"), "exec"),
         namespace)
    wrapper = namespace[function["export"]]
    wrapper.__doc__ = _signature_text(function)
    return wrapper


def _signature_text(function: dict) -> str:
    params = ", ".join(f"{types.describe(p['type'])} {p['name']}"
                       for p in function["params"])
    return f"{types.describe(function['ret'])} {function['name']}({params})  " \
           f"[C++, cell line {function['line']}]"


# Kinds whose converter gives two trampoline arguments.
_TWO_ARGUMENTS = ("span", "string", "fnptr", "function")
_ARGUMENT_CONVERTERS = {"array": "array", "span": "span", "cstr": "cstr",
                        "string": "string", "fnptr": "callback", "function": "callback"}
_RESULT_CONVERTERS = {"cstr": "from_cstr", "string": "take_string",
                      "vector": "take_vector"}


class _Helpers:
    """Conversions used by the generated wrappers of one module (bound to its ffi)."""

    def __init__(self, ffi, lib):
        import numpy
        self.numpy, self.ffi, self.lib = numpy, ffi, lib

    def _checked_array(self, value, spec):
        numpy = self.numpy
        where = f"{spec['function']}(): argument {spec['param']!r}"
        expected = numpy.dtype(types.dtype_char(spec["tag"]))
        wanted = f"{types.describe(spec)} takes a NumPy array of {expected}"
        if not isinstance(value, numpy.ndarray):
            raise ConversionError(f"{where}: C++ {wanted}, got {type(value).__name__}")
        if value.dtype != expected:
            raise ConversionError(f"{where}: C++ {wanted}, got an array of {value.dtype} "
                                  f"(convert it with .astype({expected.name!r}), a copy)")
        if not value.flags.c_contiguous:
            raise ConversionError(f"{where}: C++ {wanted} in contiguous memory; this "
                                  f"array is strided (np.ascontiguousarray copies it)")
        if not spec["const"] and not value.flags.writeable:
            raise ConversionError(f"{where}: C++ {types.describe(spec)} may write to the "
                                  f"array, but it is read-only (use a const pointer "
                                  f"in C++, or pass a writable array)")
        return value

    def _pointer(self, value, spec):
        cdecl = f"{types.c_name(spec['tag'])}[]"
        return self.ffi.from_buffer(cdecl, value, require_writable=not spec["const"])

    def array(self, value, spec):
        return self._pointer(self._checked_array(value, spec), spec)

    def span(self, value, spec):
        value = self._checked_array(value, spec)
        return self._pointer(value, spec), value.size

    def cstr(self, value, spec):
        data = self._bytes(value, spec)
        if b"\0" in data:
            raise ConversionError(f"{spec['function']}(): argument {spec['param']!r} "
                                  f"contains a NUL character, which ends a const char*")
        return data

    def string(self, value, spec):
        data = self._bytes(value, spec)
        return data, len(data)

    @staticmethod
    def _bytes(value, spec):
        if isinstance(value, str):
            return value.encode("utf-8")
        if isinstance(value, bytes):
            return value
        raise ConversionError(f"{spec['function']}(): argument {spec['param']!r} is a "
                              f"C++ {types.describe(spec)}: pass a str, got "
                              f"{type(value).__name__}")

    def callback(self, value, spec):
        """(C function pointer, callable's address): a cffi function pointer of the
        parameter's type is passed as such; any other callable is called by the
        module's C glue (polymagic/bridges/cpp/capi.py), which holds no reference to it:
        the call (this wrapper's argument) keeps it alive."""
        if isinstance(value, self.ffi.CData) and \
                self.ffi.typeof(value) == self.ffi.typeof(types.callback_cdecl(spec)):
            return value, 0
        if not callable(value):
            raise ConversionError(f"{spec['function']}(): argument {spec['param']!r} is "
                                  f"a C++ {types.describe(spec)}: pass a callable, got "
                                  f"{type(value).__name__}")
        return self.ffi.NULL, id(value)

    def from_cstr(self, pointer, spec):
        if pointer == self.ffi.NULL:
            return None
        return self.ffi.string(pointer).decode("utf-8", "surrogateescape")

    def take_string(self, buffer, spec):
        try:
            data = self.ffi.unpack(self.ffi.cast("char *", buffer.data), buffer.size)
        finally:
            self.lib.pm_release(buffer.owner)
        return data.decode("utf-8", "surrogateescape")

    def take_vector(self, buffer, spec):
        """A NumPy array over the vector's own memory; freed when the array is."""
        dtype = self.numpy.dtype(types.dtype_char(spec["tag"]))
        if buffer.size == 0:
            self.lib.pm_release(buffer.owner)
            return self.numpy.empty(0, dtype)
        owner, release = buffer.owner, self.lib.pm_release
        data = self.ffi.gc(self.ffi.cast("char *", buffer.data),
                           lambda _data: release(owner))
        memory = self.ffi.buffer(data, buffer.size * dtype.itemsize)
        return self.numpy.frombuffer(memory, dtype)
