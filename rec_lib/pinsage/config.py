"""PinSage's settings as plain dataclasses: sampling, evaluation and training.

They import no torch, so the CLI can build its flags (and serving can start) without loading it.
``TrainConfig`` is saved inside every checkpoint; its field defaults are the project's defaults.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Literal

from rec_lib.config import DEFAULT_DATASET
from rec_lib.errors import ConfigError

EASE_L2 = 500.0
"""EASE's regularisation for ml-latest-small-sized catalogues (100, 500 and 2,000 tried on validation; 500 kept)."""


@dataclass(frozen=True)
class SamplerConfig:
    """Neighbourhood sampling settings; the names are those of DGL's PinSage example."""

    random_walk_length: int = 2
    restart_prob: float = 0.5
    num_random_walks: int = 10
    num_neighbors: int = 3
    num_layers: int = 2

    def validate(self) -> None:
        for name in ("random_walk_length", "num_random_walks", "num_neighbors", "num_layers"):
            if getattr(self, name) < 1:
                raise ConfigError(f"SamplerConfig.{name}={getattr(self, name)} must be at least 1")
        if not 0.0 <= self.restart_prob < 1.0:
            raise ConfigError(f"SamplerConfig.restart_prob={self.restart_prob} must lie in [0, 1)")


@dataclass(frozen=True)
class EvalConfig:
    k: int = 10
    history_len: int = 20
    history_decay: float = 0.9
    batch_users: int = 512


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run; saved inside every checkpoint.

        ``objective="sequence"`` trains on next engagements: the pooled vectors of a user's latest
        ``history_len`` movies (the query rule, learned when ``query_pooling="learned"``) must score the movie
        they watched next above the batch's other targets and shared negatives, under ``loss`` ("softmax":
        sampled softmax at ``temperature``, with the logQ correction; "margin": max-margin). ``"pairs"`` is
        the earlier recipe: movie pairs (head, the movie watched right after it) under max-margin, scored
        with the fixed rule. ``use_bias`` adds a learned per-movie bias to every score. A movie without a
    training interaction reads the shared "unseen" id embedding and bias
    (:class:`rec_lib.pinsage.layers.MovieIds`), which learns from the catalogue's movies that have no training
    interaction: they are drawn as uniform negatives. ``id_dropout`` (0 by default, chosen on cold-val) is the
    chance that a movie also reads the unseen row for a training step; with ``drop_neighbourhood`` such a movie
    reads no neighbours in that step either, as a brand-new movie has none. ``new_movie_loss`` (softmax only) adds,
    with that weight, the same softmax with every candidate scored as a brand-new movie (the unseen id, no
    neighbours) against the user's real history: the feature path is trained for the cold-start question while
    every movie keeps its own id in the main term. ``content_weight`` (2, chosen on three cold-val slices) adds that
    weight times the content cosine of query and candidate (genres, title words, decade: the content baseline's
    similarity, title words hashed) to every score that evaluation and serving compute; training is unchanged.
    The model's vectors among new movies spread far less than among warm ones (score sd 0.22 against 1.40 on
    cold-val), so the content term decides among new movies while barely moving warm rankings.
    Each epoch is ``batches_per_epoch`` batches and ends with validation HR@K on at most ``val_users`` users, the
    same sample drawn from ``seed`` every epoch (all users up to that number: ml-1m's 6,040, not ml-25m's 162,541);
    early stopping and the best epoch follow it, and ``evaluate`` then scores every user.
    """

    dataset: str = DEFAULT_DATASET
    objective: Literal["sequence", "pairs"] = "sequence"
    loss: Literal["softmax", "margin"] = "softmax"
    temperature: float = 0.1
    logq_correction: bool = True
    query_pooling: Literal["learned", "fixed"] = "learned"
    use_bias: bool = True
    hidden_dims: int = 256
    num_layers: int = 2
    dropout: float = 0.5
    id_dropout: float = 0.0
    drop_neighbourhood: bool = True
    new_movie_loss: float = 0.0
    content_weight: float = 2.0
    random_walk_length: int = 2
    restart_prob: float = 0.5
    num_random_walks: int = 10
    num_neighbors: int = 3
    hard_negative_ratio: float = 0.2
    head_sampling: Literal["uniform", "edge"] = "uniform"
    positive_sampling: Literal["walk", "next"] = "next"
    positive_window: int = 1
    shared_negatives: bool = True
    batch_size: int = 256
    batches_per_epoch: int = 300
    num_epochs: int = 16
    lr: float = 1e-3
    weight_decay: float = 0.0
    patience: int = 4
    val_users: int = 20_000
    eval_k: int = 10
    history_len: int = 20
    history_decay: float = 0.9
    device: Literal["auto", "cpu", "cuda"] = "auto"
    sampler_backend: Literal["torch", "dgl"] = "torch"
    seed: int = 0

    @property
    def sampler(self) -> SamplerConfig:
        return SamplerConfig(
            self.random_walk_length, self.restart_prob, self.num_random_walks, self.num_neighbors, self.num_layers
        )

    @property
    def eval(self) -> EvalConfig:
        return EvalConfig(k=self.eval_k, history_len=self.history_len, history_decay=self.history_decay)

    def validate(self) -> None:
        self.sampler.validate()
        for name in ("hidden_dims", "batch_size", "batches_per_epoch", "num_epochs", "patience", "val_users", "eval_k"):
            if getattr(self, name) < 1:
                raise ConfigError(f"TrainConfig.{name}={getattr(self, name)} must be at least 1")
        for name in ("dropout", "id_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ConfigError(f"TrainConfig.{name}={getattr(self, name)} must lie in [0, 1)")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"TrainConfig.device={self.device!r}: expected 'auto', 'cpu' or 'cuda'")
        if self.device == "cuda" and not _cuda_available():
            raise ConfigError("TrainConfig.device='cuda' but torch sees no CUDA device")
        choices = {
            "objective": ("sequence", "pairs"),
            "loss": ("softmax", "margin"),
            "query_pooling": ("learned", "fixed"),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ConfigError(f"TrainConfig.{name}={getattr(self, name)!r}: expected one of {allowed}")
        if self.objective == "pairs" and (self.loss != "margin" or self.query_pooling != "fixed"):
            raise ConfigError("TrainConfig.objective='pairs' needs loss='margin' and query_pooling='fixed'")
        softmax = (self.objective, self.loss) == ("sequence", "softmax")
        if self.new_movie_loss < 0 or (self.new_movie_loss > 0 and not softmax):
            raise ConfigError(
                f"TrainConfig.new_movie_loss={self.new_movie_loss}: a non-negative weight, used only with "
                "objective='sequence' and loss='softmax'"
            )
        if not (self.content_weight >= 0 and math.isfinite(self.content_weight)):
            raise ConfigError(f"TrainConfig.content_weight={self.content_weight} must be a finite non-negative number")
        if not self.temperature > 0:
            raise ConfigError(f"TrainConfig.temperature={self.temperature} must be positive")
        if self.sampler_backend not in ("torch", "dgl"):
            raise ConfigError(f"TrainConfig.sampler_backend={self.sampler_backend!r}: expected 'torch' or 'dgl'")

    def resolved_device(self):
        """The ``torch.device`` to train on (``auto``: CUDA when torch sees a GPU)."""
        import torch

        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ConfigError(f"unknown TrainConfig settings: {sorted(unknown)}")
        return cls(**values)


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()
