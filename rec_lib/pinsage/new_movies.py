"""New movies for a trained model: their vectors without retraining, and their place in the stores.

A movie the model never trained on reads the shared *unseen* id embedding and bias
(:class:`rec_lib.pinsage.layers.MovieIds`); its vector comes from its features (genres, year, title
words, encoded under the checkpoint's vocabulary) and from its neighbourhood, sampled on the graph of
the run's data plus the new movies' first ratings, when a ratings file gives some. This is what
``python -m rec_lib add-movies`` runs, and what the cold-start evaluation (:mod:`rec_lib.evaluation.coldstart`)
measures.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from rec_lib.contracts import saved_set_transform, store_vectors, transformed_vectors
from rec_lib.data.preprocess import SPLITS, Preprocessed
from rec_lib.errors import DataFormatError
from rec_lib.pinsage.checkpoint import CHECKPOINT_BEST, checkpoint_vocab, load_checkpoint
from rec_lib.pinsage.graph import FULL_GRAPH, build_graph
from rec_lib.pinsage.inference import seeded_vectors

HEADER_LINES = 1
"""Data lines of a MovieLens CSV file start after its header: row ``i`` is line ``i + 2``."""


@dataclass(frozen=True)
class NewMovies:
    """Movies to add: their stored ``[h, b]`` vectors (and ``h W`` for a transformed set rule) and details, and
    what was left out, with why."""

    movie_ids: np.ndarray
    stored: np.ndarray
    movies: pd.DataFrame
    """movie_id, title, year, genres of each new movie, in ``movie_ids`` order."""
    first_ratings: pd.DataFrame
    """The ratings of the new movies that their neighbourhoods saw."""
    already_trained: list[int]
    """Ids in the file that the model trained on, with the same title: left as they are."""
    set_vectors: np.ndarray | None = None
    """``h W`` of each new movie when the run's export has a transformed set rule, else None."""


def check_new_movies(
    movies: pd.DataFrame,
    catalogue_titles: pd.Series,
    source: Path,
    ratings: pd.DataFrame | None = None,
    ratings_source: Path | None = None,
) -> None:
    """Refuse, naming the file and line, an id the catalogue holds under another title, and a rating of a
    movie the file does not list. ``catalogue_titles`` maps movie id to title (trained movies and the stores')."""
    known = catalogue_titles.reindex(movies["movie_id"]).to_numpy()
    for row, (movie_id, title, old) in enumerate(zip(movies["movie_id"], movies["title"], known, strict=True)):
        if isinstance(old, str) and old != title:
            raise DataFormatError(
                source,
                f"movieId {movie_id} is already {old!r} in the catalogue, not {title!r}: give the new movie a new id",
                line=row + HEADER_LINES + 1,
            )
    if ratings is not None:
        stray = ~ratings["movie_id"].isin(movies["movie_id"]).to_numpy()
        if stray.any():
            row = int(np.flatnonzero(stray)[0])
            raise DataFormatError(
                ratings_source or "<ratings>",
                f"movieId {ratings['movie_id'].iloc[row]} is not among the movies of {Path(source).name}: "
                "a ratings file gives first ratings of the movies being added",
                line=row + HEADER_LINES + 1,
            )


def new_movie_vectors(
    run_directory: Path,
    prep: Preprocessed,
    movies: pd.DataFrame,
    ratings: pd.DataFrame | None = None,
    *,
    device: str | torch.device | None = None,
) -> NewMovies:
    """Vectors and details of ``movies`` (checked by :func:`check_new_movies`) from the best model of the run in
    ``run_directory``, which trained on ``prep``.

    Movies the run trained on (same id) are left out and listed in ``already_trained``. The neighbourhoods
    are sampled with the run's seed, so the same input gives the same vectors.
    """
    trained = movies["movie_id"].isin(prep.movies["movie_id"]).to_numpy()
    fresh = movies[~trained].reset_index(drop=True)
    ratings = ratings if ratings is not None else pd.DataFrame(columns=["user_id", "movie_id", "rating", "timestamp"])
    extended = _with_new_movies(prep, fresh, ratings)
    checkpoint = Path(run_directory) / CHECKPOINT_BEST
    graph = build_graph(extended, FULL_GRAPH, checkpoint_vocab(checkpoint))
    config, model = load_checkpoint(checkpoint, graph)
    target = torch.device(device) if device is not None else config.resolved_device()
    nodes = torch.arange(prep.n_movies, extended.n_movies)
    vectors = seeded_vectors(model.to(target), config, graph, target, movies=nodes)
    bias = model.biases()[nodes]
    first_ratings = ratings[ratings["movie_id"].isin(fresh["movie_id"])]
    vectors = vectors.numpy().astype(np.float32)
    return NewMovies(
        movie_ids=fresh["movie_id"].to_numpy(dtype=np.int64),
        stored=store_vectors(vectors, bias.numpy().astype(np.float32)),
        movies=fresh[["movie_id", "title", "year", "genres"]],
        first_ratings=first_ratings,
        already_trained=movies.loc[trained, "movie_id"].astype(int).tolist(),
        set_vectors=transformed_vectors(vectors, saved_set_transform(Path(run_directory))),
    )


def _with_new_movies(prep: Preprocessed, movies: pd.DataFrame, ratings: pd.DataFrame) -> Preprocessed:
    """The run's data with ``movies`` appended as nodes and ``ratings`` as training edges (new users appended)."""
    new_movies = movies[["movie_id", "title", "year", "genres"]].assign(
        movie_idx=np.arange(prep.n_movies, prep.n_movies + len(movies), dtype=np.int64)
    )
    all_movies = pd.concat([prep.movies, new_movies[prep.movies.columns]], ignore_index=True)
    ratings = ratings[ratings["movie_id"].isin(movies["movie_id"])]
    new_users = np.setdiff1d(ratings["user_id"].to_numpy(dtype=np.int64), prep.users["user_id"].to_numpy())
    users = pd.concat(
        [
            prep.users,
            pd.DataFrame({"user_idx": np.arange(prep.n_users, prep.n_users + len(new_users)), "user_id": new_users}),
        ],
        ignore_index=True,
    )
    user_idx = pd.Series(users["user_idx"].to_numpy(), index=users["user_id"].to_numpy())
    movie_idx = pd.Series(all_movies["movie_idx"].to_numpy(), index=all_movies["movie_id"].to_numpy())
    edges = pd.DataFrame(
        {
            "user_idx": user_idx.reindex(ratings["user_id"]).to_numpy(dtype=np.int64),
            "movie_idx": movie_idx.reindex(ratings["movie_id"]).to_numpy(dtype=np.int64),
            "user_id": ratings["user_id"].to_numpy(dtype=np.int64),
            "movie_id": ratings["movie_id"].to_numpy(dtype=np.int64),
            "rating": ratings["rating"].to_numpy(dtype=np.float32),
            "timestamp": ratings["timestamp"].to_numpy(dtype=np.int64),
            "split": pd.Categorical(np.full(len(ratings), "train"), categories=list(SPLITS)),
        }
    )
    interactions = pd.concat([prep.interactions, edges], ignore_index=True)
    return Preprocessed(interactions, all_movies, users, prep.stats, prep.manifest)
