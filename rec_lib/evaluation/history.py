"""The one definition of a history window: a row's latest ``length`` earlier interactions of the same user.

Interactions are given in the order preprocessing keeps them, by user and then by time, so a row's history
is the rows just before it, back to its user's first. Evaluation's queries, the cold-start events and
PinSage's training examples all read their histories through :func:`latest_before`.
"""

from __future__ import annotations

import torch


def user_starts(users: torch.Tensor) -> torch.Tensor:
    """For every row of ``users`` (sorted by user), the index of that user's first row.

    >>> user_starts(torch.tensor([4, 4, 7, 7, 7, 9])).tolist()
    [0, 0, 2, 2, 2, 5]
    """
    first = torch.ones_like(users, dtype=torch.bool)
    first[1:] = users[1:] != users[:-1]
    return torch.cummax(torch.where(first, torch.arange(users.numel(), device=users.device), 0), 0)[0]


def latest_before(
    movies: torch.Tensor, starts: torch.Tensor, rows: torch.Tensor, length: int, pad: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """The movies of each of ``rows``' latest ``length`` earlier rows of the same user, latest first.

    ``starts`` is :func:`user_starts` of the rows' users. Returns ``(history, present)``, both (R, length):
    ``history`` holds ``pad`` where ``present`` is False.

    >>> users, movies = torch.tensor([1, 1, 1, 2, 2]), torch.tensor([10, 11, 12, 20, 21])
    >>> history, present = latest_before(movies, user_starts(users), torch.tensor([2, 3, 4]), 3, pad=-1)
    >>> history.tolist(), present.tolist()
    ([[11, 10, -1], [-1, -1, -1], [20, -1, -1]], [[True, True, False], [False, False, False], [True, False, False]])
    """
    back = rows[:, None] - 1 - torch.arange(length, device=rows.device)
    present = back >= starts[rows, None]
    history = torch.where(present, movies[back.clamp(min=0)], pad)
    return history, present
