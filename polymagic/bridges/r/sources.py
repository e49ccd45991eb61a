"""The code of recent R cells, kept for error messages and tracebacks, within a budget.

Each `R.eval` / `%%R` cell is kept under its cell name so that an RError can quote
the failing line, and is registered with `linecache` so that Python's traceback
printer shows R lines. Kept forever, 100 evaluations of 1 MB of code grew the process
by 230 MB. Here the most recently used cells are kept up to a memory budget (the
newest one always, whatever its size); the least recently used are forgotten first,
from both places. A forgotten cell's errors still carry R's message, stack and
line numbers; only the quoted source line is missing.
"""
from __future__ import annotations

from collections import OrderedDict

from ...tracebacks import forget_source, register_source

BUDGET_BYTES = 16 * 2**20  # estimated memory of the kept code, over all cells
MAX_CELLS = 1000           # many small cells cost per entry, not per character


def cost(code: str) -> int:
    """Estimated bytes a kept cell holds: its text twice (ours and linecache's lines)
    and a str object per line (linecache's)."""
    return 2 * len(code) + 64 * (code.count("\n") + 1)


class CellSources:
    """Cell name -> code, least recently used forgotten first."""

    def __init__(self, budget_bytes: int = BUDGET_BYTES, max_cells: int = MAX_CELLS):
        self.budget_bytes = budget_bytes
        self.max_cells = max_cells
        self._codes: OrderedDict[str, str] = OrderedDict()
        self.total_bytes = 0

    def add(self, name: str, code: str) -> None:
        """Keep `code` as cell `name` (newest), forgetting the oldest over budget."""
        self._drop(name)
        self._codes[name] = code
        self.total_bytes += cost(code)
        register_source(name, code)
        while len(self._codes) > 1 and (self.total_bytes > self.budget_bytes
                                        or len(self._codes) > self.max_cells):
            oldest = next(iter(self._codes))
            self._drop(oldest)
            forget_source(oldest)

    def get(self, name: str) -> str | None:
        """The code of cell `name` (now the most recently used), or None if forgotten."""
        code = self._codes.get(name)
        if code is not None:
            self._codes.move_to_end(name)
        return code

    def __len__(self) -> int:
        return len(self._codes)

    def __contains__(self, name: str) -> bool:
        return name in self._codes

    def _drop(self, name: str) -> None:
        code = self._codes.pop(name, None)
        if code is not None:
            self.total_bytes -= cost(code)
