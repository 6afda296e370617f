"""Evaluation's settings as plain dataclasses; they import no torch, so the CLI can build its flags without it."""

from __future__ import annotations

from dataclasses import dataclass

EASE_L2 = 500.0
"""EASE's regularisation for ml-latest-small-sized catalogues, chosen on validation (reports/quality.md)."""


@dataclass(frozen=True)
class EvalConfig:
    """How the leave-one-out protocol ranks: the cut-off, the query history and the users scored at once."""

    k: int = 10
    history_len: int = 20
    history_decay: float = 0.9
    batch_users: int = 512
