"""recommend() latency and Milvus recall against exact search, on the embedded stores and a Milvus server.

    python bench/bench_recommend.py --data-dir ../shared/data [--queries 500] [--milvus-server]

Vectors: the export of the latest run (``make demo`` writes it; export and load use the same); without one, a
short training run makes some. The stores are loaded into a temporary folder. Queries are real: each evaluated
user's last 1-5 training movies as the liked set, read as a set (recommend()'s default mode, by the published set
rule), K=10. Every query runs three ways in turn so machine noise hits them
alike: recommend() end to end (Milvus fetch + search + fusion + SQL details); a bare pymilvus search of
the same averaged query (no filter, ids and scores only), the engine's floor for any recommend(); and an
in-process numpy exact top-k over the same vectors. A second pass over the same queries measures recommend()
warm (every liked vector and detail already cached, as on a server that has been running) beside the bare
search again. Recall@10 compares recommend()'s movies with the
exact ones, for the FLAT index (the default here), for HNSW at the configured ``ef``, and with a genre filter.

``--milvus-server`` repeats it against a server from the ``milvus`` package and MariaDB; run it through
``tests/isolated.sh`` (the server binds every interface; inside, that is only loopback).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from rec_lib.contracts import Embeddings, load_embeddings
from rec_lib.data.preprocess import PreprocessConfig, run_preprocess
from rec_lib.errors import RecLibError
from rec_lib.experiments.runs import find_run, run_dir, train_run
from rec_lib.pinsage.config import TrainConfig
from rec_lib.pinsage.export import export_embeddings
from rec_lib.pinsage.graph import build_graph
from rec_lib.serving.metadata_store import movie_rows
from rec_lib.serving.recommend import ExactRecommender, Recommender
from rec_lib.serving.stores import StoreSettings, close_stores, load_stores, open_stores
from rec_lib.serving.vector_store import HOT_PATH_CONSISTENCY, VectorStoreConfig

K = 10


def embeddings_for(args: argparse.Namespace, prep) -> Embeddings:
    """The export of the run the product uses (the latest, as export and load pick it), else a short run's, which
    does not become the latest."""
    try:
        return load_embeddings(find_run(args.dataset, args.artefacts_dir).directory)
    except RecLibError:
        print("no exported run; training a short run for realistic vectors", flush=True)
        graph = build_graph(prep)
        quick = replace(TrainConfig(dataset=args.dataset), num_epochs=1, batches_per_epoch=50)
        train_run(prep, graph, quick, artefacts_dir=args.artefacts_dir, latest=False)
        return export_embeddings(prep, graph, run_dir(prep, quick, args.artefacts_dir), progress=False)


def liked_sets(prep, n: int, seed: int = 0) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    train = prep.split("train")
    last = train.groupby("user_id")["movie_id"].apply(lambda s: s.to_numpy()[-5:])
    users = rng.choice(last.index.to_numpy(), size=n, replace=True)
    return [last[u][-int(rng.integers(1, 6)) :].tolist() for u in users]


def measure(stores, embeddings: Embeddings, queries: list[list[int]], genres: list[str] | None = None) -> dict:
    recommender = Recommender(stores)
    exact_recommender = ExactRecommender(
        embeddings.movie_ids, embeddings.store_vectors(), embeddings.set_rule, embeddings.set_vectors()
    )
    allowed = None
    if genres:
        details = stores.metadata.movies(embeddings.movie_ids.tolist()).set_index("movie_id")
        allowed = np.array([bool(set(genres) & set(details.loc[m, "genres"].split("|"))) for m in embeddings.movie_ids])
    for liked in queries[:20]:
        recommender.recommend(liked, K, genres=genres)
    ours, bare, exact, recall = [], [], [], []
    for liked in queries:
        started = time.perf_counter()
        result = recommender.recommend(liked, K, genres=genres)
        ours.append(time.perf_counter() - started)
        started = time.perf_counter()
        bare_search(stores, exact_recommender, liked)
        bare.append(time.perf_counter() - started)
        started = time.perf_counter()
        reference = exact_recommender.recommend(liked, K, allowed)
        exact.append(time.perf_counter() - started)
        recall.append(len(set(result["movie_id"]) & set(reference.tolist())) / K)
    warm, warm_bare = [], []
    for liked in queries:  # again: every liked vector and detail is now cached, as on a server that has run a while
        started = time.perf_counter()
        recommender.recommend(liked, K, genres=genres)
        warm.append(time.perf_counter() - started)
        started = time.perf_counter()
        bare_search(stores, exact_recommender, liked)
        warm_bare.append(time.perf_counter() - started)
    ours_ms, bare_ms, exact_ms = np.array(ours) * 1000, np.array(bare) * 1000, np.array(exact) * 1000
    return {
        "warm_p50_ms": float(np.percentile(np.array(warm) * 1000, 50)),
        "warm_search_alone_p50_ms": float(np.percentile(np.array(warm_bare) * 1000, 50)),
        "p50_ms": float(np.percentile(ours_ms, 50)),
        "p99_ms": float(np.percentile(ours_ms, 99)),
        "search_alone_p50_ms": float(np.percentile(bare_ms, 50)),
        "exact_p50_ms": float(np.percentile(exact_ms, 50)),
        "exact_p99_ms": float(np.percentile(exact_ms, 99)),
        "recall": float(np.mean(recall)),
        "samples_ms": ours_ms,
    }


def bare_search(stores, exact: ExactRecommender, liked: list[int]) -> None:
    """The engine's floor: one pymilvus search of the same pooled query, no filter, ids and scores only."""
    rows = exact.position.loc[liked].to_numpy()
    query = exact.rule.query(exact.pooled[rows][::-1])
    stores.vectors.client.search(
        stores.vectors.config.alias, data=query.tolist(), limit=K, consistency_level=HOT_PATH_CONSISTENCY,
        search_params={"metric_type": "IP", "params": {"ef": stores.vectors.config.hnsw_ef}},
    )  # fmt: skip


def run_setting(name: str, settings: StoreSettings, embeddings, prep, queries, rows: list) -> None:
    stores = open_stores(settings)
    report = load_stores(stores, embeddings, movie_rows(prep))
    for label, genres in (("all movies", None), ("genre filter Comedy", ["Comedy"])):
        result = measure(stores, embeddings, queries, genres)
        rows.append({"stores": name, "index": report.index_type, "query": label, **result})
        print(
            f"{name:<26} {report.index_type:<5} {label:<20} recommend p50 {result['p50_ms']:6.1f} ms "
            f"p99 {result['p99_ms']:6.1f} ms | search alone p50 {result['search_alone_p50_ms']:5.1f} ms | "
            f"numpy exact p50 {result['exact_p50_ms']:5.2f} ms | recall@{K} {result['recall']:.4f} | warm: recommend "
            f"p50 {result['warm_p50_ms']:5.1f} ms, search alone {result['warm_search_alone_p50_ms']:5.1f} ms",
            flush=True,
        )
    close_stores(settings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", default="ml-latest-small")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--artefacts-dir", default=None)
    parser.add_argument("--run-dir", type=Path, default=None, help="a run with an export (default: the latest run)")
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--milvus-server", action="store_true", help="also measure against a Milvus server")
    args = parser.parse_args()
    prep = run_preprocess(PreprocessConfig(args.dataset), data_dir=args.data_dir, artefacts_dir=args.artefacts_dir)
    embeddings = load_embeddings(args.run_dir) if args.run_dir else embeddings_for(args, prep)
    queries = liked_sets(prep, args.queries)
    print(
        f"{args.dataset}: {len(embeddings.movie_ids)} movies, {embeddings.dim + 1}-d stored vectors, "
        f"{len(queries)} queries of 1-5 liked movies, K={K}"
    )
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = f"sqlite:///{Path(tmp) / 'movies.sqlite'}"
        run_setting("Milvus Lite + SQLite", StoreSettings(str(Path(tmp) / "flat.db"), sqlite), embeddings, prep,
                    queries, rows)  # fmt: skip
        hnsw = VectorStoreConfig(flat_max_items=0)
        run_setting("Milvus Lite + SQLite", StoreSettings(str(Path(tmp) / "hnsw.db"), sqlite, hnsw), embeddings,
                    prep, queries, rows)  # fmt: skip
        if args.milvus_server:
            sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
            from servers import start_mariadb, start_milvus_server

            server, mariadb = start_milvus_server(Path(tmp) / "server"), start_mariadb(Path(tmp) / "mariadb")
            try:
                for config in (VectorStoreConfig(), hnsw):
                    settings = StoreSettings(server.uri, mariadb.url, config)
                    run_setting("Milvus server + MariaDB", settings, embeddings, prep, queries, rows)
            finally:
                server.stop()
                mariadb.stop()


if __name__ == "__main__":
    main()
