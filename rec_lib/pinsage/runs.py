"""Training and evaluation runs on disk: where they live, what they write, how to read them back.

A training run lives in ``<artefacts>/<dataset>/pinsage-<fingerprint>/``, the fingerprint covering
the preprocessed data and every setting that changes the model. It holds ``last.pt`` and
``best.pt`` (checkpoints, with the config inside), ``history.json`` (one row per epoch),
``vectors.pt`` (the best model's movie vectors and biases with their movie ids) and
``curves.png``. Running the same config again resumes from ``last.pt``.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pandas as pd
import torch

from rec_lib.config import resolve_artefacts_dir
from rec_lib.data.preprocess import Preprocessed, fingerprint
from rec_lib.errors import RecLibError
from rec_lib.pinsage.baselines import EASE, ItemKNN, MostPopular
from rec_lib.pinsage.config import EASE_L2, EvalConfig, TrainConfig
from rec_lib.pinsage.evaluation import EmbeddingScorer, build_queries, evaluate_all
from rec_lib.pinsage.graph import UserMovieGraph
from rec_lib.pinsage.train import TrainResult, config_identity, train

VECTORS_NAME = "vectors.pt"
HISTORY_NAME = "history.json"
CURVES_NAME = "curves.png"


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
) -> TrainResult:
    """Train (or resume) and write the run's vectors, history and curves."""
    from rec_lib.reports.figures import training_curves

    directory = run_dir(prep, config, artefacts_dir)
    result = train(prep, graph, config, checkpoint_dir=directory, resume=resume, callbacks=callbacks)
    torch.save(
        {
            "vectors": result.vectors,
            "bias": result.bias,
            "movie_ids": torch.tensor(prep.movies["movie_id"].to_numpy()),
            "config": asdict(config),
            "best_epoch": result.best_epoch,
        },
        directory / VECTORS_NAME,
    )
    history = {
        "config": asdict(config),
        "best_epoch": result.best_epoch,
        "best_val_hr": result.best_val_hr,
        "stopped_early": result.stopped_early,
        "epochs": [asdict(h) for h in result.history],
    }
    (directory / HISTORY_NAME).write_text(json.dumps(history, indent=2) + "\n")
    figure = training_curves(result.history)
    figure.savefig(directory / CURVES_NAME, dpi=110, bbox_inches="tight")
    return result


def load_vectors(directory: Path) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(vectors, bias, movie_ids) of a finished run."""
    path = Path(directory) / VECTORS_NAME
    if not path.is_file():
        raise RecLibError(f"{path} is missing: train first (python -m rec_lib train) or check --run-dir")
    payload = torch.load(path, map_location="cpu", weights_only=False)
    return payload["vectors"], payload["bias"], payload["movie_ids"]


def evaluation_table(
    prep: Preprocessed,
    scorers: list,
    config: EvalConfig | None = None,
) -> pd.DataFrame:
    """Every scorer under both protocols on validation and test."""
    config = config or EvalConfig()
    return evaluate_all(scorers, build_queries(prep, config.history_len), prep.n_movies, config)


def baseline_scorers(prep: Preprocessed, ease_l2: float = EASE_L2) -> list:
    return [MostPopular(prep), ItemKNN(prep), EASE(prep, ease_l2)]


def pinsage_scorer(vectors: torch.Tensor, bias: torch.Tensor) -> EmbeddingScorer:
    return EmbeddingScorer("pinsage", vectors, bias)


def write_table(table: pd.DataFrame, path: Path, metadata: dict | None = None) -> Path:
    """The table as JSON records with optional metadata, written atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"metadata": metadata or {}, "rows": table.to_dict(orient="records")}, indent=2) + "\n")
    tmp.replace(path)
    return path
