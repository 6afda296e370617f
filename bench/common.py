"""Shared set-up for the benchmarks: a synthetic graph of a given shape, and a median timer."""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from rec_lib.data.loaders import load_folder
from rec_lib.data.preprocess import Preprocessed, preprocess
from rec_lib.data.synthetic import SyntheticConfig, generate_ml1m
from rec_lib.pinsage.graph import UserMovieGraph, build_graph


def synthetic_graph(n_users: int, n_movies: int, n_ratings: int, seed: int = 0) -> tuple[Preprocessed, UserMovieGraph]:
    config = SyntheticConfig(n_users=n_users, n_movies=n_movies, n_ratings=n_ratings, seed=seed)
    with tempfile.TemporaryDirectory() as tmp:
        prep = preprocess(load_folder(generate_ml1m(Path(tmp) / "synthetic", config)))
    return prep, build_graph(prep)


def interleaved_medians(candidates: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median seconds of each candidate, run in turn so machine noise hits them alike."""
    samples: dict[str, list[float]] = {name: [] for name in candidates}
    for fn in candidates.values():
        fn()
    for _ in range(repeats):
        for name, fn in candidates.items():
            start = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in samples.items()}


def seeded_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of the multi-seed training benchmarks: dataset, data and artefacts dirs, device, seeds, workers."""
    parser.add_argument("--dataset", default="ml-latest-small")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--artefacts-dir", default=None)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--workers", type=int, default=1)
