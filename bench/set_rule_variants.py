"""Variants of the learned set rule's query over the liked-set folds' frozen PinSage vectors, scored as the
liked-set table scores the product's rule (Recall@10 of the held-out users' other liked movies for m shuffled
ticks), beside the tuned EASE and most-popular.

    python bench/set_rule_variants.py --data-dir ../shared/data --split val --folds 0 \
        --out reports/tuning/ml-latest-small-liked-set-variants-val.json
    python bench/set_rule_variants.py --data-dir ../shared/data --split test --folds 0 1 2 3 4 \
        --out reports/tuning/ml-latest-small-liked-set-variants-folds.json

Each fold's PinSage run (seed 0) is the one ``python -m rec_lib liked-set --folds ...`` trains: found in
``--artefacts-dir`` when it ran there, else trained. Every variant is fitted like the product's rule
(:func:`rec_lib.pinsage.set_rule.fit_set_rule_model`, same data, seed and stopping); only the query differs. The
validation file is where the product's choice between per-dimension weights and the full transform is read
(:func:`rec_lib.experiments.likedset.chosen_transform`); the low-rank variant is not served.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from rec_lib.data.preprocess import PreprocessConfig, run_preprocess
from rec_lib.evaluation.bootstrap import paired_bootstrap
from rec_lib.evaluation.config import TICK_DRAWS
from rec_lib.evaluation.likedset import QUERY_SIZES, LikedSetQueries, liked_set_queries, liked_set_split
from rec_lib.experiments.likedset import (
    DIAGONAL_VARIANT,
    TRANSFORM_VARIANT,
    chosen_liked_set_ease_l2,
    liked_set_baselines,
)
from rec_lib.experiments.runs import train_run
from rec_lib.files import write_json
from rec_lib.pinsage.config import TrainConfig
from rec_lib.pinsage.graph import build_graph
from rec_lib.pinsage.set_rule import SetRuleFitConfig, SetRuleModel, fit_set_rule_model, liked_lists

LOW_RANK = "per-dimension + rank 16"
VARIANTS = (DIAGONAL_VARIANT, TRANSFORM_VARIANT, LOW_RANK)


class LowRankTransform(SetRuleModel):
    """Per-dimension weights plus a rank-``rank`` transform (from zero): ``w ⊙ p + (p A) Bᵀ``."""

    def __init__(self, dim: int, config: SetRuleFitConfig, rank: int = 16) -> None:
        super().__init__(dim, config)
        self.into = torch.nn.Parameter(torch.randn(dim, rank) / dim**0.5)
        self.out = torch.nn.Parameter(torch.zeros(dim, rank))

    def mix(self, pooled: torch.Tensor) -> torch.Tensor:
        return super().mix(pooled) + (pooled @ self.into) @ self.out.T


def variant_model(name: str, dim: int, fit: SetRuleFitConfig) -> SetRuleModel:
    """The unfitted query of variant ``name``: the learned rule's two (the product's choice between them is
    :func:`rec_lib.experiments.likedset.chosen_transform`), or the low-rank one."""
    if name == LOW_RANK:
        return LowRankTransform(dim, fit)
    return SetRuleModel(dim, replace(fit, transform=name == TRANSFORM_VARIANT))


@torch.no_grad()
def recall_at_k(model: SetRuleModel, stored: torch.Tensor, queries: LikedSetQueries, k: int) -> np.ndarray:
    """Each user's Recall@K (the mean over their draws): the fitted query's top ``k`` (ticks masked) against their
    other liked movies."""
    ticks = queries.ticks
    scores = model.queries(stored[ticks], torch.ones(ticks.shape)) @ stored.T
    top = scores.scatter(1, ticks, float("-inf")).topk(k, 1).indices
    targets = torch.zeros_like(scores, dtype=torch.bool)
    targets[queries.target_rows, queries.target_cols] = True
    return queries.user_means((targets.gather(1, top).sum(1) / targets.sum(1).clamp(max=k)).numpy())


def fold_recalls(prep, fold: int, which: str, args: argparse.Namespace) -> dict[tuple[str, int], np.ndarray]:
    """Per (entry, m): each held-out user's Recall@10 under every variant and the baselines, on one fold."""
    split = liked_set_split(prep, fold=fold)
    config = TrainConfig(dataset=args.dataset)
    run = train_run(split.train, build_graph(split.train), config, artefacts_dir=args.artefacts_dir, latest=False)
    stored = torch.cat([run.test_vectors.float(), run.bias.float()[:, None]], 1)
    liked = liked_lists(split.train)
    fit = SetRuleFitConfig(seed=config.seed)
    queries = {m: liked_set_queries(split, which, m, draws=args.draws) for m in QUERY_SIZES}
    recalls = {}
    for name in args.variants:
        model = variant_model(name, stored.shape[1] - 1, fit)
        model = fit_set_rule_model(model, run.test_vectors, run.bias, liked, fit)
        recalls |= {(name, m): recall_at_k(model, stored, q, config.eval.k) for m, q in queries.items()}
    _, baselines = liked_set_baselines(split, which=which, ease_l2=args.ease_l2, config=config.eval, draws=args.draws)
    recalls |= {(name, m): s.recall for (name, m), s in baselines.items() if name in ("ease", "most-popular")}
    return recalls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="ml-latest-small")
    parser.add_argument("--data-dir")
    parser.add_argument("--artefacts-dir")
    parser.add_argument("--split", choices=("val", "test"), default="val")
    parser.add_argument("--folds", type=int, nargs="+", default=[0])
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--draws", type=int, default=TICK_DRAWS, help="draws of each user's ticks per query size")
    parser.add_argument("--ease-l2", type=float, help="EASE's λ (default: the one the liked-set validation chose)")
    parser.add_argument("--out", help="JSON file for the rows")
    args = parser.parse_args()
    args.ease_l2 = args.ease_l2 or chosen_liked_set_ease_l2(args.dataset)
    torch.set_num_threads(1)
    prep = run_preprocess(PreprocessConfig(args.dataset), data_dir=args.data_dir, artefacts_dir=args.artefacts_dir)
    per_fold = [fold_recalls(prep, fold, args.split, args) for fold in args.folds]
    rows = []
    for name, m in per_fold[0]:
        recall = np.concatenate([fold[name, m] for fold in per_fold])
        row = {"model": name, "m": m, "users": len(recall), "recall": float(recall.mean())}
        for against in (DIAGONAL_VARIANT, "ease"):
            if against in (*args.variants, "ease") and against != name:
                gap = paired_bootstrap(recall, np.concatenate([fold[against, m] for fold in per_fold]))
                row[f"minus {against}"] = f"{gap.mean:+.3f} [{gap.low:+.3f}, {gap.high:+.3f}]"
        rows.append(row)
    for row in sorted(rows, key=lambda r: r["m"]):
        print("  ".join(f"{key} {value:.4f}" if isinstance(value, float) else f"{key} {value}" for key, value in
                        row.items()))  # fmt: skip
    if args.out:
        meta = {"dataset": args.dataset, "split": args.split, "folds": args.folds, "ease_l2": args.ease_l2}
        meta["draws"] = args.draws
        write_json(Path(args.out), {"metadata": meta, "rows": rows})


if __name__ == "__main__":
    main()
