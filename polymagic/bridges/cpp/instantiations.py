"""The explicit instantiations a cell writes of its function templates, as exports.

    template <class T> T twice(T x) { return x + x; }
    template double twice<double>(double);   // exported: double twice<double>(double)
    template int twice(int);                  // exported: int twice<int>(int)

Each instantiation is exported under the template's name, an overload of it (see
overloads.py), and its trampoline calls that very instantiation (`::twice<double>(a0)`).
A template the cell never instantiates explicitly is skipped with a warning that says
how to instantiate it.

libclang does not show explicit instantiations as cursors, so they are found in the
cell's tokens (`template` opening a declaration at global scope, not followed by `<`),
and their types are read from a second parse of the cell with one probe per
instantiation appended: `double (*__pm_probe_0)(double) = &twice<double>;` (`&twice<>`
when the arguments are deduced, so that a plain `twice` overload is not taken), whose
initializer refers to the instantiated function declaration, with concrete types. The
second parse runs only for cells that write instantiations. Instantiations made by a
macro, in a namespace, or of a template the cell does not define, are not exported.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from .types import Unsupported

_PROBE = "__pm_probe_"
_OPENERS, _CLOSERS = {"(": ")", "[": "]", "{": "}"}, {")", "]", "}"}


@dataclass
class _Written:
    """One explicit instantiation as the cell writes it."""

    name: str        # the template's name
    line: int
    result: str      # the tokens before the name, joined
    arguments: str   # '<double>' as written, or '' (deduced)
    params: str      # the tokens inside the parentheses
    tail: str        # after them: noexcept, a trailing result type


def read(unit, templates: list, source: str, args: list, cell_file: str,
         read_function, skipped: list) -> list:
    """Plan entries for the explicit instantiations of `templates` (the cell's top-level
    FUNCTION_TEMPLATE cursors) that the cell in `unit` writes; each template without
    one goes into `skipped` with a warning. `read_function(cursor)` makes the plan
    entry of a function declaration (signatures._function)."""
    if not templates:
        return []  # the cell's tokens need not be read
    by_name = {cursor.spelling: cursor for cursor in templates}
    written = [item for item in _written(unit, cell_file) if item.name in by_name]
    for cursor in templates:
        if not any(item.name == cursor.spelling for item in written):
            skipped.append({"name": cursor.spelling, "line": cursor.location.line,
                            "warn": True, "reason": _how_to_instantiate(cursor)})
    if not written:
        return []
    return _probe(unit, written, source, args, cell_file, read_function, skipped)


def _how_to_instantiate(template) -> str:
    example = _example(template)
    return ("it is a function template, and only the explicit instantiations the cell "
            "writes are exported (each an overload of its name); it has none: write "
            f"one per type you need, such as `{example}`")


def _example(template) -> str:
    """`template double twice<double>(double);` for `template <class T> T twice(T)`."""
    substitutes = {}
    for child in template.get_children():
        if child.kind.name == "TEMPLATE_TYPE_PARAMETER":
            substitutes[child.spelling] = "double"
        elif child.kind.name == "TEMPLATE_NON_TYPE_PARAMETER":
            substitutes[child.spelling] = "1"
        elif child.kind.name == "TEMPLATE_TEMPLATE_PARAMETER":
            return f"template <result> {template.spelling}<arguments>(<parameter types>);"

    def concrete(spelling: str) -> str:
        return re.sub(r"\b\w+\b", lambda word: substitutes.get(word[0], word[0]), spelling)
    params = ", ".join(concrete(child.type.spelling) for child in template.get_children()
                       if child.kind.name == "PARM_DECL")
    arguments = ", ".join(substitutes.values())
    return (f"template {concrete(template.result_type.spelling)} "
            f"{template.spelling}<{arguments}>({params});")


# ------------------------------------------------------------------ the cell's tokens

def _written(unit, cell_file: str) -> list[_Written]:
    """The explicit instantiations of functions written at the cell's global scope."""
    tokens = [t for t in unit.get_tokens(extent=unit.cursor.extent)
              if t.location.file is not None and t.location.file.name == cell_file]
    occupied = list(_occupied(unit.cursor, cell_file))
    found = []
    for position, token in enumerate(tokens):
        if token.spelling != "template" or token.kind.name != "KEYWORD":
            continue
        before = tokens[position - 1].spelling if position else ";"
        after = tokens[position + 1].spelling if position + 1 < len(tokens) else ""
        offset = token.extent.start.offset
        if before not in (";", "}", "{") or after == "<" or \
                any(start <= offset < end for start, end in occupied):
            continue  # not an instantiation, or an `extern template`, or not global
        declaration = _until_semicolon([t.spelling for t in tokens[position + 1:]])
        item = _split(declaration, token.location.line)
        if item is not None:
            found.append(item)
    return found


def _occupied(cursor, cell_file: str):
    """Offset ranges of the cell's global declarations (a linkage block's contents are
    global scope): an instantiation in there is in a namespace, class or function."""
    for child in cursor.get_children():
        location = child.location
        if location.file is None or location.file.name != cell_file:
            continue
        if child.kind.name == "LINKAGE_SPEC":
            yield from _occupied(child, cell_file)
        else:
            yield child.extent.start.offset, child.extent.end.offset


def _until_semicolon(spellings: list[str]) -> list[str]:
    depth = 0
    for end, spelling in enumerate(spellings):
        if spelling in _OPENERS:
            depth += 1
        elif spelling in _CLOSERS:
            depth -= 1
        elif spelling == ";" and depth == 0:
            return spellings[:end]
    return spellings


def _split(declaration: list[str], line: int) -> _Written | None:
    """A function instantiation's parts (None for a class template's, an operator's,
    or a name qualified by a namespace: such are not exported)."""
    if not declaration or declaration[0] in ("class", "struct", "union"):
        return None
    opening = _parameters_start(declaration)
    if opening is None:
        return None
    closing = _matching(declaration, opening)
    end = opening  # the name (and its template arguments) end here
    arguments = ""
    if declaration[end - 1] in (">", ">>"):
        start = _angle_start(declaration, end - 1)
        if start is None:
            return None
        arguments = " ".join(declaration[start:end])
        end = start
    name_at = end - 1
    if name_at < 0 or not re.fullmatch(r"[A-Za-z_]\w*", declaration[name_at]) or \
            declaration[name_at] == "operator":
        return None
    start = name_at - 1 if name_at > 0 and declaration[name_at - 1] == "::" else name_at
    if start > 0 and declaration[start] == "::" and \
            re.fullmatch(r"\w+|>", declaration[start - 1]):
        return None  # ns::name: a namespace's function, not exported
    return _Written(name=declaration[name_at], line=line,
                    result=" ".join(declaration[:start]), arguments=arguments,
                    params=" ".join(declaration[opening + 1:closing]),
                    tail=" ".join(declaration[closing + 1:]))


def _parameters_start(declaration: list[str]) -> int | None:
    """The '(' opening the parameter list: the first outside <...> and (...)."""
    angles = parens = 0
    for position, spelling in enumerate(declaration):
        if spelling == "(":
            if angles == 0 and parens == 0 and position > 0:
                return position
            parens += 1
        elif spelling == ")":
            parens -= 1
        elif parens == 0 and spelling == "<":
            angles += 1
        elif parens == 0 and spelling in (">", ">>"):
            angles -= len(spelling)
    return None


def _matching(declaration: list[str], opening: int) -> int:
    depth = 0
    for position in range(opening, len(declaration)):
        depth += {"(": 1, ")": -1}.get(declaration[position], 0)
        if depth == 0:
            return position
    return len(declaration)


def _angle_start(declaration: list[str], closing: int) -> int | None:
    """The '<' that the '>' (or '>>') at `closing` closes."""
    depth = 0
    for position in range(closing, -1, -1):
        spelling = declaration[position]
        if spelling in (">", ">>"):
            depth += len(spelling)
        elif spelling == "<":
            depth -= 1
            if depth == 0:
                return position
    return None


# ---------------------------------------------------------------- the probe parse

def _probe(unit, written: list[_Written], source: str, args: list, cell_file: str,
           read_function, skipped: list) -> list:
    """Parse the cell again with one probe per instantiation; their plan entries."""
    cell = source.rstrip("\n") + "\n\n"
    first_probe_line = cell.count("\n") + 1
    probes = "".join(f"{item.result} (*{_PROBE}{number})({item.params}) {item.tail} = "
                     f"&{item.name}{item.arguments or '<>'};\n"  # <>: templates only
                     for number, item in enumerate(written))
    index = unit.index
    probed = index.parse(cell_file, args=args,
                         unsaved_files=[(cell_file, cell + probes)])
    problems = {}
    for diagnostic in probed.diagnostics:
        number = diagnostic.location.line - first_probe_line
        if diagnostic.severity >= 3 and 0 <= number < len(written):  # error, fatal
            problems.setdefault(number, diagnostic.spelling)
    targets = _probe_targets(probed.cursor, cell_file)
    functions = []
    for number, item in enumerate(written):
        where = {"name": item.name, "line": item.line, "warn": True}
        target = targets.get(number)
        if number in problems or target is None:
            why = problems.get(number, "it names no function template of the cell")
            skipped.append(dict(where, reason=f"polymagic could not read its explicit "
                                              f"instantiation: {why}"))
            continue
        try:
            functions.append(_instantiation(item, target, read_function))
        except Unsupported as reason:
            skipped.append(dict(where, reason=str(reason)))
    return functions


def _probe_targets(cursor, cell_file: str) -> dict:
    """Probe number -> the function declaration its initializer refers to."""
    targets = {}
    for child in cursor.get_children():
        if child.kind.name != "VAR_DECL" or not child.spelling.startswith(_PROBE):
            continue
        for node in child.walk_preorder():
            if node.kind.name == "DECL_REF_EXPR" and node.referenced is not None and \
                    node.referenced.kind.name == "FUNCTION_DECL":
                targets[int(child.spelling[len(_PROBE):])] = node.referenced
                break
    return targets


def _instantiation(item: _Written, target, read_function) -> dict:
    entry = read_function(target)
    arguments = item.arguments if item.arguments.strip("<> ") else _arguments(target)
    callee = item.name + _tidy(arguments)
    entry.update(callee=callee, instantiated_at=item.line,
                 expression="::" + callee.replace("{", "{{").replace("}", "}}") + "({args})")
    return entry


def _tidy(tokens: str) -> str:
    """'< std :: vector < int > , 3 >' -> '<std::vector<int>, 3>' (tokens joined by
    spaces read back as C++ is written; spaces between words stay)."""
    text = re.sub(r"\s*(::|<|>|\*|&)\s*", r"\1", tokens)
    return re.sub(r"\s*,\s*", ", ", text)


def _arguments(target) -> str:
    """'<int>': the template arguments libclang deduced for an instantiation."""
    count = target.get_num_template_arguments()
    spelled = []
    for number in range(max(count, 0)):
        try:
            kind = target.get_template_argument_kind(number).name
        except ValueError:  # a pack: the Python bindings know no such kind
            kind = "PACK"
        if kind == "TYPE":
            spelled.append(target.get_template_argument_type(number).get_canonical().spelling)
        elif kind == "INTEGRAL":
            spelled.append(str(target.get_template_argument_value(number)))
        else:
            raise Unsupported("polymagic cannot spell its deduced template arguments; "
                              "write them in the instantiation (name<arguments>(...))")
    if count <= 0:
        raise Unsupported("polymagic cannot read its template arguments; write them in "
                          "the instantiation (name<arguments>(...))")
    return f"<{', '.join(spelled)}>"
