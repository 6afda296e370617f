"""Training: learns planted structure, checkpoints and resumes, validates its settings."""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path

import pytest
import torch
from helpers import synthetic

from rec_lib.errors import ConfigError
from rec_lib.evaluation.baselines import MostPopular
from rec_lib.evaluation.protocol import build_queries, evaluate
from rec_lib.pinsage.checkpoint import CHECKPOINT_BEST, CHECKPOINT_LAST, config_identity, load_checkpoint
from rec_lib.pinsage.config import ADDED_SETTINGS, TrainConfig
from rec_lib.pinsage.graph import TEST_TIME_GRAPH, FeatureVocab, build_graph
from rec_lib.pinsage.train import train

QUICK = TrainConfig(
    dataset="synthetic",
    hidden_dims=32,
    num_epochs=3,
    batches_per_epoch=60,
    lr=3e-3,
    positive_sampling="next",
    device="cpu",
    patience=5,
)


def test_short_training_beats_random_and_most_popular(tmp_path: Path) -> None:
    prep, graph = synthetic(tmp_path)
    result = train(prep, graph, QUICK, test_graph=build_graph(prep, TEST_TIME_GRAPH))
    queries = build_queries(prep, QUICK.history_len)
    random_hr = QUICK.eval_k / graph.n_movies
    pinsage = evaluate(result.scorer(), queries, "B", graph.n_movies)
    popular = evaluate(MostPopular(prep), queries, "B", graph.n_movies)
    for split in ("val", "test"):
        assert pinsage[split].hr > popular[split].hr + 0.05, split
        assert pinsage[split].hr > 2 * random_hr, split
    scored_dims = QUICK.hidden_dims + graph.features.content.shape[1]
    assert result.vectors.shape == result.test_vectors.shape == (graph.n_movies, scored_dims)
    assert torch.isfinite(result.vectors).all()
    assert result.history[-1].loss < result.history[0].loss
    assert not torch.equal(result.vectors, result.test_vectors), "test vectors see the validation edges"
    assert len(result.query_rule.position_weights) == QUICK.history_len


def test_test_vectors_come_from_the_graph_with_validation_edges(tmp_path: Path) -> None:
    """Inductive scoring of the test movie: same model, neighbourhoods sampled on training + validation edges."""
    from rec_lib.pinsage.inference import movie_vectors
    from rec_lib.pinsage.model import build_model
    from rec_lib.pinsage.sampler import TorchPinSageSampler

    prep, graph = synthetic(tmp_path)
    test_graph = build_graph(prep, TEST_TIME_GRAPH)
    quick = replace(QUICK, num_epochs=1, batches_per_epoch=5)
    result = train(prep, graph, quick, checkpoint_dir=tmp_path / "run", test_graph=test_graph)
    _, model = load_checkpoint(tmp_path / "run" / CHECKPOINT_BEST, graph)
    assert test_graph.graph.num_edges("watched") == graph.graph.num_edges("watched") + len(prep.split("val"))
    generator = torch.Generator().manual_seed(QUICK.seed)
    sampler = TorchPinSageSampler(test_graph, QUICK.sampler, generator=generator)
    expected = movie_vectors(model, sampler, graph.n_movies, QUICK.num_layers, torch.device("cpu"))
    assert expected.shape == result.test_vectors.shape
    assert build_model(QUICK, graph).query_rule().length == QUICK.history_len


def test_the_previous_pairs_recipe_still_trains(tmp_path: Path) -> None:
    prep, graph = synthetic(tmp_path)
    pairs = replace(QUICK, objective="pairs", loss="margin", query_pooling="fixed", num_epochs=1, batches_per_epoch=20)
    result = train(prep, graph, pairs)
    assert torch.isfinite(result.vectors).all()
    fixed = result.query_rule.weights(3)
    assert fixed.tolist() == pytest.approx([1 / 2.71, 0.9 / 2.71, 0.81 / 2.71], rel=1e-4), "0.9^age, not learned"


def test_checkpoints_resume_where_they_stopped(tmp_path: Path) -> None:
    prep, graph = synthetic(tmp_path)
    one = replace(QUICK, num_epochs=1, batches_per_epoch=20)
    first = train(prep, graph, one, checkpoint_dir=tmp_path / "run")
    assert (tmp_path / "run" / CHECKPOINT_LAST).is_file() and (tmp_path / "run" / CHECKPOINT_BEST).is_file()
    resumed = train(prep, graph, replace(one, num_epochs=2), checkpoint_dir=tmp_path / "run")
    assert [h.epoch for h in resumed.history] == [0, 1]
    assert resumed.history[0] == first.history[0]
    config, model = load_checkpoint(tmp_path / "run" / CHECKPOINT_BEST, graph)
    assert config.hidden_dims == one.hidden_dims and model.biases().shape == (graph.n_movies,)
    with pytest.raises(ConfigError, match="different settings"):
        train(prep, graph, replace(one, lr=1e-2, num_epochs=3), checkpoint_dir=tmp_path / "run")
    other_words = build_graph(prep, vocab=FeatureVocab.of(prep.movies, min_word_movies=2))
    assert other_words.features.vocab != graph.features.vocab
    with pytest.raises(ConfigError, match="another feature vocabulary"):
        train(prep, other_words, replace(one, num_epochs=3), checkpoint_dir=tmp_path / "run")


def test_same_seed_same_model(tmp_path: Path) -> None:
    """Bit for bit on one thread (with more, CPU reductions may sum in another order: ~1e-7 apart)."""
    prep, graph = synthetic(tmp_path)
    config = replace(QUICK, num_epochs=1, batches_per_epoch=10)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert torch.equal(train(prep, graph, config).vectors, train(prep, graph, config).vectors)
    finally:
        torch.set_num_threads(threads)


def test_settings_are_validated() -> None:
    with pytest.raises(ConfigError, match="batch_size=0"):
        replace(QUICK, batch_size=0).validate()
    with pytest.raises(ConfigError, match="objective='pairs' needs loss='margin'"):
        replace(QUICK, objective="pairs").validate()
    with pytest.raises(ConfigError, match="loss='hinge'"):
        replace(QUICK, loss="hinge").validate()
    with pytest.raises(ConfigError, match="temperature=0"):
        replace(QUICK, temperature=0.0).validate()
    with pytest.raises(ConfigError, match="unknown TrainConfig settings: \\['hiden_dims'\\]"):
        TrainConfig.from_dict({"hiden_dims": 3})
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="device='cuda' but torch sees no CUDA device"):
            replace(QUICK, device="cuda").validate()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_training_on_cuda(tmp_path: Path) -> None:
    prep, graph = synthetic(tmp_path)
    torch.cuda.reset_peak_memory_stats()
    result = train(prep, graph, replace(QUICK, device="cuda", num_epochs=1))
    assert result.vectors.device.type == "cpu" and torch.isfinite(result.vectors).all()
    assert torch.cuda.max_memory_allocated() > 0, "training ran on the GPU, not the CPU"


def test_settings_added_later_keep_earlier_runs_where_they_were() -> None:
    """A run saved before the query encoder, the target window and consecutive targets existed reads back with the
    values it trained with and keeps its directory (its identity); changing any of them gives another run."""
    earlier = replace(TrainConfig(), batch_size=256, **ADDED_SETTINGS)
    saved = {name: value for name, value in asdict(earlier).items() if name not in ADDED_SETTINGS}
    assert TrainConfig.from_dict(saved) == earlier
    identity = config_identity(earlier)
    assert not set(ADDED_SETTINGS) & set(identity), "the identity is what it was before they existed"
    for change in ({"query_encoder": "attention"}, {"target_window": 3}, {"consecutive_targets": 8}):
        assert config_identity(replace(earlier, **change)) != identity
    assert config_identity(TrainConfig())["consecutive_targets"] == 8, "today's defaults are a run of their own"
