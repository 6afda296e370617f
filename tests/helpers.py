"""Small graphs for sampler, model and training tests."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rec_lib.data.loaders import load_folder
from rec_lib.data.preprocess import Preprocessed, preprocess
from rec_lib.data.synthetic import SyntheticConfig, generate_ml1m
from rec_lib.pinsage.graph import UserMovieGraph, build_graph

PLANTED = SyntheticConfig(n_users=400, n_movies=150, n_ratings=16_000, taste_concentration=0.1, seed=11)


def synthetic(tmp_path: Path, config: SyntheticConfig = PLANTED) -> tuple[Preprocessed, UserMovieGraph]:
    prep = preprocess(load_folder(generate_ml1m(tmp_path / "synthetic", config)))
    return prep, build_graph(prep)


TRICKY_TITLES = {
    3: "Amélie (Fabuleux destin d'Amélie Poulain, Le) (2001)",
    4: 'Say "Hello" (1999)',
    5: "Robert'); DROP TABLE movies; -- (2003)",
    6: "100% Wolf_Pack (2020)",
    7: "東京物語 (Tokyo Story) (1953)",
    8: "Matrix, The (1999)",
}


def store_data(n_movies: int = 90, dim: int = 16, seed: int = 0, n_clusters: int = 3, transform: bool = False):
    """Embeddings with planted clusters and their movies-table rows, titles full of quotes and unicode.

    Movie ``i`` (ids 1..n) belongs to cluster ``i % n_clusters``; cluster ``c`` has genre ``G<c>``,
    years alternate between the 1980s and the 1990s, and popularity falls with the id. The history rule attends
    (over the leading three quarters of each vector, as PinSage's attention reads the graph part and not the
    content part; at 256-d as wide as the product's), and the set rule has every part a learned one has (gain,
    prior, bias weight, per-dimension weights, prior direction), or with ``transform`` a full transform (near the
    identity) in place of the per-dimension weights.
    """
    import numpy as np
    import pandas as pd

    from rec_lib.contracts import Embeddings, HistoryAttention, QueryRule, SetRule
    from rec_lib.data.text import search_key

    rng = np.random.default_rng(seed)
    ids = np.arange(1, n_movies + 1, dtype=np.int64)
    cluster = ids % n_clusters
    centres = rng.normal(size=(n_clusters, dim)) * 2
    vectors = (centres[cluster] + rng.normal(size=(n_movies, dim)) * 0.5).astype(np.float32)
    bias = (rng.normal(size=n_movies) * 0.1).astype(np.float32)
    attended, rank = dim * 3 // 4, 16 if dim >= 256 else 4
    attention = HistoryAttention(
        tuple(float(u) for u in (rng.normal(size=attended) * 0.1).astype(np.float32)),
        tuple(map(tuple, (rng.normal(size=(attended, rank)) * 0.3).astype(np.float32).astype(float).tolist())),
        tuple(map(tuple, (rng.normal(size=(attended, rank)) * 0.3).astype(np.float32).astype(float).tolist())),
    )
    rule = QueryRule((0.5, 0.3, 0.2), attention)  # only the latest three picks count, most the latest
    dim_weights = tuple(float(w) for w in rng.uniform(0.5, 1.5, size=dim).astype(np.float32))
    set_rule = SetRule(
        prior_ticks=2.0,
        gain=1.5,
        bias_weight=0.7,
        dim_weights=() if transform else dim_weights,
        prior_vector=tuple(float(u) for u in (rng.normal(size=dim) * 0.3).astype(np.float32)),
        transformed=transform,
    )
    set_transform = (np.eye(dim) + rng.normal(size=(dim, dim)) * 0.3).astype(np.float32) if transform else None
    embeddings = Embeddings(
        ids, vectors, bias, rule, fingerprint=f"test{seed:04d}", metadata={"dataset": "test"}, set_rule=set_rule,
        set_transform=set_transform,
    )  # fmt: skip
    titles = [TRICKY_TITLES.get(int(i), f"Movie {i} ({1980 + (i % 2) * 10 + i % 10})") for i in ids]
    rows = pd.DataFrame(
        {
            "movie_id": ids,
            "title": titles,
            "title_key": [search_key(t) for t in titles],
            "year": pd.array([1980 + (i % 2) * 10 + i % 10 for i in ids], dtype="Int64"),
            "genres": [f"G{c}" if i % 7 else f"G{c}|Shared" for i, c in zip(ids, cluster, strict=True)],
            "n_ratings": n_movies + 1 - ids,
            "mean_rating": np.linspace(2.0, 4.5, n_movies),
        }
    )
    return embeddings, rows


@contextmanager
def lite_dir_held(data_dir: Path | str) -> Iterator[None]:
    """Another process holds the Milvus Lite data dir ``data_dir`` open for the duration of the block."""
    holder = subprocess.Popen(
        [sys.executable, "-c", f"from pymilvus import MilvusClient; MilvusClient({str(data_dir)!r}); "
         "import sys; print('open', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "open"
        yield
    finally:
        holder.communicate("")
