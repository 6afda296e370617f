"""Our sampler on the CPU and, when present, on CUDA: median milliseconds at the two benchmark settings."""

from __future__ import annotations

import torch
from common import interleaved_medians, synthetic_graph

from rec_lib.pinsage.config import SamplerConfig
from rec_lib.pinsage.sampler import TorchPinSageSampler

SETTINGS = (("1,000 seeds, R=10, K=3", 1000, 10, 3), ("all movies, R=100, K=10", None, 100, 10))


def main() -> None:
    _, graph = synthetic_graph(6000, 4000, 1_000_000)
    devices = ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]
    print(f"{'setting':<26}" + "".join(f"{d + ' ms':>12}" for d in devices))
    for label, n_seeds, walks, k in SETTINGS:
        row = []
        for device in devices:
            sampler = TorchPinSageSampler(graph, SamplerConfig(2, 0.5, walks, k), device=device)
            sampler.seed(0)
            seeds = torch.arange(graph.n_movies) if n_seeds is None else torch.randperm(graph.n_movies)[:n_seeds]
            seeds = seeds.to(device)

            def run(sampler=sampler, seeds=seeds, device=device) -> None:
                sampler(seeds)
                if device == "cuda":
                    torch.cuda.synchronize()

            row.append(interleaved_medians({"x": run}, 20)["x"] * 1e3)
        print(f"{label:<26}" + "".join(f"{v:>12.2f}" for v in row))


if __name__ == "__main__":
    main()
