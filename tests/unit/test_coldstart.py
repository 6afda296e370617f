"""Cold start: the held-out split, its events, tie-aware metrics, unseen ids and the feature vocabulary."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import PLANTED, synthetic

from rec_lib.cli import main
from rec_lib.data.synthetic import generate_ml1m
from rec_lib.errors import ConfigError
from rec_lib.evaluation.baselines import PopularNew
from rec_lib.evaluation.coldstart import (
    COLD_SPLIT,
    COLD_VAL_SPLIT,
    ColdEvents,
    cold_events,
    cold_start_split,
    cold_validation_slices,
    cold_validation_split,
    evaluate_cold,
)
from rec_lib.evaluation.config import EvalConfig
from rec_lib.experiments.coldstart import summarise_cold
from rec_lib.pinsage.config import SamplerConfig
from rec_lib.pinsage.graph import EMPTY_TITLE, FeatureVocab, build_graph, movie_features
from rec_lib.pinsage.layers import MovieIds
from rec_lib.pinsage.model import PinSageModel
from rec_lib.pinsage.sampler import SequenceSampler, TorchPinSageSampler, sample_blocks


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    return synthetic(tmp_path_factory.mktemp("cold"))


def test_the_newest_eligible_movies_are_held_out_of_training(planted) -> None:
    prep, _ = planted
    split = cold_start_split(prep, share=0.2, revealed=(0, 1, 3, 10))
    inter = prep.interactions
    per_movie = inter.groupby("movie_idx")["timestamp"].agg(["min", "size"])
    eligible = per_movie[per_movie["size"] > 10]
    assert set(split.new_movies) <= set(eligible.index) and len(split.new_movies) == int(len(eligible) * 0.2)
    newest_old = eligible.drop(index=split.new_movies)["min"].max()
    assert eligible.loc[split.new_movies, "min"].min() >= newest_old, "held out: the newest by first rating"
    assert not split.warm.interactions["movie_idx"].isin(split.new_movies).any()
    assert len(split.warm.interactions) + int((split.position >= 0).sum()) == len(inter)
    warm_counts = split.warm.interactions.groupby("user_idx")["split"].value_counts().unstack()
    assert (warm_counts["test"] <= 1).all() and (warm_counts["val"] <= 1).all()
    for movie in split.new_movies[:5]:
        rows = np.flatnonzero(inter["movie_idx"].to_numpy() == movie)
        times = inter["timestamp"].to_numpy()[rows]
        order = split.position[rows]
        assert sorted(order.tolist()) == list(range(len(rows)))
        assert (np.diff(times[np.argsort(order)]) >= 0).all(), "positions follow the movie's timeline"
    revealed = split.revealed(3)
    kept = revealed.interactions["movie_idx"].isin(split.new_movies)
    assert kept.sum() == 3 * len(split.new_movies) and (revealed.interactions["split"] == "train").all()
    assert split.warm.manifest["fingerprint"] != prep.manifest.get("fingerprint")


def test_cold_val_holds_out_the_next_newest_movies_and_never_sees_cold_test(planted) -> None:
    prep, _ = planted
    test = cold_start_split(prep, share=0.2)
    val = cold_validation_split(test)
    assert test.name == COLD_SPLIT and val.name == COLD_VAL_SPLIT
    assert val.prep is test.warm and val.events_after == test.events_after and val.share == test.share
    assert not set(val.new_movies) & set(test.new_movies)
    first = prep.interactions.groupby("movie_idx")["timestamp"].min()
    assert first[val.new_movies].max() <= first[test.new_movies].min(), "cold-val's movies came before cold-test's"
    for data in (val.prep, val.warm, val.revealed(10)):
        assert not data.interactions["movie_idx"].isin(test.new_movies).any(), "no cold-test interaction at all"
    assert not val.warm.interactions["movie_idx"].isin(val.new_movies).any()
    assert cold_events(val, history_len=5).n == int((val.position >= val.events_after).sum()) > 0


def test_cold_val_slices_go_back_in_time_and_never_see_a_later_slice(planted) -> None:
    prep, _ = planted
    test = cold_start_split(prep, share=0.2)
    slices = cold_validation_slices(test, 3)
    assert len(slices) == 3 and all(s.name == COLD_VAL_SPLIT for s in slices)
    assert np.array_equal(slices[0].new_movies, cold_validation_split(test).new_movies)
    first = prep.interactions.groupby("movie_idx")["timestamp"].min()
    later = test.new_movies
    for older in slices:
        assert first[older.new_movies].max() <= first[later].min(), "each slice's movies came before the next's"
        assert not older.prep.interactions["movie_idx"].isin(later).any(), "no later slice's interaction"
        assert cold_events(older, history_len=5).n > 0
        later = np.union1d(later, older.new_movies)
    with pytest.raises(ConfigError, match="at least 1"):
        cold_validation_slices(test, 0)


def test_a_share_that_holds_out_nothing_is_refused(planted) -> None:
    prep, _ = planted
    with pytest.raises(ConfigError, match="holds out none"):
        cold_start_split(prep, share=0.001)
    with pytest.raises(ConfigError, match="between 0 and 1"):
        cold_start_split(prep, share=1.0)


def test_events_see_only_the_past_and_mask_new_movies_already_seen(planted) -> None:
    prep, _ = planted
    split = cold_start_split(prep, share=0.2)
    events = cold_events(split, history_len=5)
    inter = prep.interactions
    rows = np.flatnonzero(split.position >= split.events_after)
    assert events.n == len(rows) and (split.position[rows] >= 10).all()
    for e in (0, events.n // 2, events.n - 1):
        row = rows[e]
        user = inter["user_idx"].iloc[row]
        before = inter.iloc[:row]
        earlier = before[before["user_idx"] == user]["movie_idx"].to_numpy()[::-1]
        present = events.history_mask[e].bool()
        assert events.history[e][present].tolist() == earlier[:5].tolist(), "the latest five, latest first"
        masked = split.new_movies[events.seen_cols[events.seen_rows == e]]
        assert sorted(masked.tolist()) == sorted(set(earlier.tolist()) & set(split.new_movies.tolist()))
        assert split.new_movies[events.target[e]] == inter["movie_idx"].iloc[row]


class _Oracle:
    name, query_rule = "oracle", None

    def __init__(self, events: ColdEvents, new_movies: np.ndarray, n_movies: int) -> None:
        self.target = new_movies[events.target.numpy()]
        self.n_movies, self.start = n_movies, 0

    def score(self, movies: torch.Tensor, weights: torch.Tensor, split: str = "val") -> torch.Tensor:
        scores = torch.zeros(movies.shape[0], self.n_movies)
        scores[torch.arange(movies.shape[0]), torch.from_numpy(self.target[self.start : self.start + len(movies)])] = 1
        self.start += len(movies)
        return scores


def test_an_oracle_hits_every_event_and_a_blind_scorer_is_at_chance(planted) -> None:
    prep, _ = planted
    split = cold_start_split(prep, share=0.2)
    events = cold_events(split, history_len=5)
    config = EvalConfig(k=3, batch_users=7)
    oracle = evaluate_cold(_Oracle(events, split.new_movies, prep.n_movies), events, split.new_movies, config)
    assert oracle.hr == pytest.approx(1.0) and oracle.ndcg == pytest.approx(1.0) and oracle.events == events.n
    blind = evaluate_cold(PopularNew(split, revealed=0), events, split.new_movies, config)
    unseen = len(split.new_movies) - np.bincount(events.seen_rows, minlength=events.n)
    assert blind.hr == pytest.approx(float(np.mean(np.minimum(1.0, 3 / unseen))), rel=1e-5)


def test_summary_is_mean_and_sd_over_seeds() -> None:
    rows = pd.DataFrame(
        {
            "model": ["pinsage"] * 4 + ["content"] * 2,
            "revealed": [0, 0, 3, 3, 0, 3],
            "hr": [0.2, 0.4, 0.3, 0.5, 0.1, 0.1],
            "split": [COLD_SPLIT] * 6,
        }
    )
    summary = summarise_cold(rows).set_index(["model", "revealed"])
    assert summary.loc[("pinsage", 3), "hr_mean"] == pytest.approx(0.4)
    assert summary.loc[("pinsage", 0), "hr_sd"] == pytest.approx(np.std([0.2, 0.4], ddof=1))
    assert summary.loc[("content", 0), "runs"] == 1 and summary.loc[("content", 0), "hr_sd"] == 0.0


def test_unseen_movies_share_one_id_row_and_id_dropout_only_trains() -> None:
    ids = MovieIds(torch.tensor([True, False, True]), n_movies=5, dropout=0.5)
    assert ids.rows.tolist() == [0, 3, 2, 3, 3], "no training edge or added later: the unseen row"
    ids.eval()
    ids.resample()
    assert ids(torch.tensor([0, 2] * 50)).tolist() == [0, 2] * 50
    with pytest.raises(ValueError, match="must lie in"):
        MovieIds(torch.tensor([True]), 1, dropout=1.0)


def test_without_id_dropout_the_unseen_row_learns_from_movies_no_one_rated_in_training(planted) -> None:
    """The default (no id dropout): a catalogue movie without a training interaction is drawn as a negative,
    reads the unseen row, and so trains its id embedding and bias; a step without one leaves them alone."""
    prep, _ = planted
    warm = cold_start_split(prep, share=0.2).warm
    graph = build_graph(warm)
    assert not bool(graph.trained.all()), "the held-out movies are nodes without training interactions"
    train = warm.split("train")
    sequences = torch.tensor(train[["user_idx", "movie_idx"]].to_numpy().T.copy())
    walker = TorchPinSageSampler(graph, SamplerConfig(num_neighbours=3))
    sampler = SequenceSampler(walker, walker, 2, sequences, history_len=4)
    model = PinSageModel(graph.features, graph.trained, 16, 2, 0.0, temperature=0.1, id_dropout=0.0)
    unseen = model.ids.unseen
    torch.manual_seed(0)
    grads = []
    for n_negatives in (200, 0):
        batch = sampler.sample(16, n_negatives)
        model.zero_grad()
        model.sequence_loss(batch, "softmax").backward()
        reads_unseen = bool((model.ids(batch.blocks[0].src_nodes) == unseen).any())
        id_grad = model.projector.id_embedding.weight.grad[unseen].abs().sum()
        grads.append((reads_unseen, id_grad, model.bias.grad[unseen]))
    (with_negatives, id_grad, bias_grad), (without, still_id, still_bias) = grads
    assert with_negatives and id_grad > 0 and bias_grad != 0
    assert not without and still_id == 0 and still_bias == 0


def test_id_dropout_drops_a_movie_in_every_lookup_of_a_step() -> None:
    ids = MovieIds(torch.ones(4000, dtype=torch.bool), n_movies=4000, dropout=0.5).train()
    movies = torch.arange(4000)
    assert (ids(movies) == movies).all(), "nothing is dropped before a step draws"
    torch.manual_seed(0)
    ids.resample()
    first = ids(movies) == ids.unseen
    assert 0.45 < float(first.float().mean()) < 0.55
    assert torch.equal(ids(movies) == ids.unseen, first), "the same movies in every lookup of the step"
    assert torch.equal(ids.is_dropped(movies), first)
    ids.resample()
    assert not torch.equal(ids(movies) == ids.unseen, first), "each step draws again"


def test_a_dropped_movie_trains_as_a_brand_new_one(planted) -> None:
    """In a training step a dropped movie reads the unseen id and no neighbours, at every layer: the vectors
    equal those of an evaluation on blocks where the dropped movies have no neighbours and no id."""
    _, graph = planted
    torch.manual_seed(0)
    model = PinSageModel(graph.features, graph.trained, 16, 2, 0.0, id_dropout=0.5)
    sampler = TorchPinSageSampler(graph, SamplerConfig(num_neighbours=3, num_random_walks=20))
    blocks = sample_blocks(sampler, torch.arange(40), num_layers=2)
    assert all(bool((block.weights > 0).any(1).all()) for block in blocks), "every node has neighbours here"
    model.train()
    torch.manual_seed(1)
    trained = model.representation(blocks)
    dropped = model.ids.dropped.clone()
    assert 0 < int(dropped[:40].sum()) < 40
    model.eval()
    isolated = [replace(b, weights=b.weights.masked_fill(dropped[b.dst_nodes].unsqueeze(1), 0)) for b in blocks]
    model.ids.rows[dropped] = model.ids.unseen
    assert torch.allclose(trained, model.representation(isolated), atol=1e-6)
    assert not torch.allclose(trained, model.representation(blocks), atol=1e-3)
    keeping = PinSageModel(graph.features, graph.trained, 16, 2, 0.0, id_dropout=0.5, drop_neighbourhood=False)
    keeping.load_state_dict(model.state_dict())
    keeping.train()
    torch.manual_seed(1)
    kept = keeping.representation(blocks)
    assert torch.equal(keeping.ids.dropped, dropped)
    assert not torch.allclose(kept, trained, atol=1e-3), "drop_neighbourhood=False keeps the neighbours"


def test_a_new_movie_is_encoded_under_the_trained_vocabulary() -> None:
    trained = pd.DataFrame({"title": ["Alpha Wolf (1990)"], "year": [1990], "genres": [["Drama"]]})
    vocab = FeatureVocab.of(trained, min_word_movies=1)
    new = pd.DataFrame(
        {"title": ["Wolf Unknownword (2031)", "Zzz (1990)"], "year": [2031, None], "genres": [["Drama", "Noir"], []]}
    )
    features = movie_features(new, vocab)
    assert features.genres.tolist() == [[1.0], [0.0]], "a genre the model never saw is left out"
    assert features.year_index.tolist() == [1, 0], "an unseen year reads the nearest known one; none: unknown"
    first = features.title_tokens[features.title_offsets[0] : features.title_offsets[1]].tolist()
    assert [vocab.title_words[t] for t in first] == ["wolf"]
    assert features.title_tokens[features.title_offsets[1] :].tolist() == [0], "no known word: the empty title"
    assert FeatureVocab.from_dict(json.loads(json.dumps(vocab.to_dict()))) == vocab


def test_a_title_word_needs_enough_movies_to_get_an_embedding() -> None:
    titles = ["Alpha Wolf Wolf (1990)", "Wolf Pack (1991)", "Beta (1992)", "Alpha Beta (1993)"]
    trained = pd.DataFrame({"title": titles, "year": [1990, 1991, 1992, 1993], "genres": [["Drama"]] * 4})
    assert FeatureVocab.of(trained, min_word_movies=2).title_words == (EMPTY_TITLE, "alpha", "beta", "wolf")
    assert FeatureVocab.of(trained, min_word_movies=3).title_words == (EMPTY_TITLE,), "a word counts once per movie"
    assert len(FeatureVocab.of(trained, min_word_movies=1).title_words) == 5


def test_cold_start_cli_writes_cold_rows_beside_the_warm_ones(tmp_path: Path, capsys) -> None:
    generate_ml1m(tmp_path / "data" / "planted", PLANTED)
    art = tmp_path / "art"
    args = ["cold-start", "--dataset", "planted", "--data-dir", str(tmp_path / "data"), "--artefacts-dir", str(art)]
    args += ["--no-download", "--device", "cpu", "--hidden-dims", "8", "--num-epochs", "1", "--batches-per-epoch", "3"]
    assert main([*args, "--share", "0"]) != 0, "a share of 0 is refused, not read as the default"
    assert "share=0.0 must lie strictly between 0 and 1" in capsys.readouterr().err
    assert main([*args, "--share", "0.2"]) == 0
    out = capsys.readouterr().out
    assert "held out" in out and "wrote" in out
    (evaluation,) = list(art.glob("planted/pinsage-*/evaluation.json"))
    rows = pd.DataFrame(json.loads(evaluation.read_text())["rows"])
    cold = rows[rows["split"] == COLD_SPLIT]
    assert set(cold["model"]) == {"pinsage", "content", "popular-new", "popular-new-live", "item-knn", "ease"}
    assert sorted(cold["revealed"].unique()) == [0, 1, 3, 10] and (cold["events"] > 0).all()
    assert set(rows.loc[rows["split"] != COLD_SPLIT, "split"]) == {"val", "test"}
    assert not (art / "planted" / "latest-run.json").exists(), "the cold-start run is not the product's run"
