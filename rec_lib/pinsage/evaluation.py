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

Metrics at K, averaged over users: HR (the target is in the top K), NDCG (``1 / log2(rank + 2)`` when
it is), Recall (equal to HR here: one target per user), catalogue coverage (the share of all movies
in at least one user's top K) and popularity (the mean training-popularity percentile of the
recommended movies: 50 is the median movie, 100 the most popular; it shows how much a model leans on
popularity).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Literal, Protocol

import numpy as np
import pandas as pd
import torch

from rec_lib.data.preprocess import Preprocessed
from rec_lib.pinsage.config import EvalConfig
from rec_lib.serving.embeddings import QueryRule

QueryProtocol = Literal["A", "B"]
PROTOCOLS: tuple[QueryProtocol, ...] = ("A", "B")
EVAL_SPLITS = ("val", "test")
HISTORY_SPLITS = {"val": ("train",), "test": ("train", "val")}
"""What counts as history for each target: every interaction before it."""


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
    recall: float
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

    def weights(self, rule: QueryRule) -> torch.Tensor:
        """``rule``'s weights over each user's present history positions, summing to one."""
        return rule_weights(rule, self.history_mask)

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


def rule_weights(rule: QueryRule, history_mask: torch.Tensor) -> torch.Tensor:
    """``rule``'s weights over the present positions of (B, H) histories (latest first), each row summing to one."""
    length = history_mask.shape[1]
    position = torch.zeros(length)
    used = torch.tensor(rule.position_weights[:length], dtype=torch.float32)
    position[: used.numel()] = used
    w = position.expand_as(history_mask) * history_mask
    return w / w.sum(1, keepdim=True).clamp(min=1e-12)


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
    users = prep.interactions["user_idx"].to_numpy()
    movies = prep.interactions["movie_idx"].to_numpy()
    splits = prep.interactions["split"]
    evaluated = np.sort(users[(splits == "test").to_numpy()])
    position = np.full(prep.n_users, -1)
    position[evaluated] = np.arange(len(evaluated))
    rows = position[users]
    queries = {
        split: _split_queries(
            rows,
            movies,
            splits.isin(HISTORY_SPLITS[split]).to_numpy(),
            (splits == split).to_numpy(),
            history_len,
            len(evaluated),
        )
        for split in EVAL_SPLITS
    }
    counts = np.bincount(movies[(splits == "train").to_numpy()], minlength=prep.n_movies)
    percentile = pd.Series(counts).rank(pct=True).to_numpy() * 100.0
    return Queries(
        users=torch.from_numpy(evaluated),
        splits=queries,
        popularity_percentile=torch.tensor(percentile, dtype=torch.float32),
    )


def _split_queries(
    rows: np.ndarray,
    movies: np.ndarray,
    is_history: np.ndarray,
    is_target: np.ndarray,
    history_len: int,
    n_users: int,
) -> SplitQueries:
    """One split's queries from every interaction's position among the ``n_users`` evaluated users (``rows``,
    -1 for a user not evaluated) and movie, in time order per user, and whether it is history or the target."""
    history = is_history & (rows >= 0)
    order = np.argsort(rows[history], kind="stable")  # by user, each user's interactions still in time order
    history_rows, cols = rows[history][order], movies[history][order]
    # each user's interactions are in time order, so counting back from the user's last one gives the age
    last = np.cumsum(np.bincount(history_rows, minlength=n_users)) - 1
    age = last[history_rows] - np.arange(len(history_rows))
    keep = age < history_len
    history_movies = torch.zeros((n_users, history_len), dtype=torch.int64)
    mask = torch.zeros((n_users, history_len), dtype=torch.float32)
    history_movies[history_rows[keep], age[keep]] = torch.tensor(cols[keep])
    mask[history_rows[keep], age[keep]] = 1.0
    target = np.empty(n_users, dtype=np.int64)
    target[rows[is_target]] = movies[is_target]
    return SplitQueries(
        history_movies, mask, torch.from_numpy(target), torch.from_numpy(history_rows), torch.from_numpy(cols)
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
    q = queries.splits[split]
    weights = q.weights(rule)
    n_users = queries.users.numel()
    hits = torch.zeros(n_users, dtype=torch.bool)
    gains = torch.zeros(n_users)
    popularity = torch.zeros(n_users)
    recommended = torch.zeros(n_movies, dtype=torch.bool)
    k = min(config.k, n_movies)
    discount = 1.0 / torch.log2(torch.arange(k, dtype=torch.float32) + 2.0)
    for start in range(0, n_users, config.batch_users):
        stop = min(start + config.batch_users, n_users)
        scores = scorer.score(q.history[start:stop], weights[start:stop], split).float()
        first, last = torch.searchsorted(q.seen_rows, torch.tensor([start, stop])).tolist()
        seen = (q.seen_rows[first:last] - start).to(scores.device), q.seen_cols[first:last].to(scores.device)
        scores[seen] = -math.inf
        top = torch.topk(scores, k, dim=1).indices.cpu()
        recommended[top.flatten()] = True
        match = top == q.target[start:stop, None]
        hits[start:stop] = match.any(1)
        gains[start:stop] = (match.float() * discount).sum(1)
        popularity[start:stop] = queries.popularity_percentile[top].mean(1)
    hr = float(hits.float().mean())
    return Metrics(
        hr=hr,
        ndcg=float(gains.mean()),
        recall=hr,
        coverage=float(recommended.float().mean()),
        popularity=float(popularity.mean()),
        users=n_users,
    )


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

    def score(self, movies: torch.Tensor, weights: torch.Tensor, split: str = "val") -> torch.Tensor:
        vectors = self.vectors[split] if isinstance(self.vectors, dict) else self.vectors
        query = (vectors[movies.to(self.device)] * weights.to(self.device).unsqueeze(-1)).sum(1)
        return torch.addmm(self.bias, query, vectors.T)
