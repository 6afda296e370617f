"""Layer shapes, normalisation, padding and gradients; the model's loss."""

from __future__ import annotations

from pathlib import Path

import torch
from helpers import synthetic

from rec_lib.pinsage.config import SamplerConfig
from rec_lib.pinsage.layers import MovieInputProjector, WeightedSAGEConv
from rec_lib.pinsage.model import PinSageModel
from rec_lib.pinsage.sampler import Block, PairSampler, TorchPinSageSampler


def _block() -> Block:
    return Block(
        src_nodes=torch.tensor([10, 11, 12, 13]),
        dst_index=torch.tensor([1, 2]),
        neighbor_index=torch.tensor([[2, 3, 0], [0, 1, 0]]),
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
    projector = MovieInputProjector(graph.features, graph.n_movies, 16)
    out = projector(torch.tensor([0, 1, 2]))
    out.sum().backward()
    assert out.shape == (3, 16)
    for name, parameter in projector.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_model_loss_and_gradients(tmp_path: Path) -> None:
    torch.manual_seed(0)
    _, graph = synthetic(tmp_path)
    sampler = TorchPinSageSampler(graph, SamplerConfig(num_neighbors=5))
    batch = PairSampler(sampler, sampler, num_layers=2).sample(32)
    model = PinSageModel(graph.features, graph.n_movies, hidden_dims=16, num_layers=2, dropout=0.0)
    loss = model(batch.blocks, batch.heads, batch.positives, batch.negatives)
    assert loss.ndim == 0 and loss.item() >= 0
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing
    assert model.bias.grad.abs().sum() > 0
