"""On the DGL reference stack, to_dgl() gives a heterograph with exactly our nodes and edges."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from rec_lib.graph import MOVIE, USER, WATCHED, WATCHED_BY, build_graph
from rec_lib.loaders import load_folder
from rec_lib.preprocess import preprocess
from rec_lib.synthetic import SyntheticConfig, generate_ml1m

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
