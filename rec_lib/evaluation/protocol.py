"""Ranking metrics under the standard leave-one-out protocol, for any model that scores movies from movies.

Every evaluated user has one validation and one test movie (see :mod:`rec_lib.data.preprocess`). For
each target, the user's **history is every interaction before it** (SASRec, BERT4Rec, RecBole): for
validation that is the training interactions, for test the training interactions plus the validation
movie. All movies are ranked and the history is masked. The query is built from the latest
``history_len`` history movies:

* **Protocol A** (DGL's ``LatestNNRecommender``): the latest history movie alone.
* **Protocol B** (history): the latest ``history_len`` movies fused by a weighted sum of their score
  vectors, ``score(i) = Σ_j w_j · s(j, i)``. The weights are the scorer's own :class:`QueryRule` when it
  has one (PinSage's learned recency weights, the rule ``recommend()`` uses), else the fixed rule
  ``w_j ∝ history_decay ** age_j`` (age 0 is the latest movie).

Metrics at K, averaged over users: HR (the target is in the top K; with one target per user it is also the
recall), NDCG (``1 / log2(rank + 2)`` when it is), catalogue coverage (the share of all movies
in at least one user's top K) and popularity (the mean training-popularity percentile of the
recommended movies: 50 is the median movie, 100 the most popular; it shows how much a model leans on
popularity).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Literal, Protocol

import numpy as np
import pandas as pd
import torch

from rec_lib.contracts import QueryRule
from rec_lib.data.preprocess import Preprocessed
from rec_lib.evaluation.config import EvalConfig
from rec_lib.evaluation.history import latest_before, user_starts

QueryProtocol = Literal["A", "B"]
PROTOCOLS: tuple[QueryProtocol, ...] = ("A", "B")
EVAL_SPLITS = ("val", "test")
HISTORY_SPLITS = {"val": ("train",), "test": ("train", "val")}
"""What counts as history for each target: every interaction before it."""
WEIGHT_CHUNK = 1024
"""Histories weighed at once by an attending rule (it gathers their movies' vectors)."""


class MovieScorer(Protocol):
    """Scores every movie for a batch of weighted query movies: ``(B, H), (B, H) -> (B, n_movies)``.

    ``split`` says which target is being predicted, for models whose movie vectors depend on the
    interactions known at that point (PinSage's graph); ``query_rule`` (may be None) replaces
    protocol B's fixed weights.
    """

    name: str
    query_rule: QueryRule | None

    def score(self, movies: torch.Tensor, weights: torch.Tensor, split: str = "val") -> torch.Tensor: ...


@dataclass(frozen=True)
class Metrics:
    hr: float
    ndcg: float
    coverage: float
    popularity: float
    users: int


@dataclass(frozen=True)
class SplitQueries:
    """Per evaluated user, for one target split: history (latest first), target, and the masked movies."""

    history: torch.Tensor
    """(U, history_len) movie indices, latest first, padded with 0."""
    history_mask: torch.Tensor
    target: torch.Tensor
    seen_rows: torch.Tensor
    seen_cols: torch.Tensor
    """Coordinates (position in ``users``, movie) of every history interaction, sorted by user: masked when
    ranking, one batch's slice found by binary search."""

    def subset(self, positions: torch.Tensor) -> SplitQueries:
        """The queries of the users at sorted ``positions`` only, their seen-movie coordinates renumbered."""
        renumber = torch.full((self.history.shape[0],), -1, dtype=torch.int64)
        renumber[positions] = torch.arange(positions.numel())
        kept = renumber[self.seen_rows] >= 0
        return SplitQueries(
            self.history[positions],
            self.history_mask[positions],
            self.target[positions],
            renumber[self.seen_rows[kept]],
            self.seen_cols[kept],
        )


def history_weights(
    scorer: MovieScorer, rule: QueryRule, history: torch.Tensor, history_mask: torch.Tensor, split: str = "val"
) -> torch.Tensor:
    """``rule``'s weights (:meth:`QueryRule.masked_weights`) over the present positions of (B, H) histories, latest
    first; an attending rule (only a model of movie vectors has one: :class:`EmbeddingScorer`) reads the scorer's
    vectors of those movies for ``split``, a chunk of rows at a time."""
    present = history_mask.cpu().numpy()
    if not rule.attends or len(present) == 0:
        return torch.from_numpy(rule.masked_weights(present))
    vectors = scorer.split_vectors(split).cpu()
    chunks = [
        rule.masked_weights(present[rows], vectors[history[rows]].numpy())
        for rows in (slice(start, start + WEIGHT_CHUNK) for start in range(0, len(present), WEIGHT_CHUNK))
    ]
    return torch.from_numpy(np.concatenate(chunks))


@dataclass(frozen=True)
class Queries:
    users: torch.Tensor
    splits: dict[str, SplitQueries]
    popularity_percentile: torch.Tensor
    """(n_movies,) each movie's training-popularity percentile, 0-100."""

    def sample(self, max_users: int | None, seed: int) -> Queries:
        """At most ``max_users`` of the users, drawn without replacement by ``seed`` (the same draw for the same
        seed), or all of them when ``max_users`` is None or at least their number.

        >>> queries = Queries(torch.arange(5), {}, torch.zeros(3))
        >>> queries.sample(3, seed=0).users.tolist() == queries.sample(3, seed=0).users.tolist()
        True
        >>> queries.sample(None, seed=0) is queries, queries.sample(9, seed=0) is queries
        (True, True)
        """
        if max_users is None or max_users >= self.users.numel():
            return self
        generator = torch.Generator().manual_seed(seed)
        positions = torch.randperm(self.users.numel(), generator=generator)[:max_users].sort().values
        splits = {name: split.subset(positions) for name, split in self.splits.items()}
        return Queries(self.users[positions], splits, self.popularity_percentile)


def build_queries(prep: Preprocessed, history_len: int) -> Queries:
    """Queries for every user that has a validation and a test movie."""
    users = torch.tensor(prep.interactions["user_idx"].to_numpy())
    movies = torch.tensor(prep.interactions["movie_idx"].to_numpy())
    splits = prep.interactions["split"]
    evaluated = users[torch.tensor((splits == "test").to_numpy())].sort().values
    position = torch.full((prep.n_users,), -1, dtype=torch.int64)
    position[evaluated] = torch.arange(evaluated.numel())
    starts = user_starts(users)
    queries = {}
    for split in EVAL_SPLITS:
        targets = torch.tensor((splits == split).to_numpy()).nonzero().flatten()
        targets = targets[position[users[targets]].argsort()]  # one target per evaluated user, in user order
        history, present = latest_before(movies, starts, targets, history_len)
        is_history = torch.tensor(splits.isin(HISTORY_SPLITS[split]).to_numpy()) & (position[users] >= 0)
        seen = is_history.nonzero().flatten()  # sorted by user, as the interactions are
        queries[split] = SplitQueries(history, present.float(), movies[targets], position[users[seen]], movies[seen])
    counts = np.bincount(prep.split("train", ["movie_idx"])["movie_idx"].to_numpy(), minlength=prep.n_movies)
    percentile = pd.Series(counts).rank(pct=True).to_numpy() * 100.0
    return Queries(
        users=evaluated,
        splits=queries,
        popularity_percentile=torch.tensor(percentile, dtype=torch.float32),
    )


def protocol_rule(scorer: MovieScorer, protocol: QueryProtocol, config: EvalConfig) -> QueryRule:
    """``protocol``'s rule for ``scorer``: the latest movie (A); the scorer's own rule, else the fixed one (B)."""
    if protocol == "A":
        return QueryRule.latest()
    return getattr(scorer, "query_rule", None) or QueryRule.decay(config.history_len, config.history_decay)


def evaluate(
    scorer: MovieScorer,
    queries: Queries,
    protocol: QueryProtocol,
    n_movies: int,
    config: EvalConfig | None = None,
    splits: tuple[str, ...] = EVAL_SPLITS,
) -> dict[str, Metrics]:
    """Metrics on each of ``splits`` for one scorer under one protocol."""
    config = config or EvalConfig()
    rule = protocol_rule(scorer, protocol, config)
    return {split: _evaluate_split(scorer, queries, split, rule, n_movies, config) for split in splits}


def _evaluate_split(
    scorer: MovieScorer, queries: Queries, split: str, rule: QueryRule, n_movies: int, config: EvalConfig
) -> Metrics:
    ranked = _rank_split(scorer, queries, split, rule, n_movies, config)
    return Metrics(
        hr=float(ranked.hits.mean()),
        ndcg=float(ranked.gains.mean()),
        coverage=float(ranked.recommended.float().mean()),
        popularity=float(ranked.popularity.mean()),
        users=queries.users.numel(),
    )


def per_user_ranks(
    scorer: MovieScorer,
    queries: Queries,
    protocol: QueryProtocol,
    n_movies: int,
    config: EvalConfig | None = None,
    split: str = "test",
) -> RankedTargets:
    """Each user's hit and NDCG gain on ``split`` (in ``queries.users`` order): what paired intervals resample."""
    config = config or EvalConfig()
    return _rank_split(scorer, queries, split, protocol_rule(scorer, protocol, config), n_movies, config)


def _rank_split(
    scorer: MovieScorer, queries: Queries, split: str, rule: QueryRule, n_movies: int, config: EvalConfig
) -> RankedTargets:
    q = queries.splits[split]
    weights = history_weights(scorer, rule, q.history, q.history_mask, split)
    return rank_targets(
        lambda start, stop: scorer.score(q.history[start:stop], weights[start:stop], split),
        q.target.numel(),
        q.seen_rows,
        q.seen_cols,
        n_movies,
        config,
        lambda k: top_k_judge(q.target, k),
        popularity=queries.popularity_percentile,
    )


@dataclass(frozen=True)
class RankedTargets:
    """Per row: the hit and the NDCG gain of its target at K, and the popularity of its top K; over all rows,
    which candidates made some top K."""

    hits: torch.Tensor
    gains: torch.Tensor
    popularity: torch.Tensor
    recommended: torch.Tensor


Judge = Callable[[torch.Tensor, torch.Tensor, int, int], tuple[torch.Tensor, torch.Tensor]]
"""How a protocol counts a batch: ``judge(scores, top, start, stop)`` → each row's hit and NDCG gain at K, from its
masked scores and its top K."""


def top_k_judge(target: torch.Tensor, k: int) -> Judge:
    """One target per row: a hit when it is among ``torch.topk``'s K, its gain ``1 / log2(rank + 2)``."""
    discount = 1.0 / torch.log2(torch.arange(k, dtype=torch.float32) + 2.0)

    def judge(scores: torch.Tensor, top: torch.Tensor, start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor]:
        match = top == target[start:stop, None]
        return match.any(1).float(), (match.float() * discount).sum(1)

    return judge


def expected_rank_judge(target: torch.Tensor, k: int) -> Judge:
    """One target per row, tied scores at their expected rank (:func:`tie_aware_metrics`): a scorer that cannot
    tell candidates apart scores at chance."""

    def judge(scores: torch.Tensor, top: torch.Tensor, start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor]:
        return tie_aware_metrics(scores.cpu(), target[start:stop], k)

    return judge


def rank_targets(
    score_rows: Callable[[int, int], torch.Tensor],
    n_rows: int,
    seen_rows: torch.Tensor,
    seen_cols: torch.Tensor,
    n_candidates: int,
    config: EvalConfig,
    judge: Callable[[int], Judge],
    *,
    popularity: torch.Tensor | None = None,
) -> RankedTargets:
    """The metric loop every protocol shares: score rows in batches (``score_rows(start, stop)``), mask each row's
    seen candidates (``seen_rows``, sorted, and ``seen_cols``), take every row's top K of all candidates, and let
    the protocol's judge (``judge(k)``: :func:`top_k_judge`, :func:`expected_rank_judge`, or the liked-set one)
    count its hits and gains."""
    hits, gains, shown = torch.zeros(n_rows), torch.zeros(n_rows), torch.zeros(n_rows)
    recommended = torch.zeros(n_candidates, dtype=torch.bool)
    k = min(config.k, n_candidates)
    count = judge(k)
    for start in range(0, n_rows, config.batch_users):
        stop = min(start + config.batch_users, n_rows)
        scores = score_rows(start, stop).float()
        first, last = torch.searchsorted(seen_rows, torch.tensor([start, stop])).tolist()
        seen = (seen_rows[first:last] - start).to(scores.device), seen_cols[first:last].to(scores.device)
        scores[seen] = -math.inf
        top = torch.topk(scores, k, dim=1).indices.cpu()
        recommended[top.flatten()] = True
        hits[start:stop], gains[start:stop] = count(scores, top, start, stop)
        if popularity is not None:
            shown[start:stop] = popularity[top].mean(1)
    return RankedTargets(hits, gains, shown, recommended)


def tie_aware_metrics(scores: torch.Tensor, target: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row, HR@k and NDCG@k of ``target`` with ties at their expected rank (uniform among the tied).

    >>> hr, ndcg = tie_aware_metrics(torch.tensor([[1.0, 1.0, 1.0, 1.0]]), torch.tensor([0]), 2)
    >>> hr.tolist()
    [0.5]
    >>> round(tie_aware_metrics(torch.tensor([[0.0, 2.0, 1.0]]), torch.tensor([2]), 2)[1].item(), 4)  # 1 / log2(3)
    0.6309
    """
    target_score = scores.gather(1, target[:, None])
    greater = (scores > target_score).sum(1)
    ties = (scores == target_score).sum(1) - 1
    discount = torch.cat([torch.zeros(1), torch.cumsum(1.0 / torch.log2(torch.arange(k, dtype=torch.float32) + 2), 0)])
    first = greater.clamp(max=k)
    last = (greater + ties + 1).clamp(max=k)
    spread = (ties + 1).float()
    return (last - first).float() / spread, (discount[last] - discount[first]) / spread


def evaluate_all(
    scorers: list[MovieScorer], queries: Queries, n_movies: int, config: EvalConfig | None = None
) -> pd.DataFrame:
    """One row per (model, protocol, split), with HR, NDCG, Recall, coverage and popularity at K."""
    config = config or EvalConfig()
    rows = []
    for scorer in scorers:
        for protocol in PROTOCOLS:
            for split, metrics in evaluate(scorer, queries, protocol, n_movies, config).items():
                rows.append(
                    {"model": scorer.name, "protocol": protocol, "split": split, "k": config.k, **asdict(metrics)}
                )
    return pd.DataFrame(rows)


class EmbeddingScorer:
    """Scores by the model's own rule: ``h_query · h_movie + bias_movie``, fused over the query movies.

    ``vectors`` may be one tensor, or one per split (PinSage's vectors computed on the graph of the
    interactions known before that split's target); ``query_rule`` is the model's protocol-B rule. The
    scores are computed on ``device`` (the vectors are moved there); evaluation masks and ranks them there too.
    """

    def __init__(
        self,
        name: str,
        vectors: torch.Tensor | dict[str, torch.Tensor],
        bias: torch.Tensor | None = None,
        query_rule: QueryRule | None = None,
        device: torch.device | str = "cpu",
    ) -> None:
        self.name = name
        self.device = torch.device(device)
        on_device = {
            s: v.float().to(self.device) for s, v in (vectors if isinstance(vectors, dict) else {"": vectors}).items()
        }
        self.vectors = on_device if isinstance(vectors, dict) else on_device[""]
        any_vectors = next(iter(on_device.values()))
        self.bias = (bias.float() if bias is not None else torch.zeros(any_vectors.shape[0])).to(self.device)
        self.query_rule = query_rule

    def split_vectors(self, split: str = "val") -> torch.Tensor:
        """The movie vectors that ``split``'s targets are scored with."""
        return self.vectors[split] if isinstance(self.vectors, dict) else self.vectors

    def score(self, movies: torch.Tensor, weights: torch.Tensor, split: str = "val") -> torch.Tensor:
        vectors = self.split_vectors(split)
        query = (vectors[movies.to(self.device)] * weights.to(self.device).unsqueeze(-1)).sum(1)
        return torch.addmm(self.bias, query, vectors.T)

    def stored(self, split: str = "val") -> torch.Tensor:
        """The rows ``[h_i, b_i]`` a vector store would hold for ``split``'s vectors."""
        return torch.cat([self.split_vectors(split), self.bias[:, None]], 1)

    def score_queries(self, queries: torch.Tensor, split: str = "val") -> torch.Tensor:
        """Every movie's score for (B, d + 1) store queries: their inner product with the stored rows."""
        return queries.to(self.device) @ self.stored(split).T
