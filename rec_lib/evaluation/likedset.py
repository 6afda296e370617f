"""The liked-set protocol: a person the model never trained on ticks a few movies they like, in no order.

This is how the picker and the web page are used, and the timeline protocol (:mod:`rec_lib.evaluation.protocol`)
does not measure it. The split is the field's strong generalization (Liang et al., WWW 2018; Steck's EASE paper):

* a seeded ``share`` of the users is **held out of training entirely**: none of their ratings is an edge of any
  graph or a row of any baseline's matrix. Every model trains on the other users, split by the usual leave-one-out
  (for early stopping). Half of the held-out users choose settings (``val``), half report (``test``);
* for each held-out user and each query size ``m``: ``m`` of their movies rated at least :data:`LIKED_RATING`,
  drawn without replacement under a seed and **handed over in a random order**, are the ticks; the targets are
  all their other movies rated that well. Users with fewer than ``m + 1`` such movies are skipped and counted;
* the ticks are masked and every movie is ranked. Recall@K is hits / min(K, targets); NDCG@K is DCG over the ideal
  DCG of min(K, targets) hits; coverage and popularity are as in the timeline protocol;
* each user's ticks are drawn :data:`TICK_DRAWS` times and their Recall and NDCG are the means over the draws: the
  expected score over the sets that person could hand over, so which ticks one draw happened to pick does not add
  to the users' noise in the intervals.

A scorer pools the ticks with the rule it is evaluated with: a :class:`~rec_lib.contracts.SetRule` or a
:class:`~rec_lib.contracts.FittedSetRule` (with its transform; what ``recommend()`` does with a set: the picker, the
page; for a model of movie vectors, the very store query ``recommend()`` makes), or a
:class:`~rec_lib.contracts.QueryRule` reading the
ticks as a history, the last tick the latest (the timeline rule on shuffled ticks, for comparison).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from rec_lib.contracts import FittedSetRule, QueryRule, SetRule
from rec_lib.data.preprocess import Preprocessed, fingerprint, resplit
from rec_lib.errors import ConfigError
from rec_lib.evaluation.config import TICK_DRAWS, EvalConfig
from rec_lib.evaluation.protocol import EmbeddingScorer, MovieScorer, history_weights, rank_targets

LIKED_RATING = 4.0
"""A movie counts as liked from this rating up."""
QUERY_SIZES = (1, 3, 5, 10)
"""How many ticks a person hands over."""
HELD_OUT_SHARE = 0.2
"""The share of users held out of training; half of them choose settings, half report."""


@dataclass(frozen=True)
class LikedSetSplit:
    """Every interaction, the training data without the held-out users, and who is held out for what."""

    prep: Preprocessed
    train: Preprocessed
    """The other users' interactions, split per user by leave-one-out: what every model trains on."""
    val_users: np.ndarray
    """Sorted user indices of the held-out users that choose settings."""
    test_users: np.ndarray
    """Sorted user indices of the held-out users that the reported table is about."""

    def users(self, split: str) -> np.ndarray:
        if split not in ("val", "test"):
            raise ConfigError(f"liked-set split {split!r}: expected 'val' or 'test'")
        if split == "val" and not len(self.val_users):
            raise ConfigError("this liked-set fold holds out test users only: settings are chosen on fold 0's val")
        return self.val_users if split == "val" else self.test_users


def liked_set_split(prep: Preprocessed, share: float = HELD_OUT_SHARE, seed: int = 0, fold: int = 0) -> LikedSetSplit:
    """Hold a seeded ``share`` of the users (with at least one rating) out of training.

    Fold 0 (the tables' split) holds out the first ``share`` of a seeded permutation of the users, half for val,
    half for test. Fold ``k`` holds out the permutation's ``k``-th such group, every one of them a test user, so
    folds 0 to ``1 / share - 1`` report on disjoint users (cross-validation over users; the settings stay those
    fold 0's val users chose)."""
    if not 0.0 < share < 1.0:
        raise ConfigError(f"liked-set share={share} must lie strictly between 0 and 1")
    users = np.unique(prep.interactions["user_idx"].to_numpy())
    size = max(2, round(share * len(users)))
    if size >= len(users):
        raise ConfigError(f"liked-set share={share} of {len(users)} users leaves nobody to train on")
    if not 0 <= fold < len(users) // size:
        raise ConfigError(
            f"liked-set fold={fold}: a share of {share} splits {len(users)} users into folds 0 to "
            f"{len(users) // size - 1}"
        )
    held = np.random.default_rng(seed).permutation(users)[fold * size : (fold + 1) * size]
    half = len(held) // 2 if fold == 0 else 0
    keep = ~np.isin(prep.interactions["user_idx"].to_numpy(), held)
    liked_set = {"share": share, "seed": seed, "held_out_users": len(held)} | ({"fold": fold} if fold else {})
    manifest = {
        **prep.manifest,
        "liked_set": liked_set,
        "fingerprint": fingerprint({"data": prep.manifest.get("fingerprint"), "liked_set": liked_set}),
    }
    return LikedSetSplit(prep, resplit(prep, keep, manifest), np.sort(held[:half]), np.sort(held[half:]))


@dataclass(frozen=True)
class LikedSetQueries:
    """The ticks of every user kept for one query size, in the order handed over, and each user's targets: one row
    per draw of a user's ticks, a user's ``draws`` rows one after another."""

    users: np.ndarray
    """(U,) user indices."""
    ticks: torch.Tensor
    """(U × draws, m) movie indices in the order handed over: the last is the latest tick."""
    target_rows: torch.Tensor
    target_cols: torch.Tensor
    """Coordinates (row of ``ticks``, movie) of every target, sorted by row."""
    skipped: int
    """Held-out users with fewer than ``m + 1`` liked movies: left out, and counted."""
    popularity_percentile: torch.Tensor = field(repr=False)
    """(n_movies,) each movie's training-popularity percentile, 0-100."""

    draws: int = 1
    """Rows per user."""

    @property
    def m(self) -> int:
        return int(self.ticks.shape[1])

    def user_means(self, per_row: np.ndarray) -> np.ndarray:
        """(U,) each user's mean of a (U × draws,) per-row score over their draws."""
        return np.asarray(per_row).reshape(len(self.users), self.draws).mean(1)


def liked_set_queries(
    split: LikedSetSplit,
    which: str,
    m: int,
    seed: int = 0,
    min_rating: float = LIKED_RATING,
    draws: int = TICK_DRAWS,
) -> LikedSetQueries:
    """For each user of ``split.users(which)``, ``draws`` times: ``m`` liked movies drawn (seeded) in a random
    order, and the rest of their liked movies as targets."""
    if m < 1:
        raise ConfigError(f"liked-set query size m={m} must be at least 1")
    if draws < 1:
        raise ConfigError(f"liked-set tick draws={draws} must be at least 1")
    inter = split.prep.interactions
    liked = inter[(inter["rating"].to_numpy() >= min_rating) & np.isin(inter["user_idx"], split.users(which))]
    rng = np.random.default_rng([seed, m])
    users, ticks, rows, cols = [], [], [], []
    for user, movies in liked.groupby("user_idx", sort=True)["movie_idx"]:
        movies = movies.to_numpy()
        if len(movies) < m + 1:
            continue
        users.append(user)
        for _ in range(draws):
            drawn = rng.permutation(movies)
            ticks.append(drawn[:m])
            rows.append(np.full(len(drawn) - m, len(ticks) - 1))
            cols.append(np.sort(drawn[m:]))
    counts = np.bincount(split.train.split("train", ["movie_idx"])["movie_idx"], minlength=split.prep.n_movies)
    percentile = pd.Series(counts).rank(pct=True).to_numpy() * 100.0
    return LikedSetQueries(
        users=np.asarray(users, dtype=np.int64),
        ticks=torch.from_numpy(np.asarray(ticks, dtype=np.int64).reshape(len(ticks), m)),
        target_rows=torch.from_numpy(np.concatenate(rows) if rows else np.zeros(0, np.int64)),
        target_cols=torch.from_numpy(np.concatenate(cols) if cols else np.zeros(0, np.int64)),
        skipped=len(split.users(which)) - len(users),
        popularity_percentile=torch.tensor(percentile, dtype=torch.float32),
        draws=draws,
    )


@dataclass(frozen=True)
class LikedSetScores:
    """Per user (the mean over their draws): Recall@K and NDCG@K; over every draw of every user: the share of the
    catalogue recommended, and popularity."""

    recall: np.ndarray
    ndcg: np.ndarray
    coverage: float
    popularity: float


@dataclass(frozen=True)
class MultiInterest:
    """Multi-interest retrieval (PinnerSage's idea) over a set rule: the ticks split into at most ``interests``
    groups by k-means on their vectors, one query per group by ``rule``, and each movie scored by its best group.

    Order-free: the ticks are sorted before clustering, and k-means starts from the sorted first tick and then the
    ticks farthest from the centres so far.
    """

    rule: SetRule
    interests: int = 3
    rounds: int = 10

    def groups(self, vectors: np.ndarray) -> np.ndarray:
        """Each of the (m, d) tick vectors' group, 0 up to ``interests - 1``."""
        centres = [vectors[0]]
        while len(centres) < min(self.interests, len(vectors)):
            distance = ((vectors[:, None, :] - np.asarray(centres)[None]) ** 2).sum(-1).min(1)
            centres.append(vectors[int(distance.argmax())])
        centres = np.asarray(centres)
        for _ in range(self.rounds):
            group = ((vectors[:, None, :] - centres[None]) ** 2).sum(-1).argmin(1)
            centres = np.stack([vectors[group == g].mean(0) if (group == g).any() else centres[g]
                                for g in range(len(centres))])  # fmt: skip
        return group if len(vectors) > 1 else np.zeros(1, dtype=np.int64)


PLAIN_MEAN = SetRule(prior_ticks=0.0)
"""Every tick counts the same and nothing else: the baselines' pooling."""


def score_liked_sets(
    scorer: MovieScorer,
    rule: QueryRule | SetRule | FittedSetRule | MultiInterest,
    queries: LikedSetQueries,
    n_movies: int,
    config: EvalConfig | None = None,
    vectors: str = "test",
) -> LikedSetScores:
    """Rank every movie for each user's ticks pooled by ``rule`` (a history rule reads the last tick as the latest),
    the ticks masked, in the metric loop every protocol shares.

    ``vectors`` names the scorer's per-split vectors to use (PinSage's graph of every training user's training
    and validation interactions by default)."""
    config = config or EvalConfig()
    n, m = len(queries.ticks), queries.m
    ranked = rank_targets(
        lambda start, stop: tick_scores(scorer, rule, queries.ticks[start:stop], vectors),
        n,
        torch.arange(n).repeat_interleave(m),
        queries.ticks.flatten(),
        n_movies,
        config,
        lambda k: _recall_judge(queries, n_movies, k),
        popularity=queries.popularity_percentile,
    )
    popularity = float(ranked.popularity.mean()) if n else float("nan")
    return LikedSetScores(
        queries.user_means(ranked.hits.numpy()),
        queries.user_means(ranked.gains.numpy()),
        float(ranked.recommended.float().mean()),
        popularity,
    )


def tick_scores(
    scorer: MovieScorer,
    rule: QueryRule | SetRule | FittedSetRule | MultiInterest,
    ticks: torch.Tensor,
    vectors: str = "test",
) -> torch.Tensor:
    """Every movie's score for each row of (B, m) ticks in the order handed over, pooled by ``rule``: for a model of
    movie vectors under a set rule, the very store query ``recommend()`` makes (under multi-interest retrieval, the
    best of its groups' queries); else the rule's weights over the ticks (a history rule reads the last tick as the
    latest)."""
    if isinstance(rule, MultiInterest):
        stored = scorer.stored(vectors).cpu().numpy()
        rows = []
        for row in np.sort(ticks.numpy(), axis=1):
            group = rule.groups(stored[row, :-1])
            queries = np.concatenate([rule.rule.queries(stored[row[group == g]][None]) for g in np.unique(group)])
            rows.append(scorer.score_queries(torch.from_numpy(queries), vectors).max(0).values)
        return torch.stack(rows)
    if isinstance(rule, SetRule):
        rule = FittedSetRule(rule)  # refused for a transformed rule: it is evaluated with its transform
    if isinstance(rule, FittedSetRule):
        if isinstance(scorer, EmbeddingScorer):
            pooled = rule.pooled_rows(scorer.stored(vectors).cpu().numpy())
            return scorer.score_queries(torch.from_numpy(rule.rule.queries(pooled[ticks.numpy()])), vectors)
        if rule.transform is not None:
            raise ConfigError(f"{scorer.name} has no movie vectors to transform for a transformed set rule")
        rule = rule.rule
    latest_first = ticks.flip(1)
    if isinstance(rule, QueryRule):
        weights = history_weights(scorer, rule, latest_first, torch.ones(tuple(ticks.shape)), vectors)
    else:
        weights = torch.from_numpy(rule.masked_weights(np.ones(tuple(ticks.shape), dtype=np.float32)))
    return scorer.score(latest_first, weights, vectors)


def _recall_judge(queries: LikedSetQueries, n_movies: int, k: int):
    """Many targets per row: Recall@K = hits / min(K, targets), NDCG@K = DCG / the ideal DCG of min(K, targets)."""
    discount = 1.0 / torch.log2(torch.arange(k, dtype=torch.float32) + 2.0)
    ideal = torch.cumsum(discount, 0)

    def judge(scores: torch.Tensor, top: torch.Tensor, start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor]:
        first, last = torch.searchsorted(queries.target_rows, torch.tensor([start, stop])).tolist()
        is_target = torch.zeros(stop - start, n_movies, dtype=torch.bool)
        is_target[queries.target_rows[first:last] - start, queries.target_cols[first:last]] = True
        hit = is_target.gather(1, top).float()
        possible = is_target.sum(1).clamp(max=k)
        return hit.sum(1) / possible, (hit * discount).sum(1) / ideal[possible - 1]

    return judge


def liked_set_rows(
    entries: list[tuple[str, MovieScorer, QueryRule | SetRule]],
    split: LikedSetSplit,
    which: str = "test",
    sizes: tuple[int, ...] = QUERY_SIZES,
    config: EvalConfig | None = None,
    seed: int = 0,
    draws: int = TICK_DRAWS,
) -> tuple[pd.DataFrame, dict[tuple[str, int], LikedSetScores]]:
    """One row per (entry, m) on the held-out users of ``which``, their ticks drawn ``draws`` times: Recall, NDCG,
    coverage, popularity, users and skipped users; and each entry's per-user scores (for paired intervals). An
    entry is (name, scorer, rule)."""
    rows, per_user = [], {}
    for m in sizes:
        queries = liked_set_queries(split, which, m, seed, draws=draws)
        for name, scorer, rule in entries:
            scores = score_liked_sets(scorer, rule, queries, split.prep.n_movies, config)
            per_user[name, m] = scores
            rows.append(
                {
                    "model": name,
                    "m": m,
                    "split": f"liked-{which}",
                    "recall": float(scores.recall.mean()),
                    "ndcg": float(scores.ndcg.mean()),
                    "coverage": scores.coverage,
                    "popularity": scores.popularity,
                    "users": len(queries.users),
                    "skipped": queries.skipped,
                }
            )
    return pd.DataFrame(rows), per_user
