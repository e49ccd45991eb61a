"""The room's own C and C++ (files in native/), read when a cell is built.

Static code lives in real files, where an editor and the compiler see it; the
generators paste it around the per-cell code they write. All of it is hashed into
every C++ cache key (build.sources_digest of this folder), so an edit rebuilds.
"""
from __future__ import annotations

import functools
from pathlib import Path

NATIVE = Path(__file__).with_name("native")


@functools.lru_cache(maxsize=None)
def text(name: str) -> str:
    """The text of native/`name`, ending with a newline."""
    content = (NATIVE / name).read_text()
    return content if content.endswith("\n") else content + "\n"
