"""Training throughput (batches/s) with our sampler and with DGL's, and the time of one full epoch.

    .venv-dgl/bin/python bench/bench_training.py            # side by side, on the DGL stack
    .venv/bin/python bench/bench_training.py --epoch        # one epoch on synthetic ml-1m, default stack

One epoch = as many (head, positive, negative) triples as there are training edges.
"""

from __future__ import annotations

import argparse
import math
import time

import torch
from common import synthetic_graph

from rec_lib.pinsage.config import SamplerConfig
from rec_lib.pinsage.model import PinSageModel
from rec_lib.pinsage.sampler import PairSampler, TorchPinSageSampler

SAMPLER = SamplerConfig(random_walk_length=2, restart_prob=0.5, num_random_walks=10, num_neighbours=3, num_layers=2)


def batches_per_second(graph, backend: str, batch_size: int, hidden: int, batches: int, device: str) -> float:
    torch.manual_seed(0)
    walker = TorchPinSageSampler(graph, SAMPLER, device=device)
    walker.seed(0)
    if backend == "dgl":
        from rec_lib.pinsage.sampler import DGLPinSageSampler

        neighbours = DGLPinSageSampler(graph, SAMPLER, seed=0)
    else:
        neighbours = walker
    pairs = PairSampler(walker, neighbours, SAMPLER.num_layers)
    model = PinSageModel(graph.features, graph.trained, hidden, SAMPLER.num_layers).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step() -> None:
        batch = pairs.sample(batch_size)
        blocks = [b.to(device) for b in batch.blocks]
        loss = model(blocks, batch.heads, batch.positives, batch.negatives)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(3):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(batches):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    return batches / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epoch", action="store_true", help="time one full epoch instead of the comparison")
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--hidden", type=int, default=64, help="hidden dims for --epoch")
    args = parser.parse_args()
    if args.device == "cpu":
        torch.set_num_threads(2)
    _, graph = synthetic_graph(6040, 3706, 1_000_209)
    print(
        f"synthetic ml-1m shape: {graph.graph.num_edges('watched')} training edges; torch {torch.__version__} "
        f"on {args.device}"
    )
    if args.epoch:
        batch_size = 256
        n_batches = math.ceil(graph.graph.num_edges("watched") / batch_size)
        start = time.perf_counter()
        speed = batches_per_second(graph, "torch", batch_size, args.hidden, n_batches, args.device)
        print(
            f"one epoch: {n_batches} batches of {batch_size}, hidden {args.hidden}: "
            f"{(time.perf_counter() - start) / 60:.1f} min ({speed:.1f} batches/s)"
        )
        return
    backends = ["torch"]
    try:
        import dgl  # noqa: F401

        backends.append("dgl")
    except ImportError:
        print("dgl not importable: timing our sampler only (run on .venv-dgl for the comparison)")
    print(f"{'batch':>6}{'hidden':>8}" + "".join(f"{b + ' b/s':>12}" for b in backends) + f"{'ours/DGL':>10}")
    for batch_size in (32, 256):
        for hidden in (64, 256):
            speeds = [batches_per_second(graph, b, batch_size, hidden, args.batches, args.device) for b in backends]
            ratio = f"{speeds[0] / speeds[1]:>9.2f}x" if len(speeds) == 2 else ""
            print(f"{batch_size:>6}{hidden:>8}" + "".join(f"{s:>12.1f}" for s in speeds) + ratio)


if __name__ == "__main__":
    main()
