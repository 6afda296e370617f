"""Cold-start runs of PinSage: the trained model's vectors on each revealed graph, scored beside the baselines
under the cold-start protocol (:mod:`rec_lib.evaluation.coldstart`), and their summary over seeds."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from rec_lib.config import resolve_reports_dir
from rec_lib.data.preprocess import Preprocessed
from rec_lib.errors import ConfigError
from rec_lib.evaluation.baselines import EASE, ContentSimilarity, ItemKNN, PopularNew
from rec_lib.evaluation.coldstart import COLD_SPLIT, REVEALED, ColdStartSplit, cold_events, evaluate_cold
from rec_lib.evaluation.config import EASE_L2
from rec_lib.evaluation.protocol import EmbeddingScorer
from rec_lib.pinsage.config import TrainConfig
from rec_lib.pinsage.graph import FULL_GRAPH, build_graph
from rec_lib.pinsage.inference import seeded_vectors
from rec_lib.pinsage.model import PinSageModel
from rec_lib.progress import progress as progress_bar


def pinsage_scorer(model: PinSageModel, config: TrainConfig, revealed: Preprocessed) -> EmbeddingScorer:
    """The trained model's vectors on the revealed graph (new movies read the unseen id); no retraining."""
    graph = build_graph(revealed, FULL_GRAPH, model.projector.vocab)
    vectors = seeded_vectors(model, config, graph, next(model.parameters()).device)
    return EmbeddingScorer("pinsage", vectors, model.biases(), model.query_rule())


def baseline_cold_scorers(split: ColdStartSplit, revealed: Preprocessed, k: int, ease_l2: float = EASE_L2) -> list:
    """Content similarity, popularity among the new movies (revealed, live), item-kNN and EASE on the revealed
    graph of ``k`` interactions per new movie."""
    scorers = [ContentSimilarity(split.prep.movies), PopularNew(split, k), PopularNew(split, None), ItemKNN(revealed)]
    try:
        scorers.append(EASE(revealed, ease_l2))
    except ConfigError as refused:
        warnings.warn(f"EASE left out of the cold-start evaluation: {refused}", stacklevel=2)
    return scorers


def cold_start_rows(
    split: ColdStartSplit,
    model: PinSageModel | None,
    config: TrainConfig,
    *,
    revealed: Iterable[int] = REVEALED,
    baselines: bool = True,
    progress: bool = True,
) -> pd.DataFrame:
    """One row per (model, revealed k) on ``split.name``: HR and NDCG at K, coverage, users and events."""
    rows = []
    eval_config = config.eval
    events = cold_events(split, eval_config.history_len)
    for k in progress_bar(list(revealed), progress, desc="cold start", unit="k"):
        if k > split.events_after:
            raise ConfigError(f"revealed={k}: the split's events start after {split.events_after} interactions")
        graph_data = split.revealed(k)
        scorers: list = [pinsage_scorer(model, config, graph_data)] if model is not None else []
        if baselines:
            scorers += baseline_cold_scorers(split, graph_data, k)
        for scorer in scorers:
            metrics = evaluate_cold(scorer, events, split.new_movies, eval_config)
            rows.append(
                {
                    "model": scorer.name,
                    "protocol": "B",
                    "split": split.name,
                    "k": eval_config.k,
                    "revealed": k,
                    "hr": metrics.hr,
                    "ndcg": metrics.ndcg,
                    "coverage": metrics.coverage,
                    "users": metrics.users,
                    "events": metrics.events,
                }
            )
    return pd.DataFrame(rows)


def summarise_cold(rows: pd.DataFrame, split: str = COLD_SPLIT, by: Iterable[str] = ()) -> pd.DataFrame:
    """HR@K per model and revealed ``k`` (and ``by`` columns) on ``split`` over seeds: mean, sd (0 for the
    deterministic baselines) and runs.

    >>> rows = pd.DataFrame({"model": ["pinsage", "pinsage", "content"], "revealed": [0, 0, 0], "hr": [0.2, 0.3, 0.1]})
    >>> summarise_cold(rows).round(3).to_dict(orient="records")[0]
    {'model': 'pinsage', 'revealed': 0, 'hr_mean': 0.25, 'hr_sd': 0.071, 'runs': 2}
    """
    cold = rows[rows["split"] == split] if "split" in rows else rows
    return (
        cold.groupby(["model", *by, "revealed"], sort=False, dropna=False)["hr"]
        .agg(hr_mean="mean", hr_sd="std", runs="size")
        .reset_index()
        .fillna({"hr_sd": 0.0})
    )


def reference_rows(dataset: str, reports_dir: str | Path | None = None) -> pd.DataFrame | None:
    """The committed multi-seed cold-start rows of ``dataset`` (``bench/cold_start.py`` writes them to
    ``<reports>/coldstart/<dataset>.json``), or None when there are none."""
    path = resolve_reports_dir(reports_dir) / "coldstart" / f"{dataset}.json"
    if not path.is_file():
        return None
    return pd.DataFrame(json.loads(path.read_text())["rows"])
