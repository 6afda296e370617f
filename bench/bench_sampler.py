"""Our PinSage sampler against dgl.sampling.PinSAGESampler, timed side by side in one run.

Run on the DGL reference stack (both samplers on the same torch):
    .venv-dgl/bin/python bench/bench_sampler.py
Target: at least 1.5x DGL's speed at the large setting (all movies, R=100, K=10).
"""

from __future__ import annotations

import argparse
from functools import partial

import torch
from common import interleaved_medians, synthetic_graph

from rec_lib.pinsage.config import SamplerConfig
from rec_lib.pinsage.sampler import DGLPinSageSampler, TorchPinSageSampler

SETTINGS = (("1,000 seeds, R=10, K=3", 1000, 10, 3, 50), ("all movies, R=100, K=10", None, 100, 10, 10))
TARGET_RATIO = 1.5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=6000)
    parser.add_argument("--movies", type=int, default=4000)
    parser.add_argument("--ratings", type=int, default=1_000_000)
    args = parser.parse_args()
    torch.set_num_threads(2)
    _, graph = synthetic_graph(args.users, args.movies, args.ratings)
    print(
        f"graph: {graph.n_users} users, {graph.n_movies} movies, {graph.graph.num_edges('watched')} edges; "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; walk length 2, restart 0.5"
    )
    print(f"{'setting':<26}{'ours ms':>10}{'DGL ms':>10}{'DGL/ours':>10}")
    for label, n_seeds, walks, k, repeats in SETTINGS:
        config = SamplerConfig(random_walk_length=2, restart_prob=0.5, num_random_walks=walks, num_neighbours=k)
        ours = TorchPinSageSampler(graph, config)
        ours.seed(0)
        dgl_sampler = DGLPinSageSampler(graph, config, seed=0)
        seeds = torch.arange(graph.n_movies) if n_seeds is None else torch.randperm(graph.n_movies)[:n_seeds]
        candidates = {"ours": partial(ours, seeds), "dgl": partial(dgl_sampler.raw, seeds)}
        medians = interleaved_medians(candidates, repeats)
        ratio = medians["dgl"] / medians["ours"]
        print(f"{label:<26}{medians['ours'] * 1e3:>10.1f}{medians['dgl'] * 1e3:>10.1f}{ratio:>9.2f}x")
    print(f"target: ours >= {TARGET_RATIO}x DGL's speed at the large setting")


if __name__ == "__main__":
    main()
