"""Execute notebooks headlessly through a real Jupyter kernel; write .ipynb and .html.

    python scripts/run_notebook.py notebooks/tour.ipynb --out build/notebooks
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient


def execute(path: Path, out_dir: Path | None = None, timeout: int = 600):
    """Run every cell of `path` in a fresh python3 kernel; return the executed notebook.

    Cells run in the notebook's own folder. Raises nbclient's CellExecutionError on the
    first failing cell (cells tagged `raises-exception` may fail).
    """
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    if out_dir is not None:
        write(notebook, path.stem, out_dir)
    return notebook


def write(notebook, stem: str, out_dir: Path) -> tuple[Path, Path]:
    """Save the executed notebook and its HTML rendering under `out_dir`."""
    from nbconvert import HTMLExporter
    out_dir.mkdir(parents=True, exist_ok=True)
    ipynb, html = out_dir / f"{stem}.ipynb", out_dir / f"{stem}.html"
    nbformat.write(notebook, ipynb)
    body, _ = HTMLExporter().from_notebook_node(notebook)
    html.write_text(body, encoding="utf-8")
    return ipynb, html


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=Path("build/notebooks"))
    args = parser.parse_args(argv)
    for path in args.notebooks:
        print(f"executing {path} ...", flush=True)
        execute(path, args.out)
        print(f"  executed notebook: {(args.out / (path.stem + '.ipynb')).resolve()}")
        print(f"  HTML rendering:    {(args.out / (path.stem + '.html')).resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
