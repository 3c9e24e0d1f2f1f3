"""Notebook tests, fast mode: every notebook in notebooks/ runs top to bottom without error.

Each notebook is executed with nbclient in a fresh python3 kernel (the one of the Python running the
tests: jupyter_client launches a kernelspec whose argv starts with "python" with sys.executable), with
EMRAD_NOTEBOOK_FAST=1 (few replications, short horizons) and the notebook's own folder as working
directory, as nbmake does. The committed notebooks must carry no outputs (outputs are not committed).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
jupyter_client = pytest.importorskip("jupyter_client")

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
CELL_TIMEOUT_S = 300


def test_there_are_notebooks():
    assert NOTEBOOKS, f"no notebooks in {NOTEBOOK_DIR}"


def test_kernel_is_this_python():
    """The python3 kernel runs this interpreter (the venv's), so it imports the same `sim`."""
    manager = jupyter_client.KernelManager(kernel_name="python3")
    command = manager.format_kernel_cmd()
    assert Path(command[0]).resolve() == Path(sys.executable).resolve(), (
        f"kernel python3 would run {command[0]}, not {sys.executable}: its kernelspec is "
        f"{manager.kernel_spec.resource_dir}")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_has_no_outputs(path: Path):
    notebook = nbformat.read(path, as_version=4)
    dirty = [i for i, cell in enumerate(notebook.cells)
             if cell.cell_type == "code" and (cell.get("outputs") or cell.get("execution_count") is not None)]
    assert not dirty, f"{path.name}: cells {dirty} have outputs or execution counts; strip them before committing"
    first = notebook.cells[0]
    assert first.cell_type == "markdown" and first.source.lstrip().startswith("#"), (
        f"{path.name}: the first cell must be markdown stating the question the notebook answers")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_in_fast_mode(path: Path, monkeypatch):
    monkeypatch.setenv("EMRAD_NOTEBOOK_FAST", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=CELL_TIMEOUT_S, kernel_name="python3",
                                     resources={"metadata": {"path": str(path.parent)}})
    client.execute()  # raises CellExecutionError on the first failing cell
