"""The ablation search for PinSage: each switch of the defaults, judged on validation only.

Every entry of :data:`ABLATIONS` changes the default :class:`~rec_lib.pinsage.config.TrainConfig` in one
way; each is trained over several seeds and scored on validation *and* test under both protocols, so
the table shows the spread. Settings are chosen on validation HR@K / NDCG@K (protocol B); the test
columns are reported, never used to choose.

The reference results live in ``reports/tuning/<dataset>.json`` (committed), so notebook 02 shows them
without re-running; :func:`run_search` re-runs the search in-process and rewrites that file, and
``bench/pinsage_ablation.py`` runs the same rows in parallel processes (on a GPU machine).
"""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, replace
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from rec_lib.config import resolve_reports_dir
from rec_lib.data.preprocess import Preprocessed
from rec_lib.evaluation.baselines import EASE, ItemKNN, item_cooccurrence, knn_is_dense, training_matrix
from rec_lib.evaluation.config import EvalConfig
from rec_lib.evaluation.protocol import build_queries, evaluate, per_user_ranks
from rec_lib.experiments.intervals import per_user_columns
from rec_lib.files import write_json
from rec_lib.pinsage.config import TrainConfig
from rec_lib.pinsage.graph import TEST_TIME_GRAPH, UserMovieGraph, build_graph

EARLIER_DEFAULTS = "the earlier defaults: one target a draw, 256 examples a batch, patience 4"
"""The defaults until 2026-12-06, kept as an ablation row so every table shows what the change bought."""

ABLATIONS: dict[str, dict] = {
    "defaults": {},
    "no content channel": {"content_weight": 0.0},
    "max-margin loss": {"loss": "margin"},
    "no logQ correction": {"logq_correction": False},
    "fixed recency weights (0.9^age)": {"query_pooling": "fixed"},
    "query encoder: the latest movie attends over the history": {"query_encoder": "attention"},
    "target drawn from the next 3 movies": {"target_window": 3},
    "one target a draw, 256 examples a batch": {"consecutive_targets": 1, "batch_size": 256},
    "the earlier budget: patience 4": {"patience": 4, "num_epochs": 32},
    EARLIER_DEFAULTS: {"consecutive_targets": 1, "batch_size": 256, "patience": 4, "num_epochs": 32},
    "no per-movie bias": {"use_bias": False},
    "id dropout 0.1, the dropped movie loses its neighbourhood": {"id_dropout": 0.1},
    "id dropout 0.1 keeps the neighbourhood": {"id_dropout": 0.1, "drop_neighbourhood": False},
    "previous recipe: movie pairs, max-margin": {"objective": "pairs", "loss": "margin", "query_pooling": "fixed"},
}
"""Name → change from the defaults; ``"defaults"`` is the defaults themselves."""


def ablation_row(
    prep: Preprocessed, graph: UserMovieGraph, base: TrainConfig, name: str, change: dict, seed: int, queries=None
) -> dict:
    """Train one ablation for one seed; its validation and test metrics under both protocols."""
    from rec_lib.pinsage.train import train

    config = replace(base, **change, seed=seed)
    queries = queries or build_queries(prep, config.history_len)
    result = train(
        prep, graph, config, queries=queries, test_graph=build_graph(prep, TEST_TIME_GRAPH, graph.features.vocab)
    )
    row = {"name": name, "change": change, "seed": seed, "best_epoch": result.best_epoch + 1}
    row["device"] = str(config.resolved_device())
    scorer = result.scorer()
    for protocol in ("A", "B"):
        for split, metrics in evaluate(scorer, queries, protocol, prep.n_movies, config.eval).items():
            for metric in ("hr", "ndcg", "coverage", "popularity"):
                row[f"{split}_{metric}_{protocol}"] = getattr(metrics, metric)
    row |= per_user_columns(per_user_ranks(scorer, queries, "B", prep.n_movies, config.eval))
    row["batches_per_s"] = sum(h.batches_per_s for h in result.history) / len(result.history)
    row["val_hr_by_epoch"] = [h.val_hr for h in result.history]
    return row


def run_search(
    prep: Preprocessed,
    graph: UserMovieGraph,
    base: TrainConfig,
    *,
    ablations: dict[str, dict] | None = None,
    seeds: tuple[int, ...] = (0,),
    save_to: Path | None = None,
) -> pd.DataFrame:
    """Train every ablation of ``base`` for every seed, write the rows, and return :func:`summarise` of them."""
    ablations = ABLATIONS if ablations is None else ablations
    queries = build_queries(prep, base.history_len)
    jobs = [(name, change, seed) for name, change in ablations.items() for seed in seeds]
    rows = [ablation_row(prep, graph, base, *job, queries=queries) for job in tqdm(jobs, desc="ablations")]
    write_search(rows, base, save_to or tuning_dir() / f"{base.dataset}.json")
    return summarise(rows)


def tuning_dir(reports_dir: str | Path | None = None) -> Path:
    """Where the committed search results live: ``<reports>/tuning/``."""
    return resolve_reports_dir(reports_dir) / "tuning"


def write_search(rows: list[dict], base: TrainConfig, path: Path) -> Path:
    return write_json(path, {"base": asdict(base), "rows": rows})


def summarise(rows: list[dict]) -> pd.DataFrame:
    """One line per ablation: mean ± sd over seeds of validation (choice) and test (report) metrics."""
    table = []
    for name, group in pd.DataFrame(rows).groupby("name", sort=False):
        line = {"ablation": name, "seeds": len(group)}
        for column in ("val_hr_B", "val_ndcg_B", "test_hr_B", "test_ndcg_B", "test_coverage_B", "test_popularity_B"):
            values = group[column].tolist()
            line[column] = statistics.mean(values)
            line[f"{column}_sd"] = statistics.stdev(values) if len(values) > 1 else 0.0
        table.append(line)
    return pd.DataFrame(table)


def load_search(dataset: str, directory: Path | None = None) -> pd.DataFrame:
    """The committed search results for ``dataset`` (in ``directory``, default :func:`tuning_dir`), summarised (an
    empty table when there are none)."""
    path = (directory or tuning_dir()) / f"{dataset}.json"
    if not path.is_file():
        return pd.DataFrame()
    return summarise(json.loads(path.read_text())["rows"])


BASELINE_L2 = (30.0, 100.0, 300.0, 1000.0, 3000.0, 10000.0, 30000.0, 100000.0, 300000.0)
"""EASE's regularisation grid, wide enough that the chosen λ lies inside it on ml-latest-small (1,000) and on ml-1m's
shape (30,000)."""
BASELINE_DECAYS = (0.5, 0.7, 0.9, 1.0)
"""The baselines' recency-decay grid (the weight of a history movie is ``decay ** age``; 1.0 weighs the latest
``history_len`` alike)."""


def tune_baselines(
    prep: Preprocessed,
    config: EvalConfig,
    *,
    l2s: tuple[float, ...] = BASELINE_L2,
    decays: tuple[float, ...] = BASELINE_DECAYS,
) -> pd.DataFrame:
    """Item-kNN over ``decays`` and EASE over ``l2s`` × ``decays``, every setting scored on validation and test
    under protocol B; ``chosen`` marks each model's best validation HR@K (the test columns are reported, never used
    to choose)."""
    queries = build_queries(prep, config.history_len)
    shared = item_cooccurrence(training_matrix(prep)) if knn_is_dense(prep.n_movies) else None
    knn = ItemKNN(prep, cooccurrence=shared)
    candidates = [(knn, {"decay": decay}) for decay in decays]
    for l2 in tqdm(l2s, desc="EASE", unit="λ"):
        ease = EASE(prep, l2, cooccurrence=shared)
        candidates += [(ease, {"l2": l2, "decay": decay}) for decay in decays]
    rows = []
    for scorer, setting in candidates:
        scored = evaluate(scorer, queries, "B", prep.n_movies, replace(config, history_decay=setting["decay"]))
        row = {"model": scorer.name, **setting}
        for split, metrics in scored.items():
            row |= {f"{split}_hr_B": metrics.hr, f"{split}_ndcg_B": metrics.ndcg}
        decayed = replace(config, history_decay=setting["decay"])
        rows.append(row | per_user_columns(per_user_ranks(scorer, queries, "B", prep.n_movies, decayed)))
    table = pd.DataFrame(rows)
    best = table.groupby("model", sort=False)["val_hr_B"].idxmax()
    return table.assign(chosen=table.index.isin(best))
