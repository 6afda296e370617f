"""Every movie's vector from a trained model, checked and saved with its ids and fingerprint.

The model scores a candidate movie ``i`` for a query movie ``j`` as ``h_j · h_i + b_i``
(:class:`rec_lib.evaluation.EmbeddingScorer`). A vector database ranks by a plain inner product,
so the stored vector of a movie is ``[h_i, b_i]`` and a query is ``[h_j, 1]``: the inner product is
then exactly the model's score (:func:`store_vectors`, :func:`query_vectors`).

An export lives beside its run: ``<run dir>/embeddings.npz`` (movie ids, vectors, biases) and
``<run dir>/embeddings.json`` (fingerprint, config, counts).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from rec_lib.errors import InvalidVectorsError, RecLibError
from rec_lib.graph import UserMovieGraph
from rec_lib.preprocess import Preprocessed
from rec_lib.sampler import TorchPinSageSampler
from rec_lib.train import CHECKPOINT_BEST, load_checkpoint, movie_vectors

EMBEDDINGS_NAME = "embeddings.npz"
EMBEDDINGS_META_NAME = "embeddings.json"
WELL_KNOWN_MOVIES = {1: "Toy Story", 260: "Star Wars", 296: "Pulp Fiction", 356: "Forrest Gump", 2571: "The Matrix"}
"""MovieLens ids that mean the same film in ml-1m and ml-latest(-small), for sanity views and examples."""


@dataclass
class Embeddings:
    """One vector and one bias per movie, in the model's row order, with the MovieLens ids."""

    movie_ids: np.ndarray
    """int64, (N,)"""
    vectors: np.ndarray
    """float32, (N, hidden_dims)"""
    bias: np.ndarray
    """float32, (N,)"""
    fingerprint: str
    """Identifies the model: its run and the exact checkpoint it came from."""
    metadata: dict

    @property
    def dim(self) -> int:
        return self.vectors.shape[1]

    def store_vectors(self) -> np.ndarray:
        """``[h, b]`` per movie: what goes into the vector store."""
        return store_vectors(self.vectors, self.bias)

    def validate(self) -> None:
        """Refuse NaN, infinite or wrongly shaped vectors, naming the movie ids at fault."""
        validate_vectors(self.movie_ids, self.vectors, self.dim)
        validate_vectors(self.movie_ids, self.bias[:, None], 1)
        duplicated = pd.Index(self.movie_ids)[pd.Index(self.movie_ids).duplicated()].tolist()
        if duplicated:
            raise InvalidVectorsError("movie ids appear more than once", duplicated)


def store_vectors(vectors: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """``[h_i, b_i]``, so that ``[h_j, 1] · [h_i, b_i]`` is the model's score of ``i`` for ``j``.

    >>> store_vectors(np.array([[1.0, 2.0]]), np.array([0.5]))
    array([[1. , 2. , 0.5]], dtype=float32)
    """
    return np.concatenate([vectors, bias[:, None]], axis=1).astype(np.float32)


def query_vectors(stored: np.ndarray) -> np.ndarray:
    """Query vectors ``[h_j, 1]`` from stored vectors ``[h_j, b_j]``.

    >>> query_vectors(np.array([[1.0, 2.0, 0.5]], dtype=np.float32))
    array([[1., 2., 1.]], dtype=float32)
    """
    query = np.array(stored, dtype=np.float32, copy=True)
    query[:, -1] = 1.0
    return query


def validate_vectors(movie_ids: np.ndarray, vectors: np.ndarray, dim: int) -> None:
    """Raise :class:`InvalidVectorsError` naming the ids whose vectors are not finite or not ``dim`` long.

    >>> validate_vectors(np.array([7, 8]), np.array([[0.0, np.nan], [1.0, 2.0]]), 2)
    Traceback (most recent call last):
    ...
    rec_lib.errors.InvalidVectorsError: vectors with NaN or infinite values: movie ids 7
    """
    vectors = np.asarray(vectors)
    if vectors.ndim != 2 or vectors.shape[1] != dim:
        raise InvalidVectorsError(f"vectors have shape {vectors.shape}, expected (N, {dim})", list(movie_ids[:20]))
    if len(movie_ids) != len(vectors):
        raise InvalidVectorsError(f"{len(movie_ids)} ids for {len(vectors)} vectors", list(movie_ids[:20]))
    bad = ~np.isfinite(vectors).all(axis=1)
    if bad.any():
        raise InvalidVectorsError("vectors with NaN or infinite values", [int(i) for i in movie_ids[bad]])


def export_embeddings(
    prep: Preprocessed,
    graph: UserMovieGraph,
    run_directory: Path,
    *,
    device: str | torch.device | None = None,
    batch_size: int = 1024,
    progress: bool = True,
) -> Embeddings:
    """Compute every movie's vector with the run's best model, validate, and save beside the run."""
    checkpoint = Path(run_directory) / CHECKPOINT_BEST
    if not checkpoint.is_file():
        raise RecLibError(f"{checkpoint} is missing: train first (python -m rec_lib train)")
    config, model = load_checkpoint(checkpoint, graph)
    target = torch.device(device) if device is not None else config.resolved_device()
    model.to(target)
    generator = torch.Generator(device=target)
    generator.manual_seed(config.seed)
    sampler = TorchPinSageSampler(graph, config.sampler, device=target, generator=generator)
    vectors = movie_vectors(model, sampler, graph.n_movies, config.num_layers, target, batch_size, progress)
    embeddings = Embeddings(
        movie_ids=prep.movies["movie_id"].to_numpy(dtype=np.int64),
        vectors=vectors.numpy().astype(np.float32),
        bias=model.bias.detach().cpu().numpy().astype(np.float32),
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


def save_embeddings(embeddings: Embeddings, directory: Path) -> Path:
    """Write ``embeddings.npz`` and ``embeddings.json`` through temporary files (never half-written)."""
    directory.mkdir(parents=True, exist_ok=True)
    arrays = directory / EMBEDDINGS_NAME
    tmp = directory / f".{EMBEDDINGS_NAME}.tmp"
    with tmp.open("wb") as handle:
        np.savez(handle, movie_ids=embeddings.movie_ids, vectors=embeddings.vectors, bias=embeddings.bias)
    meta = {
        **embeddings.metadata,
        "fingerprint": embeddings.fingerprint,
        "count": len(embeddings.movie_ids),
        "dim": embeddings.dim,
    }
    tmp_meta = directory / f".{EMBEDDINGS_META_NAME}.tmp"
    tmp_meta.write_text(json.dumps(meta, indent=2) + "\n")
    tmp.replace(arrays)
    tmp_meta.replace(directory / EMBEDDINGS_META_NAME)
    return arrays


def load_embeddings(directory: Path) -> Embeddings:
    """The export saved in ``directory`` (a run dir), validated."""
    arrays, meta = Path(directory) / EMBEDDINGS_NAME, Path(directory) / EMBEDDINGS_META_NAME
    if not arrays.is_file() or not meta.is_file():
        raise RecLibError(f"{arrays} is missing: export first (python -m rec_lib export)")
    metadata = json.loads(meta.read_text())
    with np.load(arrays) as data:
        embeddings = Embeddings(
            movie_ids=data["movie_ids"],
            vectors=data["vectors"],
            bias=data["bias"],
            fingerprint=metadata.pop("fingerprint"),
            metadata=metadata,
        )
    embeddings.validate()
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
