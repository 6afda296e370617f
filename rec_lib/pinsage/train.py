"""Training PinSage: one typed config (:class:`rec_lib.pinsage.config.TrainConfig`) for the notebook,
the CLI and the checkpoint.

By default the model learns from next engagements (``objective="sequence"``): the pooled vectors of a
user's latest training movies must pick the movie watched next out of the batch's targets and shared
negatives under a sampled softmax with the logQ correction; the recency weights of that pooling are
learned too, and they are the query rule that evaluation and ``recommend()`` use. The earlier recipe
(``objective="pairs"``: the PinSage paper's movie pairs under max-margin) stays for the ablation.

The loop samples batches, steps Adam, and at the end of each epoch computes every movie's vector,
measures validation HR@K under protocol B (:mod:`rec_lib.evaluation.protocol`) on a fixed seeded sample of at most
``val_users`` users (every user of ml-1m and smaller), checkpoints, and stops
early when validation has not improved for ``patience`` epochs. It prints nothing: progress goes
to a tqdm bar and to the callbacks.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from rec_lib.contracts import QueryRule
from rec_lib.data.preprocess import Preprocessed
from rec_lib.errors import RecLibError
from rec_lib.evaluation.protocol import EmbeddingScorer, Queries, build_queries, evaluate
from rec_lib.pinsage.checkpoint import CHECKPOINT_LAST, resume_from, save_checkpoints
from rec_lib.pinsage.config import TrainConfig
from rec_lib.pinsage.graph import UserMovieGraph
from rec_lib.pinsage.inference import make_neighbour_sampler, movie_vectors
from rec_lib.pinsage.model import PinSageModel, build_model
from rec_lib.pinsage.sampler import NeighbourSampler, PairSampler, SequenceSampler, TorchPinSageSampler


@dataclass
class EpochResult:
    epoch: int
    loss: float
    val_hr: float
    val_ndcg: float
    seconds: float
    batches_per_s: float


@dataclass
class TrainResult:
    """What a run produced: the best model's movie vectors and biases, and the history of every epoch."""

    config: TrainConfig
    history: list[EpochResult] = field(default_factory=list)
    best_epoch: int = -1
    best_val_hr: float = -1.0
    stopped_early: bool = False
    vectors: torch.Tensor | None = None
    """Movie vectors on the training graph (what validation targets are scored with)."""
    test_vectors: torch.Tensor | None = None
    """Movie vectors on the graph of training + validation interactions (what test targets are scored with)."""
    bias: torch.Tensor | None = None
    query_rule: QueryRule | None = None
    checkpoint_dir: Path | None = None
    model: PinSageModel | None = None
    """The best model, in evaluation mode: vectors on another graph (new interactions, new movies) come from it."""

    def scorer(self, name: str = "pinsage") -> EmbeddingScorer:
        """The trained model as an evaluation scorer: per-split vectors, bias and query rule (trained with a
        ``test_graph``)."""
        if self.test_vectors is None:
            raise RecLibError("no test-time vectors: train with test_graph= to score the test split")
        return EmbeddingScorer(name, {"val": self.vectors, "test": self.test_vectors}, self.bias, self.query_rule)


def set_seed(seed: int) -> None:
    """Seed Python, numpy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)


def train(
    prep: Preprocessed,
    graph: UserMovieGraph,
    config: TrainConfig,
    *,
    checkpoint_dir: Path | None = None,
    resume: bool = True,
    callbacks: list[Callable[[EpochResult], None]] | None = None,
    queries: Queries | None = None,
    test_graph: UserMovieGraph | None = None,
) -> TrainResult:
    """Train PinSage on ``graph``; returns the best epoch's movie vectors (by validation HR@K) on ``graph`` and, when
    given, on ``test_graph`` (the graph of training and validation interactions, which test targets are scored on:
    ``build_graph(prep, TEST_TIME_GRAPH, graph.features.vocab)``)."""
    config.validate()
    set_seed(config.seed)
    device = config.resolved_device()
    generator = torch.Generator(device=device)
    generator.manual_seed(config.seed)
    walker = TorchPinSageSampler(graph, config.sampler, device=device, generator=generator)
    neighbours = make_neighbour_sampler(config, graph, walker)
    train_rows = prep.split("train", ["user_idx", "movie_idx"])
    sequences = torch.tensor(train_rows[["user_idx", "movie_idx"]].to_numpy().T.copy())
    draw = _batch_drawer(config, walker, neighbours, sequences)
    model = build_model(config, graph).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    val_queries = (queries or build_queries(prep, config.history_len)).sample(config.val_users, config.seed)
    result = TrainResult(config=config, checkpoint_dir=checkpoint_dir)
    start_epoch = 0
    best_state = None
    if checkpoint_dir is not None and resume and (checkpoint_dir / CHECKPOINT_LAST).is_file():
        start_epoch, best_state = resume_from(checkpoint_dir, config, model, optimizer, generator, result)

    stale = 0
    if result.history:
        stale = result.history[-1].epoch - result.best_epoch
    for epoch in range(start_epoch, config.num_epochs):
        if stale >= config.patience:
            result.stopped_early = True
            break
        model.train()
        started = time.perf_counter()
        total = 0.0
        bar = tqdm(range(config.batches_per_epoch), desc=f"epoch {epoch + 1}/{config.num_epochs}", leave=False)
        for _ in bar:
            loss = draw(model)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item()
            bar.set_postfix(loss=f"{loss.item():.4f}", refresh=False)
        train_seconds = time.perf_counter() - started
        vectors = movie_vectors(model, neighbours, graph.n_movies, config.num_layers, device)
        scorer = EmbeddingScorer("pinsage", vectors, model.biases(), model.query_rule())
        metrics = evaluate(scorer, val_queries, "B", graph.n_movies, config.eval, splits=("val",))["val"]
        epoch_result = EpochResult(
            epoch=epoch,
            loss=total / config.batches_per_epoch,
            val_hr=metrics.hr,
            val_ndcg=metrics.ndcg,
            seconds=time.perf_counter() - started,
            batches_per_s=config.batches_per_epoch / train_seconds,
        )
        result.history.append(epoch_result)
        if metrics.hr > result.best_val_hr:
            result.best_val_hr, result.best_epoch = metrics.hr, epoch
            best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            stale = 0
        else:
            stale += 1
        if checkpoint_dir is not None:
            save_checkpoints(checkpoint_dir, config, model, optimizer, generator, result, best_state, epoch)
        for callback in callbacks or []:
            callback(epoch_result)
    if best_state is not None:
        model.load_state_dict(best_state)
    result.vectors = movie_vectors(model, neighbours, graph.n_movies, config.num_layers, device)
    if test_graph is not None:
        test_walker = TorchPinSageSampler(test_graph, config.sampler, device=device, generator=generator)
        test_neighbours = make_neighbour_sampler(config, test_graph, test_walker)
        result.test_vectors = movie_vectors(model, test_neighbours, graph.n_movies, config.num_layers, device)
    result.bias = model.biases()
    result.query_rule = model.query_rule()
    result.model = model.eval()
    return result


def _batch_drawer(
    config: TrainConfig, walker: TorchPinSageSampler, neighbours: NeighbourSampler, sequences: torch.Tensor
) -> Callable[[PinSageModel], torch.Tensor]:
    """A function that samples one batch of ``config.objective`` and returns the model's loss on it."""
    device = walker.device
    if config.objective == "pairs":
        pairs = PairSampler(
            walker,
            neighbours,
            config.num_layers,
            hard_negative_ratio=config.hard_negative_ratio,
            head_sampling=config.head_sampling,
            sequences=sequences if config.positive_sampling == "next" else None,
            window=config.positive_window,
        )

        def pair_loss(model: PinSageModel) -> torch.Tensor:
            batch = pairs.sample(config.batch_size)
            blocks = [b.to(device) for b in batch.blocks]
            return model(
                blocks, batch.heads, batch.positives, batch.negatives, shared_negatives=config.shared_negatives
            )

        return pair_loss

    examples = SequenceSampler(
        walker,
        neighbours,
        config.num_layers,
        sequences,
        config.history_len,
        hard_negative_ratio=config.hard_negative_ratio,
        target_window=config.target_window,
        consecutive_targets=config.consecutive_targets,
    )
    n_negatives = config.batch_size
    uniform_share = n_negatives * (1.0 - config.hard_negative_ratio) / walker.n_movies

    def sequence_loss(model: PinSageModel) -> torch.Tensor:
        batch = examples.sample(config.batch_size, n_negatives)
        log_q = None
        if config.logq_correction:
            expected = batch.targets.numel() * examples.target_share[batch.candidate_ids] + uniform_share
            log_q = torch.log(expected)
        return model.sequence_loss(batch, config.loss, log_q)

    return sequence_loss
