"""Training and evaluation runs on disk: where they live, what they write, how to read them back.

A training run lives in ``<artefacts>/<dataset>/pinsage-<fingerprint>/``, the fingerprint covering
the preprocessed data and every setting that changes the model. It holds ``last.pt`` and
``best.pt`` (checkpoints, with the config inside), ``history.json`` (one row per epoch),
``vectors.pt`` (the best model's movie vectors on the training graph and on the test-time graph, its
biases and query rule, with the movie ids) and ``curves.png`` (drawn by :func:`rec_lib.steps.train`).
Running the same config again resumes from ``last.pt``.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import pandas as pd
import torch

from rec_lib.config import resolve_artefacts_dir
from rec_lib.contracts import QueryRule
from rec_lib.data.preprocess import MANIFEST_NAME, Preprocessed, fingerprint, load_preprocessed, save_preprocessed
from rec_lib.errors import ConfigError, RecLibError
from rec_lib.evaluation.baselines import EASE, ItemKNN, MostPopular, item_cooccurrence, knn_is_dense, training_matrix
from rec_lib.evaluation.config import EASE_L2, EvalConfig
from rec_lib.evaluation.protocol import EmbeddingScorer, build_queries, evaluate_all
from rec_lib.files import write_atomically, write_json
from rec_lib.pinsage.checkpoint import config_identity
from rec_lib.pinsage.config import TrainConfig
from rec_lib.pinsage.graph import TEST_TIME_GRAPH, UserMovieGraph, build_graph
from rec_lib.pinsage.train import TrainResult, train

VECTORS_NAME = "vectors.pt"
HISTORY_NAME = "history.json"
CURVES_NAME = "curves.png"
RUN_INFO_NAME = "run.json"
LATEST_RUN_NAME = "latest-run.json"
"""``<artefacts>/<dataset>/latest-run.json`` names the run that training wrote last: what export, load and
notebooks 03–05 use when no run is named."""


@dataclass(frozen=True)
class Run:
    """A finished training run: its directory, its config, and the preprocessed data it was trained on."""

    directory: Path
    config: TrainConfig
    preprocessed: Path

    def load_data(self) -> Preprocessed:
        """The exact preprocessed artefacts the run was trained on."""
        if not (self.preprocessed / MANIFEST_NAME).is_file():
            raise RecLibError(
                f"{self.preprocessed} is gone: the run {self.directory.name} was trained on it; "
                "preprocess again with the same settings (python -m rec_lib preprocess) or train again"
            )
        return load_preprocessed(self.preprocessed)


def find_run(dataset: str, artefacts_dir: str | Path | None = None, run: str | None = None) -> Run:
    """The run named ``run`` (a directory name under ``<artefacts>/<dataset>/`` or a path), else the latest one."""
    root = resolve_artefacts_dir(artefacts_dir)
    if run:
        directory = Path(run) if Path(run).is_absolute() else root / dataset / run
    else:
        pointer = root / dataset / LATEST_RUN_NAME
        if not pointer.is_file():
            raise RecLibError(
                f"no trained run for {dataset} under {root}: train first (notebook 02 or python -m rec_lib train)"
            )
        directory = root / dataset / json.loads(pointer.read_text())["run"]
    info = directory / RUN_INFO_NAME
    if not info.is_file():
        raise RecLibError(f"{directory} is not a finished training run (no {RUN_INFO_NAME}): train first")
    payload = json.loads(info.read_text())
    return Run(directory, TrainConfig.from_dict(payload["config"]), root / payload["preprocessed"])


def _record_run(
    directory: Path, prep: Preprocessed, config: TrainConfig, artefacts_dir: str | Path | None, latest: bool
) -> None:
    """Write ``run.json`` (config, data) and, when ``latest``, point ``latest-run.json`` at the run.

    Data preprocessed in memory (not through :func:`run_preprocess`) is saved inside the run.
    """
    root = resolve_artefacts_dir(artefacts_dir)
    data = prep.path
    if data is None or not data.resolve().is_relative_to(root):
        data = directory / "preprocessed"
        save_preprocessed(replace(prep, manifest={"counts": asdict(prep.stats), **prep.manifest}), data)
    info = {
        "config": asdict(config),
        "preprocessed": str(data.resolve().relative_to(root)),
        "data_fingerprint": prep.manifest.get("fingerprint"),
    }
    write_json(directory / RUN_INFO_NAME, info)
    if latest:
        write_json(root / config.dataset / LATEST_RUN_NAME, {"run": directory.name})


def run_dir(prep: Preprocessed, config: TrainConfig, artefacts_dir: str | Path | None = None) -> Path:
    """Where the run of ``config`` on ``prep`` lives."""
    key = fingerprint({"data": prep.manifest.get("fingerprint"), "config": config_identity(config)})
    return resolve_artefacts_dir(artefacts_dir) / config.dataset / f"pinsage-{key[:12]}"


def train_run(
    prep: Preprocessed,
    graph: UserMovieGraph,
    config: TrainConfig,
    *,
    artefacts_dir: str | Path | None = None,
    resume: bool = True,
    callbacks=None,
    latest: bool = True,
) -> TrainResult:
    """Train (or resume) and write the run's vectors, history and curves; ``latest``: make it the run that export,
    load and notebooks 03-05 use by default (an experiment such as the cold-start one is not)."""
    directory = run_dir(prep, config, artefacts_dir)
    test_graph = build_graph(prep, TEST_TIME_GRAPH, graph.features.vocab)
    result = train(
        prep, graph, config, checkpoint_dir=directory, resume=resume, callbacks=callbacks, test_graph=test_graph
    )
    vectors = {
        "vectors": result.vectors,
        "test_vectors": result.test_vectors,
        "bias": result.bias,
        "query_rule": result.query_rule.as_dict(),
        "movie_ids": torch.tensor(prep.movies["movie_id"].to_numpy()),
        "config": asdict(config),
        "best_epoch": result.best_epoch,
    }
    write_atomically(directory / VECTORS_NAME, lambda handle: torch.save(vectors, handle))
    history = {
        "config": asdict(config),
        "best_epoch": result.best_epoch,
        "best_val_hr": result.best_val_hr,
        "stopped_early": result.stopped_early,
        "epochs": [asdict(h) for h in result.history],
    }
    write_json(directory / HISTORY_NAME, history)
    _record_run(directory, prep, config, artefacts_dir, latest)
    return result


def load_scorer(directory: Path, name: str = "pinsage", device: torch.device | str = "cpu") -> EmbeddingScorer:
    """A finished run as an evaluation scorer on ``device``: per-split vectors, biases and its query rule."""
    path = Path(directory) / VECTORS_NAME
    if not path.is_file():
        raise RecLibError(f"{path} is missing: train first (python -m rec_lib train) or check --run")
    payload = torch.load(path, map_location="cpu", weights_only=False)
    vectors = {"val": payload["vectors"], "test": payload["test_vectors"]}
    return EmbeddingScorer(name, vectors, payload["bias"], QueryRule.from_saved(payload["query_rule"]), device)


def evaluation_table(
    prep: Preprocessed,
    scorers: list,
    config: EvalConfig | None = None,
) -> pd.DataFrame:
    """Every scorer under both protocols on validation and test."""
    config = config or EvalConfig()
    return evaluate_all(scorers, build_queries(prep, config.history_len), prep.n_movies, config)


def baseline_scorers(prep: Preprocessed, ease_l2: float = EASE_L2, device: torch.device | str = "cpu") -> list:
    """Most-popular, item-kNN and EASE fitted on the training split; EASE is left out, with a warning that says
    what it would need, when its solve would not fit in memory (:data:`rec_lib.evaluation.baselines.EASE_MAX_BYTES`).
    When item-kNN keeps dense similarities, both are fitted from one co-occurrence matrix; dense matrices live on
    ``device``."""
    shared = item_cooccurrence(training_matrix(prep)) if knn_is_dense(prep.n_movies) else None
    scorers = [MostPopular(prep, device), ItemKNN(prep, cooccurrence=shared, device=device)]
    try:
        scorers.append(EASE(prep, ease_l2, cooccurrence=shared, device=device))
    except ConfigError as refused:
        warnings.warn(f"EASE left out of the evaluation: {refused}", stacklevel=2)
    return scorers


def write_table(table: pd.DataFrame, path: Path, metadata: dict | None = None) -> Path:
    """The table as JSON records with optional metadata, written atomically; a missing value is ``null``."""
    rows = table.astype(object).where(table.notna(), None).to_dict(orient="records")
    return write_json(path, {"metadata": metadata or {}, "rows": rows})
