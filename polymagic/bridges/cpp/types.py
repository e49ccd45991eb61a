"""The type table of %%cpp: which C++ parameter and result types cross, and how.

A function's signature is stored as plain JSON-able dicts ("type specs"), so a cache
hit can rebuild the Python side without running libclang again. Each spec has a
`kind`; see docs/cpp.md for the table with view/copy per row.
"""
from __future__ import annotations

from ...errors import UnsupportedType

# clang TypeKind name -> (C spelling, C++ spelling, NumPy dtype char, short tag)
SCALARS = {
    "BOOL": ("_Bool", "bool", "?", "bool"),
    "SCHAR": ("signed char", "signed char", "b", "int8"),
    "UCHAR": ("unsigned char", "unsigned char", "B", "uint8"),
    "SHORT": ("short", "short", "h", "short"),
    "USHORT": ("unsigned short", "unsigned short", "H", "ushort"),
    "INT": ("int", "int", "i", "int"),
    "UINT": ("unsigned int", "unsigned int", "I", "uint"),
    "LONG": ("long", "long", "l", "long"),
    "ULONG": ("unsigned long", "unsigned long", "L", "ulong"),
    "LONGLONG": ("long long", "long long", "q", "longlong"),
    "ULONGLONG": ("unsigned long long", "unsigned long long", "Q", "ulonglong"),
    "FLOAT": ("float", "float", "f", "float"),
    "DOUBLE": ("double", "double", "d", "double"),
}
_BY_TAG = {row[3]: row for row in SCALARS.values()}

# Kinds whose Python side needs no conversion: cffi's own glue converts them.
DIRECT_KINDS = {"scalar", "void"}


# A C++ type that cannot cross (raised while reading signatures, caught there).
Unsupported = UnsupportedType


def scalar(kind_name: str) -> dict:
    """The spec of an arithmetic type given its clang TypeKind name."""
    c_name, cpp_name, dtype, tag = SCALARS[kind_name]
    return {"kind": "scalar", "tag": tag}


def c_name(tag: str) -> str:
    return _BY_TAG[tag][0]


def cpp_name(tag: str) -> str:
    return _BY_TAG[tag][1]


def dtype_char(tag: str) -> str:
    return _BY_TAG[tag][2]


def describe(spec: dict) -> str:
    """How a spec reads in C++, for messages ("const double*", "std::span<int>")."""
    kind = spec["kind"]
    if kind == "void":
        return "void"
    if kind == "scalar":
        return cpp_name(spec["tag"])
    if kind == "array":
        return f"{'const ' if spec['const'] else ''}{cpp_name(spec['tag'])}*"
    if kind == "span":
        return f"std::span<{'const ' if spec['const'] else ''}{cpp_name(spec['tag'])}>"
    if kind == "vector":
        return f"std::vector<{cpp_name(spec['tag'])}>"
    if kind == "cstr":
        return "const char*"
    if kind == "string":
        return {"value": "std::string", "cref": "const std::string&",
                "view": "std::string_view"}[spec["form"]]
    if kind in ("fnptr", "function"):
        signature = f"{_describe_scalar_or_void(spec['ret'])}" \
                    f"({', '.join(cpp_name(arg) for arg in spec['args'])})"
        return f"std::function<{signature}>" if kind == "function" else \
            signature.replace("(", "(*)(", 1)
    raise ValueError(f"unknown type spec {spec!r}")


def _describe_scalar_or_void(tag: str | None) -> str:
    return "void" if tag is None else cpp_name(tag)


def callback_cdecl(spec: dict) -> str:
    """The cffi declaration of a callback spec's function pointer: 'double(*)(double)'."""
    ret = "void" if spec["ret"] is None else c_name(spec["ret"])
    args = ", ".join(c_name(arg) for arg in spec["args"]) or "void"
    return f"{ret}(*)({args})"
