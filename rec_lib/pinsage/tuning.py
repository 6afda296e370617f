"""A small hyper-parameter search for PinSage, judged on validation HR@K under protocol B.

The committed results live in ``reports/tuning/<dataset>.json`` so notebook 02 can show them
without re-running the search; :func:`run_search` re-runs it and rewrites that file.
"""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

import pandas as pd

from rec_lib.config import PROJECT_ROOT
from rec_lib.data.preprocess import Preprocessed
from rec_lib.pinsage.config import TrainConfig
from rec_lib.pinsage.graph import UserMovieGraph
from rec_lib.pinsage.train import train

TUNING_DIR = PROJECT_ROOT / "reports" / "tuning"

SEARCH_GRID: tuple[dict, ...] = (
    {"positive_sampling": "walk", "shared_negatives": False},
    {"shared_negatives": False},
    {},
    {"positive_window": 3},
    {"lr": 3e-3},
    {"hidden_dims": 64},
    {"num_neighbors": 10, "num_random_walks": 50},
    {"hard_negative_ratio": 0.2},
)
"""Each entry changes the base config; the first is DGL's recipe, ``{}`` is the base itself."""


def run_search(
    prep: Preprocessed,
    graph: UserMovieGraph,
    base: TrainConfig,
    *,
    grid: tuple[dict, ...] = SEARCH_GRID,
    save_to: Path | None = None,
) -> pd.DataFrame:
    """Train every variant of ``base`` in ``grid`` and tabulate their best validation HR@K."""
    rows = []
    for change in grid:
        config = replace(base, **change)
        result = train(prep, graph, config)
        label = ", ".join(f"{k}={v}" for k, v in change.items()) or "base (the defaults)"
        rows.append(
            {
                "change": label,
                "best_val_hr": result.best_val_hr,
                "best_epoch": result.best_epoch + 1,
                "batches_per_s": sum(h.batches_per_s for h in result.history) / len(result.history),
            }
        )
    table = pd.DataFrame(rows)
    target = save_to or TUNING_DIR / f"{base.dataset}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps({"base": asdict(base), "rows": rows}, indent=2) + "\n")
    return table


def load_search(dataset: str, directory: Path = TUNING_DIR) -> pd.DataFrame:
    """The committed search results for ``dataset`` (an empty table when there are none)."""
    path = directory / f"{dataset}.json"
    if not path.is_file():
        return pd.DataFrame()
    return pd.DataFrame(json.loads(path.read_text())["rows"])
