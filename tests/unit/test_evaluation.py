"""Metrics against hand-computed examples; protocol weights; baselines against their definitions."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from rec_lib.contracts import QueryRule
from rec_lib.data.loaders import MovieLensData
from rec_lib.data.preprocess import preprocess
from rec_lib.errors import ConfigError
from rec_lib.evaluation.baselines import EASE, ItemKNN, MostPopular, training_matrix
from rec_lib.evaluation.config import EvalConfig
from rec_lib.evaluation.protocol import EmbeddingScorer, build_queries, evaluate, evaluate_all, protocol_rule


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
    query_rule = None

    def __init__(self, table: list[list[float]]) -> None:
        self.table = torch.tensor(table)

    def score(self, movies, weights, split="val"):
        return self.table.clone()


def test_history_queries_latest_first() -> None:
    q = build_queries(_prep(), history_len=4)
    assert q.users.tolist() == [0, 1]
    val = q.splits["val"]
    assert val.history[0, :3].tolist() == [2, 1, 0] and val.history_mask[0].tolist() == [1, 1, 1, 0]
    assert val.target.tolist() == [3, 2] and q.splits["test"].target.tolist() == [4, 0]
    present = val.history_mask.numpy()
    assert QueryRule.latest().masked_weights(present)[0].tolist() == [1, 0, 0, 0]
    assert QueryRule.decay(4, 0.5).masked_weights(present)[0].tolist() == pytest.approx([4 / 7, 2 / 7, 1 / 7, 0])


def test_test_history_is_everything_before_the_test_movie() -> None:
    """Standard leave-one-out: at test time the validation movie is history, in the query and masked."""
    q = build_queries(_prep(), history_len=4)
    val, test = q.splits["val"], q.splits["test"]
    # user 0 watched 0, 1, 2 (train), 3 (val), 4 (test); user 1 watched 1, 5 (train), 2 (val), 0 (test)
    assert test.history[0].tolist() == [3, 2, 1, 0] and test.history_mask[0].tolist() == [1, 1, 1, 1]
    assert test.history[1, :3].tolist() == [2, 5, 1]
    assert 3 not in val.history[0].tolist(), "validation history is training only"
    seen = set(zip(test.seen_rows.tolist(), test.seen_cols.tolist(), strict=True))
    assert (0, 3) in seen and (1, 2) in seen
    assert (0, 3) not in set(zip(val.seen_rows.tolist(), val.seen_cols.tolist(), strict=True))
    # a scorer that ranks the validation movie first for user 0: masked at test time, so test HR counts movie 4
    scores = [[0, 0, 0, 9, 8, 1], [9, 0, 0, 0, 0, 0]]
    result = evaluate(FixedScores(scores), q, "A", 6, EvalConfig(k=1))
    assert result["test"].hr == 1.0 and result["val"].hr == 0.5


def test_hit_rate_ndcg_coverage_and_masking_by_hand() -> None:
    prep = _prep()
    q = build_queries(prep, history_len=3)
    # movie indices 0..5 = ids 10..15. Validation: user 0 has seen 0, 1, 2; user 1 has seen 1, 5.
    # Test: the validation movie is seen too (3 for user 0, 2 for user 1).
    scores = [
        [9, 9, 9, 1, 8, 7],  # val order 4, 5, 3: val 3 at rank 2; test order 4, 5: test 4 at rank 0
        [5, 9, 6, 4, 3, 9],  # val order 2, 0, 3: val 2 at rank 0; test order 0, 3, 4: test 0 at rank 0
    ]
    result = evaluate(FixedScores(scores), q, "A", prep.n_movies, EvalConfig(k=2))
    assert result["val"].hr == 0.5 and result["val"].ndcg == pytest.approx(0.5)
    assert result["val"].coverage == pytest.approx(4 / 6)  # top-2 lists {4, 5} and {2, 0}
    assert result["test"].hr == 1.0 and result["test"].ndcg == pytest.approx(1.0)
    scores[1] = [4, 9, 6, 5, 3, 9]  # test order 3, 0: test 0 at rank 1
    result = evaluate(FixedScores(scores), q, "A", prep.n_movies, EvalConfig(k=2))
    assert result["test"].ndcg == pytest.approx((1 + 1 / math.log2(3)) / 2)
    assert result["test"].coverage == pytest.approx(4 / 6)  # top-2 lists {4, 5} and {3, 0}
    # training interactions per movie: (1, 2, 1, 0, 0, 1), so percentiles 66.7, 100, 66.7, 25, 25, 66.7
    percentile = q.popularity_percentile
    assert percentile.tolist() == pytest.approx([400 / 6, 100, 400 / 6, 25, 25, 400 / 6])
    assert result["test"].popularity == pytest.approx(float(percentile[[4, 5, 3, 0]].mean()))


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


def test_item_knn_sparse_neighbour_lists_sum_over_each_movies_top_k() -> None:
    prep = _prep()
    x = training_matrix(prep).toarray()
    norms = np.sqrt(x.sum(0))
    cosine = (x.T @ x) / np.maximum(np.outer(norms, norms), 1e-12)
    knn = ItemKNN(prep, max_dense_bytes=0, neighbours=2)
    assert not knn.dense and (np.diff(knn.similarity.indptr) == 2).all()
    kept = np.zeros_like(cosine)
    for row in range(len(cosine)):
        top = np.argsort(-cosine[row], kind="stable")[:2]
        kept[row, top] = cosine[row, top]
    movies, weights = torch.tensor([[2, 1]]), torch.tensor([[0.75, 0.25]])
    # ties inside a row may keep either movie: compare the sums, which do not depend on which tied one is kept
    assert knn.score(movies, weights)[0].sum().item() == pytest.approx((0.75 * kept[2] + 0.25 * kept[1]).sum())


def test_ease_is_refused_before_it_starts_when_it_would_not_fit(monkeypatch) -> None:
    from rec_lib.evaluation import baselines
    from rec_lib.experiments.runs import baseline_scorers

    with pytest.raises(ConfigError, match=r"EASE on 6 movies needs about 0 GiB .* over its 0 GiB limit"):
        EASE(_prep(), max_bytes=100)
    monkeypatch.setattr(baselines, "EASE_MAX_BYTES", 100)
    with pytest.warns(UserWarning, match="EASE left out of the evaluation: EASE on 6 movies needs"):
        scorers = baseline_scorers(_prep())
    assert [s.name for s in scorers] == ["most-popular", "item-knn"]


def test_embedding_scorer_is_weighted_dot_plus_bias() -> None:
    vectors = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    scorer = EmbeddingScorer("e", vectors, torch.tensor([0.0, 0.5, -1.0]))
    out = scorer.score(torch.tensor([[0, 1]]), torch.tensor([[0.5, 0.5]]))
    assert out[0].tolist() == pytest.approx([0.5, 1.0, 0.0])
    per_split = EmbeddingScorer("e", {"val": vectors, "test": 2 * vectors}, query_rule=QueryRule((1.0, 1.0)))
    assert per_split.score(torch.tensor([[2]]), torch.tensor([[1.0]]), "test")[0].tolist() == [4.0, 4.0, 8.0]
    assert protocol_rule(per_split, "B", EvalConfig()) == QueryRule((1.0, 1.0))
    assert protocol_rule(per_split, "A", EvalConfig()) == QueryRule.latest()
    assert protocol_rule(MostPopular(_prep()), "B", EvalConfig(history_len=2, history_decay=0.5)) == QueryRule(
        (1.0, 0.5)
    )


def test_table_has_every_model_protocol_and_split() -> None:
    prep = _prep()
    table = evaluate_all([MostPopular(prep), ItemKNN(prep)], build_queries(prep, 3), prep.n_movies, EvalConfig(k=2))
    assert len(table) == 2 * 2 * 2
    assert set(table["protocol"]) == {"A", "B"} and set(table["split"]) == {"val", "test"}


def test_a_sample_of_users_scores_exactly_those_users() -> None:
    """The users drawn and the rest, each scored alone, add up to the whole: every sampled user keeps their own
    history, target and masked movies (a wrong renumbering would mask another user's movies)."""
    from rec_lib.data.synthetic import SyntheticConfig, generate_tables

    tables = generate_tables(SyntheticConfig(n_users=120, n_movies=80, n_ratings=3_000, seed=3))
    prep = preprocess(MovieLensData("toy", "dat", tables.ratings, tables.movies, tables.users))
    queries = build_queries(prep, history_len=5)
    scorer = EmbeddingScorer("random", torch.randn(prep.n_movies, 8, generator=torch.Generator().manual_seed(0)))
    sample = queries.sample(50, seed=7)
    drawn = [queries.sample(50, seed).users.tolist() for seed in (7, 7, 8)]
    assert sample.users.tolist() == drawn[0] == drawn[1] != drawn[2]
    positions = torch.searchsorted(queries.users, sample.users)
    rest = torch.ones(queries.users.numel(), dtype=torch.bool)
    rest[positions] = False
    rest_queries = type(queries)(
        queries.users[rest],
        {name: split.subset(rest.nonzero().ravel()) for name, split in queries.splits.items()},
        queries.popularity_percentile,
    )
    config = EvalConfig(k=5, batch_users=16)
    for protocol in ("A", "B"):
        whole = evaluate(scorer, queries, protocol, prep.n_movies, config)
        parts = [evaluate(scorer, q, protocol, prep.n_movies, config) for q in (sample, rest_queries)]
        for split in ("val", "test"):
            assert parts[0][split].users == 50 and parts[1][split].users == queries.users.numel() - 50
            for metric in ("hr", "ndcg", "popularity"):
                total = sum(getattr(p[split], metric) * p[split].users for p in parts)
                assert total == pytest.approx(getattr(whole[split], metric) * whole[split].users, rel=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_scorers_on_cuda_give_the_cpu_metrics() -> None:
    """PinSage's vectors, popularity, item-kNN and EASE scored, masked and ranked on the GPU: the CPU's metrics."""
    from rec_lib.data.synthetic import SyntheticConfig, generate_tables
    from rec_lib.experiments.runs import baseline_scorers

    tables = generate_tables(SyntheticConfig(n_users=150, n_movies=90, n_ratings=4_000, seed=4))
    prep = preprocess(MovieLensData("toy", "dat", tables.ratings, tables.movies, tables.users))
    queries = build_queries(prep, history_len=5)
    vectors = torch.randn(prep.n_movies, 8, generator=torch.Generator().manual_seed(1))

    def table(on: str) -> pd.DataFrame:
        scorers = [EmbeddingScorer("pinsage", {"val": vectors, "test": 2 * vectors}, device=on)]
        scorers += baseline_scorers(prep, device=on)
        assert [s.name for s in scorers] == ["pinsage", "most-popular", "item-knn", "ease"]
        return evaluate_all(scorers, queries, prep.n_movies, EvalConfig(k=5, batch_users=64))

    # cuSOLVER and cuSPARSE sum in another order than the CPU libraries: a near-tie may rank the other way for a
    # user or two, never more
    columns = ["model", "protocol", "split", "hr", "ndcg"]
    pd.testing.assert_frame_equal(table("cuda")[columns], table("cpu")[columns], atol=2 / 150, rtol=0)


def test_baselines_are_tuned_on_validation_only(tmp_path) -> None:
    from helpers import synthetic

    from rec_lib.experiments.tuning import tune_baselines

    prep, _ = synthetic(tmp_path)
    table = tune_baselines(prep, EvalConfig(), l2s=(10.0, 500.0), decays=(0.5, 0.9))
    assert len(table) == 2 + 2 * 2 and set(table["model"]) == {"item-knn", "ease"}
    for _, rows in table.groupby("model"):
        chosen = rows[rows["chosen"]]
        assert len(chosen) == 1 and chosen["val_hr_B"].iloc[0] == rows["val_hr_B"].max()
    for _, row in table.iterrows():
        assert np.mean(row["test_hits_B"]) == pytest.approx(row["test_hr_B"]), "per-user results for the intervals"
    knn = table[table["model"] == "item-knn"]
    assert knn["val_hr_B"].nunique() > 1 or knn["test_hr_B"].nunique() > 1, "the decay changes the ranking"
