"""Read the functions a C++ cell defines at top level, with libclang (a real front end).

`parse(source, flags)` returns a JSON-able plan: every exported function with its
parameter and result type specs (see `types`), the Python name it gets, and its cell
line; the functions that are not exported and why; and the functions the cell imports
from the shared Python namespace (declared `PM_PYTHON`, see polymagic.hpp). The plan
is stored next to the built module, so a cache hit never runs libclang.
"""
from __future__ import annotations

import functools
import os
import re
import subprocess
import threading
from collections import defaultdict
from pathlib import Path

from ...errors import CompileError
from . import containers, instantiations, records, types
from .containers import qualified_name
from .types import Unsupported

CELL_FILE = "cell.cpp"
# Where polymagic.hpp lives; on the include path of every cell (compiler and libclang).
INCLUDE_DIR = str(Path(__file__).with_name("include"))
# polymagic.hpp's PM_PYTHON, as libclang sees it (an annotate attribute).
PYTHON_ANNOTATION = "polymagic_python"


@functools.lru_cache(maxsize=None)
def system_include_dirs(compiler: str) -> tuple[str, ...]:
    """The compiler's own include search path, for libclang (`-E -x c++ - -v`)."""
    result = subprocess.run([compiler, "-E", "-x", "c++", "-", "-v"], input="",
                            capture_output=True, text=True, check=False)
    lines = result.stderr.splitlines()
    try:
        start = lines.index("#include <...> search starts here:") + 1
        end = lines.index("End of search list.", start)
    except ValueError:
        return ()
    return tuple(line.strip() for line in lines[start:end])


def clang_args(compiler: str, std: str, include_dirs=(), defines=()) -> list[str]:
    args = ["-x", "c++", f"-std={std}", *defines]
    args += [f"-I{path}" for path in (*include_dirs, INCLUDE_DIR)]
    for path in system_include_dirs(compiler):
        args += ["-isystem", path]
    return args


# libclang recurses once per level of an expression: ~600 bytes of stack per term of
# `x+x+...+x`, so 50,000 terms overflow an 8 MB stack. Parses run on a thread with this
# much (virtual: only the pages a deep parse touches are used); a statement with more
# operators than fit is refused before libclang sees it.
_PARSE_STACK = 1 << 30
_MAX_OPERATORS = 1_000_000
_OPERATOR = re.compile(r"[-+*/%&|^<>!~?=]")


def parse(source: str, args: list[str], skip_bodies: bool = False) -> dict:
    """The export plan of `source` (a cell), parsed by libclang with `args` on a thread
    with a stack deep enough for deeply nested code. Raises clang's
    TranslationUnitLoadError when libclang rejects the arguments.

    `skip_bodies`: function bodies are not parsed (most of a small cell's parse is
    instantiating what its bodies use), unless a function's result type is deduced
    from its body (`auto f()`); errors in bodies are then g++'s alone to report."""
    _check_depth(source)
    return _on_big_stack(_parse, source, args, skip_bodies)


def _check_depth(source: str) -> None:
    for number, statement in enumerate(re.split(r"[;{}]", source)):
        if len(statement) > _MAX_OPERATORS and \
                len(_OPERATOR.findall(statement)) > _MAX_OPERATORS:
            line = source[:source.index(statement)].count("\n") + 1 + \
                len(statement) - len(statement.lstrip("\n"))
            raise CompileError("C++", f"cell:{line}: error: this statement has more than "
                               f"{_MAX_OPERATORS:,} operators, more deeply nested than "
                               f"polymagic's C++ reader (libclang) can follow; split it "
                               f"into several statements", (), [line])


def _on_big_stack(function, *args):
    """function(*args) on a new thread with a _PARSE_STACK stack; its result or error."""
    # libclang parses on a thread of its own (8 MB) unless told not to: ours, then.
    os.environ.setdefault("LIBCLANG_NOTHREADS", "1")
    outcome = {}

    def work():
        try:
            outcome["result"] = function(*args)
        except BaseException as error:  # handed to the caller, which raises it
            outcome["error"] = error
    thread = threading.Thread(target=work, name="polymagic libclang", daemon=True)
    previous = threading.stack_size()
    try:
        threading.stack_size(_PARSE_STACK)
        thread.start()
    except (RuntimeError, ValueError, MemoryError):  # no such stack here: parse inline
        return function(*args)
    finally:
        threading.stack_size(previous)
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


def _parse(source: str, args: list[str], skip_bodies: bool) -> dict:
    import clang.cindex as cindex
    index = cindex.Index.create()
    unit, root = _parsed(index, source, args, skip_bodies, cindex)
    errors = [f"cell:{d.location.line}: {d.spelling}" for d in unit.diagnostics
              if d.severity >= cindex.Diagnostic.Error]
    functions, skipped, declared, operators = [], [], {}, []
    imported, defined = {}, set()
    templates = []  # exported through the explicit instantiations the cell writes
    for cursor in _top_level(root, cindex):
        if cursor.kind == cindex.CursorKind.FUNCTION_TEMPLATE:
            templates.append(cursor)
            continue
        if not root.defines(cursor):
            if _is_python_import(cursor, cindex):
                imported.setdefault(cursor.get_usr(), cursor)
            else:
                declared.setdefault(cursor.spelling, cursor.location.line)
            continue
        defined.add(cursor.get_usr())
        if cursor.spelling == "main":
            continue
        if cursor.spelling.startswith("operator"):
            operators.append(cursor)  # a method of its first operand's class
            continue
        try:
            functions.append(_function(cursor, cindex))
        except Unsupported as reason:
            skipped.append({"name": cursor.spelling, "line": cursor.location.line,
                            "reason": str(reason), "warn": True})
    for cursor in _namespace_functions(root, cindex):
        if root.defines(cursor):
            defined.add(cursor.get_usr())
            if cursor.spelling.startswith("operator"):
                operators.append(cursor)
        elif _is_python_import(cursor, cindex):
            imported.setdefault(cursor.get_usr(), cursor)
    functions += instantiations.read(unit, templates, source, args, CELL_FILE,
                                     lambda cursor: _function(cursor, cindex), skipped)
    _name_exports(functions)
    classes = _classes(root, cindex, operators, skipped)
    plan = {"functions": functions, "classes": classes}
    for number, function in enumerate(records.all_functions(plan)):
        function["symbol"] = f"pm_f{number}"
        function["index"] = number
    imports, import_errors = _imports(imported, defined, cindex)
    return {**plan, "skipped": skipped, "parse_errors": errors,
            "declared": declared, "imports": imports, "import_errors": import_errors}


def _classes(root, cindex, operators: list, skipped: list) -> list:
    """The cell's classes and structs (records.py), with their operators."""
    reader = records.Reader(cindex, CELL_FILE, lambda cursor: _function(cursor, cindex),
                            lambda type_: _param_spec(type_, cindex),
                            lambda type_: _result_spec(type_, cindex))
    reader.visit(root)
    reader.attach_free_operators(operators)
    skipped += reader.skipped
    return reader.classes


def _is_python_import(cursor, cindex) -> bool:
    """Declared `PM_PYTHON` (by any of its declarations: attributes are inherited)."""
    return any(child.kind == cindex.CursorKind.ANNOTATE_ATTR
               and child.spelling == PYTHON_ANNOTATION
               for child in cursor.get_children())


def _imports(imported: dict, defined: set, cindex) -> tuple[list, list]:
    """The plan entries of the PM_PYTHON functions, and why any cannot be one."""
    imports, errors = [], []
    for usr, cursor in imported.items():
        where = {"name": cursor.spelling, "line": cursor.location.line}
        try:
            if usr in defined:
                raise Unsupported("it is declared PM_PYTHON (provided by Python) but the "
                                  "cell also defines it; remove one of the two")
            function = _import(cursor, cindex)
        except Unsupported as reason:
            errors.append(dict(where, reason=str(reason)))
            continue
        function["index"] = len(imports)
        function["slot"] = f"pm_import_{len(imports)}"
        imports.append(function)
    return imports, errors


def _import(cursor, cindex) -> dict:
    if cursor.exception_specification_kind not in (
            cindex.ExceptionSpecificationKind.NONE,
            cindex.ExceptionSpecificationKind.UNEVALUATED):
        raise Unsupported("a PM_PYTHON function cannot be noexcept (Python exceptions "
                          "unwind through it)")
    function = _function(cursor, cindex)
    # Python must be able to read every argument (a bare T* has no length, so arrays
    # come as std::span) and to build the C++ result: each kind says whether it can.
    for param in function["params"]:
        kind = types.kind_of(param["type"])
        if kind.import_param_hint is not None:
            raise Unsupported(f"parameter {param['name']!r} has type "
                              f"'{kind.cpp()}': {kind.import_param_hint}")
    if not types.kind_of(function["ret"]).import_result:
        raise Unsupported(f"its result type '{types.describe(function['ret'])}' cannot "
                          f"be made from a Python value (return std::string instead "
                          f"of const char*: Python owns the memory of its strings)")
    del function["export"]
    function["qualified"] = _namespace_path(cursor) + cursor.spelling
    return function


def _namespace_path(cursor) -> str:
    """'outer::inner::' for a function declared in named namespaces ('' at global
    scope): its definition, generated at global scope, names it so."""
    parts, parent = [], cursor.semantic_parent
    while parent is not None and parent.kind.name == "NAMESPACE":
        if not parent.spelling:
            raise Unsupported("a function in an anonymous namespace cannot be defined "
                              "from outside it; declare it in a named namespace or at "
                              "global scope")
        parts.append(parent.spelling)
        parent = parent.semantic_parent
    return "".join(f"{part}::" for part in reversed(parts))


def _parsed(index, source: str, args: list[str], skip_bodies: bool, cindex):
    """(translation unit, _CellRoot) of the cell; parsed without function bodies if
    asked, and again with them if that reading would be unsure."""
    if skip_bodies:
        unit = index.parse(CELL_FILE, args=args, unsaved_files=[(CELL_FILE, source)],
                           options=cindex.TranslationUnit.PARSE_SKIP_FUNCTION_BODIES)
        root = _CellRoot(unit.cursor, source)
        try:
            if not _deduces_results(root, cindex):
                _check_definitions(root, cindex)
                return unit, root
        except _NeedsBodies:
            pass
    unit = index.parse(CELL_FILE, args=args, unsaved_files=[(CELL_FILE, source)])
    return unit, _CellRoot(unit.cursor)


class _NeedsBodies(Exception):
    """A reading without function bodies cannot tell what the cell defines."""


class _CellRoot:
    """The translation unit's cursor as the readers walk it: its children are the
    cell's own, the precompiled prelude's hundreds of declarations left out once
    rather than in every walk (each child's file is a few calls into libclang).

    Given the cell's `source`, the unit was parsed without function bodies, and
    libclang calls a function whose body it skipped no definition: `defines` then
    reads what follows the declaration in the source."""

    def __init__(self, cursor, source: str | None = None):
        self._children = [child for child in cursor.get_children()
                          if child.location.file is not None
                          and child.location.file.name == CELL_FILE]
        self._bytes = None if source is None else source.encode()

    def get_children(self):
        return iter(self._children)

    def defines(self, cursor) -> bool:
        """Whether the function declaration `cursor` is a definition."""
        definition = cursor.is_definition()
        if definition or self._bytes is None:
            return definition
        after = _AFTER_DECLARATOR.match(self._bytes, cursor.extent.end.offset)["next"]
        if after is None:
            raise _NeedsBodies  # a macro, an attribute...: not read here
        if after.startswith(b"="):  # `= delete`, as libclang reads it: nothing to call
            return after.endswith(b"default")
        return after not in (b";", b",")  # a body, initialisers, a function try block


# what follows a function's declarator: comments, override/final, then what says
# whether a body comes (`::` is a qualified name, not the start of initialisers)
_AFTER_DECLARATOR = re.compile(
    rb"(?:\s+|//[^\n]*|/\*.*?\*/|\boverride\b|\bfinal\b)*"
    rb"(?P<next>\{|try\b|:(?!:)|=\s*default\b|=\s*delete\b|;|,)?", re.S)


def _check_definitions(root: _CellRoot, cindex) -> None:
    """Raise _NeedsBodies if `root.defines` cannot tell for a function of the cell."""
    for cursor in _top_level(root, cindex):
        if cursor.kind == cindex.CursorKind.FUNCTION_DECL:
            root.defines(cursor)
    for cursor in _namespace_functions(root, cindex):
        root.defines(cursor)


_DECLARES_RESULT = ("FUNCTION_DECL", "CXX_METHOD", "FUNCTION_TEMPLATE",
                    "CONVERSION_FUNCTION")
_HOLDS_DECLARATIONS = ("NAMESPACE", "LINKAGE_SPEC", "STRUCT_DECL", "CLASS_DECL",
                       "CLASS_TEMPLATE")


def _deduces_results(cursor, cindex) -> bool:
    """Whether a function of the cell has a result type deduced from its body (`auto`,
    `decltype(auto)`), which a parse without bodies leaves undeduced."""
    for child in cursor.get_children():
        kind = child.kind.name
        if kind in _DECLARES_RESULT and \
                child.result_type.get_canonical().kind == cindex.TypeKind.AUTO:
            return True
        if kind in _HOLDS_DECLARATIONS and _deduces_results(child, cindex):
            return True
    return False


def _has_dynamic_extent(span) -> bool:
    """Whether a std::span type has std::dynamic_extent (size_t's largest value)."""
    size = span.get_size()
    if size > 0:
        return size == 16  # a fixed extent span is one pointer wide
    # not instantiated (only declared, or read without bodies): the extent as clang
    # spells it, which leaves out the default
    extent = re.search(r",\s*(\d+)[uUlL]*\s*>$", span.get_canonical().spelling)
    return extent is None or int(extent[1]) == (1 << 64) - 1


def _namespace_functions(cursor, cindex):
    """Function declarations inside the cell's namespaces (for PM_PYTHON only:
    namespaced functions are not exported)."""
    for child in cursor.get_children():
        location = child.location
        if location.file is None or location.file.name != CELL_FILE:
            continue
        if child.kind in (cindex.CursorKind.NAMESPACE, cindex.CursorKind.LINKAGE_SPEC):
            yield from _namespace_functions(child, cindex)
        elif child.kind == cindex.CursorKind.FUNCTION_DECL and \
                child.semantic_parent.kind == cindex.CursorKind.NAMESPACE:
            yield child


def _top_level(cursor, cindex):
    """Function definitions and templates of the cell's global scope (extern "C" too)."""
    for child in cursor.get_children():
        location = child.location
        if location.file is None or location.file.name != CELL_FILE:
            continue
        if child.kind == cindex.CursorKind.LINKAGE_SPEC:
            yield from _top_level(child, cindex)
        elif child.kind in (cindex.CursorKind.FUNCTION_DECL,
                            cindex.CursorKind.FUNCTION_TEMPLATE):
            yield child


def _function(cursor, cindex) -> dict:
    name = cursor.spelling
    if cursor.type.kind == cindex.TypeKind.FUNCTIONPROTO and \
            cursor.type.is_function_variadic():
        raise Unsupported("variadic functions cannot be called through a trampoline")
    params = []
    for position, argument in enumerate(cursor.get_arguments()):
        param_name = argument.spelling or f"arg{position}"
        try:
            spec = _param_spec(argument.type.get_canonical(), cindex)
        except Unsupported as reason:
            raise Unsupported(f"parameter {param_name!r} has type "
                              f"'{argument.type.spelling}': {reason}") from None
        params.append({"name": param_name, "type": spec})
    try:
        result = _result_spec(cursor.result_type.get_canonical(), cindex)
    except Unsupported as reason:
        raise Unsupported(f"its result type '{cursor.result_type.spelling}' "
                          f"{reason}") from None
    return {"name": name, "export": name, "line": cursor.location.line,
            "params": params, "ret": result}


def _name_exports(functions: list) -> None:
    """Overloads (several functions, or template instantiations, of one name) are
    bound under their name as one callable that dispatches on the arguments' types
    (overloads.py, module.py); each is also exported alone as name__<types>
    (`twice__double`), so every export name is unique."""
    by_name = defaultdict(list)
    for function in functions:
        by_name[function["name"]].append(function)
    taken = set(by_name)
    for name, group in by_name.items():
        if len(group) < 2:
            continue
        for function in group:
            suffix = "_".join(types.kind_of(p["type"]).overload_tag()
                              for p in function["params"]) or "void"
            export, number = f"{name}__{suffix}", 1
            while export in taken:  # a function so named, or the same parameter types
                number += 1
                export = f"{name}__{suffix}_{number}"
            taken.add(export)
            function["export"] = export
            function["overload_of"] = name


def _scalar_tag(type_, cindex, allow_bool=True) -> str:
    name = type_.kind.name
    if name not in types.SCALARS or (name == "BOOL" and not allow_bool):
        raise Unsupported(f"'{type_.spelling}' is not an arithmetic type polymagic "
                          f"passes")
    return types.SCALARS[name][3]


def _template_args(type_) -> list:
    return [type_.get_template_argument_type(i)
            for i in range(type_.get_num_template_arguments())]


def _callback_spec(proto, kind: type, cindex) -> dict:
    result = proto.get_result().get_canonical()
    ret = None if result.kind == cindex.TypeKind.VOID else _scalar_tag(result, cindex)
    args = [_scalar_tag(arg.get_canonical(), cindex) for arg in proto.argument_types()]
    return kind.make(ret=ret, args=args)


def _param_spec(type_, cindex) -> dict:
    kind = type_.kind
    if (spec := records.class_spec(type_, CELL_FILE, result=False)) is not None:
        return spec  # the cell's classes (also in std::span)
    if (spec := containers.param_spec(type_, cindex, types.SCALARS)) is not None:
        return spec
    if kind.name in types.SCALARS:
        return types.Scalar.spec_of(kind.name)
    if kind == cindex.TypeKind.POINTER:
        pointee = type_.get_pointee()
        if pointee.kind == cindex.TypeKind.FUNCTIONPROTO:
            return _callback_spec(pointee, types.FunctionPointer, cindex)
        if pointee.kind in (cindex.TypeKind.CHAR_S, cindex.TypeKind.CHAR_U) and \
                pointee.is_const_qualified():
            return types.CString.make()
        if pointee.kind.name in types.SCALARS:
            return types.Array.make(tag=types.SCALARS[pointee.kind.name][3],
                                    const=pointee.is_const_qualified())
        raise Unsupported("only pointers to arithmetic types (NumPy arrays), const "
                          "char* and function pointers are supported")
    if kind == cindex.TypeKind.LVALUEREFERENCE:
        pointee = type_.get_pointee()
        if pointee.is_const_qualified() and _string_form(pointee, cindex) == "value":
            return types.String.make(form="cref")
        raise Unsupported("references are not supported except const std::string& "
                          "(pass arrays as T*, const T* or std::span<T>)")
    if kind == cindex.TypeKind.RECORD:
        form = _string_form(type_, cindex)
        if form:
            return types.String.make(form=form)
        name = qualified_name(type_.get_declaration())
        if name == "std::span":
            element = _template_args(type_)[0]
            if not _has_dynamic_extent(type_):
                raise Unsupported("only dynamic-extent std::span is supported")
            return types.Span.make(tag=_scalar_tag(element, cindex),
                                   const=element.is_const_qualified())
        if name == "std::function":
            return _callback_spec(_template_args(type_)[0], types.StdFunction, cindex)
    raise Unsupported("this type cannot cross between Python and C++")


def _string_form(type_, cindex) -> str | None:
    if type_.kind != cindex.TypeKind.RECORD:
        return None
    name = qualified_name(type_.get_declaration())
    forms = {"std::basic_string": "value", "std::basic_string_view": "view"}
    if name in forms and _template_args(type_)[0].kind == cindex.TypeKind.CHAR_S:
        return forms[name]
    return None


def _result_spec(type_, cindex) -> dict:
    if (spec := records.class_spec(type_, CELL_FILE, result=True)) is not None:
        return spec  # the cell's classes (also in std::vector and std::span)
    if (spec := containers.result_spec(type_, cindex, types.SCALARS)) is not None:
        return spec
    if type_.kind == cindex.TypeKind.LVALUEREFERENCE:  # a copy of what it refers to
        type_ = type_.get_pointee()
    kind = type_.kind
    if kind == cindex.TypeKind.VOID:
        return types.Void.make()
    if kind.name in types.SCALARS:
        return types.Scalar.spec_of(kind.name)
    if kind == cindex.TypeKind.POINTER:
        pointee = type_.get_pointee()
        if pointee.kind in (cindex.TypeKind.CHAR_S, cindex.TypeKind.CHAR_U) and \
                pointee.is_const_qualified():
            return types.CString.make()
    if _string_form(type_, cindex) == "value":
        return types.String.make(form="value")
    if kind == cindex.TypeKind.RECORD and \
            qualified_name(type_.get_declaration()) == "std::vector":
        element = _template_args(type_)[0]
        return types.Vector.make(tag=_scalar_tag(element, cindex, allow_bool=False))
    if kind == cindex.TypeKind.RECORD and \
            qualified_name(type_.get_declaration()) == "std::span":
        return _param_spec(type_, cindex)  # a view: std::span<T> reads the same both ways
    raise Unsupported("cannot be returned to Python (supported: arithmetic types, "
                      "void, const char*, std::string, std::string_view, the cell's "
                      "classes and the standard containers of `python -m polymagic "
                      "help cpp`)")
