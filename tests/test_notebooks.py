"""The tutorial notebooks run top to bottom on a real Jupyter kernel and draw their figures.

Each notebook of ``docs/notebooks/`` is executed afresh (``docs/notebooks/execute.py``); a cell that raises
fails its test, and so does an executed notebook with fewer PNG figures than its stored copy shows (a plot
that silently stopped drawing). The stored copy must show at least one figure: a tutorial without a plot, or
stored without its outputs, is caught here.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import nbformat
import pytest

_RUNNER = Path(__file__).resolve().parents[1] / "docs" / "notebooks" / "execute.py"
_spec = importlib.util.spec_from_file_location("ckmsim_notebook_runner", _RUNNER)
runner = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(runner)


def test_there_are_tutorial_notebooks():
    assert len(runner.notebook_paths()) >= 1


@pytest.mark.notebook
@pytest.mark.parametrize("path", runner.notebook_paths(), ids=lambda p: p.stem)
def test_notebook_runs_and_draws_its_figures(path):
    stored = nbformat.read(path, as_version=4)
    stored_figures = runner.count_figures(stored)
    assert stored_figures >= 1, f"{path.name} is stored without any figure output: run execute.py --write"
    executed, _ = runner.execute_notebook(path)
    assert runner.count_figures(executed) >= stored_figures, f"{path.name} drew fewer figures than stored"
