"""Recommendations for liked movies, ranked by the rule that evaluation measured for the way they are read.

1. fetch the liked movies' stored vectors ``[h_j, b_j]`` from Milvus by id;
2. pool them by the mode's rule (:data:`~rec_lib.contracts.QUERY_MODES`). A **set** (the default: the picker's and
   the page's ticks) is pooled by the published :class:`~rec_lib.contracts.SetRule` (the one the dataset's
   liked-set validation chose; a transformed one pools the ticks' ``h_j W``, fetched beside ``[h_j, b_j]``), every
   tick alike, exactly as the liked-set protocol
   (:mod:`rec_lib.evaluation.likedset`) scores it; the ids are sorted first, so any order gives the same query to
   the last bit. A **history** (the latest last) is pooled by the loaded model's
   :class:`~rec_lib.contracts.QueryRule` (stored with the published collection, so the two change together):
   ``w_j`` are the model's recency weights over the latest ``rule.length`` movies (times, when the model learned a
   query encoder, its attention weights: :class:`~rec_lib.contracts.HistoryAttention`), protocol B of
   :mod:`rec_lib.evaluation.protocol` exactly: ``score(i) = Σ_j w_j (h_j · h_i) + b_i``, the inner product of the
   stored ``[h_i, b_i]`` with ``[Σ_j w_j h_j, 1]``. The set rule's score is an inner product with ``[h_i, b_i]``
   too, so either way one search ranks the whole catalogue by it, with no candidate list to cut short;
3. search once for the ``k + len(liked)`` best under the optional genre and year filters, ids only, and drop
   the liked movies: the top ``k`` of the rest is the top ``k`` without them, and Milvus evaluates no id
   filter over every row (its cost: reports/speed.md). The results' vectors come from the same
   cache as the liked ones. Searches that threads of one process ask for while another is in flight go to
   Milvus together (:mod:`rec_lib.serving.batching`). Each result credits the liked movie ``j`` with the
   largest ``h_j · h_i`` ("because you liked …");
4. join titles, years and genres from SQL.

Steps 1, 2 and 4 and the vectors of step 3 are what one load published, which never changes until the
next load: the :class:`Recommender` reads the rules once per published collection and caches vectors and
details, so a warm call costs one Milvus search. An empty selection returns the most-rated movies that pass the
filters, credited to :data:`POPULAR`. ``bench/bench_recommend.py`` measures latency against the bare
search and recall against an exact in-memory search.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from rec_lib.contracts import QUERY_MODES, QueryRule, SetRule, set_rows
from rec_lib.errors import CollectionMissingError, ConfigError, ConsistencyError, UnknownMoviesError
from rec_lib.serving.batching import SearchBatcher
from rec_lib.serving.metadata_store import MovieDetails
from rec_lib.serving.redact import as_text
from rec_lib.serving.stores import Stores
from rec_lib.serving.vector_store import SET_VECTOR_FIELD, VECTOR_FIELD, filter_expression

POPULAR = "popular"
RESULT_COLUMNS = ["movie_id", "title", "year", "genres", "score", "because_id", "because"]


MAX_K = 100
"""The most recommendations one call returns: the API, the CLI and the picker all cap K here."""
MOVIE_ID_RANGE = (0, 2**63 - 1)
"""Movie ids the stores can hold: Milvus's INT64 primary key and SQL's BIGINT (MovieLens ids are positive)."""
CACHED_MOVIES = 100_000
"""Most movies whose vectors (or details) one process keeps per published collection (~100 MB at 256-d)."""
YEAR_RANGE = (1, 9999)
"""Years a filter may name: titles carry four-digit years; 0 stands for "no year" in Milvus and never matches."""


@dataclass(frozen=True)
class RecommendConfig:
    max_liked: int = 200
    max_k: int = MAX_K


@dataclass(frozen=True)
class Filters:
    """Optional restrictions: any of ``genres``; year within ``years`` (inclusive)."""

    genres: tuple[str, ...] = ()
    years: tuple[int, int] | None = None


@dataclass(frozen=True)
class Recommendations:
    """A ranked result as plain columns, best first: what the HTTP API sends without building a DataFrame
    (:meth:`frame` gives the table ``recommend()`` returns). ``because_id`` is None for popular fallbacks."""

    movie_id: list[int]
    title: list[str]
    year: list[int | None]
    genres: list[str]
    score: list[float]
    because_id: list[int | None]
    because: list[str]

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "movie_id": pd.array(self.movie_id, dtype="int64"),
                "title": self.title,
                "year": pd.array(self.year, dtype="Int64"),
                "genres": self.genres,
                "score": pd.array(self.score, dtype="float64"),
                "because_id": pd.array(self.because_id, dtype="Int64"),
                "because": self.because,
            },
            columns=RESULT_COLUMNS,
        )


@dataclass
class _Published:
    """What one load published, read once: its collection and rules, and caches of its movies' stored vectors and
    details, which never change while that collection exists (a reload builds a new one)."""

    collection: str
    rule: QueryRule
    set_rule: SetRule
    vectors: dict[int, np.ndarray] = field(default_factory=dict)
    set_vectors: dict[int, np.ndarray] = field(default_factory=dict)
    details: dict[int, MovieDetails] = field(default_factory=dict)
    genres: list[str] | None = None

    def query(self, stored: np.ndarray, mode: str, set_vectors: np.ndarray | None = None) -> np.ndarray:
        """The query for the liked movies' stored rows: a set by the published set rule (a transformed one pools
        their ``set_vectors``), a history (the latest last) by the model's history rule."""
        if mode != "set":
            return self.rule.query(stored[::-1])
        return self.set_rule.query(stored if set_vectors is None else set_rows(stored, set_vectors))


class Recommender:
    """recommend() over one process's stores (see :func:`rec_lib.serving.stores.open_stores`).

    It pins the collection the alias points at and reads its rules once, then caches the movies' vectors
    and details it has used, so a warm call is one Milvus search (shared with the threads searching at the same
    time) and no SQL. Safe to call from many threads at once. A reload (by this
    or another process) drops the pinned collection: the next call finds it gone, pins the new one, and
    reads the rules and details again, so it is seen at the first request after it.
    """

    def __init__(self, stores: Stores, config: RecommendConfig | None = None) -> None:
        self.stores = stores
        self.config = config or RecommendConfig()
        self._published: _Published | None = None
        self._searches = SearchBatcher(stores.vectors)

    def _pinned(self) -> _Published:
        published = self._published
        if published is None:
            collection = self.stores.vectors.collection()
            vectors = self.stores.vectors
            published = _Published(collection, vectors.query_rule(collection), vectors.set_rule(collection))
            self._published = published
        return published

    def known_genres(self) -> list[str]:
        published = self._pinned()
        if published.genres is None:
            published.genres = self.stores.metadata.genres()
        return published.genres

    def recommend(
        self,
        liked: Iterable[int],
        k: int = 10,
        *,
        mode: str = "set",
        genres: Iterable[str] | None = None,
        years: tuple[int, int] | None = None,
    ) -> pd.DataFrame:
        """The ``k`` best movies for the liked ones, read as ``mode`` ("set": in no order; "history": the latest
        last): movie_id, title, year, genres, score, because_id, because."""
        return self.rank(liked, k, mode=mode, genres=genres, years=years).frame()

    def rank(
        self,
        liked: Iterable[int],
        k: int = 10,
        *,
        mode: str = "set",
        genres: Iterable[str] | None = None,
        years: tuple[int, int] | None = None,
    ) -> Recommendations:
        """What :meth:`recommend` returns, as plain columns."""
        if mode not in QUERY_MODES:
            raise ConfigError(f"mode={_shown_one(mode)}: expected one of {', '.join(QUERY_MODES)}")
        liked_ids = self._check_liked(liked)
        try:
            return self._recommend_pinned(liked_ids, k, mode, genres, years)
        except CollectionMissingError:
            self._published = None  # a reload dropped the pinned collection: pin the new one, once
            return self._recommend_pinned(liked_ids, k, mode, genres, years)

    def _recommend_pinned(
        self, liked_ids: list[int], k: int, mode: str, genres: Iterable[str] | None, years: tuple[int, int] | None
    ) -> Recommendations:
        published = self._pinned()
        filters = self._check_filters(k, genres, years)
        if not liked_ids:
            return self._popular(published, k, filters)
        return self._ranked(published, liked_ids, k, mode, filters)

    def _ranked(
        self, published: _Published, liked_ids: list[int], k: int, mode: str, filters: Filters
    ) -> Recommendations:
        stored = self._vectors(published, liked_ids)
        unknown = [i for i in liked_ids if i not in stored]
        if unknown:
            raise UnknownMoviesError(unknown)
        if mode == "set":
            liked_ids = sorted(liked_ids)  # the same query, to the last bit, for any order
        liked_vectors = np.stack([stored[i] for i in liked_ids])
        set_vectors = None
        if mode == "set" and published.set_rule.transformed:
            transformed = self._vectors(published, liked_ids, SET_VECTOR_FIELD)
            set_vectors = np.stack([transformed[i] for i in liked_ids])
        query = published.query(liked_vectors, mode, set_vectors)
        expression = filter_expression(list(filters.genres), filters.years)
        hits = self._searches.search(query[0], k + len(liked_ids), expression, collection=published.collection)
        liked_set = set(liked_ids)
        found_ids = [h.movie_id for h in hits if h.movie_id not in liked_set]
        if not found_ids:
            return self._table(published, [], [], [])
        vectors = self._vectors(published, found_ids)
        found = np.stack([vectors[i] for i in found_ids])
        similarity = liked_vectors[:, :-1] @ found[:, :-1].T
        fused = found @ query[0]
        order = np.argsort(-fused, kind="stable")[:k]
        because = np.asarray(liked_ids)[similarity.argmax(axis=0)]
        return self._table(published, [found_ids[i] for i in order], fused[order].tolist(), because[order].tolist())

    def _vectors(self, published: _Published, movie_ids: list[int], field: str = VECTOR_FIELD) -> dict[int, np.ndarray]:
        """Stored ``[h, b]`` rows (or, with ``field`` :data:`SET_VECTOR_FIELD`, set vectors) by id (ids not in the
        collection are absent), fetched once per collection."""
        cache = published.set_vectors if field == SET_VECTOR_FIELD else published.vectors
        return _through_cache(cache, movie_ids, lambda missing: self.stores.vectors.fetch(
            missing, collection=published.collection, field=field))  # fmt: skip

    def _details(self, published: _Published, movie_ids: list[int]) -> dict[int, MovieDetails]:
        return _through_cache(published.details, movie_ids, self.stores.metadata.details)

    def _check_liked(self, liked: Iterable[int]) -> list[int]:
        values = list(liked or [])
        bad = [v for v in values if isinstance(v, bool) or not isinstance(v, int | np.integer)]
        if bad:
            raise ConfigError(f"liked movie ids must be integers, got {_shown(bad)}")
        ids = list(dict.fromkeys(int(v) for v in values))
        outside = [i for i in ids if not MOVIE_ID_RANGE[0] <= i <= MOVIE_ID_RANGE[1]]
        if outside:
            raise ConfigError(f"liked movie ids {_shown(outside)} are outside {list(MOVIE_ID_RANGE)}")
        if len(ids) > self.config.max_liked:
            raise ConfigError(f"{len(ids)} liked movies: at most {self.config.max_liked} are allowed")
        return ids

    def _check_filters(self, k: int, genres: Iterable[str] | None, years: tuple[int, int] | None) -> Filters:
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 1 <= k <= self.config.max_k:
            raise ConfigError(f"k={_shown_one(k)}: expected an integer from 1 to {self.config.max_k}")
        wanted = tuple(dict.fromkeys(genres or ()))
        unknown = [g for g in wanted if g not in self.known_genres()]
        if unknown:
            raise ConfigError(f"unknown genres {_shown(unknown)}; known: {', '.join(self.known_genres())}")
        if years is not None:
            if len(years) != 2 or any(isinstance(y, bool) or not isinstance(y, int | np.integer) for y in years):
                raise ConfigError(f"years={_shown(list(years))}: expected two integers (first, last)")
            if not all(YEAR_RANGE[0] <= y <= YEAR_RANGE[1] for y in years):
                raise ConfigError(f"years={_shown(list(years))}: each year must lie in {list(YEAR_RANGE)}")
            if years[0] > years[1]:
                raise ConfigError(f"years={_shown(list(years))}: the first year is after the last")
            years = (int(years[0]), int(years[1]))
        return Filters(wanted, years)

    def _popular(self, published: _Published, k: int, filters: Filters) -> Recommendations:
        rows = self.stores.metadata.popular(k, genres=list(filters.genres), years=filters.years)
        return self._table(published, rows["movie_id"].tolist(), rows["n_ratings"].astype(float).tolist(), None)

    def _table(
        self, published: _Published, movie_ids: list[int], scores: list[float], because_ids: list[int] | None
    ) -> Recommendations:
        """The result: SQL details joined to the ranked ids; ``because_ids`` None means popular."""
        details = self._details(published, movie_ids + (because_ids or []))
        missing = [i for i in movie_ids if i not in details]
        if missing:
            raise ConsistencyError(
                f"movies {missing} are in Milvus but have no row in {self.stores.metadata.where}; "
                "run `python -m rec_lib load` again"
            )
        found = [details[i] for i in movie_ids]
        return Recommendations(
            movie_id=movie_ids,
            title=[d.title for d in found],
            year=[d.year for d in found],
            genres=[d.genres for d in found],
            score=scores,
            because_id=because_ids or [None] * len(movie_ids),
            because=[details[j].title for j in because_ids] if because_ids else [POPULAR] * len(movie_ids),
        )


def _through_cache(cache: dict, keys: list, fetch) -> dict:
    """``cache``'s values for ``keys``, fetching the missing ones in one call and keeping them; a cache that
    would pass :data:`CACHED_MOVIES` starts over. Keys ``fetch`` does not return are absent from the result.

    >>> cache = {1: "a"}
    >>> _through_cache(cache, [1, 2, 3], lambda missing: {i: str(i) for i in missing if i != 3}), cache
    ({1: 'a', 2: '2'}, {1: 'a', 2: '2'})
    """
    found = {key: value for key in keys if (value := cache.get(key)) is not None}  # safe if another thread clears
    missing = [key for key in dict.fromkeys(keys) if key not in found]
    if missing:
        fetched = fetch(missing)
        if len(cache) + len(fetched) > CACHED_MOVIES:
            cache.clear()
        cache.update(fetched)
        found.update(fetched)
    return found


def _shown(values: list, most: int = 10) -> str:
    """A bounded echo of bad input for an error message: the first ``most`` values, each cut short.

    >>> _shown(["x" * 100, 2, 3], most=2)
    '["xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx…, 2, … 1 more]'
    """
    parts = [_shown_one(v) for v in values[:most]]
    if len(values) > most:
        parts.append(f"… {len(values) - most} more")
    return "[" + ", ".join(parts) + "]"


def _shown_one(value: object, width: int = 40) -> str:
    r"""One value as text: strings JSON-quoted (control characters escaped, lone surrogates too), others by ``str``.

    >>> print(_shown_one("Comedy" + chr(0)), _shown_one(np.int64(3)), _shown_one(chr(0xD800)))
    "Comedy\u0000" 3 "\ud800"
    """
    text = as_text(json.dumps(value, ensure_ascii=False)) if isinstance(value, str) else str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


class ExactRecommender:
    """The same fused score computed over every movie in memory with numpy: the reference for recall and latency.

    ``stored`` holds the ``[h, b]`` rows of ``movie_ids``; ``rule`` pools the liked ones (given the latest last),
    a transformed set rule their ``set_vectors``.
    """

    def __init__(
        self,
        movie_ids: np.ndarray,
        stored: np.ndarray,
        rule: QueryRule | SetRule,
        set_vectors: np.ndarray | None = None,
    ) -> None:
        self.movie_ids = np.asarray(movie_ids)
        self.stored = np.ascontiguousarray(stored, dtype=np.float32)
        self.rule = rule
        self.pooled = self.stored if set_vectors is None else set_rows(self.stored, set_vectors)
        self.position = pd.Series(np.arange(len(movie_ids)), index=self.movie_ids)

    def recommend(self, liked: list[int], k: int, allowed: np.ndarray | None = None) -> np.ndarray:
        """Movie ids of the best ``k`` by ``Σ_j w_j h_j · h_i + b_i``, liked movies and ``~allowed`` excluded."""
        rows = self.position.loc[liked].to_numpy()
        fused = self.stored @ self.rule.query(self.pooled[rows][::-1])[0]
        fused[rows] = -np.inf
        if allowed is not None:
            fused[~allowed] = -np.inf
        top = np.argpartition(-fused, k)[:k]
        return self.movie_ids[top[np.argsort(-fused[top], kind="stable")]]
