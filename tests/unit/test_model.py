"""Layer shapes, normalisation, padding and gradients; the model's loss."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import synthetic

from rec_lib.contracts import QueryRule
from rec_lib.errors import ConfigError
from rec_lib.pinsage.config import SamplerConfig, TrainConfig
from rec_lib.pinsage.layers import MovieIds, MovieInputProjector, WeightedSAGEConv
from rec_lib.pinsage.model import PinSageModel
from rec_lib.pinsage.sampler import Block, PairSampler, SequenceSampler, TorchPinSageSampler, sample_blocks


def _block() -> Block:
    return Block(
        src_nodes=torch.tensor([10, 11, 12, 13]),
        dst_index=torch.tensor([1, 2]),
        neighbour_index=torch.tensor([[2, 3, 0], [0, 1, 0]]),
        weights=torch.tensor([[2.0, 1.0, 0.0], [1.0, 1.0, 0.0]]),
    )


def test_sage_layer_shape_and_unit_norm() -> None:
    torch.manual_seed(0)
    conv = WeightedSAGEConv(8, 6, 5, dropout=0.0)
    out = conv(_block(), torch.randn(4, 8))
    assert out.shape == (2, 5)
    norms = out.norm(dim=1)
    assert bool(torch.all(((norms - 1).abs() < 1e-5) | (norms == 0)))


def test_padded_neighbours_do_not_count() -> None:
    torch.manual_seed(0)
    conv = WeightedSAGEConv(8, 6, 5, dropout=0.0)
    h = torch.randn(4, 8)
    block = _block()
    changed = h.clone()
    changed[0] += 100.0  # node 0 is a padded neighbour of dst 0 and a weighted neighbour of dst 1
    assert torch.allclose(conv(block, h)[0], conv(block, changed)[0])
    assert not torch.allclose(conv(block, h)[1], conv(block, changed)[1])


def test_projector_uses_every_feature(tmp_path: Path) -> None:
    _, graph = synthetic(tmp_path)
    projector = MovieInputProjector(graph.features, MovieIds(graph.trained, graph.n_movies), 16)
    out = projector(torch.tensor([0, 1, 2]))
    out.sum().backward()
    assert out.shape == (3, 16)
    for name, parameter in projector.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_pair_loss_is_the_hinge_of_its_scores_and_trains_every_parameter(tmp_path: Path) -> None:
    torch.manual_seed(0)
    _, graph = synthetic(tmp_path)
    sampler = TorchPinSageSampler(graph, SamplerConfig(num_neighbours=5))
    batch = PairSampler(sampler, sampler, num_layers=2).sample(32)
    model = PinSageModel(graph.features, graph.trained, hidden_dims=16, num_layers=2, dropout=0.0)
    loss = model(batch.blocks, batch.heads, batch.positives, batch.negatives)
    h, nodes = model.representation(batch.blocks), batch.blocks[-1].dst_nodes
    margin = model.pair_scores(h, nodes, batch.heads, batch.negatives) - model.pair_scores(
        h, nodes, batch.heads, batch.positives
    )
    assert loss.item() == pytest.approx((margin + 1).clamp(min=0).mean().item(), rel=1e-5)
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert missing == ["position_logits"] or not missing
    assert model.bias.grad.abs().sum() > 0


def _sequence_batch(tmp_path: Path, prep_graph=None):
    prep, graph = prep_graph or synthetic(tmp_path)
    train = prep.split("train")
    sequences = torch.tensor(train[["user_idx", "movie_idx"]].to_numpy().T.copy())
    walker = TorchPinSageSampler(graph, SamplerConfig(num_neighbours=5))
    sampler = SequenceSampler(walker, walker, 2, sequences, history_len=4, hard_negative_ratio=0.2)
    return graph, sampler, sampler.sample(16, 24)


def _softmax_model(graph, **settings) -> PinSageModel:
    """A 16-d model under the sampled softmax with learned recency weights over 4 movies."""
    return PinSageModel(
        graph.features,
        graph.trained,
        16,
        2,
        0.0,
        temperature=0.1,
        query_rule=QueryRule.decay(4, 0.9),
        learn_query=True,
        **settings,
    )


def test_sampled_softmax_is_cross_entropy_over_candidates_with_history_masked(tmp_path: Path) -> None:
    torch.manual_seed(0)
    graph, _, batch = _sequence_batch(tmp_path)
    model = _softmax_model(graph)
    log_q = torch.rand(batch.candidate_ids.numel())
    logits = model.sequence_logits(batch, log_q)[0]
    h = model.representation(batch.blocks)
    assert torch.allclose(h.norm(dim=1), torch.tensor(0.1**-0.5)), "vectors are unit / sqrt(temperature)"
    weights = torch.softmax(model.position_logits, 0)
    row = 0
    present = batch.history_mask[row] > 0
    w = weights * present
    query = (w[:, None] * h[batch.history[row]]).sum(0) / w.sum()
    expected = query @ h[batch.candidates].T + model.biases()[batch.candidate_ids] - log_q
    for col in range(batch.candidate_ids.numel()):
        if batch.candidate_ids[col] in batch.history_ids[row]:
            assert logits[row, col] == -math.inf
        else:
            assert logits[row, col].item() == pytest.approx(expected[col].item(), rel=1e-4, abs=1e-5)
    assert torch.isfinite(logits.gather(1, batch.targets[:, None])).all(), "a target is never masked"
    loss = model.sequence_loss(batch, "softmax", log_q)
    assert loss.item() == pytest.approx(torch.nn.functional.cross_entropy(logits, batch.targets).item(), rel=1e-5)
    loss.backward()
    assert model.position_logits.grad.abs().sum() > 0, "the query rule is learned"
    assert model.query_rule().position_weights == pytest.approx(weights.tolist())


def test_sequence_margin_loss_counts_only_unmasked_other_candidates(tmp_path: Path) -> None:
    torch.manual_seed(0)
    graph, _, batch = _sequence_batch(tmp_path)
    model = PinSageModel(graph.features, graph.trained, 16, 2, 0.0, query_rule=QueryRule.decay(4, 0.9))
    logits = model.sequence_logits(batch)[0]
    positive = logits.gather(1, batch.targets[:, None])
    terms = [
        max(0.0, 1 + logits[r, c].item() - positive[r, 0].item())
        for r in range(logits.shape[0])
        for c in range(logits.shape[1])
        if c != batch.targets[r] and torch.isfinite(logits[r, c])
    ]
    assert model.sequence_loss(batch, "margin").item() == pytest.approx(sum(terms) / len(terms), rel=1e-4)
    assert not isinstance(model.position_logits, torch.nn.Parameter), "a fixed rule is not learned"


def test_without_bias_the_bias_is_zero_and_not_a_parameter(tmp_path: Path) -> None:
    _, graph = synthetic(tmp_path)
    model = PinSageModel(graph.features, graph.trained, 16, 2, use_bias=False)
    assert "bias" not in dict(model.named_parameters()) and model.bias.abs().sum() == 0


def test_a_brand_new_vector_is_what_a_movie_without_id_or_neighbours_gets(tmp_path: Path) -> None:
    torch.manual_seed(0)
    _, graph = synthetic(tmp_path)
    model = PinSageModel(graph.features, graph.trained, 16, 2, 0.0, temperature=0.1).eval()
    sampler = TorchPinSageSampler(graph, SamplerConfig(num_neighbours=3))
    movies = torch.arange(30)
    blocks = sample_blocks(sampler, movies, num_layers=2)
    assert all(bool((block.weights > 0).any()) for block in blocks)
    isolated = [replace(block, weights=torch.zeros_like(block.weights)) for block in blocks]
    model.ids.rows[:] = model.ids.unseen
    assert torch.allclose(model.brand_new_representation(movies), model.representation(isolated), atol=1e-6)


def test_new_movie_loss_adds_the_softmax_over_brand_new_candidates(tmp_path: Path) -> None:
    torch.manual_seed(0)
    graph, _, batch = _sequence_batch(tmp_path)
    model = PinSageModel(graph.features, graph.trained, 16, 2, 0.0, temperature=0.1, new_movie_loss=0.5)
    log_q = torch.rand(batch.candidate_ids.numel())
    main = torch.nn.functional.cross_entropy(model.sequence_logits(batch, log_q)[0], batch.targets)
    h = model.representation(batch.blocks)
    query = model.pool(h[batch.history], batch.history_mask)
    cold = model.brand_new_logits(batch, query, log_q)
    fresh = model.brand_new_representation(batch.candidate_ids)
    row = 0
    unmasked = torch.isfinite(cold[row])
    expected = query[row] @ fresh.T + model.bias[model.ids.unseen] - log_q
    assert torch.allclose(cold[row][unmasked], expected[unmasked], atol=1e-5)
    assert torch.equal(torch.isinf(cold), torch.isinf(model.sequence_logits(batch, log_q)[0])), "the same history mask"
    loss = model.sequence_loss(batch, "softmax", log_q)
    expected_loss = main + 0.5 * torch.nn.functional.cross_entropy(cold, batch.targets)
    assert loss.item() == pytest.approx(expected_loss.item(), rel=1e-5)
    loss.backward()
    assert model.projector.genres.weight.grad.abs().sum() > 0
    unseen_grad = model.projector.id_embedding.weight.grad[model.ids.unseen]
    assert unseen_grad.abs().sum() > 0, "the cold term reads the unseen id"


def test_new_movie_loss_needs_the_sampled_softmax() -> None:
    TrainConfig(new_movie_loss=1.0).validate()
    with pytest.raises(ConfigError, match="new_movie_loss"):
        TrainConfig(new_movie_loss=1.0, loss="margin").validate()
    with pytest.raises(ConfigError, match="new_movie_loss"):
        TrainConfig(new_movie_loss=-1.0).validate()


def test_scoring_vectors_add_the_weighted_content_cosine_to_the_score(tmp_path: Path) -> None:
    torch.manual_seed(0)
    _, graph = synthetic(tmp_path)
    plain = PinSageModel(graph.features, graph.trained, 16, 2, 0.0, temperature=0.1).eval()
    fused = PinSageModel(graph.features, graph.trained, 16, 2, 0.0, temperature=0.1, content_weight=2.0).eval()
    fused.load_state_dict(plain.state_dict())
    blocks = sample_blocks(TorchPinSageSampler(graph, SamplerConfig()), torch.arange(40), num_layers=2)
    h = plain.representation(blocks)
    assert torch.equal(plain.scoring_vectors(blocks), h), "no content weight: the representation alone"
    vectors = fused.scoring_vectors(blocks)
    content = graph.features.content[:40]
    assert vectors.shape == (40, 16 + content.shape[1])
    query = vectors[:5].mean(0)
    expected = h[:5].mean(0) @ h.T + 2.0 * content[:5].mean(0) @ content.T
    assert torch.allclose(query @ vectors.T, expected, atol=1e-4)


def test_the_content_weight_must_be_finite_and_not_negative() -> None:
    TrainConfig(content_weight=0.0).validate()
    for bad in (-1.0, math.nan, math.inf):
        with pytest.raises(ConfigError, match="content_weight"):
            TrainConfig(content_weight=bad).validate()


def test_the_query_encoder_starts_at_recency_learns_and_serves_the_same_query_to_1e5(tmp_path: Path) -> None:
    """The attention over a history begins as the recency rule, gets a gradient, and the numpy rule that evaluation
    and ``recommend()`` use gives the trained model's query to 1e-5 (reading the graph part of stored rows only)."""
    torch.manual_seed(0)
    graph, _, batch = _sequence_batch(tmp_path)
    model = _softmax_model(graph, attention_dims=4)
    history = torch.randn(6, 4, 16) * 3
    mask = torch.ones(6, 4)
    mask[1, 2:], mask[2, 1:] = 0, 0
    recency = torch.softmax(model.position_logits, 0) * mask
    by_recency = ((recency / recency.sum(1, keepdim=True))[..., None] * history).sum(1)
    assert torch.allclose(model.pool(history, mask), by_recency, atol=1e-6), "training starts at the recency rule"
    model.sequence_loss(batch, "softmax").backward()
    for name in ("relevance", "key_map"):
        assert getattr(model.attention, name).grad.abs().sum() > 0, f"the attention's {name} is learned"
    with torch.no_grad():
        for parameter in model.attention.parameters():
            parameter.normal_(0.0, 0.5)
        trained = model.pool(history, mask)
    rule = model.query_rule()
    assert rule.attends and not torch.allclose(trained, by_recency, atol=1e-3), "the movies now change the weights"
    weights = rule.masked_weights(mask.numpy(), history.numpy())
    served = np.einsum("bh,bhd->bd", weights, history.numpy())
    assert np.abs(served - trained.numpy()).max() < 1e-5
    content_and_bias = np.random.default_rng(0).normal(size=(4, 6)).astype(np.float32)
    stored = np.concatenate([history[0].numpy(), content_and_bias], axis=1)
    query = rule.query(stored)[0]
    assert np.abs(query[:16] - trained[0].numpy()).max() < 1e-5 and query[-1] == 1.0
    assert np.abs(rule.query(stored[::-1].copy())[0][:16] - query[:16]).max() > 1e-3, "a history's order counts"


def test_the_query_encoder_is_a_setting_of_the_sequence_objective() -> None:
    with pytest.raises(ConfigError, match="query_encoder"):
        TrainConfig(query_encoder="transformer").validate()
    with pytest.raises(ConfigError, match="objective='sequence'"):
        TrainConfig(objective="pairs", loss="margin", query_pooling="fixed", query_encoder="attention").validate()
    with pytest.raises(ConfigError, match="attention_dims"):
        TrainConfig(query_encoder="attention", attention_dims=0).validate()
