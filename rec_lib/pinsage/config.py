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
from rec_lib.evaluation.config import EvalConfig

RENAMED = {"num_neighbors": "num_neighbours"}
"""Settings renamed since runs were first saved: earlier name → today's."""


@dataclass(frozen=True)
class SamplerConfig:
    """Neighbourhood sampling settings; the names are those of DGL's PinSage example (``num_neighbours`` is its
    ``num_neighbors``, spelt as everywhere else in rec_lib)."""

    random_walk_length: int = 2
    restart_prob: float = 0.5
    num_random_walks: int = 10
    num_neighbours: int = 3
    num_layers: int = 2

    def validate(self) -> None:
        for name in ("random_walk_length", "num_random_walks", "num_neighbours", "num_layers"):
            if getattr(self, name) < 1:
                raise ConfigError(f"SamplerConfig.{name}={getattr(self, name)} must be at least 1")
        if not 0.0 <= self.restart_prob < 1.0:
            raise ConfigError(f"SamplerConfig.restart_prob={self.restart_prob} must lie in [0, 1)")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run; saved inside every checkpoint. One line per setting below; the
    reasons for the defaults are in reports/quality.md and reports/cold-start.md."""

    dataset: str = DEFAULT_DATASET
    """The dataset the run trains on."""
    objective: Literal["sequence", "pairs"] = "sequence"
    """"sequence": a user's pooled latest movies must pick the next one; "pairs": the earlier movie-pair recipe."""
    loss: Literal["softmax", "margin"] = "softmax"
    """Sampled softmax over the batch's targets and shared negatives, or max-margin."""
    temperature: float = 0.1
    """The softmax's temperature."""
    logq_correction: bool = True
    """Subtract each candidate's log sampling probability from its softmax logit."""
    query_pooling: Literal["learned", "fixed"] = "learned"
    """The query rule's recency weights: learned, or ``history_decay ** age``."""
    query_encoder: Literal["recency", "attention"] = "recency"
    """How a history's movies are weighed: by recency alone, or also by what they are (the latest movie attends over
    the history; :class:`~rec_lib.contracts.HistoryAttention`), learned with the model."""
    attention_dims: int = 16
    """"attention" only: the width of the attention's query and key maps."""
    use_bias: bool = True
    """A learned per-movie bias in every score."""
    hidden_dims: int = 256
    """Width of the movie vectors."""
    num_layers: int = 2
    """Graph convolution layers (and sampled neighbourhood hops)."""
    dropout: float = 0.5
    """Dropout inside the layers."""
    id_dropout: float = 0.0
    """Chance that a movie reads the shared "unseen" id for a training step, as a brand-new movie does."""
    drop_neighbourhood: bool = True
    """A movie whose id was dropped also reads no neighbours in that step."""
    new_movie_loss: float = 0.0
    """Weight of a second softmax with every candidate scored as a brand-new movie (softmax only)."""
    content_weight: float = 2.0
    """Weight of the content cosine (genres, title words, decade) added to every score."""
    random_walk_length: int = 2
    """Most movie → user → movie traversals of a neighbourhood walk."""
    restart_prob: float = 0.5
    """Chance that a walk stops after each traversal."""
    num_random_walks: int = 10
    """Walks per movie when its neighbourhood is sampled."""
    num_neighbours: int = 3
    """The most-visited movies kept as a movie's neighbours."""
    target_window: int = 1
    """"sequence" only: the target of a history is drawn from the user's next ``target_window`` movies (1: the next)."""
    consecutive_targets: int = 8
    """"sequence" only: each drawn example brings the same user's next ``consecutive_targets - 1`` positions with it,
    each with its own history, so one batch's neighbourhoods train that many targets per draw (1: independent draws)."""
    hard_negative_ratio: float = 0.2
    """Share of negatives drawn at the end of a longer walk instead of uniformly."""
    head_sampling: Literal["uniform", "edge"] = "uniform"
    """"pairs" only: heads uniform over movies, or the movie of a uniform training edge."""
    positive_sampling: Literal["walk", "next"] = "next"
    """"pairs" only: the positive is one walk step away, or the movie the user watched next."""
    positive_window: int = 1
    """"pairs" with "next" only: how many later movies count as the next one."""
    shared_negatives: bool = True
    """"pairs" only: every head is scored against every negative of the batch."""
    batch_size: int = 1024
    """Examples per batch (and shared negatives per batch)."""
    batches_per_epoch: int = 300
    """Batches between two validations."""
    num_epochs: int = 64
    """The most epochs a run trains; early stopping on validation (``patience``) usually ends it sooner."""
    lr: float = 1e-3
    """Adam's learning rate."""
    weight_decay: float = 0.0
    """Adam's weight decay."""
    patience: int = 8
    """Epochs without a better validation HR before training stops."""
    val_users: int = 20_000
    """Users of the seeded sample each epoch is validated on (all of them up to this number)."""
    eval_k: int = 10
    """The K of HR@K and NDCG@K."""
    history_len: int = 20
    """How many of a user's latest movies a query pools."""
    history_decay: float = 0.9
    """The fixed rule's decay per position (the baselines' rule, and PinSage's with ``query_pooling="fixed"``)."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Where to train: "auto" is CUDA when torch sees a GPU, else the CPU."""
    sampler_backend: Literal["torch", "dgl"] = "torch"
    """Our vectorised sampler, or DGL's (DGL reference stack only)."""
    seed: int = 0
    """Seeds Python, numpy, torch and every sampler of the run."""

    @property
    def sampler(self) -> SamplerConfig:
        return SamplerConfig(
            self.random_walk_length, self.restart_prob, self.num_random_walks, self.num_neighbours, self.num_layers
        )

    @property
    def eval(self) -> EvalConfig:
        return EvalConfig(k=self.eval_k, history_len=self.history_len, history_decay=self.history_decay)

    def validate(self) -> None:
        self.sampler.validate()
        sizes = (
            "hidden_dims",
            "attention_dims",
            "target_window",
            "consecutive_targets",
            "batch_size",
            "batches_per_epoch",
            "num_epochs",
        )
        for name in (*sizes, "patience", "val_users", "eval_k"):
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
            "query_encoder": ("recency", "attention"),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ConfigError(f"TrainConfig.{name}={getattr(self, name)!r}: expected one of {allowed}")
        if self.objective == "pairs" and (self.loss != "margin" or self.query_pooling != "fixed"):
            raise ConfigError("TrainConfig.objective='pairs' needs loss='margin' and query_pooling='fixed'")
        if self.objective == "pairs" and self.query_encoder != "recency":
            raise ConfigError("TrainConfig.query_encoder='attention' is learned from histories: objective='sequence'")
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
        """The ``torch.device`` to train on (:func:`resolve_device` of ``device``)."""
        return resolve_device(self.device)

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        """The config saved in a checkpoint or run record; a setting saved under its earlier name is read as today's,
        and one a record lacks because it was added later reads as the value earlier runs had."""
        values = {**ADDED_SETTINGS, **{RENAMED.get(name, name): value for name, value in values.items()}}
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ConfigError(f"unknown TrainConfig settings: {sorted(unknown)}")
        return cls(**values)


ADDED_SETTINGS = {"query_encoder": "recency", "attention_dims": 16, "target_window": 1, "consecutive_targets": 1}
"""Settings added after runs were first saved, with the value every earlier run had: a saved config without one
reads as that value, and a run keeps its identity (:func:`rec_lib.pinsage.checkpoint.config_identity`) while they
keep it (the defaults have since moved to eight consecutive targets)."""


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def resolve_device(name: str):
    """The ``torch.device`` a ``--device`` or ``device=`` setting means: ``auto`` is CUDA when torch sees a GPU, else
    the CPU, for every command."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)
