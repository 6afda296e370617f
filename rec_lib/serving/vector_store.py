"""Movie vectors in Milvus (pymilvus ``MilvusClient``): Milvus Lite by default, a server by URI.

The collection has the MovieLens id as its INT64 primary key, the vector (``[h, b]``, see
:mod:`rec_lib.contracts`), with a transformed set rule each movie's ``h W`` (a FLOAT array: fetched, never
searched; Milvus 2.3 servers allow one vector field), ``year``, and one boolean field per genre for filtered search (a
boolean filter costs Milvus Lite nothing measurable, a filter on an ARRAY field ~0.4 s a search). The
metric is the inner product, the model's own score. The collection is created with strong
consistency; see :data:`HOT_PATH_CONSISTENCY` for the recommend path.

Readers always go through an alias (``movies``). A load builds a new collection
(``movies__<fingerprint>__<time>``), inserts, flushes, indexes and loads it, and only then points
the alias at it and drops the previous one: reloading is idempotent, and a reader sees the old
collection or the new one, never a half-filled one.

Index: FLAT (exact) up to :attr:`VectorStoreConfig.flat_max_items` movies, HNSW above, searched
with an explicit ``ef`` (Milvus Lite ignores HNSW *build* parameters but honours ``ef``).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rec_lib.contracts import QueryRule, SetRule, validate_vectors
from rec_lib.errors import (
    LOAD_ADVICE,
    CollectionMissingError,
    InvalidVectorsError,
    StoreBusyError,
    StoreUnavailableError,
)
from rec_lib.progress import progress
from rec_lib.serving.redact import public_location

ID_FIELD = "movie_id"
VECTOR_FIELD = "vector"
SET_VECTOR_FIELD = "set_vector"
"""``h W`` of a transformed set rule (:class:`~rec_lib.contracts.SetRule`), present only with one."""
YEAR_FIELD = "year"
QUERY_RULE_PROPERTY = "rec_lib.query_rule"
"""The collection property that holds the loaded model's history rule (:meth:`QueryRule.as_dict` as JSON)."""
SET_RULE_PROPERTY = "rec_lib.set_rule"
"""The collection property that holds the loaded set rule (``{"prior_ticks": ...}`` as JSON)."""
YEAR_UNKNOWN = 0
"""Stored when a movie has no year (Milvus 2.3 servers have no nullable fields); no year filter matches it."""
MAX_SEARCH_LIMIT = 16384
_INSERT_CHUNK = 2000
HOT_PATH_CONSISTENCY = "Bounded"
"""fetch() and search() skip the server's strong-consistency wait (a time tick, ~200 ms on a Milvus server): a
published collection was flushed and loaded before the alias pointed at it and is never written again, so
bounded reads see exactly what strong ones would. Counts and the consistency check stay strong."""
MILVUS = "milvus"
"""The name errors give this store (:attr:`rec_lib.errors.StoreUnavailableError.store`)."""
GRPC_OPTIONS = {
    "grpc.initial_reconnect_backoff_ms": 500,
    "grpc.min_reconnect_backoff_ms": 500,
    "grpc.max_reconnect_backoff_ms": 2000,
    "grpc.keepalive_time_ms": 300_000,
    "grpc.keepalive_permit_without_calls": 0,
}
"""The client's gRPC channel: it retries a lost server at most every 2 s (gRPC's default backs off up to 120 s), so
a restarted Milvus server is used again within seconds of its return; and it pings no more often than a gRPC
server allows by default, never on an idle connection (pymilvus's own 10 s pings without calls make a Milvus Lite
server answer an idle notebook kernel with GOAWAY too_many_pings error lines; reports/speed.md)."""
_NOT_FOUND_CODE = 100
_NOT_LOADED_CODE = 101


@dataclass(frozen=True)
class VectorStoreConfig:
    alias: str = "movies"
    flat_max_items: int = 100_000
    hnsw_m: int = 16
    hnsw_ef_construction: int = 200
    hnsw_ef: int = 1024
    """Search breadth for HNSW (used above ``flat_max_items``): the smallest that gave recall@10 1.000 on 200,000
    clustered vectors searched as recommend() does, on the Milvus server and on Lite (``bench/bench_index.py``;
    the figures: reports/scale.md)."""
    timeout_s: float = 10.0


@dataclass(frozen=True)
class Hit:
    movie_id: int
    score: float
    """The inner product of the query with the movie's stored vector."""


class VectorStore:
    """One Milvus client (Lite data dir or server URI) and the alias its readers use."""

    def __init__(self, uri: str, config: VectorStoreConfig | None = None) -> None:
        from pymilvus import MilvusClient
        from pymilvus.exceptions import MilvusException

        self.uri = uri
        self.where = public_location(uri)
        """The URI without credentials or an absolute path: what messages, /health and logs show."""
        self.config = config or VectorStoreConfig()
        self._dims: dict[str, int] = {}
        """Each searched collection's dimension, read once (every search checks its queries against it)."""
        # every pymilvus failure is re-raised below as one error naming the store; its own log lines would repeat it
        logging.getLogger("pymilvus").setLevel(logging.CRITICAL)
        self.is_lite = not is_server_uri(uri)
        try:
            if self.is_lite and _lite_data_dir_busy(uri):
                raise LiteDataDirBusy
            self.client = MilvusClient(uri=uri, timeout=self.config.timeout_s, grpc_options=GRPC_OPTIONS)
        except (MilvusException, LiteDataDirBusy) as exc:
            if self.is_lite and (isinstance(exc, LiteDataDirBusy) or _lite_data_dir_busy(uri)):
                raise StoreBusyError(busy_advice(uri), store=MILVUS) from exc
            raise StoreUnavailableError(f"cannot connect to Milvus at {self.where}: {_reason(exc)}", MILVUS) from exc

    def _call(self, what: str, function, *args, collection: str | None = None, **kwargs):
        """``function(*args, **kwargs)`` with every failure as one error naming the store; ``collection`` (default:
        the alias) is the one a released collection is loaded again for, and the one a not-found error names."""
        from pymilvus.exceptions import MilvusException

        target = collection or self.config.alias
        try:
            try:
                return function(*args, **kwargs)
            except MilvusException as exc:
                if exc.code != _NOT_LOADED_CODE:
                    raise
                # a reopened Lite data dir or a restarted server holds the collection released: load, retry once
                self.client.load_collection(target)
                return function(*args, **kwargs)
        except MilvusException as exc:
            if exc.code == _NOT_FOUND_CODE or "not exist" in (exc.message or "") or "not found" in (exc.message or ""):
                raise CollectionMissingError(
                    f'Milvus at {self.where} has no collection "{target}" ({what}): {LOAD_ADVICE}', MILVUS
                ) from exc
            raise StoreUnavailableError(f"Milvus at {self.where} failed to {what}: {_reason(exc)}", MILVUS) from exc
        except Exception as exc:  # grpc and socket errors when a server goes away mid-run
            if type(exc).__module__.startswith(("grpc", "pymilvus")) or isinstance(exc, ConnectionError):
                raise StoreUnavailableError(
                    f"Milvus at {self.where} is unreachable ({what}): {_reason(exc)}", MILVUS
                ) from exc
            raise

    # -- loading -------------------------------------------------------------------------------

    def build(
        self,
        movie_ids: np.ndarray,
        vectors: np.ndarray,
        years: np.ndarray,
        genres: list[list[str]],
        fingerprint: str,
        query_rule: QueryRule,
        set_rule: SetRule,
        set_vectors: np.ndarray | None = None,
    ) -> str:
        """Create, fill, flush, index and load a new collection holding ``query_rule`` and ``set_rule`` beside the
        vectors (collection properties, so a published collection and its rules change together) and, for a
        transformed set rule, each movie's ``set_vectors``; returns its name (not yet published)."""
        from pymilvus import DataType, MilvusClient

        dim = vectors.shape[1]
        validate_vectors(movie_ids, vectors, dim)
        if set_rule.transformed != (set_vectors is not None):
            raise InvalidVectorsError("a transformed set rule needs each movie's set vector, and only it", [])
        if set_vectors is not None:
            validate_vectors(movie_ids, set_vectors, dim - 1)
        name = f"{self.config.alias}__{fingerprint}__{time.time_ns() // 1_000_000}"
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field(ID_FIELD, DataType.INT64, is_primary=True)
        schema.add_field(VECTOR_FIELD, DataType.FLOAT_VECTOR, dim=dim)
        if set_vectors is not None:
            schema.add_field(SET_VECTOR_FIELD, DataType.ARRAY, element_type=DataType.FLOAT, max_capacity=dim - 1)
        schema.add_field(YEAR_FIELD, DataType.INT64)
        flags = genre_fields(sorted({g for movie in genres for g in movie}))
        for flag in flags.values():
            schema.add_field(flag, DataType.BOOL)
        self._call(
            "create a collection",
            self.client.create_collection,
            name,
            schema=schema,
            consistency_level="Strong",
            properties={
                QUERY_RULE_PROPERTY: json.dumps(query_rule.as_dict()),
                SET_RULE_PROPERTY: json.dumps(set_rule.as_dict()),
            },
        )
        try:
            starts = range(0, len(movie_ids), _INSERT_CHUNK)
            for start in progress(starts, len(starts) >= 3, desc="Milvus insert", unit="chunk"):
                stop = start + _INSERT_CHUNK
                rows = [
                    {ID_FIELD: int(i), VECTOR_FIELD: v.tolist(), YEAR_FIELD: int(y),
                     **{flag: genre in g for genre, flag in flags.items()}}
                    for i, v, y, g in zip(movie_ids[start:stop], vectors[start:stop], years[start:stop],
                                          genres[start:stop], strict=True)
                ]  # fmt: skip
                if set_vectors is not None:
                    for row, transformed in zip(rows, set_vectors[start:stop], strict=True):
                        row[SET_VECTOR_FIELD] = transformed.tolist()
                self._call("insert", self.client.insert, name, rows)
            self._call("flush", self.client.flush, name)
            self._call("create the index", self.client.create_index, name, self._index_params(len(movie_ids)))
            self._call("load the collection", self.client.load_collection, name)
        except BaseException:
            self.drop(name)
            raise
        return name

    def publish(self, name: str) -> None:
        """Point the alias at ``name``, then drop every other collection of this alias."""
        aliases = self._call("list aliases", self.client.list_aliases).get("aliases", [])
        if self.config.alias in aliases:
            self._call("switch the alias", self.client.alter_alias, name, self.config.alias)
        else:
            self._call("create the alias", self.client.create_alias, name, self.config.alias)
        for old in self._call("list collections", self.client.list_collections):
            if old != name and old.startswith(f"{self.config.alias}__"):
                self.drop(old)

    def drop(self, name: str) -> None:
        self._call("drop a collection", self.client.drop_collection, name)

    def _index_params(self, n_items: int):
        params = self.client.prepare_index_params()
        if n_items <= self.config.flat_max_items:
            params.add_index(VECTOR_FIELD, index_type="FLAT", metric_type="IP")
        else:
            params.add_index(
                VECTOR_FIELD,
                index_type="HNSW",
                metric_type="IP",
                params={"M": self.config.hnsw_m, "efConstruction": self.config.hnsw_ef_construction},
            )
        return params

    # -- reading -------------------------------------------------------------------------------

    def collection(self) -> str:
        """The collection the alias points at."""
        return self._call("describe the alias", self.client.describe_alias, self.config.alias)["collection_name"]

    def query_rule(self, collection: str | None = None) -> QueryRule:
        """The history rule stored with ``collection`` (default: the published one)."""
        return QueryRule.from_saved(self._property(QUERY_RULE_PROPERTY, "query rule", collection))

    def set_rule(self, collection: str | None = None) -> SetRule:
        """The set rule stored with ``collection`` (default: the published one)."""
        return SetRule.from_dict(self._property(SET_RULE_PROPERTY, "set rule", collection))

    def _property(self, key: str, what: str, collection: str | None):
        target = collection or self.config.alias
        described = self._call(
            "describe the collection", self.client.describe_collection, target, collection=collection
        )
        value = (described.get("properties") or {}).get(key)
        if value is None:
            raise StoreUnavailableError(
                f'Milvus collection "{self.config.alias}" at {self.where} holds no {what} (loaded by an earlier '
                f"rec_lib): {LOAD_ADVICE}",
                MILVUS,
            )
        return json.loads(value)

    def index_type(self) -> str:
        described = self._call("describe the index", self.client.describe_index, self.config.alias, VECTOR_FIELD)
        return described.get("index_type", "")

    def dim(self, collection: str | None = None) -> int:
        """The vector dimension of ``collection`` (default: the published one)."""
        target = collection or self.config.alias
        described = self._call(
            "describe the collection", self.client.describe_collection, target, collection=collection
        )
        for field in described["fields"]:
            if field["name"] == VECTOR_FIELD:
                return int(field["params"]["dim"])
        raise StoreUnavailableError(
            f'Milvus collection "{self.config.alias}" at {self.where} has no vector field', MILVUS
        )

    def count(self) -> int:
        result = self._call("count", self.client.query, self.config.alias, filter="", output_fields=["count(*)"])
        return int(result[0]["count(*)"])

    def movie_ids(self) -> np.ndarray:
        return np.array(sorted(self._iterate_ids()), dtype=np.int64)

    def _iterate_ids(self) -> Iterator[int]:
        iterator = self._call(
            "list ids", self.client.query_iterator, self.config.alias, batch_size=5000, output_fields=[ID_FIELD]
        )
        try:
            while batch := self._call("list ids", iterator.next):
                yield from (int(row[ID_FIELD]) for row in batch)
        finally:
            iterator.close()

    def fetch(
        self, movie_ids: list[int], collection: str | None = None, field: str = VECTOR_FIELD
    ) -> dict[int, np.ndarray]:
        """Stored vectors (or, with ``field`` :data:`SET_VECTOR_FIELD`, set vectors) of the ids that exist in
        ``collection`` (default: the published one); absent ids are simply missing from the result."""
        if not movie_ids:
            return {}
        rows = self._call(
            "fetch vectors", self.client.get, collection or self.config.alias, ids=[int(i) for i in movie_ids],
            output_fields=[field], consistency_level=HOT_PATH_CONSISTENCY, collection=collection,
        )  # fmt: skip
        return {int(r[ID_FIELD]): np.asarray(r[field], dtype=np.float32) for r in rows}

    def search(
        self, queries: np.ndarray, limit: int, filter_expression: str = "", collection: str | None = None
    ) -> list[list[Hit]]:
        """The ``limit`` best movies per query under the filter, ids and scores only, in ``collection`` (default:
        the published one). Returning no stored fields spares a Milvus server its second, retrieval phase
        (reports/speed.md); callers that need vectors :meth:`fetch` them."""
        queries = np.asarray(queries, dtype=np.float32)
        target = collection or self.config.alias
        if collection is None or target not in self._dims:
            self._dims[target] = self.dim(collection)
        dim = self._dims[target]
        if queries.ndim != 2 or queries.shape[1] != dim:
            raise InvalidVectorsError(f"query vectors have shape {queries.shape}, the collection holds {dim}-d", [])
        limit = max(1, min(int(limit), MAX_SEARCH_LIMIT))
        results = self._call(
            "search",
            self.client.search,
            target,
            collection=collection,
            data=queries.tolist(),
            limit=limit,
            filter=filter_expression,
            output_fields=[],
            consistency_level=HOT_PATH_CONSISTENCY,
            search_params={"metric_type": "IP", "params": {"ef": max(self.config.hnsw_ef, limit)}},
        )
        return [[Hit(_hit_id(h), float(h["distance"])) for h in hits] for hits in results]

    def ping(self) -> None:
        self._call("list collections", self.client.list_collections)

    def check(self) -> int:
        """A real, cheap query of the published collection (its row count, without the strong-consistency wait):
        what /health asks; returns the count."""
        result = self._call(
            "count", self.client.query, self.config.alias, filter="", output_fields=["count(*)"],
            consistency_level=HOT_PATH_CONSISTENCY,
        )  # fmt: skip
        return int(result[0]["count(*)"])

    def close(self) -> None:
        """Close the client; for Milvus Lite also stop its in-process server, which frees the data dir's lock."""
        self.client.close()
        if self.is_lite:
            from milvus_lite import server_manager_instance

            server_manager_instance.release_server(self.uri)


def genre_fields(genres: list[str]) -> dict[str, str]:
    """One boolean field per genre, so a genre filter is a cheap scalar test (``array_contains_any`` on an
    ARRAY field costs Milvus Lite ~0.4 s per search on 10k movies; boolean fields cost nothing measurable).

    >>> genre_fields(["Sci-Fi", "Children's", "(no genres listed)"])
    {'Sci-Fi': 'genre_sci_fi', "Children's": 'genre_children_s', '(no genres listed)': 'genre_no_genres_listed'}
    """
    fields = {g: "genre_" + "_".join(re.findall(r"[a-z0-9]+", g.lower())) for g in genres}
    clashes = sorted(g for g in genres if list(fields.values()).count(fields[g]) > 1)
    if clashes:
        raise InvalidVectorsError(f"genre names {clashes} map to the same field name", [])
    return fields


def filter_expression(genres: list[str] | None = None, years: tuple[int, int] | None = None) -> str:
    """A Milvus boolean expression; genres as field names, years as integers.

    >>> filter_expression(["Sci-Fi", "Drama"], (1990, 1999))
    '(genre_sci_fi == true or genre_drama == true) and year >= 1990 and year <= 1999'
    """
    parts = []
    if genres:
        flags = genre_fields(list(genres))
        parts.append("(" + " or ".join(f"{flags[g]} == true" for g in genres) + ")")
    if years is not None:
        parts.append(f"{YEAR_FIELD} >= {int(years[0])} and {YEAR_FIELD} <= {int(years[1])}")
    return " and ".join(parts)


def _hit_id(hit: dict) -> int:
    """A search hit's primary key: servers call it ``id``, Milvus Lite uses the field's name."""
    return int(hit["id"] if "id" in hit else hit[ID_FIELD])


def is_server_uri(uri: str) -> bool:
    """Whether ``uri`` names a Milvus server (else it is a Milvus Lite data dir)."""
    return uri.startswith(("http://", "https://", "tcp://", "unix:"))


def busy_advice(data_dir: str) -> str:
    """What to do when another process holds a Milvus Lite data dir, naming the port of the Lite server that
    serves it when there is one (:func:`lite_server_port`)."""
    shown = public_location(data_dir)
    port = lite_server_port(data_dir)
    if port is not None:
        return (
            f"the Milvus Lite data dir {shown} is served by a Milvus Lite server on port {port}: point this "
            f"process at it with MILVUS_URI=http://127.0.0.1:{port}"
        )
    here = shlex.quote(os.path.relpath(Path(data_dir).resolve()))
    return (
        f"the Milvus Lite data dir {shown} is open in another process (a notebook kernel, the CLI or the API). "
        "Milvus Lite allows one process per data dir: stop that process, or share the data dir through Milvus "
        f"Lite's server mode (from here: python -m rec_lib milvus-lite --data-dir {here} --port 19531) and point "
        "every process at it with MILVUS_URI=http://127.0.0.1:19531"
    )


def lite_server_port(data_dir: str) -> int | None:
    """The port of a running ``milvus-lite server`` process whose ``--data-dir`` is ``data_dir`` (Linux /proc)."""
    wanted = Path(data_dir).resolve()
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if "server" not in args or "--data-dir" not in args[:-1] or "--port" not in args[:-1]:
            continue
        if Path(args[args.index("--data-dir") + 1]).resolve() == wanted:
            port = args[args.index("--port") + 1]
            if port.isdigit():
                return int(port)
    return None


def _reason(exc: Exception) -> str:
    """A client error's message as text: pymilvus's own message, grpc's status name and details, never a repr."""
    message = getattr(exc, "message", None)
    if isinstance(message, str) and message:
        return message.splitlines()[0]
    code, details = getattr(exc, "code", None), getattr(exc, "details", None)
    if callable(code) and callable(details):
        try:
            return f"{code().name}: {details()}".splitlines()[0]
        except Exception:  # an RPC error without a status
            pass
    return (str(exc).splitlines() or ["no reason given"])[0]


class LiteDataDirBusy(Exception):
    """Another process holds a Milvus Lite data dir's lock."""


def _lite_data_dir_busy(data_dir: str) -> bool:
    """Whether another process holds the lock file Milvus Lite keeps in its data dir."""
    import fcntl

    from milvus_lite.db import LOCK_FILENAME

    lock = Path(data_dir) / LOCK_FILENAME
    if not lock.exists():
        return False
    with lock.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
    return False
