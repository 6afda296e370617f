"""What /health reports: each store asked a real, cheap query every time, within a short timeout.

A store that fails or does not answer in time is named with the same message its 503 answers carry
(:class:`rec_lib.errors.StoreUnavailableError`). A check still running from an earlier call is awaited again
rather than started twice, so a hung store holds at most one worker thread per store however often /health
is asked.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool

from rec_lib.errors import StoreUnavailableError
from rec_lib.serving.metadata_store import SQL
from rec_lib.serving.redact import scrub
from rec_lib.serving.stores import Stores
from rec_lib.serving.vector_store import MILVUS

HEALTH_TIMEOUT_S = 2.0
"""How long /health waits for each store's answer."""


@dataclass(frozen=True)
class StoreCheck:
    """One store's answer: its public location, its movie count, or what is wrong (``problem``)."""

    store: str
    where: str
    movies: int | None = None
    problem: str | None = None


class HealthChecker:
    """Checks both stores of ``stores`` concurrently; see the module docstring."""

    def __init__(self, stores: Stores, timeout_s: float = HEALTH_TIMEOUT_S) -> None:
        self.stores = stores
        self.timeout_s = timeout_s
        self._running: dict[str, asyncio.Future] = {}

    async def check(self) -> list[StoreCheck]:
        vectors, metadata = self.stores.vectors, self.stores.metadata
        return list(
            await asyncio.gather(
                self._check(MILVUS, vectors.where, vectors.check), self._check(SQL, metadata.where, metadata.check)
            )
        )

    async def _check(self, store: str, where: str, query: Callable[[], int]) -> StoreCheck:
        running = self._running.get(store)
        if running is None or running.done():
            running = asyncio.ensure_future(run_in_threadpool(query))
            running.add_done_callback(_retrieve)
            self._running[store] = running
        try:
            movies = await asyncio.wait_for(asyncio.shield(running), self.timeout_s)
        except TimeoutError:
            return StoreCheck(store, where, problem=f"{store} store {where} did not answer within {self.timeout_s:g} s")
        except StoreUnavailableError as exc:
            return StoreCheck(store, where, problem=scrub(str(exc)))
        return StoreCheck(store, where, movies=movies)


def _retrieve(future: asyncio.Future) -> None:
    """Mark a check's failure as seen when no caller waited for it (it timed out), so asyncio does not warn."""
    if not future.cancelled():
        future.exception()
