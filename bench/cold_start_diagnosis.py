"""Where PinSage's cold-start ranking comes from: its score taken apart on the cold-start events.

    python bench/cold_start.py --data-dir ../shared/data --seeds 0 --save-models /tmp/cold-models ...
    python bench/cold_start_diagnosis.py --data-dir ../shared/data --models /tmp/cold-models \
        --out reports/coldstart/ml-latest-small-diagnosis.json
    python bench/cold_start_diagnosis.py --data-dir ../shared/data --popularity-windows 3

Every model saved by ``bench/cold_start.py --save-models`` (``<split>-slice<i>-seed<s>/best.pt``) is scored on
its own split with nothing revealed, and so are parts of its score, each ranking the new movies alone:

* ``product``: what evaluation and ``recommend()`` rank by, ``q_h · h_i + b_i + w · q_c · c_i``;
* ``pinsage term``: ``q_h · h_i + b_i`` alone (the content weight at 0);
* ``pinsage prior`` and ``pinsage personal``: that term's mean over the events for each new movie (what it says
  of a new movie whoever asks) and the rest (what depends on the user);
* ``content channel``: ``q_c · c_i`` alone under the model's query rule (hashed title words);
* ``content exact, model's rule``, ``content exact, fixed rule``: the exact content similarity
  (:class:`~rec_lib.evaluation.baselines.ContentSimilarity`) under the model's rule and under protocol B's fixed
  rule; the latter is the content baseline;
* ``genres, fixed rule``: the genre part of it alone.

Two rank correlations (Spearman) over the new movies say what the prior is: ``prior ~ genre popularity``, between
the prior and the mean training count of the warm movies sharing each genre of the new movie, and
``events ~ genre popularity``, between the events each new movie gets and that same genre popularity.

``--popularity-windows N`` needs no models: for cold-test and ``N`` cold-val slices it prints ``events ~ genre
popularity`` with the popularity counted over only the latest 100, 50, 20, 10, 5 and 2 % of the training ratings
(is the prior stale, or does genre popularity not track the new movies at all?).

So a gap between the product and the content baseline splits into what the query rule costs the content part,
what hashing costs, and what PinSage's own term adds or takes away. This is a diagnosis of a split already
evaluated; nothing here chooses a setting.
"""

from __future__ import annotations

import argparse
import math
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy.stats import spearmanr

from rec_lib.contracts import QueryRule
from rec_lib.data.preprocess import PreprocessConfig, run_preprocess
from rec_lib.evaluation.baselines import ContentSimilarity, _content_parts, _normalised_rows
from rec_lib.evaluation.coldstart import (
    COLD_SPLIT,
    COLD_VAL_SPLIT,
    ColdEvents,
    ColdStartSplit,
    cold_events,
    cold_start_split,
    cold_validation_slices,
)
from rec_lib.evaluation.config import EvalConfig
from rec_lib.evaluation.protocol import tie_aware_metrics
from rec_lib.experiments.coldstart import pinsage_scorer
from rec_lib.experiments.runs import write_table
from rec_lib.pinsage.checkpoint import CHECKPOINT_BEST, load_checkpoint
from rec_lib.pinsage.graph import build_graph

MODEL_DIR = re.compile(rf"(?P<split>{COLD_SPLIT}|{COLD_VAL_SPLIT})-slice(?P<slice>\d+)-seed(?P<seed>\d+)")


def saved_model_dir(out: Path, split: str, slice_index: int, seed: int) -> Path:
    """Where ``bench/cold_start.py --save-models`` keeps one training's checkpoints."""
    return out / f"{split}-slice{slice_index}-seed{seed}"


def pooled_scores(vectors: torch.Tensor, events: ColdEvents, rule: QueryRule, columns: torch.Tensor) -> torch.Tensor:
    """(events, new movies) inner products of each event's pooled history under ``rule`` with the new movies."""
    history = vectors[events.history].numpy() if rule.attends else None
    weights = torch.from_numpy(rule.masked_weights(events.history_mask.numpy(), history))
    query = (vectors[events.history] * weights.unsqueeze(-1)).sum(1)
    return query @ vectors[columns].T


def hit_rate(scores: torch.Tensor, events: ColdEvents, k: int) -> float:
    """HR@k of the new movies ranked by ``scores``, the user's earlier new movies masked, ties at their mean."""
    scores = scores.clone()
    scores[torch.from_numpy(events.seen_rows), torch.from_numpy(events.seen_cols)] = -math.inf
    return float(tie_aware_metrics(scores, events.target, k)[0].mean())


POPULARITY_WINDOWS = (1.0, 0.5, 0.2, 0.1, 0.05, 0.02)
"""Shares of the training ratings, the latest by time, that ``--popularity-windows`` counts genre popularity over."""


def genre_popularity(split: ColdStartSplit, genres: np.ndarray, latest: float = 1.0) -> np.ndarray:
    """Each new movie's genres' popularity: the mean training count of the warm movies of each of its genres,
    averaged over its genres (0 for a movie without genres), counting only the ``latest`` share of the training
    ratings by time."""
    train = split.warm.split("train")
    newest_first = np.argsort(-train["timestamp"].to_numpy(), kind="stable")[: math.ceil(latest * len(train))]
    counts = np.bincount(train["movie_idx"].to_numpy()[newest_first], minlength=split.prep.n_movies)
    counts = counts.astype(np.float64)
    trained = counts > 0
    per_genre = (genres[trained] * counts[trained, None]).sum(0) / np.maximum(genres[trained].sum(0), 1)
    new = genres[split.new_movies]
    return (new * per_genre).sum(1) / np.maximum(new.sum(1), 1)


def diagnose(
    checkpoint: Path, split: ColdStartSplit, content: dict[str, torch.Tensor], eval_config: EvalConfig
) -> dict[str, float]:
    """HR@K of the product's score and of each of its parts (see the module docstring) for one saved model."""
    graph = build_graph(split.warm)
    config, model = load_checkpoint(checkpoint, graph)
    model.eval()
    events = cold_events(split, eval_config.history_len)
    columns = torch.from_numpy(split.new_movies)
    rule = model.query_rule()
    fixed = QueryRule.decay(eval_config.history_len, eval_config.history_decay)
    model.content_weight = 0.0
    scorer = pinsage_scorer(model, replace(config, content_weight=0.0), split.revealed(0))
    pinsage = pooled_scores(scorer.vectors, events, rule, columns) + scorer.bias[columns]
    prior = pinsage.mean(0, keepdim=True).expand_as(pinsage)
    channel = pooled_scores(graph.features.content, events, rule, columns)
    parts = {
        "product": pinsage + config.content_weight * channel,
        "pinsage term": pinsage,
        "pinsage prior": prior,
        "pinsage personal": pinsage - prior,
        "content channel": channel,
        "content exact, model's rule": pooled_scores(content["exact"], events, rule, columns),
        "content exact, fixed rule": pooled_scores(content["exact"], events, fixed, columns),
        "genres, fixed rule": pooled_scores(content["genres"], events, fixed, columns),
    }
    k = min(eval_config.k, len(columns))
    popularity = genre_popularity(split, (content["genres"] > 0).numpy())
    per_movie_events = np.bincount(events.target.numpy(), minlength=len(columns))
    return {name: hit_rate(scores, events, k) for name, scores in parts.items()} | {
        "prior ~ genre popularity": float(spearmanr(prior[0].numpy(), popularity).statistic),
        "events ~ genre popularity": float(spearmanr(per_movie_events, popularity).statistic),
        "content_weight": config.content_weight,
        "events": events.n,
    }


def popularity_windows(splits: dict[str, ColdStartSplit], genres: np.ndarray, history_len: int) -> pd.DataFrame:
    """``events ~ genre popularity`` (Spearman) per split, the popularity counted over each of
    :data:`POPULARITY_WINDOWS`."""
    rows = {}
    for name, split in splits.items():
        per_movie_events = np.bincount(cold_events(split, history_len).target.numpy(), minlength=len(split.new_movies))
        rows[name] = {
            f"latest {latest:.0%}": spearmanr(per_movie_events, genre_popularity(split, genres, latest)).statistic
            for latest in POPULARITY_WINDOWS
        }
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", default="ml-latest-small")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--artefacts-dir", default=None)
    parser.add_argument("--models", type=Path, help="the --save-models dir of bench/cold_start.py")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--popularity-windows", type=int, metavar="N", help="print the windows table for cold-test "
                        "and N cold-val slices instead (no models needed)")  # fmt: skip
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    if args.popularity_windows is not None:
        prep = run_preprocess(PreprocessConfig(args.dataset), data_dir=args.data_dir, artefacts_dir=args.artefacts_dir)
        test = cold_start_split(prep)
        splits = {COLD_SPLIT: test} | {
            f"{COLD_VAL_SPLIT} slice {i}": split
            for i, split in enumerate(cold_validation_slices(test, args.popularity_windows))
        }
        genres = _content_parts(prep.movies)[0].toarray() > 0
        print("Spearman, events per new movie ~ genres' popularity over the latest share of the training ratings:")
        print(popularity_windows(splits, genres, EvalConfig().history_len).to_string(float_format="{:.2f}".format))
        return
    if args.models is None or args.out is None:
        parser.error("--models and --out are required (or --popularity-windows)")
    if not args.models.is_dir():
        parser.error(f"--models {args.models} is not a folder")
    found = [(m, d) for d in sorted(args.models.iterdir()) if (m := MODEL_DIR.fullmatch(d.name))]
    if not found:
        parser.error(f"no <split>-slice<i>-seed<s> model folders in {args.models}")
    prep = run_preprocess(PreprocessConfig(args.dataset), data_dir=args.data_dir, artefacts_dir=args.artefacts_dir)
    test = cold_start_split(prep)
    slices = cold_validation_slices(test, 1 + max(int(m["slice"]) for m, _ in found))
    genres = _content_parts(prep.movies)[0]
    content = {
        "exact": torch.from_numpy(ContentSimilarity(prep.movies).features.toarray()),
        "genres": torch.from_numpy(_normalised_rows(genres).toarray()),
    }
    rows = []
    for match, folder in found:
        split = test if match["split"] == COLD_SPLIT else slices[int(match["slice"])]
        row = diagnose(folder / CHECKPOINT_BEST, split, content, EvalConfig())
        rows.append({"split": match["split"], "slice": int(match["slice"]), "seed": int(match["seed"]), **row})
        print(folder.name, {name: round(value, 4) for name, value in row.items()}, flush=True)
    table = pd.DataFrame(rows)
    metadata = {
        "dataset": args.dataset,
        "revealed": 0,
        "note": "HR@10 of the product's score and of its parts on each model's own split, nothing revealed "
        "(bench/cold_start_diagnosis.py); a diagnosis, not a choice",
    }
    write_table(table, args.out, metadata)
    numeric = table.drop(columns=["seed", "content_weight", "events"]).groupby(["split", "slice"]).mean()
    print(numeric.T.to_string(float_format="{:.4f}".format))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
