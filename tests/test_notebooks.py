"""Notebooks run headlessly under papermill, with an execution timeout, and record their numbers.

Notebooks 02-05 run together, as a report, in tests/test_report.py."""

from __future__ import annotations

import json
from pathlib import Path

import papermill as pm
import pytest

from rec_lib.config import PROJECT_ROOT
from rec_lib.reports.nbtools import read_notebook

NOTEBOOKS = {
    "preprocess": PROJECT_ROOT / "notebooks" / "01_preprocess.ipynb",
    "train": PROJECT_ROOT / "notebooks" / "02_train.ipynb",
}
CELL_TIMEOUT_S = 600


def execute(name: str, output: Path, **parameters) -> dict:
    pm.execute_notebook(
        str(NOTEBOOKS[name]),
        str(output),
        parameters=parameters,
        kernel_name="python3",
        execution_timeout=CELL_TIMEOUT_S,
        progress_bar=False,
        cwd=str(output.parent),
    )
    return read_notebook(output)


@pytest.mark.parametrize("path", sorted((PROJECT_ROOT / "notebooks").glob("*.ipynb")), ids=lambda p: p.name)
def test_notebooks_are_committed_clean_with_one_parameters_cell(path: Path) -> None:
    notebook = json.loads(path.read_text())
    code = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    assert all(not c["outputs"] and c["execution_count"] is None for c in code)
    assert sum("parameters" in c["metadata"].get("tags", []) for c in code) == 1


def test_notebook_01_on_real_data(real_data_dir: Path, tmp_path: Path) -> None:
    recorded = execute(
        "preprocess", tmp_path / "01.ipynb", data_dir=str(real_data_dir), artefacts_dir=str(tmp_path / "artefacts")
    )
    assert (recorded["n_users"], recorded["n_movies"], recorded["n_ratings"]) == (610, 9_724, 100_836)
    assert recorded["split_sizes"] == {"train": 99_616, "val": 610, "test": 610}
    assert recorded["graph_edges"] == 99_616
    assert Path(recorded["artefacts_path"]).is_dir()


def test_notebook_01_on_ml1m_layout(ml1m_dir: Path, tmp_path: Path) -> None:
    recorded = execute(
        "preprocess",
        tmp_path / "01.ipynb",
        dataset=ml1m_dir.name,
        data_dir=str(ml1m_dir.parent),
        artefacts_dir=str(tmp_path / "artefacts"),
    )
    assert recorded["n_ratings"] == 9 and recorded["split_sizes"]["test"] == 2
