"""notebooks/julia.ipynb under Run All on a machine without Julia: it says once that the
runtime is missing, every other cell is skipped, and nothing fails. (Where Julia exists,
tests/notebooks/test_notebooks.py checks the cells' `# expect (julia):` lines.) The
cells are checked by that file's matcher, with the `(no julia)` declarations."""
import importlib.util
import sys
from pathlib import Path

import pytest

from polymagic.bridges.julia.locate import find_julia

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "julia.ipynb"


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(find_julia() is not None,
                    reason="a Julia runtime is installed: test_notebooks.py runs it")
def test_julia_notebook_runs_all_without_julia(tmp_path):
    """Every cell runs without error; the one 'not available' message is the only
    output of the Julia cells, and each cell shows what its (no julia) lines declare."""
    runner = _load(ROOT / "scripts" / "run_notebook.py", "run_notebook")
    matcher = _load(ROOT / "tests" / "notebooks" / "test_notebooks.py", "notebook_checks")
    notebook = runner.execute(NOTEBOOK, tmp_path)
    outputs = [output for cell in notebook.cells if cell.cell_type == "code"
               for output in cell.get("outputs", [])]
    assert not [output for output in outputs if output.output_type == "error"]
    text = "".join(output.get("text", "") for output in outputs)
    assert text.count("Julia is not available on this machine") == 1
    assert matcher.notebook_problems(notebook, {"no julia"}) == []
