"""PinSage's lead on the timeline table, beyond the users' noise or not: paired bootstrap intervals over users.

Every committed timeline result (PinSage's seeds, SASRec's seeds, the baselines) keeps each test user's hit and
NDCG gain under protocol B (:func:`per_user_columns`, in the evaluation's user order). :func:`timeline_intervals`
averages a model's seeds per user and bootstraps PinSage minus each other model on the same users.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from rec_lib.errors import RecLibError
from rec_lib.evaluation.bootstrap import RESAMPLES, paired_bootstrap
from rec_lib.evaluation.protocol import RankedTargets

HITS, GAINS = "test_hits_B", "test_gains_B"
METRICS = {"hr": HITS, "ndcg": GAINS}
"""Each metric's per-user column."""
PER_USER_COLUMNS = tuple(METRICS.values())


def per_user_columns(ranked: RankedTargets) -> dict[str, list]:
    """A row's per-user test hits and gains, small enough to commit (gains to 6 decimals)."""
    return {HITS: ranked.hits.int().tolist(), GAINS: [round(g, 6) for g in ranked.gains.tolist()]}


def timeline_models(tuning_dir: Path, dataset: str) -> dict[str, list[dict]]:
    """The rows with per-user results in ``tuning_dir``'s committed files for ``dataset``, by model: PinSage's
    defaults (``<dataset>.json``), SASRec (``-sasrec.json``), the baselines as tuned (``-baseline-grid.json``, the
    chosen setting) and with the fixed settings (``-baselines.json``)."""
    models: dict[str, list[dict]] = {}

    def rows(suffix: str) -> list[dict]:
        path = tuning_dir / f"{dataset}{suffix}.json"
        return json.loads(path.read_text())["rows"] if path.is_file() else []

    for row in rows(""):
        if row["name"] == "defaults" and row.get(HITS) is not None:
            models.setdefault("pinsage", []).append(row)
    for row in rows("-sasrec"):
        if row.get(HITS) is not None:
            models.setdefault("sasrec", []).append(row)
    for row in rows("-baseline-grid"):
        if row.get("chosen") and row.get(HITS) is not None:
            models.setdefault(f"{row['model']}, tuned", []).append(row)
    for row in rows("-baselines"):
        if row.get(HITS) is not None:
            models.setdefault(row["model"], []).append(row)
    return models


def seed_mean(rows: list[dict], column: str) -> np.ndarray:
    """Each user's ``column`` averaged over ``rows`` (a model's seeds)."""
    return np.mean([np.asarray(row[column], dtype=np.float64) for row in rows], axis=0)


def timeline_intervals(
    models: dict[str, list[dict]], model: str = "pinsage", *, resamples: int = RESAMPLES, seed: int = 0
) -> pd.DataFrame:
    """``model``'s test HR@K and NDCG@K (protocol B) minus every other model's, each user's value averaged over
    its seeds, with the paired bootstrap interval."""
    if model not in models:
        raise RecLibError(f"no per-user results for {model}: run its seeds first (bench/pinsage_ablation.py)")
    table = []
    for other, rows in models.items():
        if other == model:
            continue
        line = {"model": model, "against": other, "seeds": len(models[model]), "their_seeds": len(rows)}
        for metric, column in METRICS.items():
            ours, theirs = seed_mean(models[model], column), seed_mean(rows, column)
            if ours.shape != theirs.shape:
                raise RecLibError(
                    f"{model} and {other} were scored on different users ({ours.size} against {theirs.size}): "
                    "re-run them on the same preprocessed data"
                )
            difference = paired_bootstrap(ours, theirs, resamples=resamples, seed=seed)
            line |= {metric: difference.mean, f"{metric}_low": difference.low, f"{metric}_high": difference.high}
        table.append(line)
    return pd.DataFrame(table)
