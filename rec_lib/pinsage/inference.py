"""Inference: every movie's vector from a model, over neighbourhoods sampled on a graph.

Training scores validation with :func:`movie_vectors`; export, new movies and the cold-start runs use
:func:`seeded_vectors`, whose neighbourhoods are drawn from the run's seed so that the same model and graph
always give the same vectors.
"""

from __future__ import annotations

import torch

from rec_lib.pinsage.config import TrainConfig
from rec_lib.pinsage.graph import UserMovieGraph
from rec_lib.pinsage.model import PinSageModel
from rec_lib.pinsage.sampler import NeighbourSampler, TorchPinSageSampler, sample_blocks
from rec_lib.progress import progress as progress_bar


def make_neighbour_sampler(config: TrainConfig, graph: UserMovieGraph, walker: TorchPinSageSampler) -> NeighbourSampler:
    """The sampler that builds the model's neighbourhoods: ``walker`` itself, or DGL's (``sampler_backend="dgl"``)."""
    if config.sampler_backend == "dgl":
        from rec_lib.pinsage.sampler import DGLPinSageSampler

        return DGLPinSageSampler(graph, config.sampler, seed=config.seed)
    return walker


@torch.no_grad()
def movie_vectors(
    model: PinSageModel,
    sampler: NeighbourSampler,
    n_movies: int,
    num_layers: int,
    device: torch.device,
    batch_size: int = 1024,
    progress: bool = False,
    movies: torch.Tensor | None = None,
) -> torch.Tensor:
    """The vectors of ``movies`` (default: every movie), in batches over sampled neighbourhoods (float32, CPU)."""
    was_training = model.training
    model.eval()
    out = []
    movies = torch.arange(n_movies) if movies is None else movies.cpu()
    starts = range(0, movies.numel(), batch_size)
    for start in progress_bar(starts, progress, desc="movie vectors", unit="batch"):
        seeds = movies[start : start + batch_size].to(device)
        blocks = [b.to(device) for b in sample_blocks(sampler, seeds, num_layers)]
        out.append(model.scoring_vectors(blocks).float().cpu())
    model.train(was_training)
    return torch.cat(out)


def seeded_vectors(
    model: PinSageModel,
    config: TrainConfig,
    graph: UserMovieGraph,
    device: torch.device,
    *,
    movies: torch.Tensor | None = None,
    batch_size: int = 1024,
    progress: bool = False,
) -> torch.Tensor:
    """:func:`movie_vectors` on ``graph`` with neighbourhoods drawn from the run's seed: the same model and graph give
    the same vectors (export, new movies and the cold-start evaluation all compute them this way)."""
    generator = torch.Generator(device=device)
    generator.manual_seed(config.seed)
    sampler = TorchPinSageSampler(graph, config.sampler, device=device, generator=generator)
    return movie_vectors(model, sampler, graph.n_movies, config.num_layers, device, batch_size, progress, movies)
