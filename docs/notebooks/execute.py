"""Execute the tutorial notebooks on a real Jupyter kernel; ``--write`` stores their outputs in place.

The tests run :func:`execute_notebook` on every notebook of this folder (``tests/test_notebooks.py``), so a
notebook that raises, or that draws fewer figures than its stored copy shows, fails the suite. After editing a
notebook, store its outputs (figures visible on the repository page and on the docs site) with::

    python docs/notebooks/execute.py --write            # every notebook of docs/notebooks/
    python docs/notebooks/execute.py --write 01-scene-to-rate.ipynb

Each notebook runs with this folder as its working directory, so it finds the repository's files
(``../../scenes/...``) by relative path, and writes whatever it builds to a temporary folder of its own.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK_DIR = Path(__file__).resolve().parent

#: Seconds one cell may run before the kernel is interrupted: the notebooks run on tiny settings, so a cell
#: this slow has gone wrong rather than being slow.
CELL_TIMEOUT_S = 600

#: Quiet TensorFlow's start-up chatter and keep each kernel to the cores of a 2-core CI machine.
KERNEL_ENV = {"TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore::DeprecationWarning"}


def notebook_paths() -> list[Path]:
    """The tutorial notebooks, in reading order (their names start with a two-digit number)."""
    return sorted(NOTEBOOK_DIR.glob("[0-9][0-9]-*.ipynb"))


def count_figures(notebook: nbformat.NotebookNode) -> int:
    """Number of PNG images among the notebook's code-cell outputs."""
    return sum("image/png" in output.get("data", {})
               for cell in notebook.cells if cell.cell_type == "code"
               for output in cell.get("outputs", []))


def execute_notebook(path: Path, write: bool = False) -> tuple[nbformat.NotebookNode, float]:
    """Run ``path`` top to bottom on a fresh ``python3`` kernel; returns (executed notebook, seconds).

    Raises ``nbclient.exceptions.CellExecutionError`` naming the failing cell when any cell raises.
    """
    path = Path(path)
    notebook = nbformat.read(path, as_version=4)
    os.environ.update(KERNEL_ENV)  # the kernel inherits this process's environment
    # record_timing=False: no per-cell execution times in the stored files, so a re-run only changes what changed
    client = NotebookClient(notebook, timeout=CELL_TIMEOUT_S, kernel_name="python3", record_timing=False,
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    if write:
        nbformat.write(notebook, path)
    return notebook, seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", help="Notebook files (default: every tutorial notebook).")
    parser.add_argument("--write", action="store_true", help="Store the outputs in the notebook files.")
    args = parser.parse_args(argv)
    paths = [Path(p) if Path(p).exists() else NOTEBOOK_DIR / p for p in args.notebooks] or notebook_paths()
    for path in paths:
        notebook, seconds = execute_notebook(path, write=args.write)
        print(f"{path.name}: {seconds:.1f} s, {count_figures(notebook)} figures"
              + (" (outputs stored)" if args.write else ""), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
