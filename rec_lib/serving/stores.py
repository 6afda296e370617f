"""Both stores together: where they are, one client pair per process, loading, and the consistency check.

Where: ``MILVUS_URI`` (a Milvus server or cluster, ``http://host:19530``) or by default a Milvus Lite
data dir ``<artefacts>/milvus.db``; ``MYSQL_URL`` (``mysql+pymysql://user:password@host:port/db``)
or by default the SQLite file ``<artefacts>/movies.sqlite``. Credentials come only from the
environment, never from files in the project.

A Milvus Lite data dir can be open in one process only. When a notebook kernel, the CLI and the
API must share one, run ``python -m rec_lib milvus-lite`` (Milvus Lite's server mode on 127.0.0.1)
and set ``MILVUS_URI`` to the address it prints; opening a busy data dir raises
:class:`rec_lib.errors.StoreBusyError` saying so.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from rec_lib.config import resolve_artefacts_dir
from rec_lib.contracts import Embeddings, QueryRule, SetRule, validate_vectors
from rec_lib.errors import ConsistencyError, StoreUnavailableError
from rec_lib.serving.metadata_store import GENRE_SEPARATOR, MetadataStore
from rec_lib.serving.redact import public_location
from rec_lib.serving.vector_store import (
    SET_VECTOR_FIELD,
    VECTOR_FIELD,
    YEAR_UNKNOWN,
    VectorStore,
    VectorStoreConfig,
    is_server_uri,
)

MILVUS_URI_ENV = "MILVUS_URI"
MYSQL_URL_ENV = "MYSQL_URL"
LITE_DATA_DIR_NAME = "milvus.db"
SQLITE_NAME = "movies.sqlite"


@dataclass(frozen=True)
class StoreSettings:
    milvus_uri: str
    sql_url: str
    vector: VectorStoreConfig = field(default_factory=VectorStoreConfig)

    @classmethod
    def from_env(
        cls, artefacts_dir: str | Path | None = None, *, milvus_uri: str | None = None, sql_url: str | None = None
    ) -> StoreSettings:
        """Each store: the explicit setting, else ``MILVUS_URI`` / ``MYSQL_URL``, else the embedded store under the
        artefacts dir. Notebooks 04 and 05, the CLI and the API all resolve their stores through this."""
        root = resolve_artefacts_dir(artefacts_dir)
        return cls(
            milvus_uri=milvus_uri or os.environ.get(MILVUS_URI_ENV) or str(root / LITE_DATA_DIR_NAME),
            sql_url=sql_url or os.environ.get(MYSQL_URL_ENV) or f"sqlite:///{root / SQLITE_NAME}",
        )


@dataclass
class Stores:
    settings: StoreSettings
    vectors: VectorStore
    metadata: MetadataStore

    def close(self) -> None:
        self.vectors.close()
        self.metadata.close()


_open: dict[StoreSettings, Stores] = {}
_open_lock = threading.Lock()


def open_stores(settings: StoreSettings | None = None) -> Stores:
    """The process's clients for ``settings`` (from the environment by default), created once and reused."""
    settings = settings or StoreSettings.from_env()
    with _open_lock:
        if settings not in _open:
            if not is_server_uri(settings.milvus_uri):
                Path(settings.milvus_uri).parent.mkdir(parents=True, exist_ok=True)
            if settings.sql_url.startswith("sqlite:///"):
                Path(settings.sql_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
            vectors = VectorStore(settings.milvus_uri, settings.vector)
            _open[settings] = Stores(settings, vectors, MetadataStore(settings.sql_url))
        return _open[settings]


def open_loaded_stores(settings: StoreSettings) -> Stores:
    """The stores of ``settings``, checked to hold a load: what ``serve`` opens before it answers anything.

    An embedded store that does not exist is not created (a mistyped ``--artefacts-dir`` would otherwise
    serve empty stores); a store without the loaded collection, movies or query rule is refused. Both
    errors say what to run.
    """
    absent = [
        public_location(location)
        for location, embedded in (
            (settings.milvus_uri, not is_server_uri(settings.milvus_uri)),
            (settings.sql_url.removeprefix("sqlite:///"), settings.sql_url.startswith("sqlite:///")),
        )
        if embedded and not Path(location).exists()
    ]
    if absent:
        raise StoreUnavailableError(
            f"nothing is loaded here: {' and '.join(absent)} do not exist. Load the stores first (python -m rec_lib "
            "load, with the same --artefacts-dir, MILVUS_URI and MYSQL_URL), or point serve at where they are"
        )
    stores = open_stores(settings)
    stores.vectors.query_rule()
    stores.vectors.set_rule()
    if stores.metadata.count() == 0 or stores.vectors.count() == 0:
        raise StoreUnavailableError(
            f"the stores {stores.vectors.where} and {stores.metadata.where} hold no movies: run python -m rec_lib load"
        )
    return stores


def close_stores(settings: StoreSettings | None = None) -> None:
    """Close the clients of ``settings`` (or all of them), releasing a Milvus Lite data dir."""
    with _open_lock:
        for key in [settings] if settings is not None else list(_open):
            stores = _open.pop(key, None)
            if stores is not None:
                stores.close()


@dataclass(frozen=True)
class ConsistencyReport:
    milvus_count: int
    sql_count: int
    only_in_milvus: list[int]
    only_in_sql: list[int]
    milvus_dim: int
    expected_dim: int | None

    @property
    def ok(self) -> bool:
        return (
            not self.only_in_milvus
            and not self.only_in_sql
            and self.milvus_count == self.sql_count
            and (self.expected_dim is None or self.milvus_dim == self.expected_dim)
        )

    def problems(self) -> list[str]:
        found = []
        if self.only_in_milvus:
            found.append(f"{len(self.only_in_milvus)} ids in Milvus without a SQL row: {self.only_in_milvus[:20]}")
        if self.only_in_sql:
            found.append(f"{len(self.only_in_sql)} SQL rows without a Milvus vector: {self.only_in_sql[:20]}")
        if self.milvus_count != self.sql_count:
            found.append(f"counts differ: Milvus {self.milvus_count}, SQL {self.sql_count}")
        if self.expected_dim is not None and self.milvus_dim != self.expected_dim:
            found.append(f"Milvus vectors are {self.milvus_dim}-d, the export is {self.expected_dim}-d")
        return found


def check_consistency(stores: Stores, expected_dim: int | None = None) -> ConsistencyReport:
    """Every Milvus id has a SQL row and the reverse; counts and (optionally) the dimension match."""
    milvus_ids = stores.vectors.movie_ids()
    sql_ids = stores.metadata.movie_ids()
    return ConsistencyReport(
        milvus_count=stores.vectors.count(),
        sql_count=stores.metadata.count(),
        only_in_milvus=np.setdiff1d(milvus_ids, sql_ids).tolist(),
        only_in_sql=np.setdiff1d(sql_ids, milvus_ids).tolist(),
        milvus_dim=stores.vectors.dim(),
        expected_dim=expected_dim,
    )


@dataclass(frozen=True)
class LoadReport:
    collection: str
    index_type: str
    movies: int
    dim: int
    consistency: ConsistencyReport


def load_stores(stores: Stores, embeddings: Embeddings, movie_rows: pd.DataFrame) -> LoadReport:
    """Load vectors into Milvus and details into SQL, then check that both agree.

    Vectors are validated before anything is written. The new Milvus collection is built first
    (readers still see the old one), then SQL is replaced in one transaction, then the alias moves;
    if SQL fails, the new collection is dropped and nothing changed.
    """
    embeddings.validate()
    rows = movie_rows.set_index("movie_id").reindex(embeddings.movie_ids)
    missing = embeddings.movie_ids[rows["title"].isna().to_numpy()].tolist()
    if missing:
        raise ConsistencyError(f"movies with vectors but no details row: {missing[:20]}")
    stored = embeddings.store_vectors()
    years = rows["year"].fillna(YEAR_UNKNOWN).to_numpy(dtype=np.int64)
    genres = [g.split(GENRE_SEPARATOR) if g else [] for g in rows["genres"]]
    rules = embeddings.query_rule, embeddings.set_rule, embeddings.set_vectors()
    return _publish(
        stores,
        (embeddings.movie_ids, stored, years, genres, embeddings.fingerprint, *rules),
        lambda: stores.metadata.load(rows.reset_index()),
        "after loading",
    )


def _publish(
    stores: Stores,
    collection: tuple[np.ndarray, np.ndarray, np.ndarray, list[list[str]], str, QueryRule, SetRule, np.ndarray | None],
    write_sql: Callable[[], int],
    when: str,
) -> LoadReport:
    """The one publishing sequence of every load: build the new Milvus collection (ids, ``[h, b]`` rows, years,
    genres, fingerprint, history and set rules, set vectors or None) while readers still see the old one, write SQL
    in one transaction (``write_sql`` returns the movies it holds; if it fails the new collection is dropped and
    nothing changed), move the alias, and check that both stores agree."""
    dim = collection[1].shape[1]
    name = stores.vectors.build(*collection)
    try:
        count = write_sql()
    except BaseException:
        stores.vectors.drop(name)
        raise
    stores.vectors.publish(name)
    report = check_consistency(stores, expected_dim=dim)
    if not report.ok:
        raise ConsistencyError(f"{when}: " + "; ".join(report.problems()))
    return LoadReport(name, stores.vectors.index_type(), count, dim, report)


_FETCH_CHUNK = 2000


def add_to_stores(
    stores: Stores,
    movie_ids: np.ndarray,
    stored: np.ndarray,
    rows: pd.DataFrame,
    set_vectors: np.ndarray | None = None,
) -> LoadReport:
    """Add movies (or replace ones added before) to loaded stores, leaving every other movie as it is.

    ``stored`` holds their ``[h, b]`` rows, ``rows`` their details, ``set_vectors`` their ``h W`` (needed exactly
    when the loaded set rule is transformed). The published collection is never
    written (readers rely on that): a new one is built from its vectors plus these, then SQL upserts the
    rows in one transaction, then the alias moves, as in :func:`load_stores`; if SQL fails, the new
    collection is dropped and nothing changed. The consistency check runs at the end.
    """
    movie_ids = np.asarray(movie_ids, dtype=np.int64)
    current = stores.vectors.collection()
    dim = stores.vectors.dim()
    if stored.shape[1] != dim:
        raise ConsistencyError(
            f"the loaded collection holds {dim}-d vectors, these are {stored.shape[1]}-d: "
            "load the run they come from first (python -m rec_lib load)"
        )
    validate_vectors(movie_ids, stored, dim)
    query_rule, set_rule = stores.vectors.query_rule(current), stores.vectors.set_rule(current)
    if set_rule.transformed and set_vectors is None:
        raise ConsistencyError(
            "the loaded set rule pools transformed vectors and these movies come without theirs: export the run "
            "they come from (python -m rec_lib export) and load it first"
        )
    kept = np.setdiff1d(stores.vectors.movie_ids(), movie_ids)
    vectors = _fetch_all(stores, kept, current, VECTOR_FIELD)
    details = stores.metadata.movies(kept.tolist()).set_index("movie_id").reindex(kept)
    all_ids = np.concatenate([kept, movie_ids])
    all_vectors = np.vstack([np.stack([vectors[int(i)] for i in kept]) if len(kept) else stored[:0], stored])
    all_set_vectors = None
    if set_rule.transformed:
        transformed = _fetch_all(stores, kept, current, SET_VECTOR_FIELD)
        kept_set = np.stack([transformed[int(i)] for i in kept]) if len(kept) else set_vectors[:0]
        all_set_vectors = np.vstack([kept_set, set_vectors])
    years = np.concatenate([details["year"].fillna(YEAR_UNKNOWN).to_numpy(dtype=np.int64), _years(rows, movie_ids)])
    genres = [g.split(GENRE_SEPARATOR) if g else [] for g in details["genres"].fillna("")]
    genres += [g.split(GENRE_SEPARATOR) if g else [] for g in rows.set_index("movie_id").loc[movie_ids, "genres"]]
    fingerprint = current.split("__")[1] if current.count("__") >= 2 else "added"

    def write_sql() -> int:
        stores.metadata.add(rows)
        return stores.metadata.count()

    collection = (all_ids, all_vectors, years, genres, fingerprint, query_rule, set_rule, all_set_vectors)
    return _publish(stores, collection, write_sql, "after adding movies")


def _fetch_all(stores: Stores, movie_ids: np.ndarray, collection: str, field: str) -> dict[int, np.ndarray]:
    """``field`` of every one of ``movie_ids`` in ``collection``, fetched in chunks."""
    fetched: dict[int, np.ndarray] = {}
    for start in range(0, len(movie_ids), _FETCH_CHUNK):
        chunk = movie_ids[start : start + _FETCH_CHUNK].tolist()
        fetched.update(stores.vectors.fetch(chunk, collection=collection, field=field))
    return fetched


def _years(rows: pd.DataFrame, movie_ids: np.ndarray) -> np.ndarray:
    return rows.set_index("movie_id").loc[movie_ids, "year"].fillna(YEAR_UNKNOWN).to_numpy(dtype=np.int64)
