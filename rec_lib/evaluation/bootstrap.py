"""Paired bootstrap intervals over users: is a difference between two models beyond the users' own noise?

Both models are scored on the same users, so the per-user differences are resampled together (with
replacement, the same draw for every pair of models under one seed): the interval of the mean difference is the
spread of its resampled means. A model run over several seeds enters with each user's metric averaged over the
seeds, so the interval is about the users, not about one lucky seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rec_lib.errors import ConfigError

RESAMPLES = 2000
LEVEL = 0.95
_DRAWS_PER_CHUNK = 10_000_000
"""User draws held in memory at once (80 MB), whatever the number of users."""


@dataclass(frozen=True)
class Difference:
    """The mean of ``model − baseline`` over users, and its paired bootstrap interval."""

    mean: float
    low: float
    high: float
    users: int
    resamples: int

    @property
    def above_zero(self) -> bool:
        """The whole interval lies above zero: the model's lead is beyond the users' noise at this level."""
        return self.low > 0.0


def paired_bootstrap(
    model: np.ndarray, baseline: np.ndarray, *, resamples: int = RESAMPLES, level: float = LEVEL, seed: int = 0
) -> Difference:
    """The ``level`` percentile interval of the mean per-user difference ``model − baseline``.

    ``model`` and ``baseline`` hold one value per user, the same users in the same order (a model over seeds:
    each user's mean over them).

    >>> hits = np.array([1.0, 1.0, 0.0, 1.0])
    >>> d = paired_bootstrap(hits, hits)
    >>> (d.mean, d.low, d.high)
    (0.0, 0.0, 0.0)
    >>> paired_bootstrap(np.ones(50), np.zeros(50)).low
    1.0
    """
    model, baseline = np.asarray(model, dtype=np.float64), np.asarray(baseline, dtype=np.float64)
    if model.shape != baseline.shape or model.ndim != 1 or model.size == 0:
        raise ConfigError(
            f"a paired bootstrap needs two equal, non-empty per-user arrays: {model.shape}, {baseline.shape}"
        )
    if resamples < 1 or not 0.0 < level < 1.0:
        raise ConfigError(f"resamples={resamples} must be at least 1 and level={level} lie in (0, 1)")
    differences = model - baseline
    rng = np.random.default_rng(seed)
    chunk = max(1, _DRAWS_PER_CHUNK // differences.size)
    means = np.concatenate(
        [
            differences[rng.integers(0, differences.size, size=(min(chunk, resamples - start), differences.size))].mean(
                1
            )
            for start in range(0, resamples, chunk)
        ]
    )
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(means, [tail, 100.0 - tail])
    return Difference(float(differences.mean()), float(low), float(high), int(differences.size), resamples)
