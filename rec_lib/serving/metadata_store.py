"""Movie details in SQL (SQLAlchemy Core): a SQLite file by default, MySQL or MariaDB by URL.

One table, ``movies``: the MovieLens id as primary key, title, year,
genres (``|``-separated, as in MovieLens), the training ratings count and mean (popularity, for the
empty-selection fallback) and ``title_key`` (:func:`rec_lib.data.text.search_key` of the title) for
search. Every statement is parameterised; a load upserts every row and deletes rows of movies no longer present, in one
transaction, so running it twice changes nothing and readers never see half a load.

A SQLite file is opened only where it exists (only :meth:`MetadataStore.create`, which a load calls, makes one),
and a pooled connection is used only while the file is the one it opened: a file removed, truncated, replaced or
rewritten is noticed at the next checkout, and a failed query drops the pool, so a restored file is read again at
the next request, without a restart.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, DisconnectionError, SQLAlchemyError

from rec_lib.data.preprocess import Preprocessed
from rec_lib.data.text import search_key
from rec_lib.errors import LOAD_ADVICE, RecLibError, StoreUnavailableError
from rec_lib.serving.redact import public_location

GENRE_SEPARATOR = "|"
LIKE_ESCAPE = "!"
TITLE_LENGTH = 512
_CHUNK = 1000

metadata = sa.MetaData()
movies_table = sa.Table(
    "movies",
    metadata,
    sa.Column("movie_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("title", sa.String(TITLE_LENGTH), nullable=False),
    sa.Column("title_key", sa.String(TITLE_LENGTH), nullable=False, index=True),
    sa.Column("year", sa.Integer, nullable=True),
    sa.Column("genres", sa.String(255), nullable=False),
    sa.Column("n_ratings", sa.Integer, nullable=False),
    sa.Column("mean_rating", sa.Float, nullable=True),
    mysql_charset="utf8mb4",
    mysql_collate="utf8mb4_unicode_ci",
)
COLUMNS = [c.name for c in movies_table.columns]
SQL = "sql"
"""The name errors give this store (:attr:`rec_lib.errors.StoreUnavailableError.store`)."""
SQLITE_PREFIX = "sqlite:///"
_FILE_KEY = "sqlite_file"


class MovieDetails(NamedTuple):
    """What a recommendation shows of a movie besides its id."""

    title: str
    year: int | None
    genres: str


def movie_rows(prep: Preprocessed) -> pd.DataFrame:
    """The movies table's rows for a preprocessed dataset (popularity from the training split)."""
    return catalogue_rows(prep.movies, prep.split("train", ["movie_id", "rating"]))


def catalogue_rows(movies: pd.DataFrame, ratings: pd.DataFrame) -> pd.DataFrame:
    """The movies table's rows for ``movies`` (movie_id, title, year, genres list), popularity from ``ratings``."""
    stats = ratings.groupby("movie_id")["rating"].agg(["size", "mean"])
    frame = pd.DataFrame(
        {
            "movie_id": movies["movie_id"].astype("int64"),
            "title": movies["title"].astype(str),
            "title_key": movies["title"].map(search_key),
            "year": movies["year"].astype("Int64"),
            "genres": movies["genres"].map(GENRE_SEPARATOR.join),
            "n_ratings": movies["movie_id"].map(stats["size"]).fillna(0).astype("int64"),
            "mean_rating": movies["movie_id"].map(stats["mean"]).astype("float64"),
        }
    )
    too_long = frame.loc[frame["title"].str.len() > TITLE_LENGTH, "movie_id"].tolist()
    if too_long:
        raise RecLibError(f"titles longer than {TITLE_LENGTH} characters: movie ids {too_long}")
    return frame


CONCURRENT_QUERIES = 40
"""Threads of one process that may query at once: the API runs its blocking work on a pool of this many
(:func:`rec_lib.serving.api.create_app`). The engine keeps as many connections once opened: with SQLAlchemy's
default of 5, the connections a burst opened beyond 5 were closed and opened again at the next burst, a new
MariaDB login each time (reports/speed.md)."""


class MetadataStore:
    """The movies table behind one SQLAlchemy engine (one per process; see :mod:`rec_lib.serving.stores`)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.sqlite_file = Path(url.removeprefix(SQLITE_PREFIX)) if url.startswith(SQLITE_PREFIX) else None
        options = {"pool_pre_ping": True, "pool_size": CONCURRENT_QUERIES}
        if url.startswith("mysql"):
            options["connect_args"] = {"charset": "utf8mb4", "connect_timeout": 5}
        if self.sqlite_file is not None:
            options["creator"] = self._open_existing_file
        self.engine: Engine = sa.create_engine(url, **options)
        if self.sqlite_file is not None:
            sa.event.listen(self.engine, "connect", self._note_file)
            sa.event.listen(self.engine, "checkout", self._check_file)

    @property
    def where(self) -> str:
        """The URL without credentials or an absolute path: what messages, /health and logs show."""
        return public_location(self.url)

    def _open_existing_file(self) -> sqlite3.Connection:
        """A connection to the SQLite file, which must exist (a missing one is an error, not a new empty file)."""
        return sqlite3.connect(f"{self.sqlite_file.resolve().as_uri()}?mode=rw", uri=True, check_same_thread=False)

    def _note_file(self, dbapi_connection, record) -> None:
        record.info[_FILE_KEY] = _file_identity(self.sqlite_file)

    def _check_file(self, dbapi_connection, record, proxy) -> None:
        """Refuse a pooled connection whose file was removed, replaced or rewritten: the pool opens a new one."""
        if record.info.get(_FILE_KEY) != _file_identity(self.sqlite_file):
            raise DisconnectionError("the SQLite file changed since this connection opened it")

    def _fail(self, exc: Exception) -> StoreUnavailableError:
        """``exc`` as a 503-worthy error naming this store, with what to do; a SQLite pool starts over."""
        reason = _driver_reason(exc)
        if self.sqlite_file is not None:
            self.engine.dispose()
            if not self.sqlite_file.is_file():
                return StoreUnavailableError(
                    f"SQL store {self.where}: the database file is missing; restore it, or {LOAD_ADVICE}", SQL
                )
            if "not a database" in reason or "malformed" in reason:
                return StoreUnavailableError(
                    f"SQL store {self.where} is not a readable database ({reason}); restore the file, or {LOAD_ADVICE}",
                    SQL,
                )
        if "no such table" in reason or "doesn't exist" in reason:
            return StoreUnavailableError(f"SQL store {self.where} holds no loaded movies: {LOAD_ADVICE}", SQL)
        return StoreUnavailableError(f"SQL store {self.where} failed: {reason}", SQL)

    def check(self) -> int:
        """A real query of the movies table (its row count): what /health asks; returns the count."""
        return self.count()

    def create(self) -> None:
        """Create the tables (and, for SQLite, the file) if missing."""
        if self.sqlite_file is not None and not self.sqlite_file.exists():
            sqlite3.connect(self.sqlite_file).close()
        try:
            metadata.create_all(self.engine)
        except SQLAlchemyError as exc:
            raise self._fail(exc) from exc

    def load(self, rows: pd.DataFrame) -> int:
        """Upsert ``rows`` and delete the movies not among them, in one transaction.

        Returns the row count.
        """
        self.create()
        records = _records(rows)
        try:
            with self.engine.begin() as conn:
                existing = {r[0] for r in conn.execute(sa.select(movies_table.c.movie_id))}
                stale = sorted(existing - {r["movie_id"] for r in records})
                for start in range(0, len(stale), _CHUNK):
                    chunk = stale[start : start + _CHUNK]
                    conn.execute(sa.delete(movies_table).where(movies_table.c.movie_id.in_(chunk)))
                for start in range(0, len(records), _CHUNK):
                    conn.execute(self._upsert(), records[start : start + _CHUNK])
        except SQLAlchemyError as exc:
            raise self._fail(exc) from exc
        return len(records)

    def add(self, rows: pd.DataFrame) -> int:
        """Upsert ``rows`` in one transaction, leaving every other movie as it is; returns the row count."""
        records = _records(rows)
        try:
            with self.engine.begin() as conn:
                for start in range(0, len(records), _CHUNK):
                    conn.execute(self._upsert(), records[start : start + _CHUNK])
        except SQLAlchemyError as exc:
            raise self._fail(exc) from exc
        return len(records)

    def _upsert(self):
        updated = [c for c in COLUMNS if c != "movie_id"]
        if self.engine.dialect.name == "mysql":
            from sqlalchemy.dialects.mysql import insert

            statement = insert(movies_table)
            return statement.on_duplicate_key_update({c: statement.inserted[c] for c in updated})
        if self.engine.dialect.name == "sqlite":
            from sqlalchemy.dialects.sqlite import insert

            statement = insert(movies_table)
            return statement.on_conflict_do_update(
                index_elements=["movie_id"], set_={c: statement.excluded[c] for c in updated}
            )
        raise StoreUnavailableError(f"SQL store {self.where}: only SQLite and MySQL/MariaDB are supported", SQL)

    def _frame(self, statement) -> pd.DataFrame:
        try:
            with self.engine.connect() as conn:
                result = conn.execute(statement)
                frame = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
        except SQLAlchemyError as exc:
            raise self._fail(exc) from exc
        return self._typed(frame)

    @staticmethod
    def _typed(frame: pd.DataFrame) -> pd.DataFrame:
        if "year" in frame:
            frame["year"] = frame["year"].astype("Int64")
        return frame

    def count(self) -> int:
        return int(self._frame(sa.select(sa.func.count()).select_from(movies_table)).iloc[0, 0])

    def movie_ids(self) -> np.ndarray:
        frame = self._frame(sa.select(movies_table.c.movie_id))
        return frame["movie_id"].to_numpy(dtype=np.int64)

    def movies(self, movie_ids: list[int]) -> pd.DataFrame:
        """Rows of the given movies, in the order asked (missing ids are simply absent)."""
        found = self._rows_by_id(movie_ids, list(movies_table.columns))
        rows = [found[i] for i in dict.fromkeys(int(i) for i in movie_ids) if i in found]
        return self._typed(pd.DataFrame(rows, columns=COLUMNS))

    def details(self, movie_ids: list[int]) -> dict[int, MovieDetails]:
        """Title, year and genres by id (missing ids are simply absent): the recommend path's lookup,
        which skips building a DataFrame per query."""
        columns = [movies_table.c[name] for name in ("movie_id", *MovieDetails._fields)]
        return {i: MovieDetails(*row[1:]) for i, row in self._rows_by_id(movie_ids, columns).items()}

    def _rows_by_id(self, movie_ids: list[int], columns: list[sa.Column]) -> dict[int, sa.Row]:
        ids = sorted({int(i) for i in movie_ids})
        found: dict[int, sa.Row] = {}
        try:
            with self.engine.connect() as conn:
                for start in range(0, len(ids), _CHUNK):
                    statement = sa.select(*columns).where(movies_table.c.movie_id.in_(ids[start : start + _CHUNK]))
                    found.update((int(row[0]), row) for row in conn.execute(statement))
        except SQLAlchemyError as exc:
            raise self._fail(exc) from exc
        return found

    def search(self, query: str, limit: int = 20) -> pd.DataFrame:
        """Movies whose title contains the query, ignoring case, accents and article position; popular first."""
        return self._typed(pd.DataFrame(self.search_rows(query, limit), columns=COLUMNS))

    def search_rows(self, query: str, limit: int = 20) -> list[sa.Row]:
        """What :meth:`search` finds, as rows: the HTTP API's path, which needs no DataFrame."""
        key = search_key(query)
        if not key:
            return []
        pattern = "%" + _escape_like(key) + "%"
        statement = (
            sa.select(movies_table)
            .where(movies_table.c.title_key.like(pattern, escape=LIKE_ESCAPE))
            .order_by(movies_table.c.n_ratings.desc(), movies_table.c.movie_id)
            .limit(limit)
        )
        try:
            with self.engine.connect() as conn:
                return list(conn.execute(statement))
        except SQLAlchemyError as exc:
            raise self._fail(exc) from exc

    def random(self, n: int, seed: int | None = None) -> pd.DataFrame:
        """``n`` movies drawn uniformly (reproducible when ``seed`` is given)."""
        ids = self.movie_ids()
        rng = np.random.default_rng(seed)
        chosen = rng.choice(ids, size=min(n, len(ids)), replace=False) if len(ids) else ids
        return self.movies(chosen.tolist())

    def popular(
        self,
        n: int,
        *,
        genres: list[str] | None = None,
        years: tuple[int, int] | None = None,
    ) -> pd.DataFrame:
        """The ``n`` most-rated movies that pass the filters (any of ``genres``; year in ``years``, inclusive)."""
        statement = sa.select(movies_table).order_by(movies_table.c.n_ratings.desc(), movies_table.c.movie_id)
        if years is not None:
            statement = statement.where(movies_table.c.year.between(int(years[0]), int(years[1])))
        if genres:
            wanted = set(genres)
            frame = self._frame(statement)
            keep = frame["genres"].map(lambda g: bool(wanted & set(g.split(GENRE_SEPARATOR))))
            return frame[keep].head(n).reset_index(drop=True)
        return self._frame(statement.limit(n))

    def genres(self) -> list[str]:
        """Every genre that some movie has, sorted."""
        frame = self._frame(sa.select(movies_table.c.genres).distinct())
        return sorted({g for value in frame["genres"] for g in value.split(GENRE_SEPARATOR) if g})

    def close(self) -> None:
        self.engine.dispose()


def _file_identity(path: Path) -> tuple[int, ...] | None:
    """What tells one state of a file from another: device, inode, size and modification time; None if absent."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)


def _driver_reason(exc: Exception) -> str:
    """The database's own words for a failure, on one line: no driver class names, no Python reprs.

    >>> import pymysql
    >>> _driver_reason(DBAPIError("SELECT 1", {}, pymysql.err.OperationalError(2003, "Can't connect")))
    "error 2003: Can't connect"
    """
    original = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    args = getattr(original, "args", ())
    if len(args) == 2 and isinstance(args[0], int):
        text = f"error {args[0]}: {args[1]}"
    elif args and isinstance(args[0], str):
        text = args[0]
    else:
        text = str(original)
    return (text.strip().splitlines() or ["no reason given"])[0]


def _escape_like(text: str) -> str:
    """``text`` as a literal inside a LIKE pattern that uses :data:`LIKE_ESCAPE`.

    >>> _escape_like("100%_a!b")
    '100!%!_a!!b'
    """
    for char in (LIKE_ESCAPE, "%", "_"):
        text = text.replace(char, LIKE_ESCAPE + char)
    return text


def _records(rows: pd.DataFrame) -> list[dict]:
    missing = [c for c in COLUMNS if c not in rows]
    if missing:
        raise RecLibError(f"movie rows lack columns {missing}")
    frame = rows[COLUMNS].astype(object).where(rows[COLUMNS].notna(), None)
    return frame.to_dict(orient="records")
