"""The liked-set protocol (held-out users, shuffled ticks), paired bootstrap intervals, and SASRec."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from rec_lib.contracts import SET_PRIOR_TICKS, QueryRule, SetRule
from rec_lib.data.loaders import MovieLensData
from rec_lib.data.preprocess import preprocess
from rec_lib.errors import ConfigError
from rec_lib.evaluation.baselines import ItemKNN, MostPopular, training_matrix
from rec_lib.evaluation.bootstrap import paired_bootstrap
from rec_lib.evaluation.config import TICK_DRAWS, EvalConfig, SASRecConfig
from rec_lib.evaluation.likedset import (
    PLAIN_MEAN,
    liked_set_queries,
    liked_set_rows,
    liked_set_split,
    score_liked_sets,
)
from rec_lib.evaluation.protocol import EmbeddingScorer, build_queries, evaluate
from rec_lib.evaluation.sasrec import draw_windows, train_sasrec, user_sequences
from rec_lib.experiments.likedset import (
    LEARNED_ABLATIONS,
    LEARNED_RULE,
    MULTI_INTEREST,
    PRIOR_TICKS_GRID,
    recall_table,
)
from rec_lib.experiments.tuning import BASELINE_L2
from rec_lib.pinsage.graph import build_graph


def _data(n_users: int = 40, n_movies: int = 30, seed: int = 0) -> MovieLensData:
    """Users who rate 12 movies each, half of them 4.0 or more, one second apart."""
    rng = np.random.default_rng(seed)
    rows = []
    for user in range(1, n_users + 1):
        for step, movie in enumerate(rng.choice(n_movies, size=12, replace=False)):
            rows.append((user, int(movie) + 1, float(rng.choice([2.0, 3.0, 4.0, 5.0])), 1_000_000 + step))
    ratings = pd.DataFrame(rows, columns=["user_id", "movie_id", "rating", "timestamp"]).astype({"rating": "float32"})
    movies = pd.DataFrame(
        {
            "movie_id": range(1, n_movies + 1),
            "title": [f"Movie {i} (2000)" for i in range(n_movies)],
            "year": [2000] * n_movies,
            "genres": [["Drama"]] * n_movies,
        }
    )
    return MovieLensData("toy", "csv", ratings, movies, None)


def test_held_out_users_leave_no_trace_in_training() -> None:
    prep = preprocess(_data())
    split = liked_set_split(prep, share=0.2, seed=3)
    held = np.r_[split.val_users, split.test_users]
    assert len(held) == 8 and len(split.val_users) == len(split.test_users) == 4
    assert not np.isin(split.train.interactions["user_idx"], held).any()
    graph = build_graph(split.train)
    user_degree = graph.user_to_movies.degrees().numpy()
    assert (user_degree[held] == 0).all() and (np.delete(user_degree, held) > 0).all(), "no edge of a held-out user"
    assert training_matrix(split.train)[held].nnz == 0, "no row of any baseline's matrix"
    again = liked_set_split(prep, share=0.2, seed=3)
    assert np.array_equal(again.test_users, split.test_users), "seeded"
    assert not np.array_equal(liked_set_split(prep, share=0.2, seed=4).test_users, split.test_users)
    with pytest.raises(ConfigError, match=r"share=1\.0"):
        liked_set_split(prep, share=1.0)


def test_folds_hold_out_disjoint_groups_of_test_users_and_fold_0_is_the_tables_split() -> None:
    prep = preprocess(_data())
    first = liked_set_split(prep, share=0.2, seed=3)
    assert "fold" not in first.train.manifest["liked_set"], "fold 0 keeps the identity of the runs made before folds"
    assert np.array_equal(liked_set_split(prep, share=0.2, seed=3, fold=0).test_users, first.test_users)
    held = [np.r_[first.val_users, first.test_users]]
    for fold in range(1, 5):
        split = liked_set_split(prep, share=0.2, seed=3, fold=fold)
        assert len(split.val_users) == 0 and len(split.test_users) == 8, "every held-out user of a later fold tests"
        assert not np.isin(split.train.interactions["user_idx"], split.test_users).any()
        assert split.train.manifest["fingerprint"] != first.train.manifest["fingerprint"]
        with pytest.raises(ConfigError, match="fold 0's val"):
            split.users("val")
        held.append(split.test_users)
    assert len(np.unique(np.concatenate(held))) == 5 * 8, "the folds' held-out users are disjoint"
    with pytest.raises(ConfigError, match=r"fold=5: a share of 0\.2 splits 40 users into folds 0 to 4"):
        liked_set_split(prep, share=0.2, seed=3, fold=5)


def test_ticks_are_liked_drawn_seeded_shuffled_and_short_users_are_counted() -> None:
    prep = preprocess(_data())
    split = liked_set_split(prep, share=0.5, seed=0)
    inter = prep.interactions
    for m in (1, 3, 5):
        queries = liked_set_queries(split, "test", m, seed=0, draws=1)
        liked = inter[inter["rating"] >= 4.0].groupby("user_idx")["movie_idx"].apply(set)
        enough = [u for u in split.test_users if len(liked.get(u, ())) >= m + 1]
        assert queries.users.tolist() == enough and queries.skipped == len(split.test_users) - len(enough)
        for row, user in enumerate(queries.users):
            ticks = set(queries.ticks[row].tolist())
            targets = set(queries.target_cols[queries.target_rows == row].tolist())
            assert len(ticks) == m and ticks | targets == liked[user] and not ticks & targets
        again = liked_set_queries(split, "test", m, seed=0, draws=1)
        assert torch.equal(again.ticks, queries.ticks), "seeded"
    ten = liked_set_queries(split, "test", 5, seed=0, draws=1)
    time_order = inter.groupby("user_idx")["movie_idx"].apply(list)
    in_time_order = [
        sorted(ten.ticks[row].tolist(), key=time_order[user].index) == ten.ticks[row].tolist()
        for row, user in enumerate(ten.users)
    ]
    assert not all(in_time_order), "handed over in a random order, not the order they were rated"


def test_recall_and_ndcg_by_hand() -> None:
    prep = preprocess(_data(n_users=20, n_movies=14))
    split = liked_set_split(prep, share=0.5, seed=0)
    queries = liked_set_queries(split, "test", 2, seed=0, draws=1)
    n, k = prep.n_movies, 3
    scores = score_liked_sets(ByIndex(n), PLAIN_MEAN, queries, n, EvalConfig(k=k))
    for row in range(len(queries.users)):
        recall, ndcg = _by_index_scores(queries, row, n, k)
        assert scores.recall[row] == pytest.approx(recall) and scores.ndcg[row] == pytest.approx(ndcg)
    assert scores.coverage == pytest.approx(len({m for m in range(n)} & set(range(k + 2))) / n, abs=k / n)
    assert 0.0 < scores.recall.mean() < 1.0


class ByIndex:
    """Ranks every movie by its index: movie 0 first."""

    name, query_rule = "by-index", None

    def __init__(self, n: int) -> None:
        self.n = n

    def score(self, movies, weights, split="val"):
        return -torch.arange(self.n, dtype=torch.float32).expand(len(movies), -1).clone()


def _by_index_scores(queries, row: int, n: int, k: int) -> tuple[float, float]:
    """Recall@K and NDCG@K by hand for row ``row`` of ``queries`` under :class:`ByIndex`'s ranking."""
    ticks = set(queries.ticks[row].tolist())
    targets = set(queries.target_cols[queries.target_rows == row].tolist())
    top = [movie for movie in range(n) if movie not in ticks][:k]
    hits = [rank for rank, movie in enumerate(top) if movie in targets]
    ideal = sum(1 / np.log2(rank + 2) for rank in range(min(k, len(targets))))
    return len(hits) / min(k, len(targets)), sum(1 / np.log2(rank + 2) for rank in hits) / ideal


def test_each_user_hands_over_several_independent_draws_and_scores_their_mean() -> None:
    prep = preprocess(_data(n_users=20, n_movies=14))
    split = liked_set_split(prep, share=0.5, seed=0)
    liked = prep.interactions[prep.interactions["rating"] >= 4.0].groupby("user_idx")["movie_idx"].apply(set)
    draws, n, k = 4, prep.n_movies, 3
    queries = liked_set_queries(split, "test", 2, seed=0, draws=draws)
    assert queries.ticks.shape == (draws * len(queries.users), 2)
    for position, user in enumerate(queries.users):
        drawn = []
        for row in range(position * draws, (position + 1) * draws):
            ticks = set(queries.ticks[row].tolist())
            targets = set(queries.target_cols[queries.target_rows == row].tolist())
            assert len(ticks) == 2 and ticks | targets == liked[user] and not ticks & targets
            drawn.append(frozenset(ticks))
        assert len(liked[user]) < 4 or len(set(drawn)) > 1, "independent draws, not one draw repeated"
    scores = score_liked_sets(ByIndex(n), PLAIN_MEAN, queries, n, EvalConfig(k=k))
    assert scores.recall.shape == (len(queries.users),)
    for position in range(len(queries.users)):
        by_hand = [_by_index_scores(queries, row, n, k) for row in range(position * draws, (position + 1) * draws)]
        assert scores.recall[position] == pytest.approx(np.mean([recall for recall, _ in by_hand]))
        assert scores.ndcg[position] == pytest.approx(np.mean([ndcg for _, ndcg in by_hand]))
    rows, per_user = liked_set_rows(
        [("by-index", ByIndex(n), PLAIN_MEAN)], split, sizes=(2,), config=EvalConfig(k=k), draws=draws
    )
    assert rows["users"].iloc[0] == len(queries.users), "users counted once, whatever the draws"
    assert per_user["by-index", 2].recall == pytest.approx(scores.recall)
    with pytest.raises(ConfigError, match="draws=0"):
        liked_set_queries(split, "test", 2, draws=0)


def test_the_set_rule_of_a_scorer_decides_which_tick_counts() -> None:
    prep = preprocess(_data(n_users=30))
    split = liked_set_split(prep, share=0.4, seed=1)
    vectors = torch.randn(prep.n_movies, 8, generator=torch.Generator().manual_seed(0))
    scorer = EmbeddingScorer("e", vectors)
    queries = liked_set_queries(split, "test", 3, seed=0)
    last_only = score_liked_sets(scorer, QueryRule.latest(), queries, prep.n_movies)
    rows, per_user = liked_set_rows(
        [("even", scorer, PLAIN_MEAN), ("last", scorer, QueryRule.latest())], split, sizes=(3,)
    )
    assert per_user["last", 3].recall == pytest.approx(last_only.recall)
    assert set(rows["model"]) == {"even", "last"} and (rows["split"] == "liked-test").all()
    assert rows["users"].iloc[0] + rows["skipped"].iloc[0] == len(split.test_users)
    knn = liked_set_rows([("item-knn", ItemKNN(split.train), PLAIN_MEAN)], split, sizes=(1, 3))[0]
    assert knn["m"].tolist() == [1, 3] and knn["recall"].between(0, 1).all()


def test_paired_bootstrap_on_hand_computable_hits() -> None:
    model = np.array([1.0, 1.0, 1.0, 0.0] * 50)
    baseline = np.array([1.0, 0.0, 0.0, 0.0] * 50)
    difference = paired_bootstrap(model, baseline, resamples=2000, seed=0)
    assert difference.mean == pytest.approx(0.5)
    half_width = 1.96 * np.std(model - baseline) / np.sqrt(200)  # the normal interval it should approach
    assert difference.low == pytest.approx(0.5 - half_width, abs=0.02)
    assert difference.high == pytest.approx(0.5 + half_width, abs=0.02) and difference.above_zero
    same = paired_bootstrap(model, model)
    assert (same.low, same.high) == (0.0, 0.0) and not same.above_zero
    with pytest.raises(ConfigError):
        paired_bootstrap(model, baseline[:-1])


def _cycles(n_users: int = 60, n_movies: int = 12, length: int = 10) -> MovieLensData:
    """Every user watches movies in the same cycle (m → m + 1), starting anywhere, never one twice: the next movie is
    planted."""
    rng = np.random.default_rng(0)
    rows = [
        (user, int((start + step) % n_movies) + 1, 4.0, 1_000_000 + step)
        for user, start in enumerate(rng.integers(0, n_movies, n_users), start=1)
        for step in range(length)
    ]
    ratings = pd.DataFrame(rows, columns=["user_id", "movie_id", "rating", "timestamp"]).astype({"rating": "float32"})
    data = _data(n_movies=n_movies)
    return MovieLensData("cycles", "csv", ratings, data.movies, None)


def test_sasrec_windows_are_the_movies_before_each_target() -> None:
    prep = preprocess(_cycles(n_users=30, length=6))
    assert prep.n_movies == 12, "every movie rated: indices follow ids"
    movies, bounds = user_sequences(prep)
    inputs, targets = draw_windows(movies, bounds, 4, 5, torch.Generator().manual_seed(0))
    assert inputs.shape == targets.shape == (30 * 4, 5)
    for tokens, wanted in zip(inputs, targets, strict=True):
        present = tokens > 0
        assert torch.equal(present, wanted >= 0), "a target where there is an input, none where padded"
        assert ((tokens[present] % prep.n_movies) == wanted[present]).all(), "each target follows its input"


def test_sasrec_learns_a_planted_next_movie() -> None:
    prep = preprocess(_cycles())
    config = SASRecConfig(
        hidden_dims=16, max_len=8, num_epochs=40, patience=40, lr=5e-3, dropout=0.0, eval_k=1, device="cpu"
    )
    result = train_sasrec(prep, config, progress=False)
    from rec_lib.evaluation.sasrec import SASRecScorer

    first = EvalConfig(k=1, history_len=8)
    queries = build_queries(prep, 8)
    hr = evaluate(SASRecScorer(result.model, config.max_len), queries, "B", prep.n_movies, first)["test"].hr
    assert hr > 0.9 and result.best_val_hr > 0.9, "the next movie of the cycle comes first"
    assert evaluate(MostPopular(prep), queries, "B", prep.n_movies, first)["test"].hr < 0.5


def test_the_sasrec_and_liked_set_commands_write_their_tables(tmp_path, capsys) -> None:
    import json

    from rec_lib.cli import main
    from rec_lib.data.synthetic import SyntheticConfig, generate_ml1m

    folder = generate_ml1m(tmp_path / "syn", SyntheticConfig(n_users=60, n_movies=80, n_ratings=1_500, seed=2))
    data = ["--dataset", "syn", "--data-dir", str(tmp_path), "--artefacts-dir", str(tmp_path / "a"), "--ties", "hash"]
    assert folder.name == "syn"
    quick = ["--num-epochs", "1", "--device", "cpu"]
    out = tmp_path / "sasrec.json"
    assert main(["sasrec", *data, *quick, "--hidden-dims", "8", "--seeds", "0", "1", "--out", str(out)]) == 0
    rows = json.loads(out.read_text())
    assert rows["metadata"]["ties"] == "hash" and rows["metadata"]["config"]["hidden_dims"] == 8
    assert {(r["seed"], r["protocol"], r["split"]) for r in rows["rows"]} == {
        (s, p, x) for s in (0, 1) for p in ("A", "B") for x in ("val", "test")
    }
    for row in rows["rows"]:
        kept = row.get("test_hits_B") is not None
        assert kept == ((row["protocol"], row["split"]) == ("B", "test")), "per-user results for the intervals"
        if kept:
            assert len(row["test_hits_B"]) == row["users"] and np.mean(row["test_hits_B"]) == pytest.approx(row["hr"])
    liked = tmp_path / "liked.json"
    train = ["--hidden-dims", "8", "--batches-per-epoch", "2", "--share", "0.3"]
    assert main(["liked-set", *data, *quick, *train, "--out", str(liked)]) == 0
    table = json.loads(liked.read_text())["rows"]
    models = {r["model"] for r in table if r.get("kind") != "interval"}
    assert models == {
        "pinsage (the product's set rule)",
        "pinsage, timeline rule on shuffled ticks",
        "pinsage, learned set rule",
        "pinsage, set rule with prior_ticks 0",
        "most-popular",
        "item-knn",
        "ease",
    }
    assert {r["m"] for r in table} == {1, 3, 5, 10}
    intervals = [r for r in table if r.get("kind") == "interval"]
    assert intervals and all(r["low"] <= r["difference"] <= r["high"] for r in intervals)
    assert "recall" in capsys.readouterr().out
    assert json.loads(liked.read_text())["metadata"]["prior_ticks"] == SET_PRIOR_TICKS
    assert json.loads(liked.read_text())["metadata"]["draws"] == TICK_DRAWS
    assert main(["liked-set", *data, *quick, *train, "--prior-ticks", "2", "--draws", "2", "--out", str(liked)]) == 0
    written = json.loads(liked.read_text())
    assert written["metadata"]["prior_ticks"] == 2.0, "the prior this dataset's validation chose is recorded"
    assert written["metadata"]["draws"] == 2
    assert written["metadata"]["ease_l2"] == 500.0
    assert {r["model"] for r in written["rows"] if r.get("kind") != "interval"} == models | {
        "pinsage, set rule with prior_ticks 8"
    }, "the product's prior stays in the table beside the chosen one"
    assert main(["liked-set", *data, *quick, *train, "--set-rule", "learned", "--out", str(liked)]) == 0
    written = json.loads(liked.read_text())
    assert written["metadata"]["set_rule"] == "learned"
    assert {r["model"] for r in written["rows"] if r.get("kind") != "interval"} == models - {
        "pinsage, learned set rule"
    } | {"pinsage, set rule with prior_ticks 8"}, "the learned rule heads the table, the fixed one beside it"
    assert main(["liked-set", *data, *quick, *train, "--prior-ticks", "-1", "--out", str(liked)]) != 0
    assert "prior_ticks must be finite and non-negative" in capsys.readouterr().err
    chosen = tmp_path / "liked-val.json"
    assert main(["liked-set", *data, *quick, *train, "--split", "val", "--seeds", "0", "1", "--out", str(chosen)]) == 0
    written = json.loads(chosen.read_text())
    grid = [r for r in written["rows"] if r["model"].startswith("pinsage, set rule with prior_ticks")]
    scored = [r for r in written["rows"] if r.get("kind") != "interval"]
    assert {r["seed"] for r in scored if r["model"].startswith("pinsage")} == {0, 1}
    assert {r["seed"] for r in scored if not r["model"].startswith("pinsage")} == {None}, "baselines once"
    assert len(grid) == 2 * 4 * 8, "every prior of the grid, every m, both seeds"
    assert written["metadata"]["chosen_prior_ticks"] in PRIOR_TICKS_GRID
    learned = {r["model"] for r in written["rows"] if r["model"].startswith("pinsage, learned set rule")}
    assert learned == {LEARNED_RULE, *LEARNED_ABLATIONS, MULTI_INTEREST}, "the learned rule and each of its ablations"
    assert isinstance(written["metadata"]["chosen_learned_rule"], bool)
    ease_grid = [r for r in written["rows"] if r["model"].startswith("ease, λ") and r.get("kind") != "interval"]
    assert len(ease_grid) == 4 * len(BASELINE_L2), "EASE with every λ of the baselines' grid, every m, once"
    assert written["metadata"]["chosen_ease_l2"] in BASELINE_L2
    assert "set rule chosen on validation" in capsys.readouterr().out
    folds = tmp_path / "liked-folds.json"
    assert main(["liked-set", *data, *quick, *train, "--folds", "0", "1", "--out", str(folds)]) == 0
    written = json.loads(folds.read_text())
    assert written["metadata"]["folds"] == [0, 1]
    union = [r for r in written["rows"] if r.get("kind") is None]
    per_fold = [r for r in written["rows"] if r.get("kind") == "fold"]
    assert {r["fold"] for r in per_fold} == {0, 1} and {r["model"] for r in union} == models
    for row in union:
        of_row = [r for r in per_fold if (r["model"], r["m"]) == (row["model"], row["m"])]
        assert row["users"] == sum(r["users"] for r in of_row) and row["folds"] == 2, "every fold's test users"
        weighted = sum(r["recall"] * r["users"] for r in of_row) / max(row["users"], 1)
        assert row["recall"] == pytest.approx(weighted), "the mean over every fold's users"
    table = recall_table(pd.DataFrame(written["rows"]))
    assert all(table.loc[r["model"], r["m"]] == pytest.approx(r["recall"]) for r in union), "the union, not the folds"
    assert any(r.get("kind") == "interval" for r in written["rows"])
    assert main(["liked-set", *data, *quick, *train, "--folds", "0", "1", "--split", "val", "--out", str(folds)]) != 0
    assert "fold 0's val" in capsys.readouterr().err


def test_a_dataset_gets_the_set_rule_its_validation_chose_else_the_products(tmp_path) -> None:
    import json

    from rec_lib.errors import RecLibError
    from rec_lib.experiments.likedset import SetRuleChoice, chosen_set_rule

    assert chosen_set_rule("nothing-run", tmp_path) == SetRuleChoice(False, SET_PRIOR_TICKS)
    (tmp_path / "syn-liked-set-val.json").write_text(json.dumps({"metadata": {"chosen_prior_ticks": 1.0}}))
    assert chosen_set_rule("syn", tmp_path).fixed_rule == SetRule(1.0), "a choice made before learned rules"
    metadata = {"chosen_prior_ticks": 2.0, "chosen_learned_rule": True}
    (tmp_path / "learned-liked-set-val.json").write_text(json.dumps({"metadata": metadata}))
    assert chosen_set_rule("learned", tmp_path) == SetRuleChoice(True, 2.0)
    (tmp_path / "bad-liked-set-val.json").write_text(json.dumps({"metadata": {}}))
    with pytest.raises(RecLibError, match=r"bad-liked-set-val\.json holds no chosen_prior_ticks"):
        chosen_set_rule("bad", tmp_path)

    def variants(transform: float, diagonal: float, users: tuple[int, int] = (10, 10)) -> dict:
        return {"rows": [{"model": "full transform", "m": 1, "users": users[0], "recall": transform},
                         {"model": "per-dimension weights", "m": 1, "users": users[1], "recall": diagonal},
                         {"model": "full transform", "m": 3, "users": 5, "recall": 0.0},
                         {"model": "per-dimension weights", "m": 3, "users": 5, "recall": 0.0}]}  # fmt: skip

    (tmp_path / "learned-liked-set-variants-val.json").write_text(json.dumps(variants(0.4, 0.3)))
    assert chosen_set_rule("learned", tmp_path) == SetRuleChoice(True, 2.0, transform=True)
    (tmp_path / "learned-liked-set-variants-val.json").write_text(json.dumps(variants(0.3, 0.3)))
    assert chosen_set_rule("learned", tmp_path) == SetRuleChoice(True, 2.0), "a tie keeps the weights"
    (tmp_path / "syn-liked-set-variants-val.json").write_text(json.dumps(variants(0.4, 0.3)))
    assert chosen_set_rule("syn", tmp_path) == SetRuleChoice(False, 1.0), "no transform without the learned rule"
    (tmp_path / "learned-liked-set-variants-val.json").write_text(json.dumps({"rows": []}))
    with pytest.raises(RecLibError, match="holds no rows of 'full transform'"):
        chosen_set_rule("learned", tmp_path)
    committed = Path(__file__).parents[2] / "reports" / "tuning"
    assert chosen_set_rule("ml-latest-small", committed) == SetRuleChoice(True, SET_PRIOR_TICKS, transform=True), (
        "the default dataset's validation chose the learned rule with its transform, and the product's fixed prior"
    )
    assert chosen_set_rule("synthetic-ml-1m", committed).transform is False, "ml-1m's shape kept the weights"


def test_the_variants_bench_compares_with_the_ease_its_dataset_validation_chose(tmp_path) -> None:
    import json

    from rec_lib.errors import RecLibError
    from rec_lib.experiments.likedset import chosen_liked_set_ease_l2

    (tmp_path / "syn-liked-set-val.json").write_text(json.dumps({"metadata": {"chosen_ease_l2": 30000.0}}))
    assert chosen_liked_set_ease_l2("syn", tmp_path) == 30000.0
    with pytest.raises(RecLibError, match=r"nothing-liked-set-val\.json holds no chosen_ease_l2"):
        chosen_liked_set_ease_l2("nothing", tmp_path)


def test_the_learned_set_rule_is_chosen_only_when_it_beats_the_chosen_fixed_one_on_validation() -> None:
    from rec_lib.evaluation.likedset import LikedSetScores
    from rec_lib.experiments.likedset import chosen_set_rule_is_learned, set_rule_name

    def scores(recall: list[float]) -> LikedSetScores:
        return LikedSetScores(np.array(recall), np.zeros(len(recall)), 0.1, 50.0)

    per_user = {(set_rule_name(4.0), m): scores([0.5, 0.25]) for m in (1, 3)}
    per_user |= {(LEARNED_RULE, 1): scores([0.5, 0.0]), (LEARNED_RULE, 3): scores([0.75, 0.5])}
    assert chosen_set_rule_is_learned(per_user, 4.0), "ahead over every user and query size together"
    per_user[LEARNED_RULE, 3] = scores([0.5, 0.5])
    assert not chosen_set_rule_is_learned(per_user, 4.0), "level: the fixed rule stays"


def test_the_set_rule_chosen_is_the_least_prior_within_the_users_noise_of_the_best() -> None:
    from rec_lib.evaluation.likedset import LikedSetScores
    from rec_lib.experiments.likedset import chosen_prior_ticks, set_rule_name

    rng = np.random.default_rng(0)
    base = rng.uniform(0.0, 1.0, size=200)
    lead = {0.0: -0.3, 1.0: -0.2, 2.0: -0.1, 4.0: -0.002, 8.0: -0.001, 16.0: 0.0, 32.0: -0.2, 64.0: -0.3}
    per_user = {
        (set_rule_name(prior), m): LikedSetScores(base + shift + rng.normal(0.0, 0.1, size=200), base, 0.1, 50.0)
        for prior, shift in lead.items()
        for m in (1, 3)
    }
    assert chosen_prior_ticks(per_user) == 4.0, "16 is best by a hair; 4 cannot be told apart from it; 2 can"


def test_eases_lambda_is_the_best_on_the_validation_users_and_a_tie_goes_to_the_smaller() -> None:
    from rec_lib.evaluation.likedset import LikedSetScores
    from rec_lib.experiments.likedset import chosen_ease_l2, ease_name

    def scores(recall: list[float]) -> LikedSetScores:
        return LikedSetScores(np.array(recall), np.zeros(len(recall)), 0.1, 50.0)

    best = BASELINE_L2[3]
    per_user = {
        (ease_name(l2), m): scores([0.5, 0.5] if l2 == best else [0.5, 0.0]) for l2 in BASELINE_L2 for m in (1, 3)
    }
    assert chosen_ease_l2(per_user) == best
    per_user[ease_name(BASELINE_L2[1]), 1] = per_user[ease_name(BASELINE_L2[1]), 3] = scores([0.5, 0.5])
    assert chosen_ease_l2(per_user) == BASELINE_L2[1], "level on the users: the smaller λ"


def test_multi_interest_retrieval_scores_each_movie_by_its_best_group_whatever_the_order() -> None:
    from rec_lib.evaluation.likedset import MultiInterest, tick_scores

    rng = np.random.default_rng(0)
    centres = np.array([[4.0, 0.0, 0.0], [0.0, 4.0, 0.0], [0.0, 0.0, 4.0]])
    vectors = torch.from_numpy((centres[np.arange(30) % 3] + rng.normal(size=(30, 3)) * 0.3).astype(np.float32))
    scorer = EmbeddingScorer("m", vectors, torch.zeros(30))
    multi = MultiInterest(SetRule(0.0), interests=2)
    ticks = torch.tensor([[0, 3, 6, 1, 4]])  # three from cluster 0, two from cluster 1
    groups = multi.groups(vectors[np.sort(ticks[0].numpy())].numpy())
    assert sorted(np.bincount(groups).tolist()) == [2, 3], "the planted clusters are the groups"
    scores = tick_scores(scorer, multi, ticks)
    for order in (ticks.flip(1), ticks[:, [2, 0, 4, 1, 3]]):
        assert torch.equal(tick_scores(scorer, multi, order), scores), "order-free"
    one_query = tick_scores(scorer, SetRule(0.0), ticks)

    def top_5_clusters(scores: torch.Tensor) -> list[int]:
        return torch.topk(scores[0].index_fill(0, ticks[0], -float("inf")), 5).indices.remainder(3).tolist()

    assert top_5_clusters(one_query) == [0] * 5, "one query: the larger interest fills the top"
    assert top_5_clusters(scores).count(1) >= 2, "one query per interest: the smaller one is served too"
    assert torch.equal(tick_scores(scorer, MultiInterest(SetRule(0.0), interests=1), ticks), one_query)
