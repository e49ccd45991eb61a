"""Loading a built cell: the extension module (once per path and process), a link error
found at load time, and the annotated HTML for display."""
from __future__ import annotations

import re
from pathlib import Path

from ...errors import CompileError
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


def load_cell(name: str, path: Path, source: str):
    """Load a built cell; an unresolved C symbol is a link error of the cell."""
    try:
        return load_module(name, path)
    except ImportError as failure:
        symbol = re.search(r"undefined symbol: (\w+)", str(failure))
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
