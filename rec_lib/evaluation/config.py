"""Evaluation's settings as plain dataclasses (the protocol's, and SASRec's); they import no torch, so the CLI can
build its flags without it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from rec_lib.errors import ConfigError

EASE_L2 = 500.0
"""EASE's regularisation for ml-latest-small-sized catalogues, chosen on validation (reports/quality.md)."""
TICK_DRAWS = 10
"""The liked-set protocol's independent draws of each held-out user's ticks per query size; a user's scores are
the means over them."""


@dataclass(frozen=True)
class EvalConfig:
    """How the leave-one-out protocol ranks: the cut-off, the query history and the users scored at once."""

    k: int = 10
    history_len: int = 20
    history_decay: float = 0.9
    batch_users: int = 512


@dataclass(frozen=True)
class SASRecConfig:
    """SASRec's settings; the defaults follow the RecSys 2023 reproduction's ml-1m run, with a shorter sequence."""

    hidden_dims: int = 64
    """Width of the movie and position embeddings."""
    blocks: int = 2
    """Self-attention blocks."""
    heads: int = 1
    """Attention heads per block."""
    dropout: float = 0.2
    """Dropout on embeddings, attention and feed-forward layers."""
    max_len: int = 50
    """The latest movies a sequence holds."""
    lr: float = 1e-3
    """Adam's learning rate."""
    batch_size: int = 128
    """Windows per step."""
    windows_per_user: int = 8
    """Random windows drawn from every user's training sequence each epoch."""
    num_epochs: int = 100
    """The most epochs a run trains."""
    patience: int = 8
    """Epochs without a better validation HR before training stops."""
    eval_k: int = 10
    """The K of the validation HR@K that early stopping follows."""
    val_users: int = 20_000
    """Users of the seeded sample each epoch is validated on (all of them up to this number)."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Where to train: "auto" is CUDA when torch sees a GPU, else the CPU."""
    seed: int = 0
    """Seeds torch and the window draws."""

    def validate(self) -> None:
        for name in ("hidden_dims", "blocks", "heads", "max_len", "batch_size", "windows_per_user", "num_epochs"):
            if getattr(self, name) < 1:
                raise ConfigError(f"SASRecConfig.{name}={getattr(self, name)} must be at least 1")
        if self.hidden_dims % self.heads:
            raise ConfigError(f"SASRecConfig.hidden_dims={self.hidden_dims} must be a multiple of heads={self.heads}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"SASRecConfig.dropout={self.dropout} must lie in [0, 1)")
