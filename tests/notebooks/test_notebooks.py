"""Every notebook in notebooks/ runs through a real kernel, and its outputs are checked."""
import importlib.util
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def _runner():
    spec = importlib.util.spec_from_file_location("run_notebook",
                                                  ROOT / "scripts" / "run_notebook.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _needs_julia(path: Path) -> bool:
    return path.stem == "julia"


def _julia_found() -> bool:
    from polymagic.bridges.julia.locate import find_julia
    return find_julia() is not None


def _text_outputs(notebook) -> str:
    """All text a notebook printed or displayed, joined, for assertions."""
    parts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            parts.append(output.get("text", ""))
            data = output.get("data", {})
            parts.append(data.get("text/plain", ""))
            parts.append(data.get("text/html", ""))
            parts.extend(output.get("traceback", []))
    return "\n".join(p if isinstance(p, str) else "".join(p) for p in parts)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path):
    """The notebook executes without error, and each `# expect:` line appears in its outputs."""
    if _needs_julia(path) and not _julia_found():
        pytest.skip("no Julia runtime on this machine: notebooks/julia.ipynb needs one")
    notebook = _runner().execute(path, tmp_path)
    outputs = _text_outputs(notebook)
    expected = [line.split("# expect:", 1)[1].strip()
                for cell in notebook.cells if cell.cell_type == "code"
                for line in cell.source.splitlines() if "# expect:" in line]
    assert expected, f"{path.name} declares no '# expect:' lines to check"
    for text in expected:
        assert text in outputs, f"{path.name}: expected output {text!r} not found"
