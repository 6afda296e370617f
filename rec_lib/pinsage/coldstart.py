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
  the unseen id), content-only similarity (:class:`~rec_lib.pinsage.baselines.ContentSimilarity`), popularity among
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

import json
import math
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import torch

from rec_lib.config import PROJECT_ROOT
from rec_lib.data.preprocess import PreprocessConfig, Preprocessed, fingerprint, leave_last_out, split_labels
from rec_lib.errors import ConfigError
from rec_lib.pinsage.baselines import EASE, ContentSimilarity, ItemKNN
from rec_lib.pinsage.config import EASE_L2, EvalConfig, TrainConfig
from rec_lib.pinsage.evaluation import EmbeddingScorer, MovieScorer, protocol_rule, rule_weights
from rec_lib.pinsage.graph import FULL_GRAPH, build_graph
from rec_lib.pinsage.model import PinSageModel
from rec_lib.pinsage.train import seeded_vectors
from rec_lib.progress import progress as progress_bar

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

    warm_rows = inter[~is_new].reset_index(drop=True)
    users = warm_rows["user_idx"].to_numpy()
    per_user = warm_rows.groupby("user_idx")["movie_idx"].transform("size").to_numpy()
    default = PreprocessConfig().min_user_interactions
    minimum = prep.manifest.get("parameters", {}).get("min_user_interactions", default)
    warm_rows["split"] = split_labels(leave_last_out(users, per_user >= minimum))
    counts = warm_rows["split"].value_counts()
    stats = replace(
        prep.stats,
        ratings=len(warm_rows),
        train=int(counts["train"]),
        val=int(counts["val"]),
        test=int(counts["test"]),
        evaluated_users=int(counts["test"]),
    )
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
    warm = Preprocessed(warm_rows, prep.movies, prep.users, stats, manifest, path=None)
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
    user_start = np.searchsorted(users, users[rows], side="left")
    back = rows[:, None] - 1 - np.arange(history_len)[None, :]
    present = back >= user_start[:, None]
    history = np.where(present, movies[np.maximum(back, 0)], 0)
    column = np.full(split.prep.n_movies, -1, dtype=np.int64)
    column[split.new_movies] = np.arange(len(split.new_movies))
    new_rows = np.flatnonzero(split.position >= 0)
    seen_rows, seen_cols = [], []
    for event, (row, start) in enumerate(zip(rows, user_start, strict=True)):
        earlier = new_rows[(new_rows >= start) & (new_rows < row)]
        seen_rows.append(np.full(len(earlier), event))
        seen_cols.append(column[movies[earlier]])
    return ColdEvents(
        history=torch.from_numpy(history),
        history_mask=torch.from_numpy(present.astype(np.float32)),
        target=torch.from_numpy(column[movies[rows]]),
        time=inter["timestamp"].to_numpy()[rows],
        users=users[rows],
        seen_rows=np.concatenate(seen_rows) if seen_rows else np.zeros(0, np.int64),
        seen_cols=np.concatenate(seen_cols) if seen_cols else np.zeros(0, np.int64),
    )


class PopularNew:
    """Popularity among the new movies: how many ratings each had before the event.

    With ``revealed=k`` only the revealed interactions count (``popular-new``: what the other models are
    given; every new movie has ``k`` of them before an event, so it ranks at about chance). With ``None``
    every rating counts, revealed or not (``popular-new-live``: what a live counter knows, more than the
    other models are given).
    """

    query_rule = None

    def __init__(self, split: ColdStartSplit, revealed: int | None) -> None:
        self.name = "popular-new" if revealed is not None else "popular-new-live"
        counted = split.position >= 0
        if revealed is not None:
            counted &= split.position < revealed
        inter = split.prep.interactions
        column = np.searchsorted(split.new_movies, inter["movie_idx"].to_numpy()[counted])
        times = inter["timestamp"].to_numpy()[counted]
        order = np.lexsort((times, column))
        self.column, self.times = column[order], times[order]
        self.n_new = len(split.new_movies)

    def counts(self, event_times: np.ndarray) -> torch.Tensor:
        """(E, new movies) ratings of each new movie strictly before each event time."""
        out = np.zeros((len(event_times), self.n_new), dtype=np.float32)
        bounds = np.searchsorted(self.column, np.arange(self.n_new + 1))
        for c in np.flatnonzero(np.diff(bounds)):
            out[:, c] = np.searchsorted(self.times[bounds[c] : bounds[c + 1]], event_times, side="left")
        return torch.from_numpy(out)


@dataclass(frozen=True)
class ColdMetrics:
    hr: float
    ndcg: float
    coverage: float
    events: int
    users: int


def tie_aware_metrics(scores: torch.Tensor, target: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row, HR@k and NDCG@k of ``target`` with ties at their expected rank (uniform among the tied).

    >>> hr, ndcg = tie_aware_metrics(torch.tensor([[1.0, 1.0, 1.0, 1.0]]), torch.tensor([0]), 2)
    >>> hr.tolist()
    [0.5]
    >>> round(tie_aware_metrics(torch.tensor([[0.0, 2.0, 1.0]]), torch.tensor([2]), 2)[1].item(), 4)  # 1 / log2(3)
    0.6309
    """
    target_score = scores.gather(1, target[:, None])
    greater = (scores > target_score).sum(1)
    ties = (scores == target_score).sum(1) - 1
    discount = torch.cat([torch.zeros(1), torch.cumsum(1.0 / torch.log2(torch.arange(k, dtype=torch.float32) + 2), 0)])
    first = greater.clamp(max=k)
    last = (greater + ties + 1).clamp(max=k)
    spread = (ties + 1).float()
    return (last - first).float() / spread, (discount[last] - discount[first]) / spread


def evaluate_cold(
    scorer: MovieScorer | PopularNew,
    events: ColdEvents,
    new_movies: np.ndarray,
    config: EvalConfig,
) -> ColdMetrics:
    """HR@K and NDCG@K over ``events``, ranking the new movies; coverage: share of new movies in any top K."""
    k = min(config.k, len(new_movies))
    columns = torch.from_numpy(new_movies)
    weights = None
    if not isinstance(scorer, PopularNew):
        weights = rule_weights(protocol_rule(scorer, "B", config), events.history_mask)
    hits = torch.zeros(events.n)
    gains = torch.zeros(events.n)
    recommended = torch.zeros(len(new_movies), dtype=torch.bool)
    seen_rows = torch.from_numpy(events.seen_rows)
    seen_cols = torch.from_numpy(events.seen_cols)
    for start in range(0, events.n, config.batch_users):
        stop = min(start + config.batch_users, events.n)
        if isinstance(scorer, PopularNew):
            scores = scorer.counts(events.time[start:stop])
        else:
            scores = scorer.score(events.history[start:stop], weights[start:stop]).float().cpu()[:, columns]
        in_batch = (seen_rows >= start) & (seen_rows < stop)
        scores[seen_rows[in_batch] - start, seen_cols[in_batch]] = -math.inf
        hits[start:stop], gains[start:stop] = tie_aware_metrics(scores, events.target[start:stop], k)
        recommended[torch.topk(scores, k, dim=1).indices.flatten()] = True
    if events.n == 0:
        return ColdMetrics(math.nan, math.nan, math.nan, 0, 0)
    coverage = float(recommended.float().mean())
    return ColdMetrics(float(hits.mean()), float(gains.mean()), coverage, events.n, len(np.unique(events.users)))


def pinsage_scorer(model: PinSageModel, config: TrainConfig, revealed: Preprocessed) -> EmbeddingScorer:
    """The trained model's vectors on the revealed graph (new movies read the unseen id); no retraining."""
    graph = build_graph(revealed, FULL_GRAPH, model.projector.vocab)
    vectors = seeded_vectors(model, config, graph, next(model.parameters()).device)
    return EmbeddingScorer("pinsage", vectors, model.biases(), model.query_rule())


def baseline_cold_scorers(split: ColdStartSplit, revealed: Preprocessed, k: int, ease_l2: float = EASE_L2) -> list:
    """Content similarity, popularity among the new movies (revealed, live), item-kNN and EASE on the revealed
    graph of ``k`` interactions per new movie."""
    scorers = [ContentSimilarity(split.prep.movies), PopularNew(split, k), PopularNew(split, None), ItemKNN(revealed)]
    try:
        scorers.append(EASE(revealed, ease_l2))
    except ConfigError as refused:
        warnings.warn(f"EASE left out of the cold-start evaluation: {refused}", stacklevel=2)
    return scorers


def cold_start_rows(
    split: ColdStartSplit,
    model: PinSageModel | None,
    config: TrainConfig,
    *,
    revealed: Iterable[int] = REVEALED,
    baselines: bool = True,
    progress: bool = True,
) -> pd.DataFrame:
    """One row per (model, revealed k) on ``split.name``: HR, NDCG and Recall at K, coverage, events."""
    rows = []
    eval_config = config.eval
    events = cold_events(split, eval_config.history_len)
    for k in progress_bar(list(revealed), progress, desc="cold start", unit="k"):
        if k > split.events_after:
            raise ConfigError(f"revealed={k}: the split's events start after {split.events_after} interactions")
        graph_data = split.revealed(k)
        scorers: list = [pinsage_scorer(model, config, graph_data)] if model is not None else []
        if baselines:
            scorers += baseline_cold_scorers(split, graph_data, k)
        for scorer in scorers:
            metrics = evaluate_cold(scorer, events, split.new_movies, eval_config)
            rows.append(
                {
                    "model": scorer.name,
                    "protocol": "B",
                    "split": split.name,
                    "k": eval_config.k,
                    "revealed": k,
                    "hr": metrics.hr,
                    "ndcg": metrics.ndcg,
                    "recall": metrics.hr,
                    "coverage": metrics.coverage,
                    "users": metrics.users,
                    "events": metrics.events,
                }
            )
    return pd.DataFrame(rows)


def summarise_cold(rows: pd.DataFrame, split: str = COLD_SPLIT, by: Iterable[str] = ()) -> pd.DataFrame:
    """HR@K per model and revealed ``k`` (and ``by`` columns) on ``split`` over seeds: mean, sd (0 for the
    deterministic baselines) and runs.

    >>> rows = pd.DataFrame({"model": ["pinsage", "pinsage", "content"], "revealed": [0, 0, 0], "hr": [0.2, 0.3, 0.1]})
    >>> summarise_cold(rows).round(3).to_dict(orient="records")[0]
    {'model': 'pinsage', 'revealed': 0, 'hr_mean': 0.25, 'hr_sd': 0.071, 'runs': 2}
    """
    cold = rows[rows["split"] == split] if "split" in rows else rows
    return (
        cold.groupby(["model", *by, "revealed"], sort=False, dropna=False)["hr"]
        .agg(hr_mean="mean", hr_sd="std", runs="size")
        .reset_index()
        .fillna({"hr_sd": 0.0})
    )


COLD_REPORTS_DIR = PROJECT_ROOT / "reports" / "coldstart"
"""The committed multi-seed results (``bench/cold_start.py``): ``reports/coldstart/<dataset>.json``."""


def reference_rows(dataset: str) -> pd.DataFrame | None:
    """The committed multi-seed cold-start rows of ``dataset``, or None when there are none."""
    path = COLD_REPORTS_DIR / f"{dataset}.json"
    if not path.is_file():
        return None
    return pd.DataFrame(json.loads(path.read_text())["rows"])
