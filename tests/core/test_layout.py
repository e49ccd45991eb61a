"""The package's layout stays true: imports point down only and never go in a circle.

Layers, top to bottom (docs/architecture.md): the public API (`polymagic/__init__.py`,
`__main__.py`, `situation.py`) → `magics/` → `bridges/` → `marshal/` → the core
(`errors`, `config`, `build`, `toolchain`, `hub`, `tracebacks`). A module imports only
from lower layers or from its own room; lazy imports inside functions count too.
"""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "polymagic"
API = {"polymagic", "polymagic.__main__", "polymagic.situation"}
LAYERS = {"magics": 3, "bridges": 2, "marshal": 1}


def module_name(path: Path) -> str:
    parts = ("polymagic", *path.relative_to(PACKAGE).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in PACKAGE.rglob("*.py")}


def imported_names(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """Every polymagic module `path` imports, at top level or inside functions."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.add(candidate if candidate in known else base)
    return {target for target in found if target.startswith("polymagic")
            and target in known and target != name}


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imported_names(name, path, known) for name, path in known.items()}


def layer(name: str) -> int:
    if name in API:
        return 4
    parts = name.split(".")
    return LAYERS.get(parts[1], 0) if len(parts) > 1 else 0


def room(name: str) -> str:
    """bridges.<language> and magics are rooms; in marshal, a module's language prefix
    (r, r_shim -> r); language-neutral marshal modules (no prefix) serve every room."""
    parts = name.split(".")
    if len(parts) < 3 or layer(name) in (0, 4):
        return ""
    if parts[1] == "marshal":
        return parts[2].split("_")[0]
    if parts[1] == "magics":
        return "magics"
    return ".".join(parts[:3])


NEUTRAL_MARSHAL = {"polymagic.marshal", "polymagic.marshal.buffers"}


def allowed(source: str, target: str) -> bool:
    if layer(target) < layer(source) or layer(source) == 4:
        return True
    if layer(target) > layer(source):
        return False
    if layer(source) == 0 or target in NEUTRAL_MARSHAL:
        return True
    return room(source) == room(target) or target in ("polymagic.bridges", "polymagic.magics")


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in edges.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_the_graph_is_read_from_source():
    """The reader sees lazy imports inside functions and relative imports of every depth."""
    edges = graph()
    assert "polymagic.bridges.r.graphics" in edges["polymagic.magics.r"]   # lazy import
    assert "polymagic.errors" in edges["polymagic.bridges.r.engine"]       # from ...errors


def test_no_import_runs_upward_or_across_rooms():
    """magics -> bridges -> marshal -> core; a room imports no other room."""
    bad = [f"{source} -> {target}" for source, targets in graph().items()
           for target in sorted(targets) if not allowed(source, target)]
    assert bad == []


def test_no_import_cycles():
    """No two modules import each other, directly or through others (lazy imports count)."""
    assert cycles(graph()) == []


def test_the_checks_catch_what_they_are_for():
    """A planted upward import and a planted cycle are reported."""
    assert not allowed("polymagic.marshal.r", "polymagic.bridges.r.engine")
    assert not allowed("polymagic.bridges.r.engine", "polymagic.bridges.cpp.types")
    assert not allowed("polymagic.build", "polymagic.marshal.r")
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
