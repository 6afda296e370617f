"""PinSage building blocks: movie input projection and weighted-aggregation SAGE layers."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from rec_lib.pinsage.graph import MovieFeatures
from rec_lib.pinsage.sampler import Block


class MovieIds(nn.Module):
    """Which row of the per-movie tables (id embedding, bias) each movie node reads.

    A movie with a training interaction has its own row; every other movie (one with no training
    interaction, or added after training) reads the shared *unseen* row, the last one. That row learns
    whenever such a movie is in a training step: the catalogue's movies without training interactions are
    drawn as negatives like any other, so it learns what a movie nobody has rated yet is worth (and from
    the new-movie loss, ``TrainConfig.new_movie_loss``, when that is on). Id dropout
    (0 by default): each training step first draws (:meth:`resample`) which movies are dropped, each with
    probability ``dropout``; a dropped movie reads the unseen row in every lookup of that step (its input
    vector as a node or a neighbour, and its bias). Outside training nothing is dropped.
    """

    def __init__(self, known: torch.Tensor, n_movies: int, dropout: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"id dropout probability {dropout} must lie in [0, 1)")
        self.n_rows = known.numel() + 1
        self.dropout = dropout
        rows = torch.full((n_movies,), self.unseen, dtype=torch.int64)
        covered = min(n_movies, known.numel())
        own = torch.arange(covered)
        rows[:covered] = torch.where(known[:covered], own, self.unseen)
        self.register_buffer("known", known.clone())
        self.register_buffer("rows", rows, persistent=False)
        self.register_buffer("dropped", torch.zeros(n_movies, dtype=torch.bool), persistent=False)

    @property
    def unseen(self) -> int:
        return self.n_rows - 1

    def resample(self) -> None:
        """Draw the movies dropped for one training step."""
        self.dropped = torch.rand(self.rows.shape, device=self.rows.device) < self.dropout

    def is_dropped(self, movies: torch.Tensor) -> torch.Tensor:
        """Whether each movie node is dropped in this step (never outside training)."""
        if not self.training or self.dropout == 0.0:
            return torch.zeros(movies.shape, dtype=torch.bool, device=movies.device)
        return self.dropped[movies]

    def forward(self, movies: torch.Tensor) -> torch.Tensor:
        return self.rows[movies].masked_fill(self.is_dropped(movies), self.unseen)


class MovieInputProjector(nn.Module):
    """A movie's input vector: id embedding + decade embedding + genres linear + title bag of words (empty by
    default: see :data:`rec_lib.pinsage.graph.MIN_TITLE_WORD_MOVIES`)."""

    def __init__(self, features: MovieFeatures, ids: MovieIds, hidden_dims: int) -> None:
        super().__init__()
        self.ids = ids
        self.vocab = features.vocab
        self.id_embedding = nn.Embedding(ids.n_rows, hidden_dims)
        self.year_embedding = nn.Embedding(len(features.vocab.years), hidden_dims)
        self.genres = nn.Linear(features.genres.shape[1], hidden_dims)
        pad = len(features.vocab.title_words)
        self.title = nn.EmbeddingBag(pad + 1, hidden_dims, mode="mean", padding_idx=pad)
        for embedding in (self.id_embedding, self.year_embedding, self.title):
            nn.init.xavier_uniform_(embedding.weight)
        self.register_buffer("genre_matrix", features.genres.float(), persistent=False)
        self.register_buffer("year_index", features.year_index, persistent=False)
        self.register_buffer("title_matrix", _padded_titles(features, pad), persistent=False)

    def forward(self, movies: torch.Tensor) -> torch.Tensor:
        return self.project(movies, self.id_embedding(self.ids(movies)))

    def project(self, movies: torch.Tensor, id_vectors: torch.Tensor) -> torch.Tensor:
        """The input vectors of ``movies`` given the id embedding each reads."""
        return (
            id_vectors
            + self.year_embedding(self.year_index[movies])
            + self.genres(self.genre_matrix[movies])
            + self.title(self.title_matrix[movies])
        )


def _padded_titles(features: MovieFeatures, pad: int) -> torch.Tensor:
    n_movies = features.n_movies
    ends = torch.cat([features.title_offsets[1:], torch.tensor([features.title_tokens.numel()])])
    lengths = ends - features.title_offsets
    matrix = torch.full((n_movies, max(int(lengths.max()), 1)), pad, dtype=torch.int64)
    column = torch.arange(features.title_tokens.numel()) - features.title_offsets.repeat_interleave(lengths)
    matrix[torch.arange(n_movies).repeat_interleave(lengths), column] = features.title_tokens
    return matrix


class UniformDropout(nn.Module):
    """Dropout with the same distribution as ``nn.Dropout``, drawn from uniform numbers.

    On the CPU, ``torch.dropout`` draws its Bernoulli mask about three times slower than ``rand`` + compare,
    and the SAGE layers drop out every input vector of a batch: this is a third of a training step on 2 cores.
    """

    def __init__(self, p: float) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability {p} must lie in [0, 1)")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = torch.rand_like(x) >= self.p
        return x * keep / (1.0 - self.p)


class WeightedSAGEConv(nn.Module):
    """Neighbour messages averaged by visit count, concatenated with the node itself, L2-normalised."""

    def __init__(self, in_dims: int, hidden_dims: int, out_dims: int, dropout: float = 0.5) -> None:
        super().__init__()
        self.message = nn.Linear(in_dims, hidden_dims)
        self.update = nn.Linear(in_dims + hidden_dims, out_dims)
        self.dropout = UniformDropout(dropout)
        gain = nn.init.calculate_gain("relu")
        for linear in (self.message, self.update):
            nn.init.xavier_uniform_(linear.weight, gain=gain)
            nn.init.zeros_(linear.bias)

    def forward(self, block: Block, h_src: torch.Tensor) -> torch.Tensor:
        h_dst = h_src[block.dst_index]
        messages = F.relu(self.message(self.dropout(h_src)))[block.neighbour_index]
        weights = block.weights.unsqueeze(-1)
        aggregated = (messages * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        z = F.relu(self.update(self.dropout(torch.cat([aggregated, h_dst], dim=1))))
        norm = z.norm(dim=1, keepdim=True)
        return z / torch.where(norm == 0, torch.ones_like(norm), norm)


class SAGENet(nn.Module):
    """A stack of :class:`WeightedSAGEConv`, one per block."""

    def __init__(self, hidden_dims: int, num_layers: int, dropout: float = 0.5) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            WeightedSAGEConv(hidden_dims, hidden_dims, hidden_dims, dropout) for _ in range(num_layers)
        )

    def forward(self, blocks: list[Block], h: torch.Tensor) -> torch.Tensor:
        for conv, block in zip(self.convs, blocks, strict=True):
            h = conv(block, h)
        return h
