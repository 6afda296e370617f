"""Every movie's vector from a trained model, checked and saved in the embeddings file format.

The format itself (:class:`rec_lib.contracts.Embeddings`) belongs to serving, which reads it
without torch; this module computes it from a checkpoint and adds the sanity views notebook 03 shows.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from rec_lib.contracts import Embeddings, FittedSetRule, SetRule, save_embeddings
from rec_lib.data.preprocess import Preprocessed
from rec_lib.errors import RecLibError
from rec_lib.pinsage.checkpoint import CHECKPOINT_BEST, load_checkpoint
from rec_lib.pinsage.graph import UserMovieGraph
from rec_lib.pinsage.inference import seeded_vectors
from rec_lib.pinsage.set_rule import SetRuleFitConfig, fit_set_rule, liked_lists


def export_embeddings(
    prep: Preprocessed,
    graph: UserMovieGraph,
    run_directory: Path,
    *,
    device: str | torch.device | None = None,
    batch_size: int = 1024,
    progress: bool = True,
    set_rule: SetRule | None = None,
    learn_set_rule: SetRuleFitConfig | None = None,
) -> Embeddings:
    """Compute every movie's vector with the run's best model, validate, and save beside the run, with the model's
    query rule and ``set_rule`` (default: the fixed product rule), or, given ``learn_set_rule``, the set rule
    fitted to these vectors and every user's liked movies (with its transform, when it has one).

    ``graph`` gives the neighbourhoods: the product passes the graph of every interaction
    (``build_graph(prep, FULL_GRAPH)``), since PinSage needs no retraining to use new edges.
    """
    checkpoint = Path(run_directory) / CHECKPOINT_BEST
    if not checkpoint.is_file():
        raise RecLibError(f"{checkpoint} is missing: train first (python -m rec_lib train)")
    config, model = load_checkpoint(checkpoint, graph)
    target = torch.device(device) if device is not None else config.resolved_device()
    vectors = seeded_vectors(model.to(target), config, graph, target, batch_size=batch_size, progress=progress)
    bias = model.biases().numpy().astype(np.float32)
    fitted = FittedSetRule(set_rule or SetRule())
    if learn_set_rule is not None:
        fitted = fit_set_rule(vectors.cpu(), bias, liked_lists(prep), learn_set_rule, show_progress=progress)
    vectors = vectors.cpu().numpy().astype(np.float32)
    embeddings = Embeddings(
        movie_ids=prep.movies["movie_id"].to_numpy(dtype=np.int64),
        vectors=vectors,
        bias=bias,
        query_rule=model.query_rule(),
        set_rule=fitted.rule,
        set_transform=fitted.transform,
        fingerprint=_fingerprint(Path(run_directory).name, checkpoint),
        metadata={
            "run_dir": str(run_directory),
            "checkpoint": str(checkpoint),
            "config": asdict(config),
            "dataset": config.dataset,
            "data_fingerprint": prep.manifest.get("fingerprint"),
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        },
    )
    embeddings.validate()
    save_embeddings(embeddings, Path(run_directory))
    return embeddings


def nearest_neighbours(embeddings: Embeddings, movies: pd.DataFrame, movie_ids: list[int], k: int = 5) -> pd.DataFrame:
    """For each query movie, the ``k`` movies the model scores highest (``h_j · h_i + b_i``), itself excluded."""
    position = pd.Series(np.arange(len(embeddings.movie_ids)), index=embeddings.movie_ids)
    titles = movies.set_index("movie_id")["title"]
    rows = []
    for movie_id in movie_ids:
        if movie_id not in position.index:
            continue
        j = position[movie_id]
        scores = embeddings.vectors @ embeddings.vectors[j] + embeddings.bias
        scores[j] = -np.inf
        for rank, i in enumerate(np.argsort(-scores)[:k], start=1):
            neighbour = int(embeddings.movie_ids[i])
            rows.append(
                {
                    "query": titles.get(movie_id, str(movie_id)),
                    "rank": rank,
                    "neighbour": titles.get(neighbour, str(neighbour)),
                    "score": float(scores[i]),
                }
            )
    return pd.DataFrame(rows, columns=["query", "rank", "neighbour", "score"])


def projection_2d(vectors: np.ndarray) -> np.ndarray:
    """The vectors' first two principal components (centred SVD), for a scatter plot."""
    centred = vectors - vectors.mean(axis=0, keepdims=True)
    _, _, components = np.linalg.svd(centred, full_matrices=False)
    return centred @ components[:2].T


def _fingerprint(run_name: str, checkpoint: Path) -> str:
    digest = hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    return hashlib.sha256(f"{run_name}:{digest}".encode()).hexdigest()[:16]
