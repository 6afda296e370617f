"""The liked-set table: PinSage trained without the held-out users, scored on their shuffled ticks beside the
baselines (:mod:`rec_lib.evaluation.likedset`), with paired intervals of PinSage's lead; and the set rule, chosen on
the validation half: the fixed rule's ``prior_ticks``, whether the learned rule (:mod:`rec_lib.pinsage.set_rule`)
replaces it, and whether the learned rule's full transform replaces its per-dimension weights."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from rec_lib.contracts import SET_PRIOR_TICKS, SetRule
from rec_lib.errors import RecLibError
from rec_lib.evaluation.baselines import EASE, item_cooccurrence, training_matrix
from rec_lib.evaluation.bootstrap import paired_bootstrap
from rec_lib.evaluation.config import EASE_L2, EvalConfig
from rec_lib.evaluation.likedset import (
    PLAIN_MEAN,
    QUERY_SIZES,
    TICK_DRAWS,
    LikedSetScores,
    LikedSetSplit,
    MultiInterest,
    liked_set_rows,
)
from rec_lib.experiments.runs import baseline_scorers, train_run
from rec_lib.experiments.tuning import BASELINE_L2, tuning_dir
from rec_lib.pinsage.config import TrainConfig
from rec_lib.pinsage.graph import build_graph
from rec_lib.pinsage.set_rule import SetRuleFitConfig, fit_set_rule, liked_lists

PRODUCT_RULE = "pinsage (the product's set rule)"
TIMELINE_RULE = "pinsage, timeline rule on shuffled ticks"
LEARNED_RULE = "pinsage, learned set rule"
PRIOR_TICKS_GRID = (0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)
"""The set rule's ``prior_ticks`` tried on the validation users."""
MULTI_INTEREST = "pinsage, learned set rule, multi-interest (3 groups, best group's score)"
LEARNED_ABLATIONS = {
    "pinsage, learned set rule without per-dimension weights": {"dim_weights": False},
    "pinsage, learned set rule without the prior direction": {"prior_vector": False},
    "pinsage, learned set rule: gain, prior and bias weight only": {"dim_weights": False, "prior_vector": False},
}
"""The learned rule with parts switched off, scored on the validation users."""
DIAGONAL_VARIANT = "per-dimension weights"
TRANSFORM_VARIANT = "full transform"
"""The learned rule's variants (``bench/set_rule_variants.py``) that :func:`chosen_transform` chooses between."""


@dataclass(frozen=True)
class SetRuleChoice:
    """What a dataset's liked-set validation chose: the fixed rule's ``prior_ticks``, whether the learned rule
    (fitted to each model's vectors) replaces it, and whether that one has a full transform."""

    learned: bool = False
    prior_ticks: float = SET_PRIOR_TICKS
    transform: bool = False

    @property
    def fixed_rule(self) -> SetRule:
        return SetRule(self.prior_ticks)

    def fit_config(self, seed: int) -> SetRuleFitConfig:
        """How the learned rule is fitted for a model trained with ``seed``."""
        return SetRuleFitConfig(seed=seed, transform=self.transform)


def liked_set_experiment(
    split: LikedSetSplit,
    config: TrainConfig,
    *,
    which: str = "test",
    choice: SetRuleChoice | None = None,
    sizes: tuple[int, ...] = QUERY_SIZES,
    artefacts_dir: str | Path | None = None,
    draws: int = TICK_DRAWS,
) -> tuple[pd.DataFrame, dict[tuple[str, int], LikedSetScores]]:
    """Train PinSage on ``split.train`` (a run of its own, not the latest), fit the learned set rule to its
    training users' liked movies, and score the held-out users of ``which`` (their ticks drawn ``draws`` times):
    PinSage with the rule of ``choice`` (default the fixed product rule) as the product's, and for comparison the
    learned and the fixed rule beside it, the plain mean (no prior), and its timeline rule reading the shuffled
    ticks as a history. On ``val`` also every fixed rule of :data:`PRIOR_TICKS_GRID`, the learned rule's ablations
    and multi-interest retrieval over it, for :func:`chosen_prior_ticks` and :func:`chosen_set_rule_is_learned`."""
    choice = choice or SetRuleChoice()
    result = train_run(split.train, build_graph(split.train), config, artefacts_dir=artefacts_dir, latest=False)
    pinsage = result.scorer()
    liked = liked_lists(split.train)
    fit = choice.fit_config(config.seed)
    learned = fit_set_rule(result.test_vectors, result.bias, liked, fit)
    product = learned if choice.learned else choice.fixed_rule
    entries = [(PRODUCT_RULE, pinsage, product), (TIMELINE_RULE, pinsage, pinsage.query_rule)]
    entries += [(LEARNED_RULE, pinsage, learned)] if which == "val" or not choice.learned else []
    priors = {0.0, SET_PRIOR_TICKS, choice.prior_ticks} - ({choice.prior_ticks} if not choice.learned else set())
    priors = PRIOR_TICKS_GRID if which == "val" else tuple(sorted(priors))
    entries += [(set_rule_name(prior), pinsage, SetRule(prior)) for prior in priors]
    if which == "val":
        diagonal = replace(fit, transform=False)
        entries += [
            (name, pinsage, fit_set_rule(result.test_vectors, result.bias, liked, replace(diagonal, **parts)))
            for name, parts in LEARNED_ABLATIONS.items()
        ]
        if choice.transform:
            learned = fit_set_rule(result.test_vectors, result.bias, liked, diagonal)
        entries += [(MULTI_INTEREST, pinsage, MultiInterest(learned.rule))]
    return liked_set_rows(entries, split, which, sizes, config.eval, draws=draws)


def liked_set_baselines(
    split: LikedSetSplit,
    *,
    which: str = "test",
    sizes: tuple[int, ...] = QUERY_SIZES,
    ease_l2: float = EASE_L2,
    config: EvalConfig | None = None,
    draws: int = TICK_DRAWS,
) -> tuple[pd.DataFrame, dict[tuple[str, int], LikedSetScores]]:
    """The baselines on the held-out users of ``which`` (their ticks drawn ``draws`` times), once (they are
    deterministic): each with the plain mean, EASE with ``ease_l2``; on ``val`` also EASE with every λ of the
    baselines' grid, for :func:`chosen_ease_l2`."""
    baselines = baseline_scorers(split.train, ease_l2)
    entries = [(s.name, s, PLAIN_MEAN) for s in baselines]
    rows, per_user = liked_set_rows(entries, split, which, sizes, config, draws=draws)
    if which == "val" and any(isinstance(scorer, EASE) for scorer in baselines):
        shared = item_cooccurrence(training_matrix(split.train))
        for l2 in BASELINE_L2:  # one solve held at a time
            ease = EASE(split.train, l2, cooccurrence=shared)
            grid_rows, grid_users = liked_set_rows(
                [(ease_name(l2), ease, PLAIN_MEAN)], split, which, sizes, config, draws=draws
            )
            rows, per_user = pd.concat([rows, grid_rows], ignore_index=True), per_user | grid_users
    return rows, per_user


def ease_name(l2: float) -> str:
    return f"ease, λ {l2:g}"


def chosen_ease_l2(per_user: dict[tuple[str, int], LikedSetScores]) -> float:
    """EASE's λ of the baselines' grid with the best Recall@K over every validation user and query size (a tie goes
    to the smaller λ)."""
    sizes = sorted({m for name, m in per_user if name == ease_name(BASELINE_L2[0])})
    return max(
        BASELINE_L2, key=lambda l2: (np.concatenate([per_user[ease_name(l2), m].recall for m in sizes]).mean(), -l2)
    )


def chosen_set_rule(dataset: str, directory: Path | None = None) -> SetRuleChoice:
    """The set rule the liked-set validation of ``dataset`` chose (``<dataset>-liked-set-val.json`` in
    ``directory``, default the committed tuning results; the transform by :func:`chosen_transform`), else the fixed
    product rule when none was run."""
    directory = directory or tuning_dir()
    path = directory / f"{dataset}-liked-set{LIKED_SET_FILES['val']}.json"
    if not path.is_file():
        return SetRuleChoice()
    try:
        metadata = json.loads(path.read_text())["metadata"]
        learned, prior_ticks = bool(metadata.get("chosen_learned_rule", False)), float(metadata["chosen_prior_ticks"])
    except (ValueError, KeyError, TypeError) as exc:
        raise RecLibError(f"{path} holds no chosen_prior_ticks: run python -m rec_lib liked-set --split val") from exc
    return SetRuleChoice(learned, prior_ticks, learned and chosen_transform(dataset, directory))


def chosen_liked_set_ease_l2(dataset: str, directory: Path | None = None) -> float:
    """EASE's λ the liked-set validation of ``dataset`` chose (``<dataset>-liked-set-val.json`` in ``directory``,
    default the committed tuning results)."""
    path = (directory or tuning_dir()) / f"{dataset}-liked-set{LIKED_SET_FILES['val']}.json"
    try:
        return float(json.loads(path.read_text())["metadata"]["chosen_ease_l2"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RecLibError(f"{path} holds no chosen_ease_l2: run python -m rec_lib liked-set --split val") from exc


def chosen_transform(dataset: str, directory: Path | None = None) -> bool:
    """Whether the learned rule's variants on the validation users (``<dataset>-liked-set-variants-val.json``,
    ``bench/set_rule_variants.py``) chose the full transform: its Recall@K over every validation user and query size
    beats the per-dimension weights' (a tie, or no such file, keeps the weights)."""
    path = (directory or tuning_dir()) / f"{dataset}-liked-set{LIKED_SET_FILES['variants-val']}.json"
    if not path.is_file():
        return False
    try:
        rows = pd.DataFrame(json.loads(path.read_text())["rows"])
        rows = rows[rows["model"].isin([TRANSFORM_VARIANT, DIAGONAL_VARIANT])]
        pooled = (rows["recall"] * rows["users"]).groupby(rows["model"]).sum() / rows.groupby("model")["users"].sum()
        return bool(pooled[TRANSFORM_VARIANT] > pooled[DIAGONAL_VARIANT])
    except (ValueError, KeyError, TypeError) as exc:
        raise RecLibError(f"{path} holds no rows of {TRANSFORM_VARIANT!r} and {DIAGONAL_VARIANT!r}") from exc


def chosen_set_rule_is_learned(per_user: dict[tuple[str, int], LikedSetScores], prior_ticks: float) -> bool:
    """Whether the learned rule's Recall@K over every validation user and query size beats the fixed rule's with
    ``prior_ticks`` (a tie keeps the fixed rule)."""
    sizes = sorted({m for name, m in per_user if name == LEARNED_RULE})

    def recall(name: str) -> float:
        return float(np.concatenate([per_user[name, m].recall for m in sizes]).mean())

    return recall(LEARNED_RULE) > recall(set_rule_name(prior_ticks))


LIKED_SET_FILES = {
    "val": "-val",
    "test": "",
    "folds": "-folds",
    "variants-val": "-variants-val",
    "variants-test": "-variants-test",
    "variants-folds": "-variants-folds",
}
"""The suffix of each liked-set table's file: the val users, fold 0's test users, every fold's test users, and the
set rule's variants (``bench/set_rule_variants.py``) on each of those."""


def load_liked_set(dataset: str, which: str = "val", directory: Path | None = None) -> pd.DataFrame:
    """The committed liked-set table of ``dataset`` on ``which`` users (a key of :data:`LIKED_SET_FILES`; in
    ``directory``, default the tuning results): Recall@K per entry and query size, PinSage's rows the mean over
    their seeds, over several folds every fold's users at once (an empty table when none was run)."""
    path = (directory or tuning_dir()) / f"{dataset}-liked-set{LIKED_SET_FILES[which]}.json"
    if not path.is_file():
        return pd.DataFrame()
    return recall_table(pd.DataFrame(json.loads(path.read_text())["rows"]))


def recall_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Recall@K per entry (rows) and query size (columns) of a liked-set run's rows: the mean over seeds, and over
    several folds the row of every fold's users (intervals and per-fold rows, which carry a ``kind``, left out)."""
    rows = rows[rows.get("kind", pd.Series(index=rows.index, dtype=object)).isna()]
    return rows.pivot_table(index="model", columns="m", values="recall", aggfunc="mean", sort=False)


def set_rule_name(prior_ticks: float) -> str:
    return f"pinsage, set rule with prior_ticks {prior_ticks:g}"


def chosen_prior_ticks(per_user: dict[tuple[str, int], LikedSetScores], *, resamples: int = 2000) -> float:
    """The smallest ``prior_ticks`` of :data:`PRIOR_TICKS_GRID` whose Recall@K is within the users' noise of the
    best one's: the paired bootstrap interval (over every user and query size) of the best minus it holds zero.

    The one-standard-error rule of model selection: among settings the validation users cannot tell apart, the one
    that leans least on the prior (the most personal ranking)."""
    sizes = sorted({m for name, m in per_user if name == set_rule_name(PRIOR_TICKS_GRID[0])})

    def recall(prior: float) -> np.ndarray:
        return np.concatenate([per_user[set_rule_name(prior), m].recall for m in sizes])

    best = max(PRIOR_TICKS_GRID, key=lambda prior: recall(prior).mean())
    for prior in PRIOR_TICKS_GRID:
        if paired_bootstrap(recall(best), recall(prior), resamples=resamples).low <= 0.0:
            return prior
    return best


def seed_means(per_seed: list[dict[tuple[str, int], LikedSetScores]]) -> dict[tuple[str, int], LikedSetScores]:
    """Each entry's per-user Recall and NDCG (and its coverage and popularity) averaged over the seeds' runs."""
    return {
        key: LikedSetScores(
            np.mean([run[key].recall for run in per_seed], axis=0),
            np.mean([run[key].ndcg for run in per_seed], axis=0),
            float(np.mean([run[key].coverage for run in per_seed])),
            float(np.mean([run[key].popularity for run in per_seed])),
        )
        for key in per_seed[0]
    }


def fold_union(per_fold: list[dict[tuple[str, int], LikedSetScores]]) -> dict[tuple[str, int], LikedSetScores]:
    """Each entry's per-user scores over every fold's users, one fold after another (coverage and popularity: the
    folds' mean)."""
    return {
        key: LikedSetScores(
            np.concatenate([fold[key].recall for fold in per_fold]),
            np.concatenate([fold[key].ndcg for fold in per_fold]),
            float(np.mean([fold[key].coverage for fold in per_fold])),
            float(np.mean([fold[key].popularity for fold in per_fold])),
        )
        for key in per_fold[0]
    }


def union_rows(per_user: dict[tuple[str, int], LikedSetScores], fold_rows: pd.DataFrame) -> pd.DataFrame:
    """One row per (entry, m) over every fold's users, from :func:`fold_union`'s scores; the skipped users summed
    over the folds of ``fold_rows``."""
    skipped = fold_rows.groupby(["model", "m", "fold"])["skipped"].first().groupby(["model", "m"]).sum()
    folds = fold_rows["fold"].nunique()
    return pd.DataFrame(
        [
            {
                "model": name,
                "m": m,
                "split": fold_rows["split"].iloc[0],
                "recall": float(scores.recall.mean()),
                "ndcg": float(scores.ndcg.mean()),
                "coverage": scores.coverage,
                "popularity": scores.popularity,
                "users": len(scores.recall),
                "skipped": int(skipped[name, m]),
                "folds": folds,
            }
            for (name, m), scores in per_user.items()
        ]
    )


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
