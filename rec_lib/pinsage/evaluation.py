"""Ranking metrics under two query protocols, for any model that scores movies from movies.

Every evaluated user has one validation and one test movie (see :mod:`rec_lib.data.preprocess`). All
movies are ranked; the user's training movies are masked out. The query is built from the user's
*training* history, for validation and for test alike:

* **Protocol A** (DGL's ``LatestNNRecommender``): the query is the user's latest training movie.
* **Protocol B** (history): the query is the user's last ``history_len`` training movies, fused by
  a weighted sum of their score vectors, ``score(i) = Σ_j w_j · s(j, i)`` with
  ``w_j ∝ history_decay ** age_j`` (age 0 is the latest movie) and ``Σ w_j = 1``.

Metrics at K, averaged over users: HR (the target is in the top K), NDCG (``1 / log2(rank + 2)``
when it is), Recall (equal to HR here: one target per user), and catalogue coverage (the share of
all movies that appear in at least one user's top K).
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

QueryProtocol = Literal["A", "B"]
PROTOCOLS: tuple[QueryProtocol, ...] = ("A", "B")
EVAL_SPLITS = ("val", "test")


class MovieScorer(Protocol):
    """Scores every movie for a batch of weighted query movies: ``(B, H), (B, H) -> (B, n_movies)``."""

    name: str

    def score(self, movies: torch.Tensor, weights: torch.Tensor) -> torch.Tensor: ...


@dataclass(frozen=True)
class Metrics:
    hr: float
    ndcg: float
    recall: float
    coverage: float
    users: int


@dataclass(frozen=True)
class Queries:
    """Per evaluated user: padded history (latest first) with protocol weights, target, seen movies."""

    users: torch.Tensor
    history: torch.Tensor
    """(U, history_len) movie indices, latest first, padded with 0."""
    history_mask: torch.Tensor
    targets: dict[str, torch.Tensor]
    seen_rows: torch.Tensor
    seen_cols: torch.Tensor
    """Coordinates (position in ``users``, movie) of every training interaction of the evaluated users."""

    def weights(self, protocol: QueryProtocol, decay: float) -> torch.Tensor:
        if protocol == "A":
            w = torch.zeros_like(self.history_mask, dtype=torch.float32)
            w[:, 0] = 1.0
            return w
        ages = torch.arange(self.history.shape[1], dtype=torch.float32)
        w = (decay**ages).expand_as(self.history).clone() * self.history_mask
        return w / w.sum(1, keepdim=True).clamp(min=1e-12)


def build_queries(prep: Preprocessed, history_len: int) -> Queries:
    """Queries for every user that has a validation and a test movie."""
    inter = prep.interactions
    evaluated = np.sort(inter.loc[inter["split"] == "test", "user_idx"].to_numpy())
    position = np.full(prep.n_users, -1)
    position[evaluated] = np.arange(len(evaluated))
    train = inter[(inter["split"] == "train") & (position[inter["user_idx"].to_numpy()] >= 0)]
    rows = position[train["user_idx"].to_numpy()]
    cols = train["movie_idx"].to_numpy()
    # interactions are sorted by user then time, so counting from each user's end gives the age
    ends = pd.Series(np.arange(len(rows))).groupby(rows).transform("max").to_numpy()
    age = ends - np.arange(len(rows))
    keep = age < history_len
    history = torch.zeros((len(evaluated), history_len), dtype=torch.int64)
    mask = torch.zeros((len(evaluated), history_len), dtype=torch.float32)
    history[rows[keep], age[keep]] = torch.tensor(cols[keep])
    mask[rows[keep], age[keep]] = 1.0
    targets = {}
    for split in EVAL_SPLITS:
        part = inter[inter["split"] == split]
        target = np.empty(len(evaluated), dtype=np.int64)
        target[position[part["user_idx"].to_numpy()]] = part["movie_idx"].to_numpy()
        targets[split] = torch.from_numpy(target)
    return Queries(
        users=torch.from_numpy(evaluated),
        history=history,
        history_mask=mask,
        targets=targets,
        seen_rows=torch.tensor(rows),
        seen_cols=torch.tensor(cols),
    )


def evaluate(
    scorer: MovieScorer, queries: Queries, protocol: QueryProtocol, n_movies: int, config: EvalConfig | None = None
) -> dict[str, Metrics]:
    """Metrics on validation and test for one scorer under one protocol."""
    config = config or EvalConfig()
    weights = queries.weights(protocol, config.history_decay)
    n_users = queries.users.numel()
    hits = {split: torch.zeros(n_users, dtype=torch.bool) for split in EVAL_SPLITS}
    gains = {split: torch.zeros(n_users) for split in EVAL_SPLITS}
    recommended = torch.zeros(n_movies, dtype=torch.bool)
    k = min(config.k, n_movies)
    discount = 1.0 / torch.log2(torch.arange(k, dtype=torch.float32) + 2.0)
    for start in range(0, n_users, config.batch_users):
        stop = min(start + config.batch_users, n_users)
        scores = scorer.score(queries.history[start:stop], weights[start:stop]).float().cpu()
        in_batch = (queries.seen_rows >= start) & (queries.seen_rows < stop)
        scores[queries.seen_rows[in_batch] - start, queries.seen_cols[in_batch]] = -math.inf
        top = torch.topk(scores, k, dim=1).indices
        recommended[top.flatten()] = True
        for split in EVAL_SPLITS:
            match = top == queries.targets[split][start:stop, None]
            hits[split][start:stop] = match.any(1)
            gains[split][start:stop] = (match.float() * discount).sum(1)
    coverage = float(recommended.float().mean())
    return {
        split: Metrics(
            hr=float(hits[split].float().mean()),
            ndcg=float(gains[split].mean()),
            recall=float(hits[split].float().mean()),
            coverage=coverage,
            users=n_users,
        )
        for split in EVAL_SPLITS
    }


def evaluate_all(
    scorers: list[MovieScorer], queries: Queries, n_movies: int, config: EvalConfig | None = None
) -> pd.DataFrame:
    """One row per (model, protocol, split), with HR, NDCG, Recall and coverage at K."""
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
    """Scores by the model's own rule: ``h_query · h_movie + bias_movie``, fused over the query movies."""

    def __init__(self, name: str, vectors: torch.Tensor, bias: torch.Tensor | None = None) -> None:
        self.name = name
        self.vectors = vectors.float()
        self.bias = bias.float() if bias is not None else torch.zeros(vectors.shape[0])

    def score(self, movies: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        query = (self.vectors[movies] * weights.unsqueeze(-1)).sum(1)
        return query @ self.vectors.T + self.bias
