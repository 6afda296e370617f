"""The liked-set table: PinSage trained without the held-out users, scored on their shuffled ticks beside the
baselines (:mod:`rec_lib.evaluation.likedset`), with paired intervals of PinSage's lead."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from rec_lib.evaluation.bootstrap import paired_bootstrap
from rec_lib.evaluation.config import EASE_L2
from rec_lib.evaluation.likedset import QUERY_SIZES, LikedSetScores, LikedSetSplit, liked_set_rows
from rec_lib.experiments.runs import baseline_scorers, train_run
from rec_lib.pinsage.config import TrainConfig
from rec_lib.pinsage.graph import build_graph

PRODUCT_RULE = "pinsage (the picker's rule)"
EQUAL_WEIGHTS = "pinsage, equal weights"


def liked_set_experiment(
    split: LikedSetSplit,
    config: TrainConfig,
    *,
    which: str = "test",
    sizes: tuple[int, ...] = QUERY_SIZES,
    ease_l2: float = EASE_L2,
    artefacts_dir: str | Path | None = None,
) -> tuple[pd.DataFrame, dict[tuple[str, int], LikedSetScores]]:
    """Train PinSage on ``split.train`` (a run of its own, not the latest) and score the held-out users of
    ``which``: PinSage with the rule the picker uses and with equal weights, and the baselines with equal weights."""
    result = train_run(split.train, build_graph(split.train), config, artefacts_dir=artefacts_dir, latest=False)
    pinsage = result.scorer()
    entries = [(PRODUCT_RULE, pinsage, pinsage.query_rule), (EQUAL_WEIGHTS, pinsage, None)]
    entries += [(scorer.name, scorer, None) for scorer in baseline_scorers(split.train, ease_l2)]
    return liked_set_rows(entries, split, which, sizes, config.eval)


def lead_intervals(
    per_user: dict[tuple[str, int], LikedSetScores], model: str, *, resamples: int = 2000, seed: int = 0
) -> pd.DataFrame:
    """The paired bootstrap interval of ``model``'s Recall@K and NDCG@K minus every other entry's, per query size."""
    rows = []
    for (name, m), scores in per_user.items():
        if name == model:
            continue
        ours = per_user[model, m]
        for metric in ("recall", "ndcg"):
            difference = paired_bootstrap(
                getattr(ours, metric), getattr(scores, metric), resamples=resamples, seed=seed
            )
            rows.append(
                {
                    "model": model,
                    "against": name,
                    "m": m,
                    "metric": metric,
                    "difference": difference.mean,
                    "low": difference.low,
                    "high": difference.high,
                }
            )
    return pd.DataFrame(rows)
