"""Loading a built cell: the extension module (once per path and process), a link error
found at load time, and the annotated HTML for display."""
from __future__ import annotations

import importlib.util
import keyword
import re
import sys
from pathlib import Path

from ...errors import CompileError, CythonOptionError
from ...toolchain import load_extension
from .toolchain import LANGUAGE

_LOADED: dict[str, object] = {}  # extension path -> module, for same-process re-runs


def load_module(name: str, path: Path):
    """Load an extension module from `path` with importlib (no sys.path lookup)."""
    key = str(path)
    if key in _LOADED:
        return _LOADED[key]
    module = _LOADED[key] = load_extension(name, key)
    return module


def check_module_name(name: str) -> None:
    """Refuse a module name (`-n`) under which a cell would replace a module that other
    code imports: a cell is registered in sys.modules by its name, so `-n numpy` would
    break numpy for the rest of the session. Identifiers only; no keyword, no dunder
    name (`__builtins__`, `__main__`), no module already imported or importable. A name
    a cell of this process already holds may be used again (an edited cell)."""
    if not name.isidentifier() or keyword.iskeyword(name):
        raise CythonOptionError(f"Cython module name {name!r} is not a Python identifier")
    if name.startswith("__") and name.endswith("__"):
        raise CythonOptionError(f"Cython module name {name!r}: dunder names belong to "
                                "Python (a cell named so would shadow them)")
    loaded = sys.modules.get(name)
    if loaded is not None:
        if any(module is loaded for module in _LOADED.values()):
            return
        raise CythonOptionError(f"Cython module name {name!r} would replace the module "
                                f"{name!r} that is already imported; choose another name")
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        spec = None
    if spec is not None:
        raise CythonOptionError(
            f"Cython module name {name!r} would shadow the importable module {name!r} "
            f"({spec.origin or 'a package'}); choose another name")


def load_cell(name: str, path: Path, source: str):
    """Load a built cell; an unresolved C symbol is a link error of the cell, and a
    module the dynamic loader refuses (flags such as -fsanitize=thread) is a
    CompileError of the loader, not an import error of the cell's code."""
    try:
        return load_module(name, path)
    except ImportError as failure:
        symbol = re.search(r"undefined symbol: (\w+)", str(failure))
        if symbol is None and failure.path == str(path):  # set by the loader only
            raise CompileError(
                f"{LANGUAGE} (loader)", "the built module cannot be loaded into this "
                f"process: {failure.msg} (check the -c/--link-args flags)") from failure
        if symbol is None:
            raise  # the cell's own module-level code failed to import something
        lines = [number for number, text in enumerate(source.splitlines(), start=1)
                 if re.search(rf"\b{symbol[1]}\b", text)][:1]
        where = f"cell:{lines[0]}: " if lines else ""
        raise CompileError(
            f"{LANGUAGE} (linker)",
            f"{where}error: undefined symbol {symbol[1]!r}: declared but defined by no "
            "compiled code or library (add -l/-L/-S, or define it)",
            lines=lines) from failure


def read_annotation(html_file: Path) -> str:
    """Cython's annotated HTML reduced to a snippet (style + body) for inline display."""
    html = html_file.read_text(encoding="utf-8")
    styles = re.findall(r"<style.*?</style>", html, re.DOTALL)
    body = re.search(r"<body[^>]*>(.+)</body>", html, re.DOTALL)
    content = body.group(1) if body else html
    content = "\n".join(line for line in content.splitlines()
                        if not line.startswith("<p>Raw output:"))
    return "\n".join([*styles, content])
