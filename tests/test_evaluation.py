"""Metrics against hand-computed examples; protocol weights; baselines against their definitions."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from rec_lib.data.loaders import MovieLensData
from rec_lib.data.preprocess import preprocess
from rec_lib.pinsage.baselines import EASE, ItemKNN, MostPopular, training_matrix
from rec_lib.pinsage.config import EvalConfig
from rec_lib.pinsage.evaluation import EmbeddingScorer, build_queries, evaluate, evaluate_all


def _prep():
    """Two users, six movies. User 1: 10, 11, 12 (train) then 13 (val), 14 (test). User 2: 11, 15 train, 12, 10."""
    rows = [(1, 10, 1), (1, 11, 2), (1, 12, 3), (1, 13, 4), (1, 14, 5), (2, 11, 1), (2, 15, 2), (2, 12, 3), (2, 10, 4)]
    ratings = pd.DataFrame(rows, columns=["user_id", "movie_id", "timestamp"]).assign(rating=4.0)
    ratings = ratings.astype({"rating": "float32"})
    movies = pd.DataFrame(
        {"movie_id": range(10, 16), "title": [f"m{i}" for i in range(6)], "year": [2000] * 6, "genres": [["Drama"]] * 6}
    )
    return preprocess(MovieLensData("toy", "csv", ratings, movies, None))


class FixedScores:
    name = "fixed"

    def __init__(self, table: list[list[float]]) -> None:
        self.table = torch.tensor(table)

    def score(self, movies, weights):
        return self.table.clone()


def test_history_queries_latest_first() -> None:
    q = build_queries(_prep(), history_len=4)
    assert q.users.tolist() == [0, 1]
    assert q.history[0, :3].tolist() == [2, 1, 0] and q.history_mask[0].tolist() == [1, 1, 1, 0]
    assert q.targets["val"].tolist() == [3, 2] and q.targets["test"].tolist() == [4, 0]
    a = q.weights("A", 0.5)
    assert a[0].tolist() == [1, 0, 0, 0]
    b = q.weights("B", 0.5)
    assert b[0].tolist() == pytest.approx([4 / 7, 2 / 7, 1 / 7, 0])


def test_hit_rate_ndcg_coverage_and_masking_by_hand() -> None:
    prep = _prep()
    q = build_queries(prep, history_len=3)
    # movie indices 0..5 = ids 10..15. User 0 has seen 0, 1, 2; user 1 has seen 1, 5.
    scores = [
        [9, 9, 9, 1, 8, 7],  # unseen order: 4 (8), 5 (7), 3 (1): test 4 at rank 0, val 3 at rank 2
        [5, 9, 6, 4, 3, 9],
    ]  # unseen order: 2 (6), 0 (5), 3 (4), 4 (3): val 2 rank 0, test 0 rank 1
    result = evaluate(FixedScores(scores), q, "A", prep.n_movies, EvalConfig(k=2))
    assert result["test"].hr == 1.0
    assert result["test"].ndcg == pytest.approx((1 + 1 / math.log2(3)) / 2)
    assert result["val"].hr == 0.5 and result["val"].ndcg == pytest.approx(0.5)
    assert result["val"].recall == result["val"].hr
    assert result["val"].coverage == pytest.approx(4 / 6)  # top-2 lists {4, 5} and {2, 0}


def test_baselines_match_their_definitions() -> None:
    prep = _prep()
    x = training_matrix(prep).toarray()
    movies, weights = torch.tensor([[2, 1], [5, 1]]), torch.tensor([[0.75, 0.25], [1.0, 0.0]])
    assert MostPopular(prep).score(movies, weights)[0].tolist() == x.sum(0).tolist()

    norms = np.sqrt(x.sum(0))
    cosine = (x.T @ x) / np.maximum(np.outer(norms, norms), 1e-12)
    expected = 0.75 * cosine[2] + 0.25 * cosine[1]
    assert ItemKNN(prep).score(movies, weights)[0].numpy() == pytest.approx(expected, abs=1e-6)

    l2 = 2.0
    p = np.linalg.inv(x.T @ x + l2 * np.eye(x.shape[1]))
    b = -p / np.diag(p)
    np.fill_diagonal(b, 0.0)
    assert EASE(prep, l2).score(movies, weights)[1].numpy() == pytest.approx(b[5], abs=1e-5)


def test_embedding_scorer_is_weighted_dot_plus_bias() -> None:
    vectors = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    scorer = EmbeddingScorer("e", vectors, torch.tensor([0.0, 0.5, -1.0]))
    out = scorer.score(torch.tensor([[0, 1]]), torch.tensor([[0.5, 0.5]]))
    assert out[0].tolist() == pytest.approx([0.5, 1.0, 0.0])


def test_table_has_every_model_protocol_and_split() -> None:
    prep = _prep()
    table = evaluate_all([MostPopular(prep), ItemKNN(prep)], build_queries(prep, 3), prep.n_movies, EvalConfig(k=2))
    assert len(table) == 2 * 2 * 2
    assert set(table["protocol"]) == {"A", "B"} and set(table["split"]) == {"val", "test"}
