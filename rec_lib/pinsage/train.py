"""Training PinSage: one typed config (:class:`rec_lib.pinsage.config.TrainConfig`) for the notebook,
the CLI and the checkpoint.

By default the model learns from next engagements (``objective="sequence"``): the pooled vectors of a
user's latest training movies must pick the movie watched next out of the batch's targets and shared
negatives under a sampled softmax with the logQ correction; the recency weights of that pooling are
learned too, and they are the query rule that evaluation and ``recommend()`` use. The earlier recipe
(``objective="pairs"``: the PinSage paper's movie pairs under max-margin) stays for the ablation.

The loop samples batches, steps Adam, and at the end of each epoch computes every movie's vector,
measures validation HR@K under protocol B (:mod:`rec_lib.pinsage.evaluation`) on a fixed seeded sample of at most
``val_users`` users (every user of ml-1m and smaller), checkpoints, and stops
early when validation has not improved for ``patience`` epochs. It prints nothing: progress goes
to a tqdm bar and to the callbacks.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from rec_lib.data.preprocess import Preprocessed
from rec_lib.errors import ConfigError, RecLibError
from rec_lib.pinsage.config import TrainConfig
from rec_lib.pinsage.evaluation import EmbeddingScorer, Queries, build_queries, evaluate
from rec_lib.pinsage.graph import TEST_TIME_GRAPH, FeatureVocab, UserMovieGraph, build_graph
from rec_lib.pinsage.model import PinSageModel
from rec_lib.pinsage.sampler import NeighbourSampler, PairSampler, SequenceSampler, TorchPinSageSampler, sample_blocks
from rec_lib.progress import progress as progress_bar
from rec_lib.serving.embeddings import QueryRule

CHECKPOINT_LAST = "last.pt"
CHECKPOINT_BEST = "best.pt"


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
        """The trained model as an evaluation scorer: per-split vectors, bias and query rule."""
        return EmbeddingScorer(name, {"val": self.vectors, "test": self.test_vectors}, self.bias, self.query_rule)


def set_seed(seed: int) -> None:
    """Seed Python, numpy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)


def build_model(config: TrainConfig, graph: UserMovieGraph, known: torch.Tensor | None = None) -> PinSageModel:
    """A fresh model for ``graph``; ``known`` (default: the graph's trained movies) says which movies have an id."""
    return PinSageModel(
        graph.features,
        graph.trained if known is None else known,
        config.hidden_dims,
        config.num_layers,
        config.dropout,
        temperature=config.temperature if config.loss == "softmax" else None,
        use_bias=config.use_bias,
        query_rule=QueryRule.decay(config.history_len, config.history_decay),
        learn_query=config.query_pooling == "learned",
        id_dropout=config.id_dropout,
        drop_neighbourhood=config.drop_neighbourhood,
        new_movie_loss=config.new_movie_loss,
        content_weight=config.content_weight,
    )


def make_neighbour_sampler(config: TrainConfig, graph: UserMovieGraph, walker: TorchPinSageSampler) -> NeighbourSampler:
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


def train(
    prep: Preprocessed,
    graph: UserMovieGraph,
    config: TrainConfig,
    *,
    checkpoint_dir: Path | None = None,
    resume: bool = True,
    callbacks: list[Callable[[EpochResult], None]] | None = None,
    queries: Queries | None = None,
) -> TrainResult:
    """Train PinSage on ``graph``; returns the best epoch's movie vectors (by validation HR@K)."""
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
        start_epoch, best_state = _resume(checkpoint_dir, config, model, optimizer, generator, result)

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
            _save(checkpoint_dir, config, model, optimizer, generator, result, best_state, epoch)
        for callback in callbacks or []:
            callback(epoch_result)
    if best_state is not None:
        model.load_state_dict(best_state)
    result.vectors = movie_vectors(model, neighbours, graph.n_movies, config.num_layers, device)
    test_graph = build_graph(prep, TEST_TIME_GRAPH, graph.features.vocab)
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
    )
    n_negatives = config.batch_size
    uniform_share = n_negatives * (1.0 - config.hard_negative_ratio) / walker.n_movies

    def sequence_loss(model: PinSageModel) -> torch.Tensor:
        batch = examples.sample(config.batch_size, n_negatives)
        log_q = None
        if config.logq_correction:
            expected = config.batch_size * examples.target_share[batch.candidate_ids] + uniform_share
            log_q = torch.log(expected)
        return model.sequence_loss(batch, config.loss, log_q)

    return sequence_loss


def _save(
    directory: Path,
    config: TrainConfig,
    model: PinSageModel,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    result: TrainResult,
    best_state: dict | None,
    epoch: int,
) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    vocab = model.projector.vocab.to_dict()
    payload = {
        "config": asdict(config),
        "vocab": vocab,
        "epoch": epoch,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "generator": generator.get_state(),
        "history": [asdict(h) for h in result.history],
        "best_epoch": result.best_epoch,
        "best_val_hr": result.best_val_hr,
        "best_model": best_state,
    }
    _atomic_save(payload, directory / CHECKPOINT_LAST)
    if result.best_epoch == epoch and best_state is not None:
        best = {
            "config": asdict(config),
            "vocab": vocab,
            "epoch": epoch,
            "model": best_state,
            "val_hr": result.best_val_hr,
        }
        _atomic_save(best, directory / CHECKPOINT_BEST)


def _atomic_save(payload: dict, path: Path) -> None:
    """torch.save through a temporary file, so a crash never leaves a half-written checkpoint."""
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(payload, tmp)
    tmp.replace(path)


def _resume(
    directory: Path,
    config: TrainConfig,
    model: PinSageModel,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    result: TrainResult,
) -> tuple[int, dict | None]:
    payload = torch.load(directory / CHECKPOINT_LAST, map_location="cpu", weights_only=False)
    saved = TrainConfig.from_dict(payload["config"])
    if config_identity(saved) != config_identity(config):
        raise ConfigError(
            f"{directory / CHECKPOINT_LAST} was written with different settings; "
            "use another checkpoint dir or resume=False"
        )
    if payload.get("vocab") != model.projector.vocab.to_dict():
        raise ConfigError(
            f"{directory / CHECKPOINT_LAST} was trained with another feature vocabulary than this graph's "
            "(a different rec_lib or data); use another checkpoint dir or resume=False"
        )
    model.load_state_dict(payload["model"])
    optimizer.load_state_dict(payload["optimizer"])
    generator.set_state(payload["generator"])
    result.history = [EpochResult(**h) for h in payload["history"]]
    result.best_epoch, result.best_val_hr = payload["best_epoch"], payload["best_val_hr"]
    return payload["epoch"] + 1, payload["best_model"]


def config_identity(config: TrainConfig) -> dict:
    """The settings that must match to resume: all but the epoch budget and the device."""
    values = asdict(config)
    for name in ("num_epochs", "patience", "device"):
        values.pop(name)
    return values


def load_checkpoint(path: Path, graph: UserMovieGraph) -> tuple[TrainConfig, PinSageModel]:
    """A trained model and its config from ``best.pt`` or ``last.pt``, for the movies of ``graph``.

    ``graph`` may hold more movies than the model was trained on (appended after them): those read the
    shared unseen id. Its features must be encoded under the checkpoint's vocabulary
    (:func:`checkpoint_vocab`; ``build_graph`` of the run's own data does that by itself).
    """
    payload = torch.load(path, map_location="cpu", weights_only=False)
    if "vocab" not in payload:
        raise RecLibError(f"{path} was written by an older rec_lib (no feature vocabulary in it): train again")
    if FeatureVocab.from_dict(payload["vocab"]) != graph.features.vocab:
        raise ConfigError(
            f"the graph's movie features use another vocabulary than {path}: "
            "build the graph with build_graph(..., vocab=checkpoint_vocab(path))"
        )
    config = TrainConfig.from_dict(payload["config"])
    model = build_model(config, graph, known=payload["model"][KNOWN_KEY])
    model.load_state_dict(payload["model"])
    return config, model


def checkpoint_vocab(path: Path) -> FeatureVocab:
    """The feature vocabulary a checkpoint's model was trained with."""
    payload = torch.load(path, map_location="cpu", weights_only=False)
    if "vocab" not in payload:
        raise RecLibError(f"{path} was written by an older rec_lib (no feature vocabulary in it): train again")
    return FeatureVocab.from_dict(payload["vocab"])


KNOWN_KEY = "projector.ids.known"
"""Where a state dict keeps which movies had an id embedding at training."""
