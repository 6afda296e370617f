"""The Milvus index at catalogue scale: which index a load picks, its recall@10 and its search latency.

    tests/isolated.sh .venv/bin/python bench/bench_index.py [--sizes 10000 59047 200000] [--queries 200]
        [--no-server]

For each catalogue size, clustered 257-d vectors (the stored ``[h, b]`` shape of the default model) are
loaded through ``load_stores`` — the same path as ``python -m rec_lib load``, so the index is the one
:class:`~rec_lib.serving.vector_store.VectorStoreConfig` chooses by size (FLAT up to 100,000 movies, HNSW
above) — into Milvus Lite and into a Milvus server (started here; run it through ``tests/isolated.sh``).
Queries are pooled vectors of 1-5 random movies of one cluster, searched as recommend() searches: for the
``K + len(liked)`` best, the liked movies then dropped; recall@10 is the overlap with an exact numpy search of the
same score without the liked movies. Load
seconds, p50/p99 search latency and recall are printed per size and store.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from rec_lib.contracts import Embeddings, QueryRule
from rec_lib.data.text import search_key
from rec_lib.serving.stores import StoreSettings, close_stores, load_stores, open_stores

DIM = 256
K = 10


def catalogue(n_movies: int, seed: int = 0) -> tuple[Embeddings, pd.DataFrame]:
    """``n_movies`` clustered unit vectors with small biases, and their movies-table rows."""
    rng = np.random.default_rng(seed)
    clusters = max(n_movies // 500, 2)
    centres = rng.normal(size=(clusters, DIM))
    member = rng.integers(0, clusters, n_movies)
    vectors = centres[member] + rng.normal(size=(n_movies, DIM)) * 0.8
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True) * 3.0).astype(np.float32)
    ids = np.arange(1, n_movies + 1, dtype=np.int64)
    embeddings = Embeddings(
        ids, vectors, (rng.normal(size=n_movies) * 0.1).astype(np.float32), QueryRule.decay(20, 0.9),
        fingerprint=f"bench{n_movies}", metadata={"dataset": "bench"},
    )  # fmt: skip
    titles = [f"Movie {i} (2000)" for i in ids]
    rows = pd.DataFrame({
        "movie_id": ids, "title": titles, "title_key": [search_key(t) for t in titles],
        "year": pd.array([2000] * n_movies, dtype="Int64"), "genres": ["Drama"] * n_movies,
        "n_ratings": np.arange(n_movies, 0, -1), "mean_rating": np.full(n_movies, 3.5),
    })  # fmt: skip
    return embeddings, rows


def measure(settings: StoreSettings, embeddings: Embeddings, rows: pd.DataFrame, n_queries: int) -> dict:
    started = time.perf_counter()
    stores = open_stores(settings)
    report = load_stores(stores, embeddings, rows)
    load_s = time.perf_counter() - started
    stored = embeddings.store_vectors()
    rng = np.random.default_rng(1)
    latencies, recalls = [], []
    for _ in range(n_queries):
        liked = rng.choice(len(stored), size=int(rng.integers(1, 6)), replace=False)
        query = embeddings.query_rule.query(stored[liked][::-1])
        liked_ids = set(embeddings.movie_ids[liked].tolist())
        started = time.perf_counter()
        (hits,) = stores.vectors.search(query, K + len(liked))
        found = [h.movie_id for h in hits if h.movie_id not in liked_ids][:K]
        latencies.append(time.perf_counter() - started)
        exact = stored @ query[0]
        exact[liked] = -np.inf
        truth = set(embeddings.movie_ids[np.argpartition(-exact, K)[:K]].tolist())
        recalls.append(len(truth & set(found)) / K)
    close_stores(settings)
    ms = np.array(latencies) * 1000
    return {
        "index": report.index_type, "load_s": load_s, "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)), "recall": float(np.mean(recalls)),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 59_047, 200_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--no-server", action="store_true", help="Milvus Lite only")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = None
        if not args.no_server:
            sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
            from servers import start_milvus_server

            server = start_milvus_server(Path(tmp) / "server")
        try:
            for size in args.sizes:
                embeddings, rows = catalogue(size)
                setups = [("Milvus Lite", str(Path(tmp) / f"lite-{size}.db"))]
                if server is not None:
                    setups.append(("Milvus server 2.3.5", server.uri))
                for name, uri in setups:
                    settings = StoreSettings(uri, f"sqlite:///{Path(tmp) / f'movies-{size}.sqlite'}")
                    result = measure(settings, embeddings, rows, args.queries)
                    print(
                        f"{size:>8,} movies  {name:<20} {result['index']:<5} load {result['load_s']:6.1f} s  "
                        f"search p50 {result['p50_ms']:7.1f} ms  p99 {result['p99_ms']:7.1f} ms  "
                        f"recall@{K} {result['recall']:.4f}",
                        flush=True,
                    )
        finally:
            if server is not None:
                server.stop()


if __name__ == "__main__":
    main()
