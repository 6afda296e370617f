"""From loaded ratings to a split, indexed dataset, cached as parquet with a JSON manifest.

The split is per user and chronological: the user's last interaction is the test item, the
second-to-last the validation item, the rest are training items (DGL's
``train_test_split_by_time``). Timestamps tie often, so the order is made total by a fixed rule:
**among ratings with the same timestamp, the one with the larger movie id counts as later.**

Users with fewer than ``min_user_interactions`` ratings cannot give a validation and a test item.
By default (``short_users="train"``) all their ratings stay in training, where they still shape
the graph, and they are left out of evaluation; ``short_users="drop"`` removes them. Either way the
count is reported. Movies in the catalogue that nobody rated are not graph nodes; their count is
reported too.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from rec_lib import __version__
from rec_lib.config import DEFAULT_DATASET, PROJECT_ROOT, resolve_artefacts_dir, resolve_data_dir
from rec_lib.data.datasets import LAYOUT_FILES, file_sha256, locate_dataset
from rec_lib.data.loaders import MovieLensData, load_folder
from rec_lib.errors import ConfigError

PREPROCESS_SCHEMA_VERSION = 2
"""Bump when the artefacts' content changes for the same inputs; it is part of the cache key."""

SPLITS = ("train", "val", "test")
TIE_ORDER = {"hash": "a fixed hash of (user, movie)", "movie-id": "movie id"}
"""Each tie rule (:attr:`PreprocessConfig.ties`) in words."""
TIE_RULES = tuple(TIE_ORDER)
TIE_SEED = 0x5EED_71E5
"""The seed of the tie hash: fixed, so the split is the same on every run."""
MANIFEST_NAME = "manifest.json"


@dataclass(frozen=True)
class PreprocessConfig:
    """What preprocessing does; every field is part of the artefacts' cache key."""

    dataset: str = DEFAULT_DATASET
    min_user_interactions: int = 3
    short_users: Literal["train", "drop"] = "train"
    ties: Literal["movie-id", "hash"] = "hash"
    """How a user's ratings in the same second are ordered: by a fixed seeded hash of (user id, movie id), which no
    model can learn (:func:`tie_hash`), or by movie id (the earlier rule, kept to compare with earlier tables)."""

    def validate(self) -> None:
        if self.min_user_interactions < 3:
            raise ConfigError(
                f"min_user_interactions={self.min_user_interactions}: a user needs at least 3 interactions "
                "to give one training, one validation and one test item"
            )
        if self.short_users not in ("train", "drop"):
            raise ConfigError(f"short_users={self.short_users!r}: expected 'train' or 'drop'")
        if self.ties not in TIE_RULES:
            raise ConfigError(f"ties={self.ties!r}: expected one of {', '.join(TIE_RULES)}")


@dataclass(frozen=True)
class PreprocessStats:
    """The counts preprocessing reports, including everything it set aside."""

    users: int
    movies_rated: int
    movies_in_catalogue: int
    movies_unrated: int
    ratings: int
    short_users: int
    short_user_ratings: int
    short_users_policy: str
    train: int
    val: int
    test: int
    evaluated_users: int
    timestamp_ties: int
    """Ratings that share their user's timestamp with another rating (ordered by the tie rule)."""
    tie_rule: str = "movie-id"
    """How those ties are ordered (:attr:`PreprocessConfig.ties`); artefacts written before the hash rule lack it."""

    def notes(self) -> list[str]:
        """What was set aside or decided, in words."""
        action = "kept in training only, not evaluated" if self.short_users_policy == "train" else "dropped"
        return [
            f"{self.movies_unrated} movies in the catalogue have no rating and are not graph nodes",
            f"{self.short_users} users with fewer than 3 ratings ({self.short_user_ratings} ratings): {action}",
            f"{self.timestamp_ties} ratings tie on time with another of the same user; "
            f"ties are ordered by {TIE_ORDER[self.tie_rule]}",
        ]


@dataclass
class Preprocessed:
    """A split, indexed dataset: what the graph, the model and the evaluation read."""

    interactions: pd.DataFrame
    """user_idx, movie_idx, user_id, movie_id, rating, timestamp, split; sorted by user, then time."""
    movies: pd.DataFrame
    """movie_idx (row order), movie_id, title, year, genres: the rated movies."""
    users: pd.DataFrame
    """user_idx (row order), user_id, and the dataset's demographics where it has them."""
    stats: PreprocessStats
    manifest: dict = field(default_factory=dict)
    path: Path | None = None

    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def n_movies(self) -> int:
        return len(self.movies)

    def split(self, name: str, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """The interactions of one split, 'train', 'val' or 'test' (see :meth:`rows`)."""
        return self.rows((name,), columns)

    def rows(self, splits: tuple[str, ...], columns: Sequence[str] | None = None) -> pd.DataFrame:
        """The interactions of ``splits``, in their order (by user, then time), numbered from 0, with every column
        or only ``columns``: at 25M ratings copying the columns a caller does not read costs seconds."""
        unknown = [name for name in splits if name not in SPLITS]
        if unknown:
            raise ConfigError(f"split={unknown[0]!r}: expected one of {SPLITS}")
        mask = self.interactions["split"].isin(splits).to_numpy()
        kept = {}
        for name in columns or self.interactions.columns:
            values = self.interactions[name]
            # numpy columns through numpy: several times faster than pandas' own take at 25M rows
            kept[name] = values.to_numpy()[mask] if isinstance(values.dtype, np.dtype) else values.array[mask]
        return pd.DataFrame(kept)


def preprocess(data: MovieLensData, config: PreprocessConfig | None = None) -> Preprocessed:
    """Index users and rated movies contiguously and split every user's history by time."""
    config = config or PreprocessConfig(dataset=data.name)
    config.validate()
    ratings = data.ratings
    per_user = ratings.groupby("user_id", sort=False)["movie_id"].transform("size").to_numpy()
    is_short = per_user < config.min_user_interactions
    short_users = int(ratings.loc[is_short, "user_id"].nunique())
    short_ratings = int(is_short.sum())
    if config.short_users == "drop":
        ratings = ratings[~is_short]
        is_short = np.zeros(len(ratings), dtype=bool)
    if ratings.empty:
        source = data.files.get("ratings", data.name)
        raise ConfigError(
            f"{source}: no ratings left to split"
            + (f" (short_users='drop' removed all {short_users} users)" if short_ratings else "")
        )

    user_ids, user_idx = contiguous_index(ratings["user_id"].to_numpy())
    movie_ids, movie_idx = contiguous_index(ratings["movie_id"].to_numpy())
    timestamps = ratings["timestamp"].to_numpy()

    if config.ties == "hash":
        hashed = tie_hash(ratings["user_id"].to_numpy(), ratings["movie_id"].to_numpy())
        tie_key = np.empty(len(hashed), dtype=np.int64)
        tie_key[np.lexsort((movie_idx, hashed))] = np.arange(len(hashed))
    else:
        tie_key = movie_idx
    order = chronological_order(user_idx, timestamps, tie_key)
    user_sorted = user_idx[order]
    split = leave_last_out(user_sorted, ~is_short[order])

    ts_sorted = timestamps[order]
    same_time = (user_sorted[1:] == user_sorted[:-1]) & (ts_sorted[1:] == ts_sorted[:-1])
    ties = int(np.count_nonzero(np.r_[same_time, False] | np.r_[False, same_time]))

    interactions = pd.DataFrame(
        {
            "user_idx": user_sorted,
            "movie_idx": movie_idx[order],
            "user_id": ratings["user_id"].to_numpy()[order],
            "movie_id": ratings["movie_id"].to_numpy()[order],
            "rating": ratings["rating"].to_numpy()[order],
            "timestamp": ts_sorted,
            "split": split_labels(split),
        },
        copy=False,  # the gathered columns are new arrays: no second copy into one consolidated block
    )
    movies = data.movies.set_index("movie_id").loc[movie_ids].reset_index().rename_axis(None)
    movies.insert(0, "movie_idx", np.arange(len(movies), dtype=np.int64))
    users = pd.DataFrame({"user_idx": np.arange(len(user_ids), dtype=np.int64), "user_id": user_ids})
    if data.users is not None:
        users = users.merge(data.users, on="user_id", how="left")
    counts = interactions["split"].value_counts()
    stats = PreprocessStats(
        users=len(user_ids),
        movies_rated=len(movie_ids),
        movies_in_catalogue=len(data.movies),
        movies_unrated=len(data.movies) - len(movie_ids),
        ratings=len(interactions),
        short_users=short_users,
        short_user_ratings=short_ratings,
        short_users_policy=config.short_users,
        train=int(counts["train"]),
        val=int(counts["val"]),
        test=int(counts["test"]),
        evaluated_users=int(counts["test"]),
        timestamp_ties=ties,
        tie_rule=config.ties,
    )
    return Preprocessed(interactions=interactions, movies=movies, users=users, stats=stats)


def resplit(prep: Preprocessed, keep: np.ndarray, manifest: dict) -> Preprocessed:
    """``prep`` restricted to the interactions where ``keep`` is True, split again by leave-one-out (each user
    with at least the run's ``min_user_interactions`` left gets a validation and a test movie), with its counts
    updated and ``manifest`` as its manifest."""
    rows = prep.interactions[keep].reset_index(drop=True)
    users = rows["user_idx"].to_numpy()
    per_user = rows.groupby("user_idx")["movie_idx"].transform("size").to_numpy()
    minimum = prep.manifest.get("parameters", {}).get("min_user_interactions", PreprocessConfig().min_user_interactions)
    rows["split"] = split_labels(leave_last_out(users, per_user >= minimum))
    counts = rows["split"].value_counts()
    stats = replace(
        prep.stats,
        ratings=len(rows),
        train=int(counts["train"]),
        val=int(counts["val"]),
        test=int(counts["test"]),
        evaluated_users=int(counts["test"]),
    )
    return Preprocessed(rows, prep.movies, prep.users, stats, manifest, path=None)


def contiguous_index(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The sorted distinct ``ids`` and each id's position among them (int64).

    Ids that are non-negative and at most a few times as many as the values are mapped through a dense lookup
    table (linear time; MovieLens ids are), others by a sort and binary search.

    >>> distinct, index = contiguous_index(np.array([30, 10, 30, 20]))
    >>> distinct.tolist(), index.tolist()
    ([10, 20, 30], [2, 0, 2, 1])
    >>> contiguous_index(np.array([-5, 10**15, -5]))[1].tolist()
    [0, 1, 0]
    """
    if len(ids) and ids.min() >= 0 and ids.max() < 4 * len(ids) + 1_000_000:
        present = np.zeros(int(ids.max()) + 1, dtype=bool)
        present[ids] = True
        distinct = np.flatnonzero(present)
        lookup = np.zeros(len(present), dtype=np.int64)
        lookup[distinct] = np.arange(len(distinct))
        return distinct.astype(ids.dtype, copy=False), lookup[ids]
    distinct = np.unique(ids)
    return distinct, np.searchsorted(distinct, ids).astype(np.int64, copy=False)


def tie_hash(user_ids: np.ndarray, movie_ids: np.ndarray, seed: int = TIE_SEED) -> np.ndarray:
    """A fixed pseudo-random uint64 per (user id, movie id) (splitmix64's mixer): the same for the same pair
    whatever else is in the data, unrelated to the ids' order.

    >>> tie_hash(np.array([7, 7]), np.array([1, 2])).tolist() == tie_hash(np.array([7, 7]), np.array([1, 2])).tolist()
    True
    """
    x = (np.asarray(user_ids).astype(np.uint64) << np.uint64(32)) ^ np.asarray(movie_ids).astype(np.uint64)
    x = x ^ np.uint64(seed)
    with np.errstate(over="ignore"):
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def chronological_order(user_idx: np.ndarray, timestamps: np.ndarray, tie_key: np.ndarray) -> np.ndarray:
    """The row order by user, then time, then ``tie_key`` (non-negative, distinct within a user: the movie index,
    or the rank of the movie's tie hash).

    One argsort of a packed 64-bit key when user, time offset and tie key fit in 64 bits together (ml-25m's
    movie indices do: 18 + 30 + 16), else a stable argsort of the packed (user, time) after ordering by the tie
    key, else ``np.lexsort``; all three give the same order, several times faster than lexsort in that sequence.
    The packed keys are distinct (the loaders refuse duplicate (user, movie) pairs), so the kind of sort does not
    change the order; numpy's stable one is the faster on them (reports/scale.md has the timings).

    >>> chronological_order(np.array([1, 0, 0, 0]), np.array([5, 9, 7, 7]), np.array([0, 0, 2, 1])).tolist()
    [3, 2, 1, 0]
    """
    offsets = np.subtract(timestamps, timestamps.min() if len(timestamps) else 0, dtype=np.int64).view(np.uint64)
    user_bits, time_bits, tie_bits = (
        max(int(values.max()).bit_length(), 1) if len(values) else 1 for values in (user_idx, offsets, tie_key)
    )
    if user_bits + time_bits > 64:
        return np.lexsort((tie_key, timestamps, user_idx))
    key = user_idx.astype(np.uint64)  # packed in place: at 25M ratings every temporary is 200 MB
    key <<= np.uint64(time_bits)
    key |= offsets
    if user_bits + time_bits + tie_bits <= 64:
        key <<= np.uint64(tie_bits)
        key |= tie_key.astype(np.int64, copy=False).view(np.uint64)
        return np.argsort(key, kind="stable")
    by_tie = np.argsort(tie_key, kind="stable")
    return by_tie[np.argsort(key[by_tie], kind="stable")]


def leave_last_out(user_sorted: np.ndarray, evaluable: np.ndarray) -> np.ndarray:
    """Split codes (indices into :data:`SPLITS`) for interactions sorted by user, then time: each evaluable
    user's last is "test" (2), the one before "val" (1), the rest "train" (0).

    >>> codes = leave_last_out(np.array([0, 0, 0, 1, 1]), np.array([True, True, True, False, False]))
    >>> [SPLITS[c] for c in codes]
    ['train', 'val', 'test', 'train', 'train']
    """
    n = len(user_sorted)
    group_end = np.flatnonzero(np.r_[user_sorted[1:] != user_sorted[:-1], True])
    group_size = np.diff(group_end, prepend=-1)
    from_end = np.repeat(group_end, group_size) - np.arange(n)
    codes = np.zeros(n, dtype=np.int8)
    codes[(from_end == 1) & evaluable] = SPLITS.index("val")
    codes[(from_end == 0) & evaluable] = SPLITS.index("test")
    return codes


def split_labels(codes: np.ndarray) -> pd.Categorical:
    """The ``split`` column from :func:`leave_last_out`'s codes, without building a string per row."""
    return pd.Categorical.from_codes(codes, categories=list(SPLITS))


def run_preprocess(
    config: PreprocessConfig | None = None,
    *,
    data_dir: str | Path | None = None,
    artefacts_dir: str | Path | None = None,
    download: bool = True,
    force: bool = False,
) -> Preprocessed:
    """Preprocess ``config.dataset``, reusing cached artefacts made from the same inputs and settings."""
    config = config or PreprocessConfig()
    config.validate()
    folder, layout = locate_dataset(config.dataset, resolve_data_dir(data_dir), download=download)
    files = {
        name: {"bytes": (folder / name).stat().st_size, "sha256": file_sha256(folder / name)}
        for name in LAYOUT_FILES[layout]
    }
    key = fingerprint({"files": files, "parameters": asdict(config), "schema": PREPROCESS_SCHEMA_VERSION})
    target = resolve_artefacts_dir(artefacts_dir) / config.dataset / f"preprocess-{key[:12]}"
    if not force and (target / MANIFEST_NAME).is_file():
        cached = load_preprocessed(target)
        if cached.manifest.get("fingerprint") == key:
            return cached
    result = preprocess(load_folder(folder, layout, name=config.dataset), config)
    result.manifest = {
        "dataset": config.dataset,
        "layout": layout,
        "source_folder": str(folder),
        "files": files,
        "parameters": asdict(config),
        "counts": asdict(result.stats),
        "code_version": {"rec_lib": __version__, "schema": PREPROCESS_SCHEMA_VERSION, "git": git_commit()},
        "fingerprint": key,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    save_preprocessed(result, target)
    result.path = target
    return result


def save_preprocessed(result: Preprocessed, target: Path) -> None:
    """Write the artefacts to ``target`` atomically: readers see all of them or none."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}-"))
    try:
        result.interactions.to_parquet(staging / "interactions.parquet", index=False)
        result.movies.to_parquet(staging / "movies.parquet", index=False)
        result.users.to_parquet(staging / "users.parquet", index=False)
        (staging / MANIFEST_NAME).write_text(json.dumps(result.manifest, indent=2) + "\n", encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging)


def load_preprocessed(path: str | Path) -> Preprocessed:
    """Read artefacts written by :func:`run_preprocess`."""
    path = Path(path)
    manifest = json.loads((path / MANIFEST_NAME).read_text(encoding="utf-8"))
    interactions = pd.read_parquet(path / "interactions.parquet")
    interactions["split"] = pd.Categorical(interactions["split"], categories=list(SPLITS))
    movies = pd.read_parquet(path / "movies.parquet")
    movies["genres"] = movies["genres"].map(list)
    return Preprocessed(
        interactions=interactions,
        movies=movies,
        users=pd.read_parquet(path / "users.parquet"),
        stats=PreprocessStats(**manifest["counts"]),
        manifest=manifest,
        path=path,
    )


def fingerprint(payload: dict) -> str:
    """A stable SHA-256 of a JSON-able payload.

    >>> fingerprint({"b": 1, "a": [2]}) == fingerprint({"a": [2], "b": 1})
    True
    """
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def git_commit() -> str | None:
    """The project's current git commit, or None outside a checkout."""
    try:
        out = subprocess.run(
            ["git", "-C", str(PROJECT_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None
