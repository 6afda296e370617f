"""Cold start: movies the model never trained on, scored from their features and first interactions.

The protocol (split ``cold-test``):

* **New movies**: among the movies with more than ``max(REVEALED)`` ratings, the newest ``share`` by
  first rating (ties by movie index): what the catalogue added last and users went on to watch. None of
  their interactions is used to train: the model learns from the *warm* data (every interaction with
  any other movie), split per user by the standard leave-one-out and stopped early on its validation,
  exactly as the product's model is. The new movies stay in the catalogue without interactions, as movies
  the catalogue team has added but nobody has rated: training draws them as uniform negatives like any
  other movie (their features and the unseen id, never a rating of theirs).
* **Revealed interactions**: for each ``k`` of :data:`REVEALED`, every new movie's first ``k``
  interactions (in time) join the graph, which also holds every warm interaction. No model is retrained.
* **Events**: every interaction of a user with a new movie after that movie's first ``max(REVEALED)``,
  the same events for every ``k``, so the rows of one model are comparable along ``k``. From the user's
  history before the event (every earlier interaction, warm or new, the latest ``history_len`` under
  the scorer's query rule), the **new movies only** are ranked, not the whole catalogue: the question
  is which new movie the user picks. New movies already in the user's history are masked. Ties count at
  their expected rank, so a scorer that cannot tell the new movies apart scores at chance.
* **Models**: PinSage (the same model, loss, query rule and content channel as the product; new movies read
  the unseen id), content-only similarity (:class:`~rec_lib.evaluation.baselines.ContentSimilarity`), popularity among
  the new movies (:class:`PopularNew`: their revealed ratings before the event, and every rating before
  it), and item-kNN and EASE fitted on the revealed graph: with nothing revealed they have no score for
  a new movie.

Choosing only new movies that went on to get more than ``max(REVEALED)`` ratings looks ahead; it is what
lets every ``k`` be scored on the same events, and it is the same for every model.

Settings are chosen on split ``cold-val`` (:func:`cold_validation_split`): the same protocol applied to
the warm data alone, so its new movies are the next-newest slice and nothing of ``cold-test`` is seen;
:func:`cold_validation_slices` goes further back, slice by slice, to average over several periods.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, replace

import numpy as np
import torch

from rec_lib.data.preprocess import Preprocessed, fingerprint, resplit, split_labels
from rec_lib.errors import ConfigError
from rec_lib.evaluation.baselines import PopularNew
from rec_lib.evaluation.config import EvalConfig
from rec_lib.evaluation.history import latest_before, user_starts
from rec_lib.evaluation.protocol import (
    MovieScorer,
    expected_rank_judge,
    history_weights,
    protocol_rule,
    rank_targets,
)

COLD_SPLIT = "cold-test"
COLD_VAL_SPLIT = "cold-val"
COLD_SHARE = 0.1
"""The share of movies held out as new: the newest by first rating."""
REVEALED = (0, 1, 3, 10)
"""How many first interactions of each new movie the graph is given."""


@dataclass(frozen=True)
class ColdStartSplit:
    """The data of a cold-start evaluation: the warm training data and the new movies' interactions."""

    prep: Preprocessed
    """Every interaction; its interaction order (by user, then time) defines every history."""
    warm: Preprocessed
    """Interactions with warm movies only, split per user by leave-one-out: what the model trains on."""
    new_movies: np.ndarray
    """Sorted movie indices of the held-out movies."""
    position: np.ndarray
    """For every interaction of ``prep``: its rank in its movie's timeline if the movie is new (0 = the
    movie's first rating), else -1."""
    share: float
    events_after: int
    """Events are the interactions at ``position >= events_after``."""
    name: str = COLD_SPLIT
    """The split its rows are reported under: ``cold-test``, or ``cold-val`` for choosing settings."""

    def revealed(self, k: int) -> Preprocessed:
        """Every warm interaction and each new movie's first ``k``, all as training interactions."""
        keep = (self.position < k) | (self.position < 0)
        interactions = self.prep.interactions[keep].assign(split=split_labels(np.zeros(int(keep.sum()), dtype=np.int8)))
        return replace(self.warm, interactions=interactions.reset_index(drop=True))


def cold_start_split(
    prep: Preprocessed, share: float = COLD_SHARE, revealed: Iterable[int] = REVEALED, name: str = COLD_SPLIT
) -> ColdStartSplit:
    """Hold out the newest ``share`` of the movies with more than ``max(revealed)`` ratings; re-split the rest."""
    if not 0.0 < share < 1.0:
        raise ConfigError(f"cold-start share={share} must lie strictly between 0 and 1")
    most_revealed = max(revealed)
    inter = prep.interactions
    movies = inter["movie_idx"].to_numpy()
    per_movie = inter.groupby("movie_idx")["timestamp"].agg(["min", "size"])
    eligible = per_movie[per_movie["size"] > most_revealed]
    n_new = math.floor(len(eligible) * share)
    if n_new == 0:
        raise ConfigError(
            f"cold start: {len(eligible)} movies have more than {most_revealed} ratings; "
            f"share={share} of them holds out none"
        )
    order = np.lexsort((eligible.index.to_numpy(), eligible["min"].to_numpy()))
    new_movies = np.sort(eligible.index.to_numpy()[order[len(order) - n_new :]])
    is_new = np.isin(movies, new_movies)
    position = np.full(len(inter), -1, dtype=np.int64)
    new_rows = inter[is_new]
    timeline = np.lexsort((new_rows["user_idx"].to_numpy(), new_rows["timestamp"].to_numpy()))
    ranked = new_rows.iloc[timeline]
    position[np.flatnonzero(is_new)[timeline]] = ranked.groupby("movie_idx").cumcount().to_numpy()

    cold = {
        "share": share,
        "events_after": most_revealed,
        "new_movies": int(n_new),
        "new_movie_interactions": int(is_new.sum()),
    }
    manifest = {
        **prep.manifest,
        "cold_start": cold,
        "fingerprint": fingerprint({"data": prep.manifest.get("fingerprint"), "cold_start": cold}),
    }
    warm = resplit(prep, ~is_new, manifest)
    return ColdStartSplit(
        prep=prep,
        warm=warm,
        new_movies=new_movies,
        position=position,
        share=share,
        events_after=most_revealed,
        name=name,
    )


def cold_validation_split(test: ColdStartSplit) -> ColdStartSplit:
    """Split ``cold-val``: the cold-start protocol applied to ``test``'s warm data, for choosing settings.

    Its new movies are the newest ``share`` of the warm movies (the slice just before ``cold-test``'s);
    none of ``cold-test``'s interactions is in it, not even as history, so a setting chosen here has not
    seen the test movies.
    """
    return cold_start_split(test.warm, test.share, (test.events_after,), name=COLD_VAL_SPLIT)


def cold_validation_slices(test: ColdStartSplit, count: int) -> list[ColdStartSplit]:
    """``count`` cold-val splits going back in time (a rolling origin): the first is
    :func:`cold_validation_split`, each next one the protocol applied to the previous one's warm data.

    One slice is a couple of hundred movies from one period; a setting chosen on the mean over several
    slices depends less on which movies happened to be newest. Each slice trains on less (older) data
    than the one after it, and none sees a later slice's movies.
    """
    if count < 1:
        raise ConfigError(f"cold-val slices={count} must be at least 1")
    slices = [cold_validation_split(test)]
    while len(slices) < count:
        slices.append(cold_validation_split(slices[-1]))
    return slices


@dataclass(frozen=True)
class ColdEvents:
    """The events of one ``k``: each target, its history (latest first) and the new movies already seen."""

    history: torch.Tensor
    history_mask: torch.Tensor
    target: torch.Tensor
    """Column of the target among the new movies."""
    time: np.ndarray
    users: np.ndarray
    seen_rows: np.ndarray
    seen_cols: np.ndarray
    """(event, new-movie column) pairs to mask: new movies in the user's history."""

    @property
    def n(self) -> int:
        return int(self.target.numel())


def cold_events(split: ColdStartSplit, history_len: int) -> ColdEvents:
    """The interactions with new movies after their first ``split.events_after``, with the history before each."""
    inter = split.prep.interactions
    users = inter["user_idx"].to_numpy()
    movies = inter["movie_idx"].to_numpy()
    rows = np.flatnonzero(split.position >= split.events_after)
    starts = user_starts(torch.from_numpy(users))
    history, present = latest_before(torch.from_numpy(movies), starts, torch.from_numpy(rows), history_len)
    user_start = starts[torch.from_numpy(rows)].numpy()
    column = np.full(split.prep.n_movies, -1, dtype=np.int64)
    column[split.new_movies] = np.arange(len(split.new_movies))
    new_rows = np.flatnonzero(split.position >= 0)
    seen_rows, seen_cols = [], []
    for event, (row, start) in enumerate(zip(rows, user_start, strict=True)):
        earlier = new_rows[(new_rows >= start) & (new_rows < row)]
        seen_rows.append(np.full(len(earlier), event))
        seen_cols.append(column[movies[earlier]])
    return ColdEvents(
        history=history,
        history_mask=present.float(),
        target=torch.from_numpy(column[movies[rows]]),
        time=inter["timestamp"].to_numpy()[rows],
        users=users[rows],
        seen_rows=np.concatenate(seen_rows) if seen_rows else np.zeros(0, np.int64),
        seen_cols=np.concatenate(seen_cols) if seen_cols else np.zeros(0, np.int64),
    )


@dataclass(frozen=True)
class ColdMetrics:
    hr: float
    ndcg: float
    coverage: float
    events: int
    users: int


def evaluate_cold(
    scorer: MovieScorer | PopularNew,
    events: ColdEvents,
    new_movies: np.ndarray,
    config: EvalConfig,
) -> ColdMetrics:
    """HR@K and NDCG@K over ``events``, ranking the new movies (ties at their expected rank); coverage: the share
    of new movies in any top K."""
    if events.n == 0:
        return ColdMetrics(math.nan, math.nan, math.nan, 0, 0)
    if isinstance(scorer, PopularNew):

        def score_rows(start: int, stop: int) -> torch.Tensor:
            return scorer.counts(events.time[start:stop])

    else:
        columns = torch.from_numpy(new_movies)
        weights = history_weights(scorer, protocol_rule(scorer, "B", config), events.history, events.history_mask)

        def score_rows(start: int, stop: int) -> torch.Tensor:
            return scorer.score(events.history[start:stop], weights[start:stop]).float().cpu()[:, columns]

    seen_rows, seen_cols = torch.from_numpy(events.seen_rows), torch.from_numpy(events.seen_cols)
    ranked = rank_targets(
        score_rows,
        events.n,
        seen_rows,
        seen_cols,
        len(new_movies),
        config,
        lambda k: expected_rank_judge(events.target, k),
    )
    coverage = float(ranked.recommended.float().mean())
    return ColdMetrics(
        float(ranked.hits.mean()), float(ranked.gains.mean()), coverage, events.n, len(np.unique(events.users))
    )
