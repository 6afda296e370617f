"""On the DGL reference stack, to_dgl() gives a heterograph with exactly our nodes and edges."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from rec_lib.data.loaders import load_folder
from rec_lib.data.preprocess import preprocess
from rec_lib.data.synthetic import SyntheticConfig, generate_ml1m
from rec_lib.pinsage.graph import MOVIE, USER, WATCHED, WATCHED_BY, build_graph

try:
    import dgl
except ImportError:
    if os.environ.get("REC_REQUIRE_DGL") == "1":
        raise
    dgl = None

pytestmark = [pytest.mark.dgl, pytest.mark.skipif(dgl is None, reason="needs the DGL stack (make test-dgl)")]


def test_to_dgl_has_the_same_nodes_edges_and_data(tmp_path: Path) -> None:
    folder = generate_ml1m(tmp_path / "syn", SyntheticConfig(n_users=150, n_movies=120, n_ratings=6_000, seed=3))
    g = build_graph(preprocess(load_folder(folder)))
    d = g.graph.to_dgl()
    assert set(d.ntypes) == {USER, MOVIE}
    assert {d.num_nodes(t) for t in d.ntypes} == {g.n_users, g.n_movies}
    assert d.num_nodes(USER) == g.n_users and d.num_nodes(MOVIE) == g.n_movies
    for relation in (WATCHED, WATCHED_BY):
        ours = g.graph.relations[relation]
        src, dst = d.edges(etype=relation)
        assert torch.equal(src, ours.src) and torch.equal(dst, ours.dst)
        assert torch.equal(d.edges[relation].data["rating"], ours.data["rating"])
        assert torch.equal(d.edges[relation].data["timestamp"], ours.data["timestamp"])
    assert torch.equal(d.nodes[MOVIE].data["genres"], g.features.genres)
    csr = g.movie_to_users
    in_degrees = d.in_degrees(etype=WATCHED)
    assert torch.equal(in_degrees, csr.degrees())


def _top_sets(neighbourhood, k: int) -> list[set[int]]:
    return [set(row[:k].tolist()) - {-1} for row in neighbourhood.neighbours]


def test_our_sampler_agrees_with_dgl_as_well_as_with_itself(tmp_path: Path) -> None:
    from rec_lib.pinsage.config import SamplerConfig
    from rec_lib.pinsage.sampler import DGLPinSageSampler, TorchPinSageSampler

    folder = generate_ml1m(tmp_path / "syn", SyntheticConfig(n_users=300, n_movies=200, n_ratings=9_000, seed=5))
    g = build_graph(preprocess(load_folder(folder)))
    config = SamplerConfig(random_walk_length=2, restart_prob=0.5, num_random_walks=2000, num_neighbours=5)
    seeds = torch.arange(g.n_movies)
    ours, again = TorchPinSageSampler(g, config), TorchPinSageSampler(g, config)
    ours.seed(1)
    again.seed(2)
    a, b = ours(seeds), again(seeds)
    d = DGLPinSageSampler(g, config, seed=3)(seeds)

    def overlap(x, y) -> float:
        pairs = zip(_top_sets(x, 5), _top_sets(y, 5), strict=True)
        return sum(len(p & q) / max(len(p | q), 1) for p, q in pairs) / g.n_movies

    assert overlap(a, d) > overlap(a, b) - 0.05
    assert d.weights.sum(1).mean().item() == pytest.approx(a.weights.sum(1).mean().item(), rel=0.03)
    assert d.weights[:, 0].mean().item() == pytest.approx(a.weights[:, 0].mean().item(), rel=0.03)


def test_training_with_the_dgl_sampler_backend(tmp_path: Path, monkeypatch) -> None:
    from rec_lib.pinsage import sampler
    from rec_lib.pinsage.config import TrainConfig
    from rec_lib.pinsage.train import train

    sampled: list[int] = []
    dgl_call = sampler.DGLPinSageSampler.__call__
    monkeypatch.setattr(
        sampler.DGLPinSageSampler,
        "__call__",
        lambda self, seeds: (sampled.append(len(seeds)), dgl_call(self, seeds))[1],
    )

    folder = generate_ml1m(tmp_path / "syn", SyntheticConfig(n_users=150, n_movies=120, n_ratings=6_000, seed=3))
    prep = preprocess(load_folder(folder))
    config = TrainConfig(
        hidden_dims=16, num_epochs=1, batches_per_epoch=5, batch_size=32, sampler_backend="dgl", device="cpu"
    )
    graph = build_graph(prep)
    result = train(prep, graph, config)
    scored_dims = 16 + graph.features.content.shape[1]
    assert result.vectors.shape == (120, scored_dims) and torch.isfinite(result.vectors).all()
    assert sampled, "the neighbourhoods came from DGL's PinSAGESampler, not the default sampler"
