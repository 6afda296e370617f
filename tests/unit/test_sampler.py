"""PinSage sampler semantics: termination, weights, determinism, leakage, devices."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch
from helpers import synthetic

from rec_lib.errors import ConfigError
from rec_lib.pinsage.config import SamplerConfig
from rec_lib.pinsage.graph import GraphBuilder, UserMovieGraph, movie_features
from rec_lib.pinsage.sampler import PAD, PairSampler, SequenceSampler, TorchPinSageSampler, sample_blocks


def _graph(edges: list[tuple[int, int]], n_users: int, n_movies: int) -> UserMovieGraph:
    frame = pd.DataFrame(edges, columns=["user_idx", "movie_idx"])
    builder = GraphBuilder()
    builder.add_entities(pd.DataFrame({"user_idx": range(n_users)}), "user_idx", "user")
    builder.add_entities(pd.DataFrame({"movie_idx": range(n_movies)}), "movie_idx", "movie")
    builder.add_binary_relations(frame, "user_idx", "movie_idx", "watched")
    builder.add_binary_relations(frame, "movie_idx", "user_idx", "watched-by")
    movies = pd.DataFrame(
        {
            "title": [f"m{i} (2000)" for i in range(n_movies)],
            "year": [2000] * n_movies,
            "genres": [["Drama"]] * n_movies,
        }
    )
    return UserMovieGraph(builder.build(), movie_features(movies), trained=torch.ones(n_movies, dtype=torch.bool))


# users 0 and 1 link movies 0-1-2 in a chain; movie 3 is watched by user 2 alone; movie 4 by nobody.
CHAIN = _graph([(0, 0), (0, 1), (1, 1), (1, 2), (2, 3)], n_users=3, n_movies=5)


DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")),
]


def _sampler(graph, seed=0, device="cpu", **config) -> TorchPinSageSampler:
    sampler = TorchPinSageSampler(graph, SamplerConfig(**config), device=device)
    sampler.seed(seed)
    return sampler


@pytest.mark.parametrize("device", DEVICES)
def test_without_restarts_every_walk_makes_every_traversal(device: str) -> None:
    sampler = _sampler(
        CHAIN, device=device, random_walk_length=3, restart_prob=0.0, num_random_walks=50, num_neighbours=5
    )
    nb = sampler(torch.tensor([0, 3, 4]))
    assert nb.weights.sum(1).tolist() == [150.0, 150.0, 0.0]
    assert nb.neighbours[1].tolist()[0] == 3 and nb.weights[1, 0] == 150.0, "movie 3 can only reach itself"
    assert (nb.neighbours[2] == PAD).all(), "a movie nobody watched has no neighbours"


@pytest.mark.parametrize("device", DEVICES)
def test_restarts_shorten_walks_as_expected(device: str) -> None:
    prob, length, walks = 0.5, 4, 20_000
    sampler = _sampler(
        CHAIN, device=device, random_walk_length=length, restart_prob=prob, num_random_walks=walks, num_neighbours=5
    )
    visits = sampler(torch.tensor([1])).weights.sum().item() / walks
    expected = sum((1 - prob) ** t for t in range(length))
    assert visits == pytest.approx(expected, rel=0.03)


@pytest.mark.parametrize("device", DEVICES)
def test_one_traversal_reaches_only_co_watched_movies_with_counts_as_weights(device: str) -> None:
    sampler = _sampler(
        CHAIN, device=device, random_walk_length=1, restart_prob=0.0, num_random_walks=4000, num_neighbours=3
    )
    nb = sampler(torch.tensor([0]))
    reached = {m: w for m, w in zip(nb.neighbours[0].tolist(), nb.weights[0].tolist(), strict=True) if m != PAD}
    assert set(reached) == {0, 1}
    assert reached[0] == pytest.approx(2000, rel=0.1) and sum(reached.values()) == 4000
    assert nb.weights[0].tolist() == sorted(nb.weights[0].tolist(), reverse=True)


def test_same_seed_same_neighbourhoods(tmp_path: Path) -> None:
    _, graph = synthetic(tmp_path)
    seeds = torch.arange(graph.n_movies)
    first, again = _sampler(graph, 5)(seeds), _sampler(graph, 5)(seeds)
    other = _sampler(graph, 6)(seeds)
    assert torch.equal(first.neighbours, again.neighbours) and torch.equal(first.weights, again.weights)
    assert not torch.equal(first.weights, other.weights)


def test_blocks_index_their_source_nodes(tmp_path: Path) -> None:
    _, graph = synthetic(tmp_path)
    sampler = _sampler(graph, num_neighbours=4)
    seeds = torch.tensor([3, 7, 11])
    blocks = sample_blocks(sampler, seeds, num_layers=2)
    assert torch.equal(blocks[-1].dst_nodes, seeds)
    assert torch.equal(blocks[0].dst_nodes, blocks[1].src_nodes)
    for block in blocks:
        assert block.neighbour_index.max() < block.src_nodes.numel()


def test_training_batches_never_see_their_own_pairs(tmp_path: Path) -> None:
    _, graph = synthetic(tmp_path)
    sampler = _sampler(graph, num_neighbours=10, num_random_walks=40)
    pairs = PairSampler(sampler, sampler, num_layers=2, hard_negative_ratio=0.5)
    for _ in range(5):
        batch = pairs.sample(64)
        nodes = batch.blocks[-1].dst_nodes
        heads = nodes[batch.heads]
        forbidden = {(h, t) for h, t in zip(heads.tolist(), nodes[batch.positives].tolist(), strict=True)}
        forbidden |= {(h, t) for h, t in zip(heads.tolist(), nodes[batch.negatives].tolist(), strict=True)}
        forbidden |= {(t, h) for h, t in forbidden}
        for block in batch.blocks:
            dst = block.dst_nodes[:, None].expand_as(block.neighbour_index)
            src = block.src_nodes[block.neighbour_index]
            used = block.weights > 0
            assert not forbidden & set(zip(dst[used].tolist(), src[used].tolist(), strict=True))
        assert (graph.movie_to_users.degrees()[heads] > 0).all()


def test_positives_are_one_traversal_away(tmp_path: Path) -> None:
    _, graph = synthetic(tmp_path)
    pairs = PairSampler(_sampler(graph), _sampler(graph), num_layers=1)
    batch = pairs.sample(32)
    nodes = batch.blocks[-1].dst_nodes
    watched = {}
    csr = graph.movie_to_users
    for movie in range(graph.n_movies):
        watched[movie] = set(csr.indices[csr.indptr[movie] : csr.indptr[movie + 1]].tolist())
    for head, positive in zip(nodes[batch.heads].tolist(), nodes[batch.positives].tolist(), strict=True):
        assert watched[head] & watched[positive]


def test_invalid_settings_are_named() -> None:
    with pytest.raises(ConfigError, match=r"restart_prob=1\.0"):
        SamplerConfig(restart_prob=1.0).validate()
    with pytest.raises(ConfigError, match="num_neighbours=0"):
        SamplerConfig(num_neighbours=0).validate()


def test_a_target_window_draws_the_target_from_the_next_movies_of_the_same_user(tmp_path: Path) -> None:
    """User 0 watched movies 0..9 in order, user 1 movies 10..14: with a window of 3 the target of a history ending
    at movie j is j + 1, j + 2 or j + 3 (never past the user's last movie), each drawn; a window of 1 is the next."""
    _, graph = synthetic(tmp_path)
    users = torch.tensor([0] * 10 + [1] * 5)
    sequences = torch.stack([users, torch.arange(15)])
    walker = TorchPinSageSampler(graph, SamplerConfig(num_neighbours=3))
    offsets: dict[int, set[int]] = {1: set(), 3: set()}
    for window in offsets:
        sampler = SequenceSampler(walker, walker, 2, sequences, history_len=4, target_window=window)
        for _ in range(20):
            batch = sampler.sample(32, 8)
            latest = batch.history_ids[:, 0]
            target = batch.candidate_ids[batch.targets]
            assert ((latest < 10) == (target < 10)).all(), "the target is the same user's"
            assert (target <= torch.where(latest < 10, 9, 14)).all()
            offsets[window] |= set((target - latest).tolist())
    assert offsets == {1: {1}, 3: {1, 2, 3}}
    with pytest.raises(ConfigError, match="target_window"):
        SequenceSampler(walker, walker, 2, sequences, history_len=4, target_window=0)


def test_consecutive_targets_train_a_draw_and_the_next_positions_of_the_same_user(tmp_path: Path) -> None:
    """User 0 watched movies 0..9 in order, user 1 movies 10..14: with 4 consecutive targets a batch is runs of
    rows whose targets follow each other within one user, each row's history the movies before its own target,
    and no row goes past its user's last movie."""
    _, graph = synthetic(tmp_path)
    users = torch.tensor([0] * 10 + [1] * 5)
    sequences = torch.stack([users, torch.arange(15)])
    walker = TorchPinSageSampler(graph, SamplerConfig(num_neighbours=3))
    sampler = SequenceSampler(walker, walker, 2, sequences, history_len=4, consecutive_targets=4)
    sizes, steps = set(), set()
    for _ in range(20):
        batch = sampler.sample(32, 8)
        target = batch.candidate_ids[batch.targets]
        sizes.add(target.numel())
        assert target.numel() <= 32
        assert torch.equal(batch.history_ids[:, 0], target - 1), "each row's latest movie is the one before its target"
        steps |= set((target[1:] - target[:-1]).tolist())
    assert 1 in steps, "a draw's rows are the next positions of the same user"
    assert min(sizes) < 32, "rows past a user's last movie are left out"
    with pytest.raises(ConfigError, match="consecutive_targets"):
        SequenceSampler(walker, walker, 2, sequences, history_len=4, consecutive_targets=0)


def test_seen_candidates_marks_exactly_the_history_movies_among_the_candidates(tmp_path: Path) -> None:
    """The softmax masks a row's history among its candidates: the binary search gives the mask of comparing every
    history movie with every candidate, padding matching nothing, on batches whose histories are partly padded."""
    _, graph = synthetic(tmp_path)
    users = torch.tensor([0] * 10 + [1] * 5)
    sequences = torch.stack([users, torch.arange(15)])
    walker = TorchPinSageSampler(graph, SamplerConfig(num_neighbours=3))
    sampler = SequenceSampler(walker, walker, 2, sequences, history_len=4, consecutive_targets=2)
    for _ in range(10):
        batch = sampler.sample(16, 6)
        assert (batch.history_ids == PAD).any() and (batch.history_ids != PAD).any()
        expected = (batch.history_ids.unsqueeze(-1) == batch.candidate_ids).any(1)
        assert expected.any(), "some history movie is among the candidates"
        assert torch.equal(batch.seen_candidates(), expected)
