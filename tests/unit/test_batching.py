"""SearchBatcher: searches that arrive while a call is in flight share the next call, each with its own answer."""

from __future__ import annotations

import threading
import time

import numpy as np

from rec_lib.serving.batching import MAX_BATCH, SearchBatcher
from rec_lib.serving.vector_store import Hit


class FakeVectors:
    """Answers each query vector [a, b] with hits a, a+1, ... (scores b); the first call waits until released."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.calls: list[tuple[int, int, str, str | None]] = []
        self.first_call_started = threading.Event()
        self.release_first_call = threading.Event()
        self.fail_on = fail_on

    def search(self, queries: np.ndarray, limit: int, expression: str = "", collection: str | None = None):
        self.calls.append((len(queries), limit, expression, collection))
        if len(self.calls) == 1:
            self.first_call_started.set()
            assert self.release_first_call.wait(timeout=30)
        if expression == self.fail_on:
            raise RuntimeError(f"Milvus refused {expression!r}")
        return [[Hit(int(q[0]) + i, float(q[1])) for i in range(limit)] for q in queries]


def _in_threads(batcher: SearchBatcher, asks: list[tuple]) -> tuple[list[threading.Thread], list]:
    """Each ask (query, limit, expression, collection) in its own thread, started in order; answers or errors."""
    answers: list = [None] * len(asks)

    def ask(i: int) -> None:
        try:
            answers[i] = batcher.search(*asks[i])
        except Exception as exc:
            answers[i] = exc

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(asks))]
    for thread in threads:
        thread.start()
    return threads, answers


def _wait_queued(batcher: SearchBatcher, n: int) -> None:
    deadline = time.monotonic() + 30
    while len(batcher._queued) < n:
        assert time.monotonic() < deadline, "the searches did not queue"
        time.sleep(0.01)


def test_searches_that_arrive_during_a_call_share_the_next_one_per_filter() -> None:
    vectors = FakeVectors()
    batcher = SearchBatcher(vectors)
    first, first_answer = _in_threads(batcher, [(np.array([100, 1.0]), 2, "", "c")])
    assert vectors.first_call_started.wait(timeout=30)
    asks = [
        (np.array([200, 2.0]), 3, "", "c"),
        (np.array([300, 3.0]), 1, "", "c"),
        (np.array([400, 4.0]), 2, "year >= 1990", "c"),
        (np.array([500, 5.0]), 2, "", "other"),
    ]
    threads, answers = _in_threads(batcher, asks)
    _wait_queued(batcher, len(asks))
    vectors.release_first_call.set()
    for thread in [*first, *threads]:
        thread.join(timeout=30)
    assert vectors.calls[0] == (1, 2, "", "c"), "a search with nothing in flight goes at once, alone"
    assert sorted(vectors.calls[1:]) == sorted([(2, 3, "", "c"), (1, 2, "year >= 1990", "c"), (1, 2, "", "other")])
    assert len(vectors.calls) == 4, "the four queued searches went as three calls, one per collection and filter"
    assert first_answer[0] == [Hit(100, 1.0), Hit(101, 1.0)]
    assert answers[0] == [Hit(200, 2.0), Hit(201, 2.0), Hit(202, 2.0)]
    assert answers[1] == [Hit(300, 3.0)], "cut to its own limit"
    assert answers[2] == [Hit(400, 4.0), Hit(401, 4.0)]
    assert answers[3] == [Hit(500, 5.0), Hit(501, 5.0)]
    assert not batcher._in_flight and not batcher._queued


def test_an_error_reaches_every_search_of_its_call_and_no_other() -> None:
    vectors = FakeVectors(fail_on="bad")
    batcher = SearchBatcher(vectors)
    first, _ = _in_threads(batcher, [(np.array([1, 0.0]), 1, "", None)])
    assert vectors.first_call_started.wait(timeout=30)
    threads, answers = _in_threads(
        batcher, [(np.array([i, 0.0]), 1, e, None) for i, e in enumerate(["bad", "", "bad"])]
    )
    _wait_queued(batcher, 3)
    vectors.release_first_call.set()
    for thread in [*first, *threads]:
        thread.join(timeout=30)
    assert [type(a).__name__ for a in answers] == ["RuntimeError", "list", "RuntimeError"]
    assert "Milvus refused 'bad'" in str(answers[0])
    assert batcher.search(np.array([7, 0.0]), 1) == [Hit(7, 0.0)], "the batcher works on after an error"


def test_a_long_queue_goes_in_calls_of_at_most_max_batch() -> None:
    vectors = FakeVectors()
    batcher = SearchBatcher(vectors)
    first, _ = _in_threads(batcher, [(np.array([0, 0.0]), 1, "", None)])
    assert vectors.first_call_started.wait(timeout=30)
    n = MAX_BATCH + 5
    threads, answers = _in_threads(batcher, [(np.array([i, 0.0]), 1, "", None) for i in range(1, n + 1)])
    _wait_queued(batcher, n)
    vectors.release_first_call.set()
    for thread in [*first, *threads]:
        thread.join(timeout=30)
    assert [c[0] for c in vectors.calls] == [1, MAX_BATCH, 5]
    assert answers == [[Hit(i, 0.0)] for i in range(1, n + 1)]


def test_one_thread_alone_searches_directly() -> None:
    vectors = FakeVectors()
    vectors.release_first_call.set()
    batcher = SearchBatcher(vectors)
    assert [batcher.search(np.array([i, 0.0]), 2) for i in (5, 9)] == [
        [Hit(5, 0.0), Hit(6, 0.0)],
        [Hit(9, 0.0), Hit(10, 0.0)],
    ]
    assert vectors.calls == [(1, 2, "", None), (1, 2, "", None)]
