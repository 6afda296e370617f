"""Milvus + SQL stores and the recommender, on the embedded stores and on real servers.

Every test runs against three set-ups: Milvus Lite + SQLite (the defaults), Milvus Lite + MariaDB,
and a Milvus server + SQLite. The servers come from tests/servers.py.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from helpers import TRICKY_TITLES, lite_dir_held, store_data
from store_backends import BACKENDS, settings_for

from rec_lib.contracts import QueryRule, SetRule
from rec_lib.errors import (
    ConfigError,
    ConsistencyError,
    InvalidVectorsError,
    StoreBusyError,
    StoreUnavailableError,
    UnknownMoviesError,
)
from rec_lib.serving.metadata_store import CONCURRENT_QUERIES, MetadataStore, movies_table
from rec_lib.serving.recommend import POPULAR, ExactRecommender, Recommender
from rec_lib.serving.stores import (
    StoreSettings,
    add_to_stores,
    check_consistency,
    close_stores,
    load_stores,
    open_stores,
)


def protocol_rankings(embeddings, rule, draws: int, seed: int = 0):
    """Random sets of 1-6 movies, each with the top 10 ids and their scores under the liked-set protocol's ``rule``
    (the ticks masked)."""
    import torch

    from rec_lib.evaluation.likedset import tick_scores
    from rec_lib.evaluation.protocol import EmbeddingScorer

    position = {int(m): p for p, m in enumerate(embeddings.movie_ids)}
    scorer = EmbeddingScorer("m", torch.from_numpy(embeddings.vectors), torch.from_numpy(embeddings.bias))
    rng = np.random.default_rng(seed)
    for _ in range(draws):
        liked = rng.choice(embeddings.movie_ids, size=int(rng.integers(1, 7)), replace=False).tolist()
        ticks = torch.tensor([[position[m] for m in liked]])
        scores = tick_scores(scorer, rule, ticks)[0]
        scores[ticks[0]] = -float("inf")
        top = torch.topk(scores, 10)
        yield liked, embeddings.movie_ids[top.indices.numpy()].tolist(), top.values.numpy()


@pytest.fixture(params=BACKENDS)
def stores(request, tmp_path: Path):
    settings = settings_for(request.param, tmp_path, request)
    yield open_stores(settings)
    close_stores(settings)


@pytest.fixture
def loaded(stores):
    embeddings, rows = store_data()
    report = load_stores(stores, embeddings, rows)
    return stores, embeddings, rows, report


def test_load_is_consistent_and_idempotent(loaded) -> None:
    stores, embeddings, rows, report = loaded
    assert report.consistency.ok, report.consistency.problems()
    assert (report.movies, report.dim, report.index_type) == (len(rows), embeddings.dim + 1, "FLAT")
    again = load_stores(stores, embeddings, rows)
    assert again.consistency.ok
    assert again.collection != report.collection
    collections = [c for c in stores.vectors.client.list_collections() if c.startswith(stores.settings.vector.alias)]
    assert collections == [again.collection], "the previous collection must be dropped after the alias moves"
    assert stores.vectors.count() == stores.metadata.count() == len(rows)
    np.testing.assert_array_equal(stores.vectors.movie_ids(), rows["movie_id"].to_numpy())


def test_a_smaller_reload_removes_vanished_movies_from_both_stores(loaded) -> None:
    stores, embeddings, rows, _ = loaded
    keep = 60
    smaller = replace(
        embeddings,
        movie_ids=embeddings.movie_ids[:keep],
        vectors=embeddings.vectors[:keep],
        bias=embeddings.bias[:keep],
    )
    report = load_stores(stores, smaller, rows.head(keep))
    assert report.consistency.ok
    assert stores.metadata.count() == stores.vectors.count() == keep


def test_consistency_check_names_the_ids_that_disagree(loaded) -> None:
    stores, _, _, _ = loaded
    with stores.metadata.engine.begin() as conn:
        conn.execute(sa.delete(movies_table).where(movies_table.c.movie_id == 42))
    report = check_consistency(stores, expected_dim=99)
    assert not report.ok
    assert report.only_in_milvus == [42]
    problems = " ".join(report.problems())
    assert "42" in problems and "99-d" in problems
    with pytest.raises(ConsistencyError, match=r"movies \[42\] are in Milvus but have no row"):
        Recommender(stores).recommend([3, 6, 9], k=40)  # movie 42 is in their cluster


def test_recommendations_match_exact_search_and_say_why(loaded) -> None:
    stores, embeddings, rows, _ = loaded
    recommender = Recommender(stores)
    liked = [3, 6, 9]  # all in cluster 0
    result = recommender.recommend(liked, k=10, mode="history")
    stored = embeddings.store_vectors()
    expected = ExactRecommender(embeddings.movie_ids, stored, embeddings.query_rule).recommend(liked, 10)
    assert result["movie_id"].tolist() == expected.tolist()
    assert not set(result["movie_id"]) & set(liked)
    assert (result["movie_id"] % 3 == 0).all(), "planted cluster structure"
    assert set(result["because_id"]) <= set(liked)
    titles = rows.set_index("movie_id")["title"]
    assert result["because"].tolist() == [titles[i] for i in result["because_id"]]
    assert result["title"].tolist() == [titles[i] for i in result["movie_id"]]
    assert result["score"].is_monotonic_decreasing
    position = {m: p for p, m in enumerate(embeddings.movie_ids)}
    top = result.iloc[0]
    latest_first = liked[::-1]  # liked[-1] is the latest pick
    picked = stored[[position[j] for j in latest_first], :-1][None]
    weights = embeddings.query_rule.masked_weights(np.ones((1, len(liked))), picked)[0]
    own = sum(
        w * stored[position[j], :-1] @ stored[position[top.movie_id], :-1]
        for w, j in zip(weights, latest_first, strict=True)
    )
    assert top.score == pytest.approx(own + stored[position[top.movie_id], -1], rel=1e-4)
    for _, row in result.iterrows():
        closest = max(liked, key=lambda j: stored[position[j], :-1] @ stored[position[row.movie_id], :-1])
        assert row.because_id == closest


@pytest.mark.perf
def test_a_warm_recommend_is_one_milvus_search_and_no_sql(loaded, monkeypatch) -> None:
    stores, *_ = loaded
    recommender = Recommender(stores)
    recommender.recommend([3, 6], k=5, genres=["G0"])
    calls: list[str] = []

    def counted(name: str):
        original = getattr(stores.vectors, name)
        return lambda *args, **kwargs: (calls.append(name), original(*args, **kwargs))[1]

    for name in ("fetch", "search", "collection", "dim"):
        monkeypatch.setattr(stores.vectors, name, counted(name))

    def on_sql(*args) -> None:
        calls.append("sql")

    sa.event.listen(stores.metadata.engine, "before_cursor_execute", on_sql)
    try:
        again = recommender.recommend([3, 6], k=5, genres=["G0"])
    finally:
        sa.event.remove(stores.metadata.engine, "before_cursor_execute", on_sql)
    assert calls == ["search"] and len(again) == 5


@pytest.mark.perf
def test_the_sql_engine_keeps_the_connections_a_burst_of_api_threads_opened(tmp_path: Path) -> None:
    """Bursts of concurrent queries (API threads) reuse connections: the second burst opens none, where
    SQLAlchemy's default pool of 5 closed the extra ones after the first burst and opened them again."""
    store = MetadataStore(f"sqlite:///{tmp_path / 'movies.sqlite'}")
    store.create()
    opened: list[object] = []
    sa.event.listen(store.engine, "connect", lambda *args: opened.append(args[0]))
    threads = CONCURRENT_QUERIES // 2
    all_holding = threading.Barrier(threads)

    def query() -> None:
        with store.engine.connect() as conn:
            all_holding.wait(timeout=30)
            conn.execute(sa.text("SELECT 1"))

    for _ in range(2):
        burst = [threading.Thread(target=query) for _ in range(threads)]
        for thread in burst:
            thread.start()
        for thread in burst:
            thread.join()
    assert len(opened) == threads
    store.close()


def test_concurrent_recommends_get_what_each_would_alone(loaded, monkeypatch) -> None:
    """Threads of one process share Milvus calls (rec_lib.serving.batching): each still gets its own ranking."""
    from concurrent.futures import ThreadPoolExecutor

    stores, *_ = loaded
    asks = [([3, 6], 5, None), ([1], 3, ["G0"]), ([2, 9, 4], 7, None), ([8], 4, ["G1"]), ([5, 3], 2, None)] * 4
    alone = [Recommender(stores).recommend(liked, k, genres=genres) for liked, k, genres in asks]
    shared = Recommender(stores)
    shared.recommend([1], 1)  # cached vectors: the threads below meet at the search
    calls: list[int] = []
    search = stores.vectors.search
    monkeypatch.setattr(stores.vectors, "search", lambda queries, *a, **kw: (calls.append(len(queries)),
                                                                            search(queries, *a, **kw))[1])  # fmt: skip
    with ThreadPoolExecutor(max_workers=len(asks)) as pool:
        together = list(pool.map(lambda ask: shared.recommend(ask[0], ask[1], genres=ask[2]), asks))
    for one, other in zip(alone, together, strict=True):
        assert one.equals(other)
    assert sum(calls) == len(asks) and len(calls) < len(asks), f"query vectors per call: {calls}"


def test_a_reload_is_seen_at_the_next_request(loaded) -> None:
    stores, _, rows, _ = loaded
    recommender = Recommender(stores)
    before = recommender.recommend([3], k=5)
    other, _ = store_data(seed=1)
    renamed = rows.assign(title=rows["title"].where(rows["movie_id"] % 3 != 0, "Renamed (1999)"))
    load_stores(stores, other, renamed)
    after = recommender.recommend([3], k=5)
    assert after.equals(Recommender(stores).recommend([3], k=5)), (
        "the same as a recommender that never saw the old load"
    )
    assert not after["movie_id"].equals(before["movie_id"]) and set(after["title"]) == {"Renamed (1999)"}


def test_the_query_rule_is_published_with_the_vectors_and_changes_with_them(loaded) -> None:
    stores, embeddings, rows, report = loaded
    assert stores.vectors.query_rule() == stores.vectors.query_rule(report.collection) == embeddings.query_rule
    recommender = Recommender(stores)
    first = recommender.recommend([3, 4, 5], k=5, mode="history")
    latest_only = replace(embeddings, query_rule=QueryRule.latest())
    reloaded = load_stores(stores, latest_only, rows)
    assert stores.vectors.query_rule(reloaded.collection) == QueryRule.latest()
    after = recommender.recommend([3, 4, 5], k=5, mode="history")
    assert not after["movie_id"].equals(first["movie_id"]), "the new rule is used from the next request"
    exact = ExactRecommender(embeddings.movie_ids, embeddings.store_vectors(), QueryRule.latest())
    assert after["movie_id"].tolist() == exact.recommend([3, 4, 5], 5).tolist(), "only the last pick counts"


def test_the_set_rule_is_published_with_the_vectors_and_changes_with_them(loaded) -> None:
    """The set rule chosen for the loaded dataset travels with its collection, through a reload and an add."""
    stores, embeddings, rows, report = loaded
    assert stores.vectors.set_rule() == stores.vectors.set_rule(report.collection) == embeddings.set_rule
    recommender = Recommender(stores)
    first = recommender.recommend([3], k=10)
    plain_mean = replace(embeddings, set_rule=SetRule(0.0))
    reloaded = load_stores(stores, plain_mean, rows)
    assert stores.vectors.set_rule(reloaded.collection) == SetRule(0.0)
    after = recommender.recommend([3], k=10)
    assert not after["movie_id"].equals(first["movie_id"]), "the new rule is used from the next request"
    exact = ExactRecommender(embeddings.movie_ids, embeddings.store_vectors(), SetRule(0.0))
    assert after["movie_id"].tolist() == exact.recommend([3], 10).tolist()
    one_more = rows.iloc[[0]].assign(movie_id=9001)
    added = add_to_stores(stores, np.array([9001]), embeddings.store_vectors()[:1], one_more)
    assert stores.vectors.set_rule(added.collection) == SetRule(0.0), "adding movies keeps the loaded rules"
    wide, wide_rows = store_data(dim=256)
    wide_report = load_stores(stores, wide, wide_rows)
    assert stores.vectors.set_rule(wide_report.collection) == wide.set_rule, "a learned rule of PinSage's width"
    assert stores.vectors.query_rule(wide_report.collection) == wide.query_rule, "an attention of PinSage's width"


def test_a_transformed_set_rule_is_served_as_evaluated_and_survives_an_add(stores) -> None:
    """A set rule with a full transform: each movie's ``h W`` is published beside ``[h, b]``, recommend() pools the
    ticks' ``h W`` and ranks exactly as the liked-set protocol scores the fitted rule, in any order; an add needs
    the new movies' ``h W`` and keeps everyone else's."""
    embeddings, rows = store_data(transform=True)
    report = load_stores(stores, embeddings, rows)
    assert stores.vectors.set_rule(report.collection) == embeddings.set_rule
    recommender = Recommender(stores)
    exact = ExactRecommender(
        embeddings.movie_ids, embeddings.store_vectors(), embeddings.set_rule, embeddings.set_vectors()
    )
    rng = np.random.default_rng(1)
    for draw, (liked, evaluated, scores) in enumerate(protocol_rankings(embeddings, embeddings.fitted_set_rule, 6)):
        assert exact.recommend(liked, 10).tolist() == evaluated, draw
        for order in range(2):
            result = recommender.recommend(rng.permutation(liked).tolist(), k=10)
            assert result["movie_id"].tolist() == evaluated, (draw, order)
            assert result["score"].to_numpy() == pytest.approx(scores, rel=1e-4)
    untransformed = recommender.recommend([3, 6], k=10)
    plain = ExactRecommender(embeddings.movie_ids, embeddings.store_vectors(), replace(embeddings.set_rule,
                             transformed=False, dim_weights=()))  # fmt: skip
    assert untransformed["movie_id"].tolist() != plain.recommend([3, 6], 10).tolist(), "the transform counts"
    one_more = rows.iloc[[0]].assign(movie_id=9001)
    with pytest.raises(ConsistencyError, match="come without theirs"):
        add_to_stores(stores, np.array([9001]), embeddings.store_vectors()[:1], one_more)
    added = add_to_stores(
        stores, np.array([9001]), embeddings.store_vectors()[:1], one_more, embeddings.set_vectors()[:1]
    )
    assert added.consistency.ok and stores.vectors.set_rule(added.collection) == embeddings.set_rule
    stored, transformed = embeddings.store_vectors(), embeddings.set_vectors()
    grown = ExactRecommender(np.append(embeddings.movie_ids, 9001), np.vstack([stored, stored[:1]]),
                             embeddings.set_rule, np.vstack([transformed, transformed[:1]]))  # fmt: skip
    after = Recommender(stores).recommend([9001, 6], k=10)
    assert after["movie_id"].tolist() == grown.recommend([9001, 6], 10).tolist()


def test_liked_movies_from_different_clusters_still_get_the_exact_fused_ranking(loaded) -> None:
    stores, embeddings, _, _ = loaded
    liked = [3, 4, 5, 7]  # clusters 0, 1, 2 and 1
    for mode, rule in (("history", embeddings.query_rule), ("set", embeddings.set_rule)):
        result = Recommender(stores).recommend(liked, k=20, mode=mode)
        exact = ExactRecommender(embeddings.movie_ids, embeddings.store_vectors(), rule)
        assert result["movie_id"].tolist() == exact.recommend(liked, 20).tolist(), mode


def test_a_history_ranks_as_evaluation_protocol_b_does(loaded) -> None:
    """The product's history rule is the evaluated one: same weights by recency, same fused score, same top K."""
    import torch

    from rec_lib.evaluation.protocol import EmbeddingScorer, history_weights

    stores, embeddings, _, _ = loaded
    assert embeddings.query_rule.attends, "the weights depend on the movies too, as with PinSage's query encoder"
    liked = [4, 10, 3, 7, 5]  # picked in this order: 5 is the latest; only the latest three count
    position = {int(m): p for p, m in enumerate(embeddings.movie_ids)}
    history = torch.tensor([[position[m] for m in liked[::-1]]])
    scorer = EmbeddingScorer("m", torch.from_numpy(embeddings.vectors), torch.from_numpy(embeddings.bias))
    weights = history_weights(scorer, embeddings.query_rule, history, torch.ones_like(history, dtype=torch.float32))
    scores = scorer.score(history, weights)[0]
    scores[history[0]] = -float("inf")
    evaluated = embeddings.movie_ids[torch.topk(scores, 15).indices.numpy()]
    result = Recommender(stores).recommend(liked, k=15, mode="history")
    assert result["movie_id"].tolist() == evaluated.tolist()
    assert result["score"].to_numpy() == pytest.approx(torch.topk(scores, 15).values.numpy(), rel=1e-4)
    older_picks_changed = Recommender(stores).recommend([9, 8, *liked[2:]], k=15, mode="history")
    assert older_picks_changed["movie_id"].tolist() == evaluated.tolist(), "only the latest three picks count"
    reordered = Recommender(stores).recommend(liked[::-1], k=15, mode="history")
    assert reordered["movie_id"].tolist() != evaluated.tolist(), "a history changes with its order"


def test_a_set_ranks_as_the_liked_set_protocol_scores_it_whatever_its_order(loaded) -> None:
    """Sets drawn at random, each handed over in several orders: the same ranking and scores every time, and
    exactly the liked-set protocol's (the product's set rule, the ticks masked)."""
    stores, embeddings, _, _ = loaded
    recommender = Recommender(stores)
    rng = np.random.default_rng(0)
    for draw, (liked, evaluated, scores) in enumerate(protocol_rankings(embeddings, embeddings.set_rule, 12)):
        for order in range(3):
            shuffled = rng.permutation(liked).tolist()
            result = recommender.recommend(shuffled, k=10)
            assert result["movie_id"].tolist() == evaluated, (draw, order)
            assert result["score"].to_numpy() == pytest.approx(scores, rel=1e-4)


def test_filters_are_applied_in_milvus(loaded) -> None:
    stores, embeddings, rows, _ = loaded
    result = Recommender(stores).recommend([3, 6], k=5, genres=["Shared", "G1"], years=(1990, 1995))
    assert len(result) == 5
    for _, row in result.iterrows():
        assert {"Shared", "G1"} & set(row["genres"].split("|"))
        assert 1990 <= row["year"] <= 1995
    by_id = rows.set_index("movie_id")
    allowed = np.array(
        [bool({"Shared", "G1"} & set(by_id.loc[m, "genres"].split("|"))) and 1990 <= by_id.loc[m, "year"] <= 1995
         for m in embeddings.movie_ids]
    )  # fmt: skip
    expected = ExactRecommender(embeddings.movie_ids, embeddings.store_vectors(), embeddings.set_rule).recommend(
        [3, 6], 5, allowed
    )
    assert result["movie_id"].tolist() == expected.tolist()


def test_empty_selection_falls_back_to_popular_movies(loaded) -> None:
    stores, _, rows, _ = loaded
    result = Recommender(stores).recommend([], k=4)
    assert result["movie_id"].tolist() == rows.sort_values("n_ratings", ascending=False)["movie_id"].head(4).tolist()
    assert (result["because"] == POPULAR).all()
    filtered = Recommender(stores).recommend([], k=3, genres=["G2"])
    assert all("G2" in g.split("|") for g in filtered["genres"])


def test_bad_requests_name_what_is_wrong(loaded) -> None:
    stores, _, _, _ = loaded
    recommender = Recommender(stores)
    with pytest.raises(UnknownMoviesError, match="999999, 888888") as caught:
        recommender.recommend([3, 999999, 888888])
    assert caught.value.movie_ids == [999999, 888888]
    with pytest.raises(ConfigError, match="k=0"):
        recommender.recommend([3], k=0)
    with pytest.raises(ConfigError, match='unknown genres \\["Nope"\\]'):
        recommender.recommend([3], genres=["Nope"])
    with pytest.raises(ConfigError, match="first year is after the last"):
        recommender.recommend([3], years=(2000, 1990))
    with pytest.raises(ConfigError, match="integers"):
        recommender.recommend(["3"])
    with pytest.raises(ConfigError, match='mode="timeline": expected one of set, history'):
        recommender.recommend([3], mode="timeline")
    with pytest.raises(InvalidVectorsError, match="17-d"):
        stores.vectors.search(np.zeros((1, 5)), 3)


def test_invalid_vectors_are_refused_before_anything_is_written(stores) -> None:
    embeddings, rows = store_data()
    embeddings.vectors[4, 0] = np.nan
    embeddings.vectors[9, 3] = np.inf
    with pytest.raises(InvalidVectorsError, match="movie ids 5, 10"):
        load_stores(stores, embeddings, rows)
    assert not [c for c in stores.vectors.client.list_collections() if c.startswith(stores.settings.vector.alias)]
    with pytest.raises(StoreUnavailableError, match="python -m rec_lib load"):
        Recommender(stores).recommend([3])


def test_wrong_dimension_is_refused(stores) -> None:
    embeddings, rows = store_data()
    bad = replace(embeddings, vectors=embeddings.vectors[:-1])
    with pytest.raises(InvalidVectorsError, match="89 vectors"):
        load_stores(stores, bad, rows)


def test_titles_with_quotes_sql_and_unicode_round_trip(loaded) -> None:
    stores, _, _, _ = loaded
    details = stores.metadata.movies(list(TRICKY_TITLES))
    assert dict(zip(details["movie_id"], details["title"], strict=True)) == TRICKY_TITLES
    assert stores.metadata.count() == 90, "the DROP TABLE title did nothing"
    assert stores.metadata.search("amelie")["movie_id"].tolist() == [3]
    assert stores.metadata.search("AMÉLIE")["movie_id"].tolist() == [3]
    assert stores.metadata.search("the matrix")["movie_id"].tolist() == [8]
    assert stores.metadata.search("Matrix, The")["movie_id"].tolist() == [8]
    assert stores.metadata.search("東京物語")["movie_id"].tolist() == [7]
    assert stores.metadata.search("tokyo story")["movie_id"].tolist() == [7]
    assert stores.metadata.search('say "hello"')["movie_id"].tolist() == [4]
    assert stores.metadata.search("'); DROP TABLE movies; --")["movie_id"].tolist() == [5]
    assert stores.metadata.search("100%")["movie_id"].tolist() == [6]
    assert stores.metadata.search("%")["movie_id"].tolist() == []
    assert len(stores.metadata.search("movie", limit=7)) == 7


def test_a_missing_collection_says_to_load(stores) -> None:
    with pytest.raises(StoreUnavailableError, match="python -m rec_lib load"):
        stores.vectors.count()


@pytest.mark.parametrize("backend", ["embedded"])
def test_a_busy_lite_data_dir_says_how_to_share_it(backend: str, tmp_path: Path) -> None:
    settings = StoreSettings(str(tmp_path / "milvus.db"), f"sqlite:///{tmp_path / 'm.sqlite'}")
    with (
        lite_dir_held(settings.milvus_uri),
        pytest.raises(StoreBusyError, match=r"open in another process.*milvus-lite"),
    ):
        open_stores(settings)
    stores = open_stores(settings)
    stores.vectors.ping()
    close_stores(settings)


def test_a_lite_data_dir_loaded_by_another_process_is_readable(tmp_path: Path) -> None:
    """Milvus Lite reopens collections released: the store loads it on first use."""
    settings = StoreSettings(str(tmp_path / "milvus.db"), f"sqlite:///{tmp_path / 'm.sqlite'}")
    script = (
        "import sys; sys.path.insert(0, 'tests'); from helpers import store_data; "
        "from rec_lib.serving.stores import *; e, r = store_data(); "
        f"s = open_stores(StoreSettings({settings.milvus_uri!r}, {settings.sql_url!r})); load_stores(s, e, r)"
    )
    subprocess.run([sys.executable, "-c", script], check=True, cwd=Path(__file__).parents[2])
    stores = open_stores(settings)
    try:
        assert len(Recommender(stores).recommend([3], k=3)) == 3
    finally:
        close_stores(settings)


def test_sql_server_going_down_mid_run_is_a_clear_error(mariadb, tmp_path: Path, request) -> None:
    settings = settings_for("mariadb", tmp_path, request)
    stores = open_stores(settings)
    embeddings, rows = store_data()
    load_stores(stores, embeddings, rows)
    mariadb.stop()
    try:
        with pytest.raises(StoreUnavailableError, match=r"SQL store mysql\+pymysql://127.0.0.1"):
            Recommender(stores).recommend([3], k=3)
    finally:
        mariadb.restart()
    assert len(Recommender(stores).recommend([3], k=3)) == 3, "the pool reconnects once the server is back"
    close_stores(settings)


def test_milvus_server_going_down_mid_run_is_a_clear_error(milvus_server, tmp_path: Path, request) -> None:
    settings = settings_for("milvus-server", tmp_path, request)
    with_credentials = settings.milvus_uri.replace("http://", "http://root:s3cret-pw@")
    settings = replace(settings, milvus_uri=with_credentials, vector=replace(settings.vector, timeout_s=3))
    stores = open_stores(settings)
    assert stores.vectors.where == milvus_server.uri, "credentials are not part of what the store shows"
    embeddings, rows = store_data()
    load_stores(stores, embeddings, rows)
    assert len(Recommender(stores).recommend([3], k=3)) == 3
    milvus_server.stop()
    try:
        with pytest.raises(StoreUnavailableError, match=r"Milvus at http://127\.0\.0\.1") as caught:
            Recommender(stores).recommend([3], k=3)
        assert "s3cret-pw" not in str(caught.value) and "root" not in str(caught.value)
    finally:
        close_stores(settings)
        milvus_server.start()


def test_milvus_lite_server_mode_lets_two_processes_share_a_data_dir(tmp_path: Path) -> None:
    from servers import free_port

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "rec_lib", "milvus-lite", "--data-dir", str(tmp_path / "milvus.db"),
         "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        assert f"MILVUS_URI=http://127.0.0.1:{port}" in server.stdout.readline()
        settings = StoreSettings(f"http://127.0.0.1:{port}", f"sqlite:///{tmp_path / 'm.sqlite'}")
        deadline = time.monotonic() + 60
        while True:
            try:
                stores = open_stores(settings)
                break
            except StoreUnavailableError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        load_stores(stores, *store_data())
        script = (
            "from rec_lib.serving.stores import *; from rec_lib.serving.recommend import Recommender; "
            f"s = open_stores(StoreSettings({settings.milvus_uri!r}, {settings.sql_url!r})); "
            "print(len(Recommender(s).recommend([3], k=4)))"
        )
        other = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
        assert other.stdout.strip() == "4"
        assert len(Recommender(stores).recommend([3], k=4)) == 4
        close_stores(settings)
        embedded = StoreSettings(str(tmp_path / "milvus.db"), settings.sql_url)
        with pytest.raises(
            StoreBusyError, match=rf"port {port}: point this process at it with MILVUS_URI=http://127\.0\.0\.1:{port}$"
        ):
            open_stores(embedded)
    finally:
        server.terminate()
        server.wait(timeout=30)
