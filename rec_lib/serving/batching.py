"""Concurrent searches of one process share Milvus calls.

A search call costs a Milvus server and its client far more than the vectors it compares: the CPU per query
vector falls several-fold from one vector a call to eight (reports/speed.md, "The API under load"). So
:class:`SearchBatcher` sends the searches that arrive while a call is in flight together, as the next call:

- a search that finds no call in flight is sent at once, alone: no added wait when the process is idle;
- the searches that arrive meanwhile queue; when the call returns, the first of them leads the next call,
  taking every queued search (up to :data:`MAX_BATCH`), one call per collection and filter expression;
- every search gets its own hits (the batch's limit is the largest asked for; each answer is cut to its own),
  or the error its call raised.

So one process has at most one search call in flight, and under load the calls grow instead of multiplying.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np

from rec_lib.serving.vector_store import Hit, VectorStore

MAX_BATCH = 64
"""The most query vectors one call carries (Milvus allows 16,384; past a few dozen the gain per vector is gone)."""


@dataclass
class _Search:
    query: np.ndarray
    limit: int
    expression: str
    collection: str | None
    answered: threading.Event = field(default_factory=threading.Event)
    leads: bool = False
    hits: list[Hit] | None = None
    error: BaseException | None = None

    @property
    def group(self) -> tuple:
        """Searches that can share one call: same collection, same filter, same query width."""
        return self.collection, self.expression, self.query.shape


class SearchBatcher:
    """:meth:`VectorStore.search` for one query vector at a time, from any number of threads, batched."""

    def __init__(self, vectors: VectorStore) -> None:
        self.vectors = vectors
        self._lock = threading.Lock()
        self._queued: list[_Search] = []
        self._in_flight = False

    def search(self, query: np.ndarray, limit: int, expression: str = "", collection: str | None = None) -> list[Hit]:
        """The ``limit`` best movies for one query vector under the filter, as ``VectorStore.search`` answers."""
        search = _Search(np.asarray(query, dtype=np.float32).reshape(-1), int(limit), expression, collection)
        with self._lock:
            self._queued.append(search)
            search.leads = not self._in_flight
            self._in_flight = True
        if not search.leads:
            search.answered.wait()
        if search.leads:
            self._lead()
        if search.error is not None:
            raise search.error
        return search.hits

    def _lead(self) -> None:
        """Send the queued searches (the leader's own is first), answer them, then hand the lead on."""
        with self._lock:
            batch, self._queued = self._queued[:MAX_BATCH], self._queued[MAX_BATCH:]
        try:
            groups: dict[tuple, list[_Search]] = {}
            for search in batch:
                groups.setdefault(search.group, []).append(search)
            for (collection, expression, _), members in groups.items():
                self._answer(members, expression, collection)
        finally:
            with self._lock:
                if self._queued:
                    successor = self._queued[0]
                    successor.leads = True
                    successor.answered.set()
                else:
                    self._in_flight = False

    def _answer(self, members: list[_Search], expression: str, collection: str | None) -> None:
        try:
            queries = np.stack([m.query for m in members])
            answers = self.vectors.search(queries, max(m.limit for m in members), expression, collection)
            for member, hits in zip(members, answers, strict=True):
                member.hits = hits[: member.limit]
        except BaseException as exc:  # every member of the call gets its error, in its own thread
            for member in members:
                member.error = exc
        for member in members:
            member.leads = False
            member.answered.set()
