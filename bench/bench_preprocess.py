"""Time load + split + graph build on a synthetic dataset of MovieLens-1M's shape (target: under 60 s).

    python bench/bench_preprocess.py [--users 6040 --movies 3706 --ratings 1000209]

Generation is timed too but is not part of the target: it stands in for the download.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from rec_lib.data.loaders import load_folder
from rec_lib.data.preprocess import preprocess
from rec_lib.data.synthetic import SyntheticConfig, generate_ml1m
from rec_lib.pinsage.graph import WATCHED, build_graph

TARGET_S = 60.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=6040)
    parser.add_argument("--movies", type=int, default=3706)
    parser.add_argument("--ratings", type=int, default=1_000_209)
    args = parser.parse_args()
    config = SyntheticConfig(n_users=args.users, n_movies=args.movies, n_ratings=args.ratings)
    with tempfile.TemporaryDirectory() as tmp:
        timings = {}
        start = time.perf_counter()
        folder = generate_ml1m(Path(tmp) / "synthetic-ml-1m", config)
        timings["generate (not in target)"] = time.perf_counter() - start
        start = time.perf_counter()
        data = load_folder(folder)
        timings["load"] = time.perf_counter() - start
        start = time.perf_counter()
        prep = preprocess(data)
        timings["split"] = time.perf_counter() - start
        start = time.perf_counter()
        graph = build_graph(prep)
        _ = graph.movie_to_users, graph.user_to_movies
        timings["graph"] = time.perf_counter() - start
    total = timings["load"] + timings["split"] + timings["graph"]
    print(
        f"synthetic ml-1m shape: {config.n_users} users, {config.n_movies} movies, {config.n_ratings} ratings; "
        f"{graph.graph.num_edges(WATCHED)} training edges; torch threads {torch.get_num_threads()}"
    )
    print(f"{'step':<26}{'seconds':>9}")
    for step, seconds in timings.items():
        print(f"{step:<26}{seconds:>9.2f}")
    verdict = "met" if total < TARGET_S else "MISSED"
    print(f"{'load + split + graph':<26}{total:>9.2f}   target < {TARGET_S:.0f} s: {verdict}")


if __name__ == "__main__":
    main()
