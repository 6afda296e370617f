"""Recommendations for a set of liked movies, as the original design describes them.

1. fetch the liked movies' stored vectors ``[h_j, b_j]`` from Milvus by id;
2. search once per liked movie with the query ``[h_j, 1]`` (the model's score, :mod:`rec_lib.export`),
   under the filters: the liked movies themselves, and optional genres and years;
3. fuse: every movie found by any search is scored against *every* liked movie from the vector the
   search returned, ``score(i) = mean_j (h_j · h_i) + b_i`` (the model's protocol-B rule with
   equal weights, :mod:`rec_lib.evaluation`), and the best ``k`` are kept. The result credits the
   liked movie ``j`` with the largest ``h_j · h_i`` ("because you liked …");
4. join titles, years and genres from SQL.

The fused ranking is exact except for a movie that is in none of the per-movie top lists;
``RecommendConfig.candidates_per_liked`` sets their length (``bench/bench_recommend.py`` measures
the recall against exact search). An empty selection returns the most-rated movies that pass the
filters, credited to :data:`POPULAR`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from rec_lib.errors import ConfigError, UnknownMoviesError
from rec_lib.export import query_vectors
from rec_lib.stores import Stores
from rec_lib.vector_store import filter_expression

POPULAR = "popular"
RESULT_COLUMNS = ["movie_id", "title", "year", "genres", "score", "because_id", "because"]


@dataclass(frozen=True)
class RecommendConfig:
    candidates_per_liked: int = 50
    """How many movies each liked movie's search returns before fusion (at least ``k`` + 1)."""
    max_liked: int = 200
    max_k: int = 500


@dataclass(frozen=True)
class Filters:
    """Optional restrictions: any of ``genres``; year within ``years`` (inclusive)."""

    genres: tuple[str, ...] = ()
    years: tuple[int, int] | None = None


class Recommender:
    """recommend() over one process's stores (see :func:`rec_lib.stores.open_stores`)."""

    def __init__(self, stores: Stores, config: RecommendConfig | None = None) -> None:
        self.stores = stores
        self.config = config or RecommendConfig()
        self._genres: list[str] | None = None

    def known_genres(self) -> list[str]:
        if self._genres is None:
            self._genres = self.stores.metadata.genres()
        return self._genres

    def recommend(
        self,
        liked: Iterable[int],
        k: int = 10,
        *,
        genres: Iterable[str] | None = None,
        years: tuple[int, int] | None = None,
    ) -> pd.DataFrame:
        """The ``k`` best movies for the liked ones: movie_id, title, year, genres, score, because_id, because."""
        liked_ids = self._check_liked(liked)
        filters = self._check_filters(k, genres, years)
        if not liked_ids:
            return self._popular(k, filters)
        stored = self.stores.vectors.fetch(liked_ids)
        unknown = [i for i in liked_ids if i not in stored]
        if unknown:
            raise UnknownMoviesError(unknown)
        queries = query_vectors(np.stack([stored[i] for i in liked_ids]))
        expression = filter_expression(liked_ids, list(filters.genres), filters.years)
        limit = max(self.config.candidates_per_liked, k)
        hits = self.stores.vectors.search(queries, limit, expression)
        candidates: dict[int, np.ndarray] = {h.movie_id: h.vector for per_query in hits for h in per_query}
        if not candidates:
            return pd.DataFrame(columns=RESULT_COLUMNS)
        ids = np.fromiter(candidates, dtype=np.int64, count=len(candidates))
        matrix = np.stack([candidates[i] for i in ids])
        similarity = queries[:, :-1] @ matrix[:, :-1].T
        fused = similarity.mean(axis=0) + matrix[:, -1]
        top = np.argsort(-fused, kind="stable")[:k]
        because = np.asarray(liked_ids)[similarity[:, top].argmax(axis=0)]
        ranked = pd.DataFrame({"movie_id": ids[top], "score": fused[top], "because_id": because})
        return self._with_details(ranked, liked_ids)

    def _check_liked(self, liked: Iterable[int]) -> list[int]:
        values = list(liked or [])
        bad = [v for v in values if isinstance(v, bool) or not isinstance(v, int | np.integer)]
        if bad:
            raise ConfigError(f"liked movie ids must be integers, got {bad}")
        ids = list(dict.fromkeys(int(v) for v in values))
        if len(ids) > self.config.max_liked:
            raise ConfigError(f"{len(ids)} liked movies: at most {self.config.max_liked} are allowed")
        return ids

    def _check_filters(self, k: int, genres: Iterable[str] | None, years: tuple[int, int] | None) -> Filters:
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 1 <= k <= self.config.max_k:
            raise ConfigError(f"k={k!r}: expected an integer from 1 to {self.config.max_k}")
        wanted = tuple(dict.fromkeys(genres or ()))
        unknown = [g for g in wanted if g not in self.known_genres()]
        if unknown:
            raise ConfigError(f"unknown genres {unknown}; known: {', '.join(self.known_genres())}")
        if years is not None:
            if len(years) != 2 or any(isinstance(y, bool) or not isinstance(y, int | np.integer) for y in years):
                raise ConfigError(f"years={years!r}: expected two integers (first, last)")
            if years[0] > years[1]:
                raise ConfigError(f"years={tuple(years)!r}: the first year is after the last")
            years = (int(years[0]), int(years[1]))
        return Filters(wanted, years)

    def _popular(self, k: int, filters: Filters) -> pd.DataFrame:
        rows = self.stores.metadata.popular(k, genres=list(filters.genres), years=filters.years)
        ranked = pd.DataFrame(
            {"movie_id": rows["movie_id"], "score": rows["n_ratings"].astype(float), "because_id": pd.NA}
        )
        result = self._with_details(ranked, [])
        result["because"] = POPULAR
        return result

    def _with_details(self, ranked: pd.DataFrame, liked_ids: list[int]) -> pd.DataFrame:
        wanted = ranked["movie_id"].tolist() + liked_ids
        details = self.stores.metadata.movies(wanted).set_index("movie_id")
        result = ranked.join(details[["title", "year", "genres"]], on="movie_id")
        result["because"] = result["because_id"].map(details["title"]) if liked_ids else None
        result["because_id"] = result["because_id"].astype("Int64")
        return result[RESULT_COLUMNS].reset_index(drop=True)


class ExactRecommender:
    """The same fused score computed over every movie in memory with numpy: the reference for recall and latency.

    ``stored`` holds the ``[h, b]`` rows of ``movie_ids``.
    """

    def __init__(self, movie_ids: np.ndarray, stored: np.ndarray) -> None:
        self.movie_ids = np.asarray(movie_ids)
        self.vectors = np.ascontiguousarray(stored[:, :-1])
        self.bias = stored[:, -1].copy()
        self.position = pd.Series(np.arange(len(movie_ids)), index=self.movie_ids)

    def recommend(self, liked: list[int], k: int, allowed: np.ndarray | None = None) -> np.ndarray:
        """Movie ids of the best ``k`` by ``mean_j h_j · h_i + b_i``, liked movies and ``~allowed`` excluded."""
        rows = self.position.loc[liked].to_numpy()
        fused = self.vectors @ self.vectors[rows].mean(axis=0) + self.bias
        fused[rows] = -np.inf
        if allowed is not None:
            fused[~allowed] = -np.inf
        top = np.argpartition(-fused, k)[:k]
        return self.movie_ids[top[np.argsort(-fused[top], kind="stable")]]
