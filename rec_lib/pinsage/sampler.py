"""PinSage neighbourhoods and training batches, vectorised on CSR tensors (CPU or CUDA).

Neighbourhoods follow ``dgl.sampling.PinSAGESampler``: from each seed movie, ``num_random_walks``
walks go movie → user → movie; after every such traversal a walk stops with probability
``restart_prob``, and it makes at most ``random_walk_length`` traversals. The ``num_neighbours``
most-visited movies become the seed's neighbours, with their visit counts as weights. As in DGL,
a walk may return to the seed, which then counts as its own neighbour.

All walkers advance together: one gather per hop over the CSR arrays, then one ``unique`` over
``seed * n_movies + movie`` keys to count visits, and one sort to take each seed's top-k.

Two kinds of training batch. :class:`SequenceSampler` (the default objective) draws next-engagement examples:
a user's latest training movies before a uniform training interaction (:mod:`rec_lib.evaluation.history`), the
movie of that interaction as the target, and negatives shared by the batch; edges between the target and the
history are removed from the batch's neighbourhoods. :class:`PairSampler` (the earlier "pairs" recipe, kept for the
ablation) follows DGL's PinSage example: heads uniform over movies with a training edge (or, with
``head_sampling="edge"``, the movie of a uniform training edge), positives one movie → user → movie step away or
the movie watched next, negatives uniform (optionally some "hard" ones: the end of a longer walk); edges
head–positive and head–negative are removed from every sampled neighbourhood of the batch, in both directions.
Either way the model never sees the pair it is scored on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch

from rec_lib.errors import ConfigError
from rec_lib.evaluation.history import latest_before, user_starts
from rec_lib.pinsage.config import SamplerConfig
from rec_lib.pinsage.graph import CSR, UserMovieGraph

PAD = -1


@dataclass(frozen=True)
class Neighbourhood:
    """Each seed's top-k neighbours, padded: ``neighbours[i, j] == PAD`` where ``weights[i, j] == 0``."""

    seeds: torch.Tensor
    neighbours: torch.Tensor
    weights: torch.Tensor


@dataclass(frozen=True)
class Block:
    """One message-passing layer: destination nodes read their weighted neighbours among ``src_nodes``."""

    src_nodes: torch.Tensor
    """Global movie ids of every node this layer reads."""
    dst_index: torch.Tensor
    """(n_dst,) position of each destination node in ``src_nodes``."""
    neighbour_index: torch.Tensor
    """(n_dst, K) position of each neighbour in ``src_nodes`` (0 where padded)."""
    weights: torch.Tensor
    """(n_dst, K) visit counts, 0 where padded."""

    @property
    def dst_nodes(self) -> torch.Tensor:
        return self.src_nodes[self.dst_index]

    def to(self, device: torch.device | str) -> Block:
        return Block(
            *(
                t.to(device, non_blocking=True)
                for t in (self.src_nodes, self.dst_index, self.neighbour_index, self.weights)
            )
        )


class NeighbourSampler(Protocol):
    """What the block builder needs from a sampler backend."""

    n_movies: int

    def __call__(self, seeds: torch.Tensor) -> Neighbourhood: ...


class TorchPinSageSampler:
    """Our PinSage sampler: vectorised random walks over the CSR tensors of a :class:`UserMovieGraph`."""

    def __init__(
        self,
        graph: UserMovieGraph,
        config: SamplerConfig,
        *,
        device: torch.device | str = "cpu",
        generator: torch.Generator | None = None,
    ) -> None:
        config.validate()
        self.config = config
        self.device = torch.device(device)
        self.n_movies = graph.n_movies
        self.movie_to_users: CSR = graph.movie_to_users.to(self.device)
        self.user_to_movies: CSR = graph.user_to_movies.to(self.device)
        self._movie_degree = self.movie_to_users.degrees()
        self._user_degree = self.user_to_movies.degrees()
        self.generator = generator or torch.Generator(device=self.device)

    def seed(self, seed: int) -> None:
        self.generator.manual_seed(seed)

    def walk_once(self, movies: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One movie → user → movie traversal per walker; returns (next movies, walker had a user)."""
        draws = torch.rand((2, *movies.shape), generator=self.generator, device=self.device)
        nxt, alive = self._traverse(movies, draws[0], draws[1])
        return torch.where(alive, nxt, movies), alive

    def _traverse(
        self, movies: torch.Tensor, user_draw: torch.Tensor, movie_draw: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The one walk step: a uniform user of each movie (``user_draw`` in [0, 1)), then a uniform movie of that
        user (``movie_draw``); returns (the movies reached, whether each movie had a user to step to)."""
        degree = self._movie_degree[movies]
        last = self.movie_to_users.indices.numel() - 1
        at = (self.movie_to_users.indptr[movies] + (user_draw * degree).long()).clamp(max=last)
        users = self.movie_to_users.indices[at]
        nxt = self.user_to_movies.indices[
            self.user_to_movies.indptr[users] + (movie_draw * self._user_degree[users]).long()
        ]
        return nxt, degree > 0

    def __call__(self, seeds: torch.Tensor) -> Neighbourhood:
        cfg = self.config
        seeds = seeds.to(self.device)
        n_walkers = seeds.numel() * cfg.num_random_walks
        walkers = seeds.repeat_interleave(cfg.num_random_walks)
        draws = torch.rand((cfg.random_walk_length, 3, n_walkers), generator=self.generator, device=self.device)
        visits = torch.empty((cfg.random_walk_length, n_walkers), dtype=torch.int64, device=self.device)
        valid = torch.empty((cfg.random_walk_length, n_walkers), dtype=torch.bool, device=self.device)
        alive = torch.ones(n_walkers, dtype=torch.bool, device=self.device)
        for step in range(cfg.random_walk_length):
            walkers, had_user = self._traverse(walkers, draws[step, 0], draws[step, 1])
            alive &= had_user
            visits[step] = walkers
            valid[step] = alive
            alive &= draws[step, 2] >= cfg.restart_prob
        origin = torch.arange(seeds.numel(), device=self.device).repeat_interleave(cfg.num_random_walks)
        origin = origin.expand(cfg.random_walk_length, -1)
        return top_k_visits(seeds, origin[valid], visits[valid], self.n_movies, cfg.num_neighbours)


def top_k_visits(
    seeds: torch.Tensor, origin: torch.Tensor, visited: torch.Tensor, n_movies: int, k: int
) -> Neighbourhood:
    """Count visits per (seed position, movie) and keep each seed's ``k`` most visited (ties: lower id first).

    >>> nb = top_k_visits(torch.tensor([7, 8]), torch.tensor([0, 0, 0, 1]), torch.tensor([3, 3, 5, 2]), 10, 1)
    >>> nb.neighbours.tolist(), nb.weights.tolist()
    ([[3], [2]], [[2.0], [1.0]])
    """
    n_seeds = seeds.numel()
    device = seeds.device
    key_type = torch.int32 if n_seeds * n_movies < 2**31 else torch.int64
    keys = torch.sort(origin.to(key_type) * n_movies + visited.to(key_type)).values
    keys, counts = torch.unique_consecutive(keys, return_counts=True)
    owner = keys // n_movies
    most = int(counts.max()) + 1 if counts.numel() else 1
    rank_type = torch.int32 if n_seeds * most < 2**31 else torch.int64
    order = torch.sort(owner.to(rank_type) * most + (most - counts).to(rank_type), stable=True).indices
    keys, counts = keys[order], counts[order]
    owner, movie = (keys // n_movies).long(), (keys % n_movies).long()
    starts = torch.searchsorted(owner, torch.arange(n_seeds, device=device))
    rank = torch.arange(owner.numel(), device=device) - starts[owner]
    keep = rank < k
    neighbours = torch.full((n_seeds, k), PAD, dtype=torch.int64, device=device)
    weights = torch.zeros((n_seeds, k), dtype=torch.float32, device=device)
    neighbours[owner[keep], rank[keep]] = movie[keep]
    weights[owner[keep], rank[keep]] = counts[keep].float()
    return Neighbourhood(seeds=seeds, neighbours=neighbours, weights=weights)


class DGLPinSageSampler:
    """``dgl.sampling.PinSAGESampler`` behind the same interface (DGL reference stack only)."""

    def __init__(self, graph: UserMovieGraph, config: SamplerConfig, *, seed: int | None = None) -> None:
        import dgl

        config.validate()
        if seed is not None:
            dgl.seed(seed)
            torch.manual_seed(seed)
        self.config = config
        self.n_movies = graph.n_movies
        self._sampler = dgl.sampling.PinSAGESampler(
            graph.graph.to_dgl(),
            "movie",
            "user",
            config.random_walk_length,
            config.restart_prob,
            config.num_random_walks,
            config.num_neighbours,
        )

    def raw(self, seeds: torch.Tensor):
        """DGL's own output (a homogeneous frontier graph), for timing DGL alone."""
        return self._sampler(seeds.cpu())

    def __call__(self, seeds: torch.Tensor) -> Neighbourhood:
        frontier = self.raw(seeds)
        src, dst = frontier.edges()
        counts = frontier.edata["weights"]
        position = torch.full((self.n_movies,), -1, dtype=torch.int64)
        position[seeds.cpu()] = torch.arange(seeds.numel())
        return top_k_visits(
            seeds.cpu(),
            position[dst].repeat_interleave(counts.long()),
            src.repeat_interleave(counts.long()),
            self.n_movies,
            self.config.num_neighbours,
        )


def sample_blocks(
    sampler: NeighbourSampler,
    seeds: torch.Tensor,
    num_layers: int,
    exclude_pairs: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> list[Block]:
    """Blocks from the input layer to the output layer, whose destination nodes are ``seeds``.

    ``exclude_pairs=(a, b)``: edges a–b are removed from every neighbourhood, in both directions.
    """
    excluded = None
    if exclude_pairs is not None:
        a, b = (t.to(seeds.device) for t in exclude_pairs)
        n = sampler.n_movies
        excluded = torch.unique(torch.cat([a * n + b, b * n + a]))
    blocks: list[Block] = []
    dst = seeds
    for _ in range(num_layers):
        nb = sampler(dst)
        neighbours, weights = nb.neighbours.to(dst.device), nb.weights.to(dst.device)
        if excluded is not None:
            leak = torch.isin(dst[:, None] * sampler.n_movies + neighbours, excluded) & (neighbours != PAD)
            weights = weights.masked_fill(leak, 0.0)
            neighbours = neighbours.masked_fill(leak, PAD)
        valid = neighbours != PAD
        src_nodes, inverse = torch.unique(torch.cat([dst, neighbours[valid]]), return_inverse=True)
        neighbour_index = torch.zeros_like(neighbours)
        neighbour_index[valid] = inverse[dst.numel() :]
        blocks.insert(0, Block(src_nodes, inverse[: dst.numel()], neighbour_index, weights))
        dst = src_nodes
    return blocks


@dataclass(frozen=True)
class TrainingBatch:
    """Heads, positives and negatives, as positions among the output nodes of ``blocks``."""

    heads: torch.Tensor
    positives: torch.Tensor
    negatives: torch.Tensor
    blocks: list[Block]


def _sequence_pairs(sequences: torch.Tensor, window: int) -> torch.Tensor:
    """(2, P) pairs (movie, a movie the same user watched within the next ``window`` steps).

    ``sequences`` is (2, E): user and movie of every training interaction, sorted by user then time.
    """
    users, movies = sequences
    heads, tails = [], []
    for step in range(1, window + 1):
        same_user = users[step:] == users[:-step]
        heads.append(movies[:-step][same_user])
        tails.append(movies[step:][same_user])
    return torch.stack([torch.cat(heads), torch.cat(tails)])


class _ExampleSampler:
    """What both training samplers share: the walker that draws examples and hard negatives, the neighbour
    sampler that builds their blocks, and the share of hard negatives."""

    def __init__(
        self,
        walker: TorchPinSageSampler,
        neighbours: NeighbourSampler,
        num_layers: int,
        hard_negative_ratio: float,
        hard_negative_walk: int,
    ) -> None:
        if not 0.0 <= hard_negative_ratio <= 1.0:
            raise ConfigError(f"hard_negative_ratio={hard_negative_ratio} must lie in [0, 1]")
        self.walker = walker
        self.neighbours = neighbours
        self.num_layers = num_layers
        self.hard_negative_ratio = hard_negative_ratio
        self.hard_negative_walk = hard_negative_walk


class PairSampler(_ExampleSampler):
    """Draws (head, positive, negative) triples and their leakage-free blocks.

    Positives are one movie → user → movie step away (DGL's example), or, given ``sequences``, a movie
    the same user watched within the next ``window`` interactions: the PinSage paper's "engaged with i
    right after q" pairs.
    """

    def __init__(
        self,
        walker: TorchPinSageSampler,
        neighbours: NeighbourSampler,
        num_layers: int,
        *,
        hard_negative_ratio: float = 0.0,
        hard_negative_walk: int = 3,
        head_sampling: str = "uniform",
        sequences: torch.Tensor | None = None,
        window: int = 1,
    ) -> None:
        super().__init__(walker, neighbours, num_layers, hard_negative_ratio, hard_negative_walk)
        self.window = window
        self._sequence_pairs = None
        if sequences is not None:
            self._sequence_pairs = _sequence_pairs(sequences.to(walker.device), window)
        if head_sampling == "uniform":
            self._heads_pool = torch.nonzero(walker.movie_to_users.degrees() > 0).flatten()
        elif head_sampling == "edge":
            self._heads_pool = walker.user_to_movies.indices
        else:
            raise ConfigError(f"head_sampling={head_sampling!r}: expected 'uniform' or 'edge'")

    def sample(self, batch_size: int) -> TrainingBatch:
        gen, device = self.walker.generator, self.walker.device
        if self._sequence_pairs is not None:
            pick = torch.randint(0, self._sequence_pairs.shape[1], (batch_size,), generator=gen, device=device)
            heads, positives = self._sequence_pairs[:, pick]
        else:
            pick = torch.randint(0, self._heads_pool.numel(), (batch_size,), generator=gen, device=device)
            heads = self._heads_pool[pick]
            positives, _ = self.walker.walk_once(heads)
        negatives = torch.randint(0, self.walker.n_movies, (batch_size,), generator=gen, device=device)
        if self.hard_negative_ratio > 0:
            hard = torch.rand(batch_size, generator=gen, device=device) < self.hard_negative_ratio
            far = heads.clone()
            for _ in range(self.hard_negative_walk):
                far, _ = self.walker.walk_once(far)
            usable = hard & (far != positives) & (far != heads)
            negatives = torch.where(usable, far, negatives)
        seeds, inverse = torch.unique(torch.cat([heads, positives, negatives]), return_inverse=True)
        blocks = sample_blocks(
            self.neighbours,
            seeds,
            self.num_layers,
            exclude_pairs=(torch.cat([heads, heads]), torch.cat([positives, negatives])),
        )
        n = batch_size
        return TrainingBatch(inverse[:n], inverse[n : 2 * n], inverse[2 * n :], blocks)


@dataclass(frozen=True)
class SequenceBatch:
    """Next-engagement examples: each row's history (latest first) and the movie watched next.

    ``history`` and ``targets`` are positions among the output nodes of ``blocks``; ``candidates``
    are the positions of every movie scored (the batch's targets and its shared negatives, each once)
    and ``candidate_ids`` their movie indices, ascending.
    """

    history: torch.Tensor
    """(B, H) positions, latest first; 0 where ``history_mask`` is 0."""
    history_mask: torch.Tensor
    targets: torch.Tensor
    """(B,) index of each row's target in ``candidates``."""
    candidates: torch.Tensor
    candidate_ids: torch.Tensor
    history_ids: torch.Tensor
    """(B, H) movie indices of the history, PAD where masked: these are masked among the candidates."""
    blocks: list[Block]

    def seen_candidates(self) -> torch.Tensor:
        """(B, C) True where a candidate is in the row's history: one binary search per history movie in the
        ascending ``candidate_ids``, not a (B, H, C) comparison."""
        n_candidates = self.candidate_ids.numel()
        found = torch.searchsorted(self.candidate_ids, self.history_ids).clamp(max=n_candidates - 1)
        column = torch.where(self.candidate_ids[found] == self.history_ids, found, n_candidates)
        seen = torch.zeros(column.shape[0], n_candidates + 1, dtype=torch.bool, device=column.device)
        return seen.scatter_(1, column, True)[:, :n_candidates]


class SequenceSampler(_ExampleSampler):
    """Draws (history → next movie) examples from the training sequences, with shared negatives.

    A row is a uniform training interaction that has at least one earlier interaction of the same user;
    its history is the user's up to ``history_len`` earlier movies, and its target that movie or, with a
    ``target_window`` of ``W``, one drawn uniformly from the user's next ``W`` movies from it (fewer at the end of
    the user's sequence): movies rated together reach the data in an order that says nothing, so any of the next
    few is a fair answer for the history. With ``consecutive_targets`` of ``K``, each draw also trains the same
    user's next ``K - 1`` positions, each with its own history (those past the user's last movie are left out, so a
    batch may hold a few rows fewer): their histories overlap, so a batch's sampled neighbourhoods serve ``K``
    targets each (PinnerFormer's dense all-action loss in small). Negatives are uniform over movies,
    ``hard_negative_ratio`` of them the end of a longer walk from the target. Edges between the target
    and every history movie are removed from the batch's neighbourhoods, so the graph never shows the
    model the engagement it must predict.
    """

    def __init__(
        self,
        walker: TorchPinSageSampler,
        neighbours: NeighbourSampler,
        num_layers: int,
        sequences: torch.Tensor,
        history_len: int,
        *,
        hard_negative_ratio: float = 0.0,
        hard_negative_walk: int = 3,
        target_window: int = 1,
        consecutive_targets: int = 1,
    ) -> None:
        super().__init__(walker, neighbours, num_layers, hard_negative_ratio, hard_negative_walk)
        for name, value in (("target_window", target_window), ("consecutive_targets", consecutive_targets)):
            if value < 1:
                raise ConfigError(f"{name}={value} must be at least 1")
        self.history_len = history_len
        self.target_window = target_window
        self.consecutive_targets = consecutive_targets
        users, movies = sequences.to(walker.device)
        self.movies = movies
        self.user_start = user_starts(users)
        self.user_last = users.numel() - 1 - user_starts(users.flip(0)).flip(0)
        self.rows = torch.nonzero(self.user_start != torch.arange(users.numel(), device=users.device)).flatten()
        if self.rows.numel() == 0:
            raise ConfigError("no user has two training interactions: nothing to learn a next movie from")
        target_counts = torch.bincount(movies[self.rows], minlength=walker.n_movies).float()
        self.target_share = target_counts / target_counts.sum()
        """Each movie's share of the targets: how often it shows up as an in-batch candidate (logQ)."""

    def sample(self, batch_size: int, n_negatives: int) -> SequenceBatch:
        gen, device = self.walker.generator, self.walker.device
        rows = self._draw_rows(batch_size)
        batch_size = rows.numel()
        targets = self.movies[rows]
        if self.target_window > 1:
            ahead = torch.randint(0, self.target_window, (batch_size,), generator=gen, device=device)
            targets = self.movies[torch.minimum(rows + ahead, self.user_last[rows])]
        history_ids, mask = latest_before(self.movies, self.user_start, rows, self.history_len, pad=PAD)
        negatives = torch.randint(0, self.walker.n_movies, (n_negatives,), generator=gen, device=device)
        if self.hard_negative_ratio > 0 and n_negatives > 0:
            hard = torch.rand(n_negatives, generator=gen, device=device) < self.hard_negative_ratio
            source = targets[torch.randint(0, batch_size, (n_negatives,), generator=gen, device=device)]
            far = source
            for _ in range(self.hard_negative_walk):
                far, _ = self.walker.walk_once(far)
            negatives = torch.where(hard, far, negatives)
        candidate_ids, candidate_inverse = torch.unique(torch.cat([targets, negatives]), return_inverse=True)
        seeds, inverse = torch.unique(torch.cat([candidate_ids, history_ids[mask]]), return_inverse=True)
        pair_heads = targets[:, None].expand_as(history_ids)[mask]
        blocks = sample_blocks(self.neighbours, seeds, self.num_layers, exclude_pairs=(pair_heads, history_ids[mask]))
        history = torch.zeros_like(history_ids)
        history[mask] = inverse[candidate_ids.numel() :]
        return SequenceBatch(
            history=history,
            history_mask=mask.float(),
            targets=candidate_inverse[:batch_size],
            candidates=inverse[: candidate_ids.numel()],
            candidate_ids=candidate_ids,
            history_ids=history_ids,
            blocks=blocks,
        )

    def _draw_rows(self, batch_size: int) -> torch.Tensor:
        """Up to ``batch_size`` example rows: uniform draws, each with its next ``consecutive_targets - 1`` rows of
        the same user."""
        gen, device = self.walker.generator, self.walker.device
        per_draw = self.consecutive_targets
        draws = -(-batch_size // per_draw)
        anchors = self.rows[torch.randint(0, self.rows.numel(), (draws,), generator=gen, device=device)]
        rows = (anchors[:, None] + torch.arange(per_draw, device=device)).flatten()[:batch_size]
        return rows[rows <= self.user_last[anchors].repeat_interleave(per_draw)[:batch_size]]
