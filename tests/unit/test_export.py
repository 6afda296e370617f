"""Export: vectors from the trained model, the [h, b]·[q, 1] identity, saving, validation, sanity views."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import synthetic
from test_train import QUICK

from rec_lib.contracts import EMBEDDINGS_NAME, QueryRule, SetRule, load_embeddings, query_vectors, save_embeddings
from rec_lib.errors import ConfigError, InvalidVectorsError, RecLibError
from rec_lib.evaluation.protocol import EmbeddingScorer
from rec_lib.experiments.runs import load_scorer, run_dir, train_run
from rec_lib.pinsage.export import export_embeddings, nearest_neighbours, projection_2d
from rec_lib.pinsage.set_rule import SetRuleFitConfig


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("export")
    prep, graph = synthetic(tmp_path)
    config = replace(QUICK, num_epochs=1, batches_per_epoch=10)
    train_run(prep, graph, config, artefacts_dir=tmp_path / "a")
    directory = run_dir(prep, config, tmp_path / "a")
    return prep, graph, directory, export_embeddings(prep, graph, directory, device="cpu", progress=False)


def test_export_is_complete_finite_and_saved_with_its_fingerprint(exported) -> None:
    prep, graph, directory, embeddings = exported
    assert embeddings.vectors.shape == (graph.n_movies, QUICK.hidden_dims + graph.features.content.shape[1])
    assert embeddings.vectors.dtype == np.float32 and np.isfinite(embeddings.vectors).all()
    np.testing.assert_array_equal(embeddings.movie_ids, prep.movies["movie_id"].to_numpy())
    again = load_embeddings(directory)
    np.testing.assert_array_equal(again.vectors, embeddings.vectors)
    assert again.fingerprint == embeddings.fingerprint and len(embeddings.fingerprint) == 16
    assert again.metadata["config"]["hidden_dims"] == QUICK.hidden_dims
    second = export_embeddings(prep, graph, directory, device="cpu", progress=False)
    assert second.fingerprint == embeddings.fingerprint, "same checkpoint, same fingerprint"
    np.testing.assert_allclose(second.vectors, embeddings.vectors, atol=1e-5)


def test_inner_product_of_stored_and_query_vectors_is_the_models_score(exported) -> None:
    _, _, _, embeddings = exported
    stored = embeddings.store_vectors()
    queries = query_vectors(stored[:5])
    model = EmbeddingScorer("m", torch.from_numpy(embeddings.vectors), torch.from_numpy(embeddings.bias))
    expected = model.score(torch.arange(5)[:, None], torch.ones(5, 1)).numpy()
    np.testing.assert_allclose(queries @ stored.T, expected, rtol=1e-4, atol=1e-4)


def test_the_set_rule_is_saved_with_the_vectors(exported, tmp_path: Path) -> None:
    prep, graph, directory, embeddings = exported
    assert embeddings.set_rule == SetRule(), "the product's rule unless one is chosen for the dataset"
    chosen = export_embeddings(prep, graph, directory, device="cpu", progress=False, set_rule=SetRule(2.0))
    assert chosen.set_rule == load_embeddings(directory).set_rule == SetRule(2.0)
    save_embeddings(embeddings, tmp_path)
    assert load_embeddings(tmp_path).set_rule == SetRule()
    fit = SetRuleFitConfig(batch_size=16, max_steps=20, check_every=10)
    learned = export_embeddings(prep, graph, directory, device="cpu", progress=False, learn_set_rule=fit)
    assert learned.set_rule.learned and len(learned.set_rule.prior_vector) == embeddings.dim
    assert learned.set_rule == load_embeddings(directory).set_rule, "the learned rule is saved with the vectors"


def test_a_corrupted_export_is_refused_naming_the_movies(exported, tmp_path: Path) -> None:
    _, _, _, embeddings = exported
    broken = replace(embeddings, vectors=embeddings.vectors.copy())
    broken.vectors[2, 1] = np.nan
    save_embeddings(broken, tmp_path)
    with pytest.raises(InvalidVectorsError, match=f"movie ids {embeddings.movie_ids[2]}$"):
        load_embeddings(tmp_path)
    with pytest.raises(RecLibError, match=f"{EMBEDDINGS_NAME} is missing"):
        load_embeddings(tmp_path / "nowhere")


def test_export_without_a_trained_model_says_to_train(exported, tmp_path: Path) -> None:
    prep, graph, _, _ = exported
    with pytest.raises(RecLibError, match="train first"):
        export_embeddings(prep, graph, tmp_path, progress=False)


def test_sanity_views(exported) -> None:
    prep, _, _, embeddings = exported
    ids = embeddings.movie_ids[:2].tolist()
    table = nearest_neighbours(embeddings, prep.movies, [*ids, 10**9], k=3)
    assert len(table) == 6 and table.groupby("query")["score"].apply(lambda s: s.is_monotonic_decreasing).all()
    titles = prep.movies.set_index("movie_id")["title"]
    assert not (table["query"] == table["neighbour"]).any()
    assert set(table["query"]) == {titles[i] for i in ids}
    points = projection_2d(embeddings.vectors)
    assert points.shape == (len(embeddings.movie_ids), 2)
    assert points[:, 0].var() >= points[:, 1].var()


def test_a_query_encoder_travels_in_the_export_and_as_json_exactly(tmp_path: Path) -> None:
    """A run trained with the attention exports an attending history rule; the file and its JSON form (the Milvus
    property) give it back exactly, and a rule saved before attention (its weights alone) is still read."""
    prep, graph = synthetic(tmp_path)
    config = replace(QUICK, num_epochs=1, batches_per_epoch=10, query_encoder="attention", attention_dims=4)
    train_run(prep, graph, config, artefacts_dir=tmp_path / "a")
    directory = run_dir(prep, config, tmp_path / "a")
    embeddings = export_embeddings(prep, graph, directory, device="cpu", progress=False)
    rule = embeddings.query_rule
    assert rule.attends and rule.attention.dims == config.hidden_dims and len(rule.attention.key_map[0]) == 4
    assert load_embeddings(directory).query_rule == rule
    assert QueryRule.from_saved(json.loads(json.dumps(rule.as_dict()))) == rule
    assert load_scorer(directory).query_rule == rule, "evaluation reads the rule the run saved"
    assert QueryRule.from_saved([0.5, 0.5]) == QueryRule((0.5, 0.5)), "a property written before attention"
    with pytest.raises(ConfigError, match="pass them"):
        rule.masked_weights(np.ones((1, 3)))
    with pytest.raises(ConfigError, match="reads 32-d vectors, got 8-d"):
        rule.query(np.ones((3, 9), dtype=np.float32))
