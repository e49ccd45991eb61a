"""Read a cell's classes and structs (libclang) into the export plan.

Each class becomes a plan entry (JSON, stored with the build like the rest of the plan)
whose `members` are plan functions like any exported function: they get trampolines,
exception and fault handling, argument errors and tracebacks the same way. What makes
a member different is its `expression`, the C++ the trampoline evaluates, with the
converted arguments as {0}, {1} ... (all as {args}, all but the receiver as {rest}),
and its `role`, which says what it becomes in Python (classes.py):

  ctor       __init__ overload         method    a method (static: a staticmethod)
  getter     a property's getter       setter    its setter
  operator   a dunder (__add__ ...)    str       __str__, from operator<<
  dtor       the destructor, run when the owning Python object dies

A method's receiver is parameter 0, an `Object` spec with `receiver: true` (objects.py).
"""
from __future__ import annotations

import json

from .types import Unsupported
from . import objects  # noqa: F401  (registers the object kinds)

# C++ operator -> (Python method, number of parameters including the receiver)
OPERATORS = {
    ("==", 2): "__eq__", ("!=", 2): "__ne__", ("<", 2): "__lt__", ("<=", 2): "__le__",
    (">", 2): "__gt__", (">=", 2): "__ge__", ("+", 2): "__add__", ("-", 2): "__sub__",
    ("*", 2): "__mul__", ("/", 2): "__truediv__", ("%", 2): "__mod__",
    ("&", 2): "__and__", ("|", 2): "__or__", ("^", 2): "__xor__",
    ("<<", 2): "__lshift__", (">>", 2): "__rshift__",
    ("+=", 2): "__iadd__", ("-=", 2): "__isub__", ("*=", 2): "__imul__",
    ("/=", 2): "__itruediv__", ("-", 1): "__neg__", ("+", 1): "__pos__",
    ("~", 1): "__invert__",
}
_IN_PLACE = {"+=", "-=", "*=", "/="}


def all_functions(plan: dict) -> list:
    """Every function the module's trampolines serve: the exported ones, then the
    members of every class."""
    return plan["functions"] + [member for cls in plan.get("classes", ())
                                for member in cls["members"]]


def is_cell_class(declaration, cell_file: str) -> bool:
    """A class or struct defined in the cell (not a template's instance)."""
    location = declaration.location
    return (declaration.kind.name in ("STRUCT_DECL", "CLASS_DECL")
            and location.file is not None and location.file.name == cell_file
            and declaration.type.get_num_template_arguments() <= 0)


def qualified(declaration) -> str:
    """'::geo::Point': how generated code names a cell class."""
    parts, cursor = [], declaration
    while cursor is not None and cursor.kind.name != "TRANSLATION_UNIT":
        if not cursor.spelling:
            raise Unsupported("classes in anonymous namespaces or unnamed classes "
                              "cannot be named from generated code")
        parts.append(cursor.spelling)
        cursor = cursor.semantic_parent
    return "::" + "::".join(reversed(parts))


def object_spec(declaration, form: str) -> dict:
    return objects.Object.make(**{"class": qualified(declaration), "form": form})


def json_key(value) -> str:
    return json.dumps(value, sort_keys=True)


def member(entry: dict, function: dict, role: str, python: str, expression: str) -> dict:
    """A plan function serving class `entry` as `role` (see the module docstring)."""
    return dict(function, role=role, python=python, expression=expression,
                export=f"{entry['name']}.{python}")


def class_spec(type_, cell_file: str, result: bool) -> dict | None:
    """The spec of a parameter or result (`result`) whose type involves one of the
    cell's classes: the class by value, reference or pointer, `std::span` of a class
    with a dtype (parameters), `std::vector` of one (results). None: no class here."""
    kind = type_.kind.name
    if kind in ("POINTER", "LVALUEREFERENCE"):
        pointee = type_.get_pointee()
        declaration = pointee.get_declaration()
        if not is_cell_class(declaration, cell_file):
            return None
        const = "c" if pointee.is_const_qualified() else ""
        return object_spec(declaration, const + ("ptr" if kind == "POINTER" else "ref"))
    if kind != "RECORD":
        return None
    declaration = type_.get_declaration()
    if is_cell_class(declaration, cell_file):
        return object_spec(declaration, "value")
    if type_.get_num_template_arguments() < 1:
        return None
    element = type_.get_template_argument_type(0)
    element_declaration = element.get_canonical().get_declaration()
    if not is_cell_class(element_declaration, cell_file):
        return None
    container = declaration.spelling
    if container == "span":
        return objects.RecordSpan.make(**{"class": qualified(element_declaration),
                                          "const": element.is_const_qualified()})
    if container == "vector" and result:
        return objects.RecordVector.make(**{"class": qualified(element_declaration)})
    raise Unsupported(f"std::{container} of a class crosses only as std::span<T> "
                      f"and std::vector<T> (results), for structs with a NumPy dtype")


class Reader:
    """Reads the classes of one translation unit with signatures.py's readers:
    `function_of(cursor)` (a function's parameters and result), `param_spec(type)` and
    `result_spec(type)`."""

    def __init__(self, cindex, cell_file: str, function_of, param_spec, result_spec):
        self.cindex, self.cell_file, self.function_of = cindex, cell_file, function_of
        self.param_spec, self.result_spec = param_spec, result_spec
        self.classes, self.skipped, self.free_operators = [], [], []

    # ---------------------------------------------------------------- discovery
    def visit(self, cursor, namespace=()) -> None:
        """Collect the classes under `cursor` (the translation unit, a namespace)."""
        kinds = self.cindex.CursorKind
        for child in cursor.get_children():
            location = child.location
            if location.file is None or location.file.name != self.cell_file:
                continue
            if child.kind == kinds.NAMESPACE and child.spelling:
                self.visit(child, (*namespace, child.spelling))
            elif child.kind in (kinds.STRUCT_DECL, kinds.CLASS_DECL) and \
                    child.is_definition():
                self._class_or_skip(child, namespace)
            elif child.kind == kinds.CLASS_TEMPLATE and child.is_definition():
                self._skip(child, "class templates are not exported (use a concrete "
                                  "class, or a type alias of an instance in a function)")

    def _skip(self, cursor, reason: str) -> None:
        self.skipped.append({"name": cursor.spelling or "(unnamed)", "warn": True,
                             "line": cursor.location.line, "reason": reason})

    def _class_or_skip(self, cursor, namespace) -> None:
        try:
            self.classes.append(self._class(cursor, namespace))
        except Unsupported as reason:
            self._skip(cursor, str(reason))

    # ---------------------------------------------------------------- one class
    def _class(self, cursor, namespace) -> dict:
        name = qualified(cursor)
        entry = {"name": cursor.spelling, "qualified": name, "namespace": list(namespace),
                 "line": cursor.location.line, "abstract": cursor.is_abstract_record(),
                 "bases": [], "members": [], "layout": None}
        members, kinds = entry["members"], self.cindex.CursorKind
        constructors = []
        for child in cursor.get_children():
            if child.kind == kinds.CXX_BASE_SPECIFIER:
                self._base(entry, child)
                continue
            if child.kind == kinds.FRIEND_DECL:
                self.free_operators += [c for c in child.get_children()
                                        if c.kind == kinds.FUNCTION_DECL]
                continue
            if child.kind in (kinds.STRUCT_DECL, kinds.CLASS_DECL) and \
                    child.is_definition():
                self._class_or_skip(child, (*namespace, cursor.spelling))
                continue
            if child.kind == kinds.CONSTRUCTOR:
                constructors.append(child)
            if child.access_specifier.name != "PUBLIC":
                continue
            self._member(entry, child, members)
        made = self._constructors(entry, constructors)
        self._add_constructors(entry, cursor, made)
        members.append(self._destructor(entry))
        self._layout(entry, cursor)
        self._director(entry, cursor, made)
        return entry

    def _base(self, entry: dict, base) -> None:
        """A public, non-virtual base from the cell: a Python base class too, with the
        byte offset of its part of the object (nonzero under multiple inheritance)."""
        declaration = base.type.get_canonical().get_declaration()
        virtual = any(token.spelling == "virtual" for token in base.get_tokens())
        if base.access_specifier.name != "PUBLIC" or virtual or \
                not is_cell_class(declaration, self.cell_file):
            return
        name = qualified(declaration)
        entry["bases"].append(name)
        offset = {"name": f"{entry['name']} base {name}", "line": entry["line"],
                  "params": [], "ret": {"kind": "scalar", "tag": "long"}}
        entry["members"].append(member(entry, offset, "offset", name,
                                       f"pm_base_offset<{entry['qualified']}, {name}>()"))

    def _member(self, entry: dict, child, members: list) -> None:
        kinds = self.cindex.CursorKind
        try:
            if child.kind == kinds.CXX_METHOD:
                member = self._method(entry, child)
                if member is not None:
                    members.append(member)
            elif child.kind == kinds.FIELD_DECL:
                members += self._field(entry, child)
            elif child.kind == kinds.FUNCTION_TEMPLATE:
                raise Unsupported("member templates are not exported")
        except Unsupported as reason:
            self._skip(child, f"{entry['name']}::{child.spelling}: {reason}")

    def _receiver(self, entry: dict, const: bool) -> dict:
        spec = objects.Object.make(**{"class": entry["qualified"],
                                      "form": "cref" if const else "ref"})
        return {"name": "self", "type": dict(spec, receiver=True)}

    def _method(self, entry: dict, cursor) -> dict | None:
        name = cursor.spelling
        if cursor.is_deleted_method() or name.startswith("operator") and \
                not self._is_operator(name):
            return None  # operator= and conversions: C++'s business, not Python's
        function = self.function_of(cursor)
        if cursor.is_static_method():
            return member(entry, function, "static", name,
                          f"{entry['qualified']}::{name}({{args}})")
        function["params"].insert(0, self._receiver(entry, cursor.is_const_method()))
        function["const"] = cursor.is_const_method()
        function["virtual"] = cursor.is_virtual_method()
        function["pure"] = cursor.is_pure_virtual_method()
        function["noexcept"] = cursor.exception_specification_kind.name not in (
            "NONE", "UNEVALUATED")
        if name.startswith("operator"):
            symbol = name[len("operator"):].strip()
            if symbol == "[]":
                self._item_setter(entry, function, cursor.result_type.get_canonical())
            return self._operator(entry, function, symbol)
        return member(entry, function, "method", name, f"({{0}}).{name}({{rest}})")

    def _item_setter(self, entry: dict, getter: dict, result) -> None:
        """`a[i] = x` where operator[] returns a non-const reference."""
        if result.kind.name != "LVALUEREFERENCE" or \
                result.get_pointee().is_const_qualified():
            return
        try:
            value = self.param_spec(result.get_pointee())
        except Unsupported:
            return
        setter = {"name": getter["name"], "line": getter["line"], "ret": {"kind": "void"},
                  "params": [*getter["params"], {"name": "value", "type": value}]}
        entry["members"].append(member(entry, setter, "operator", "__setitem__",
                                       "({0})[{1}] = {2}"))

    def _is_operator(self, name: str) -> bool:
        symbol = name[len("operator"):].strip()
        return symbol in ("[]", "()") or any(symbol == op for op, _ in OPERATORS)

    def _operator(self, entry: dict, function: dict, symbol: str) -> dict:
        arity = len(function["params"])
        if symbol == "[]":
            return member(entry, function, "operator", "__getitem__", "({0})[{1}]")
        if symbol == "()":
            return member(entry, function, "operator", "__call__", "({0})({rest})")
        python = OPERATORS.get((symbol, arity))
        if python is None:
            raise Unsupported(f"operator{symbol} with {arity} operands has no Python "
                              f"counterpart")
        expression = f"({{0}}) {symbol} ({{1}})" if arity == 2 else f"{symbol}({{0}})"
        if symbol in _IN_PLACE:
            function["ret"] = {"kind": "void"}  # Python's __iadd__ returns self
            expression = f"(void)(({{0}}) {symbol} ({{1}}))"
        return member(entry, function, "operator", python, expression)

    def _field(self, entry: dict, cursor) -> list:
        field_type = cursor.type.get_canonical()
        if field_type.kind.name in ("CONSTANTARRAY", "INCOMPLETEARRAY"):
            raise Unsupported("array members are not exported (use std::vector, or a "
                              "method returning a std::span)")
        name, line = cursor.spelling, cursor.location.line
        declaration = field_type.get_declaration()
        if is_cell_class(declaration, self.cell_file):  # p.pos.x = 1 changes p
            read, written = object_spec(declaration, "ref"), object_spec(declaration, "cref")
        else:
            read, written = self.result_spec(field_type), self.param_spec(field_type)
        getter = {"name": name, "line": line, "ret": read,
                  "params": [self._receiver(entry, True)]}
        members = [member(entry, getter, "getter", name, f"({{0}}).{name}")]
        if not field_type.is_const_qualified():
            setter = {"name": name, "line": line, "ret": {"kind": "void"},
                      "params": [self._receiver(entry, False),
                                 {"name": name, "type": written}]}
            members.append(member(entry, setter, "setter", name,
                                  f"({{0}}).{name} = {{1}}"))
        return members

    def _constructors(self, entry: dict, constructors: list) -> list:
        """Public constructors (no move constructors: Python has no rvalues); a class
        that declares none has C++'s implicit default constructor, if any."""
        made = []
        for child in constructors:
            if child.access_specifier.name != "PUBLIC" or child.is_deleted_method() or \
                    child.is_move_constructor():
                continue
            try:
                made.append(self.function_of(child))
            except Unsupported as reason:
                self._skip(child, f"{entry['name']} constructor: {reason}")
        if not constructors:
            made.append({"name": entry["name"], "line": entry["line"], "params": [],
                         "implicit": True})
        return made

    def _add_constructors(self, entry: dict, cursor, made: list) -> None:
        """The class's own constructors (not for an abstract class)."""
        if entry["abstract"]:
            return
        for function in made:
            expression = f"pm_construct<{entry['qualified']}>()" if function.get(
                "implicit") else f"new {entry['qualified']}({{args}})"
            entry["members"].append(member(entry, dict(function, ret=object_spec(
                cursor, "new")), "ctor", "__init__", expression))

    def _destructor(self, entry: dict) -> dict:
        destructor = {"name": f"~{entry['name']}", "line": entry["line"],
                      "ret": {"kind": "void"},
                      "params": [{"name": "self", "type": dict(
                          objects.Object.make(**{"class": entry["qualified"],
                                                 "form": "ptr"}))}]}
        return member(entry, destructor, "dtor", "__del__",
                      f"pm_destroy<{entry['qualified']}>({{0}})")

    def _layout(self, entry: dict, cursor) -> None:
        """A class whose fields are all public arithmetic values, with no bases and no
        virtual methods, gets its NumPy dtype [(name, tag, byte offset)], size, and a
        member that says at load time whether C++ agrees that it is trivially copyable
        and standard-layout (only then is the dtype used)."""
        from .types import SCALARS
        record, fields = cursor.type, []
        if entry["bases"] or any(m.get("virtual") for m in entry["members"]):
            return
        for field in record.get_fields():
            kind = field.type.get_canonical().kind.name
            if field.access_specifier.name != "PUBLIC" or kind not in SCALARS or \
                    field.is_bitfield():
                return
            fields.append([field.spelling, SCALARS[kind][3],
                           field.get_field_offsetof() // 8])
        if not fields:
            return
        entry["layout"] = {"fields": fields, "size": record.get_size()}
        name = entry["qualified"]
        check = {"name": f"{entry['name']} layout", "line": entry["line"], "params": [],
                 "ret": {"kind": "scalar", "tag": "bool"}}
        entry["members"].append(member(
            entry, check, "layout", "dtype",
            f"std::is_trivially_copyable_v<{name}> && std::is_standard_layout_v<{name}> "
            f"&& sizeof({name}) == {record.get_size()}"))
        image = {"name": f"{entry['name']} from bytes", "line": entry["line"],
                 "params": [{"name": "data", "type": {"kind": "array", "tag": "uint8",
                                                      "const": True}}],
                 "ret": object_spec(cursor, "new")}
        entry["members"].append(member(entry, image, "from_bytes", "_from_bytes",
                                       f"pm_from_bytes<{name}>({{0}})"))

    # ------------------------------------------------------------ directors
    def _director(self, entry: dict, cursor, made: list) -> None:
        """A polymorphic class Python may subclass, overriding its virtual methods
        (directors.py generates the C++ subclass): its virtual methods, its own and
        inherited, and the members that construct, connect and delete the subclass."""
        entry["virtuals"] = self._virtuals(entry)
        slots = [v for v in entry["virtuals"] if v["overridable"]]
        kinds = self.cindex.CursorKind
        sealed = any(child.kind == kinds.CXX_FINAL_ATTR or (
            child.kind == kinds.DESTRUCTOR and child.access_specifier.name != "PUBLIC")
            for child in cursor.get_children())
        if not slots or sealed:
            return
        number = sum(1 for cls in self.classes if cls.get("director"))
        director = entry["director"] = {"class": f"pm_director_{number}", "slots": slots}
        base, cls = object_spec(cursor, "ptr"), director["class"]
        for function in made:
            entry["members"].append(member(
                entry, dict(function, ret=object_spec(cursor, "new")), "director_ctor",
                "__init__", f"static_cast<{entry['qualified']}*>("
                            f"pm_new_director<{cls}>({{args}}))"))
        callables = {"kind": "array", "tag": "ulong", "const": True}
        connect = {"name": f"{entry['name']} director", "line": entry["line"],
                   "ret": {"kind": "void"},
                   "params": [{"name": "self", "type": base},
                              {"name": "callables", "type": callables}]}
        entry["members"].append(member(entry, connect, "director_connect", "_connect",
                                       f"static_cast<{cls}*>({{0}})->pm_connect({{1}})"))
        delete = {"name": f"~{entry['name']} director", "line": entry["line"],
                  "ret": {"kind": "void"}, "params": [{"name": "self", "type": base}]}
        entry["members"].append(member(entry, delete, "director_dtor", "_destroy",
                                       f"pm_destroy<{cls}>(static_cast<{cls}*>({{0}}))"))

    def _virtuals(self, entry: dict) -> list:
        """Virtual methods of the class and its bases, each once (the most derived
        declaration); `overridable`: arithmetic values only, and not noexcept (a
        Python exception must be able to unwind through it)."""
        found, seen = [], set()
        own = [m for m in entry["members"] if m.get("virtual") and m["role"] == "method"]
        inherited = [v for base in self.classes if base["qualified"] in entry["bases"]
                     for v in base.get("virtuals", ())]
        for method in own + inherited:
            params = method["params"][1:] if "params" in method and method["params"] and \
                method["params"][0]["type"].get("receiver") else method["params"]
            key = (method["python"], json_key(params))
            if key in seen:
                continue
            seen.add(key)
            found.append({
                "name": method["name"], "python": method["python"], "params": params,
                "ret": method["ret"], "const": method.get("const", False),
                "pure": method.get("pure", False), "noexcept": method.get("noexcept"),
                "overridable": not method.get("noexcept") and all(
                    p["type"]["kind"] == "scalar" for p in params) and
                method["ret"]["kind"] in ("scalar", "void")})
        return found

    # ------------------------------------------------------------ free operators
    def attach_free_operators(self, cursors) -> None:
        """operator+(const V&, const V&) and friends become their first operand's
        dunders; operator<<(std::ostream&, const V&) becomes V's __str__."""
        by_class = {cls["qualified"]: cls for cls in self.classes}
        for cursor in [*cursors, *self.free_operators]:
            symbol = cursor.spelling[len("operator"):].strip()
            try:
                owner, member = self._free_operator(cursor, symbol, by_class)
            except Unsupported as reason:
                self._skip(cursor, str(reason))
                continue
            if owner is not None:
                owner["members"].append(member)

    def _free_operator(self, cursor, symbol: str, by_class: dict):
        arguments = list(cursor.get_arguments())
        if symbol == "<<" and len(arguments) == 2 and \
                "ostream" in arguments[0].type.spelling:
            operand = self._operand_class(arguments[1], by_class)
            if operand is None:
                return None, None
            spec = objects.Object.make(**{"class": operand["qualified"], "form": "cref"})
            printer = {"name": "operator<<", "line": cursor.location.line,
                       "params": [{"name": "self", "type": dict(spec, receiver=True)}],
                       "ret": {"kind": "string", "form": "value"}}
            return operand, member(operand, printer, "str", "__str__",
                                   "pm_to_string({0})")
        if not arguments:
            return None, None
        operand = self._operand_class(arguments[0], by_class)
        if operand is None:
            raise Unsupported("a free operator is exported as a method of its first "
                              "operand, which must be one of the cell's classes")
        function = self.function_of(cursor)
        function["params"][0]["type"]["receiver"] = True
        return operand, self._operator(operand, function, symbol)

    def _operand_class(self, argument, by_class: dict):
        declared = argument.type.get_canonical()
        if declared.kind.name == "LVALUEREFERENCE":
            declared = declared.get_pointee()
        return by_class.get(qualified(declared.get_declaration())) \
            if is_cell_class(declared.get_declaration(), self.cell_file) else None
