"""Notebooks run headlessly under papermill, with an execution timeout, and record their numbers.

Notebooks 01-06 run together, as a report, in tests/notebooks/test_report_run.py."""

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
    "export": PROJECT_ROOT / "notebooks" / "03_export_embeddings.ipynb",
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
    import nbformat

    notebook = json.loads(path.read_text())
    nbformat.validate(nbformat.reads(path.read_text(), as_version=4))
    assert all(cell.get("id") for cell in notebook["cells"]), "nbformat 4.5 wants every cell to have an id"
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


def test_notebook_02_search_and_any_training_flag_flow_to_notebook_03(tmp_path: Path) -> None:
    """The documented run_search path runs (a tiny grid), and 03 finds 02's run whatever settings trained it."""
    from rec_lib.data.synthetic import SyntheticConfig, generate_ml1m
    from rec_lib.experiments.tuning import load_search

    generate_ml1m(tmp_path / "data" / "syn", SyntheticConfig(n_users=200, n_movies=80, n_ratings=6_000, seed=3))
    common = {"dataset": "syn", "artefacts_dir": str(tmp_path / "artefacts")}
    overrides = {"hidden_dims": 8, "num_epochs": 1, "batches_per_epoch": 3, "batch_size": 16, "dropout": 0.3}
    overrides["content_weight"] = 0.0
    search_out = tmp_path / "tuning" / "syn.json"
    trained = execute(
        "train",
        tmp_path / "02.ipynb",
        **common,
        data_dir=str(tmp_path / "data"),
        short_users="drop",
        train_overrides=overrides,
        run_search=True,
        search_ablations=["defaults", "no per-movie bias"],
        search_seeds=[0, 1],
        search_overrides={"num_epochs": 1, "batches_per_epoch": 2, "hidden_dims": 8, "batch_size": 16},
        search_out=str(search_out),
    )
    assert trained["config"]["dropout"] == 0.3 and trained["search_rows"] == 2 and trained["search_ran"] is True
    summary = load_search("syn", search_out.parent)
    assert summary["ablation"].tolist() == ["defaults", "no per-movie bias"] and summary["seeds"].tolist() == [2, 2]
    exported = execute("export", tmp_path / "03.ipynb", **common)
    assert exported["run_dir"] == trained["run_dir"]
    assert exported["n_vectors"] == 80 and exported["dim"] == 8, "hidden 8 and no content channel, as trained"
