"""Baselines on the same split and protocols: most-popular, item-kNN (cosine), EASE, content similarity, and
popularity among new movies for the cold-start protocol.

Each is a :class:`rec_lib.evaluation.protocol.MovieScorer` fitted on the training interactions only, and
uses protocol B's fixed query rule; at test time its query history includes the validation movie.
"""

from __future__ import annotations

import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from rec_lib.data.content import inverse_document_frequency
from rec_lib.data.loaders import NO_GENRES
from rec_lib.data.preprocess import Preprocessed
from rec_lib.data.text import title_words
from rec_lib.errors import ConfigError
from rec_lib.evaluation.config import EASE_L2

if TYPE_CHECKING:
    from rec_lib.evaluation.coldstart import ColdStartSplit


def training_matrix(prep: Preprocessed) -> sp.csr_matrix:
    """Binary users × movies matrix of the training interactions."""
    train = prep.split("train", ["user_idx", "movie_idx"])
    values = np.ones(len(train), dtype=np.float32)
    return sp.csr_matrix((values, (train["user_idx"], train["movie_idx"])), shape=(prep.n_users, prep.n_movies))


class MostPopular:
    """Every user gets the movies with the most training interactions."""

    name = "most-popular"
    query_rule = None

    def __init__(self, prep: Preprocessed, device: torch.device | str = "cpu") -> None:
        counts = np.asarray(training_matrix(prep).sum(axis=0)).ravel()
        self.popularity = torch.from_numpy(counts.astype(np.float32)).to(device)

    def score(self, movies: torch.Tensor, weights: torch.Tensor, split: str = "val") -> torch.Tensor:
        return self.popularity.expand(movies.shape[0], -1).clone()


DENSE_SIMILARITY_BYTES = 2 * 2**30
"""Item-kNN keeps its movies × movies similarities dense up to this size (about 23,000 movies), else each movie's
top :data:`KNN_NEIGHBOURS` as sparse rows."""
KNN_NEIGHBOURS = 200
EASE_MAX_BYTES = 12 * 2**30
"""EASE holds three dense movies × movies float32 matrices while it solves (about 32,000 movies at this limit)."""
_BLOCK = 1024
"""Movies per block when similarities or co-occurrences are computed."""


class ItemKNN:
    """Cosine similarity between movie columns of the interaction matrix.

    ``s(j, i) = x_j · x_i / (|x_j| |x_i|)``. The similarities are computed once and kept dense when
    ``n_movies² × 4`` bytes is within ``max_dense_bytes`` (every neighbour counts, the exact score): the
    co-occurrence counts ``XᵀX`` (pass ``cooccurrence`` to share them with EASE) scaled by both norms. Above that
    each movie keeps its ``neighbours`` most similar movies as sparse rows, computed in blocks of movies, and the
    score sums over those. Dense similarities are kept and multiplied on ``device``; the sparse rows on the CPU.
    A batch's fused score ``Σ_h w_h s(j_h, ·)`` is a sparse (batch × movies) query times
    the similarities: its cost grows with ``batch × history × movies``, never ``users × interactions``.
    """

    name = "item-knn"
    query_rule = None

    def __init__(
        self,
        prep: Preprocessed,
        max_dense_bytes: int = DENSE_SIMILARITY_BYTES,
        neighbours: int = KNN_NEIGHBOURS,
        cooccurrence: torch.Tensor | None = None,
        device: torch.device | str = "cpu",
    ) -> None:
        matrix = training_matrix(prep)
        n = matrix.shape[1]
        inverse_norms = 1.0 / np.maximum(np.sqrt(np.asarray(matrix.sum(axis=0)).ravel()), 1e-12)
        self.dense = knn_is_dense(n, max_dense_bytes)
        self.neighbours = None if self.dense else min(neighbours, n)
        if self.dense:
            counts = item_cooccurrence(matrix) if cooccurrence is None else cooccurrence
            self.similarity = _cosine_from_counts(counts, torch.from_numpy(inverse_norms)).to(device)
            return
        columns = (matrix.astype(np.float64) @ sp.diags(inverse_norms)).T.tocsr()
        blocks = _in_threads(lambda start: _top_similarities(columns, start, self.neighbours), range(0, n, _BLOCK))
        self.similarity = sp.vstack(blocks).tocsr()

    def score(self, movies: torch.Tensor, weights: torch.Tensor, split: str = "val") -> torch.Tensor:
        if self.dense:
            return _fused_rows(self.similarity, movies, weights)
        query = _query_matrix(movies, weights, self.similarity.shape[0])
        return torch.from_numpy((query @ self.similarity).toarray().astype(np.float32))


def knn_is_dense(n_movies: int, max_dense_bytes: int = DENSE_SIMILARITY_BYTES) -> bool:
    """Whether item-kNN keeps all ``n_movies²`` float32 similarities.

    >>> knn_is_dense(23_000), knn_is_dense(59_047)
    (True, False)
    """
    return n_movies * n_movies * 4 <= max_dense_bytes


def item_cooccurrence(matrix: sp.csr_matrix) -> torch.Tensor:
    """The dense movies × movies co-occurrence counts ``XᵀX`` of a binary users × movies matrix, as float32.

    Computed in blocks of movies, one per torch thread at a time (scipy's sparse products release the GIL):
    the counts are exact integers, so the blocks' order does not change the result.
    """
    transposed = matrix.T.tocsr()
    n = matrix.shape[1]
    counts = torch.empty((n, n))

    def fill(start: int) -> None:
        counts[start : start + _BLOCK] = torch.from_numpy((transposed[start : start + _BLOCK] @ matrix).toarray())

    _in_threads(fill, range(0, n, _BLOCK))
    return counts


def _in_threads(work, starts: range) -> list:
    """``work(start)`` for every start, on as many threads as torch uses, in order."""
    with ThreadPoolExecutor(max(torch.get_num_threads(), 1)) as pool:
        return list(pool.map(work, starts))


def _cosine_from_counts(counts: torch.Tensor, inverse_norms: torch.Tensor) -> torch.Tensor:
    """``counts[j, i] / (|x_j| |x_i|)`` as float32, each block computed in float64 so that equal cosines are equal
    floats whichever path computed them (ties then rank the same way on the dense and the top-k path)."""
    similarity = torch.empty(counts.shape)
    for start in range(0, counts.shape[0], _BLOCK):
        rows = slice(start, start + _BLOCK)
        similarity[rows] = (counts[rows].double() * inverse_norms[rows, None] * inverse_norms[None, :]).float()
    return similarity


def _top_similarities(columns: sp.csr_matrix, start: int, neighbours: int) -> sp.csr_matrix:
    """Rows ``start…`` of the cosine matrix (computed in float64, kept as float32), each keeping its ``neighbours``
    largest, as a sparse matrix."""
    block = (columns[start : start + _BLOCK] @ columns.T).toarray().astype(np.float32)
    keep = np.argpartition(-block, neighbours - 1, axis=1)[:, :neighbours]
    values = np.take_along_axis(block, keep, axis=1)
    rows = np.repeat(np.arange(block.shape[0]), neighbours)
    return sp.csr_matrix((values.ravel(), (rows, keep.ravel())), shape=block.shape)


def _fused_rows(matrix: torch.Tensor, movies: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``Σ_h weights[:, h] · matrix[movies[:, h]]`` as one sparse (batch × movies) @ dense product on every torch
    thread: (batch, n_movies) memory, and an order of magnitude faster than gathering each position's rows."""
    query = _query_matrix(movies, weights, matrix.shape[0])
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Sparse CSR tensor support is in beta", UserWarning)
        query = torch.sparse_csr_tensor(
            torch.from_numpy(query.indptr.astype(np.int64)),
            torch.from_numpy(query.indices.astype(np.int64)),
            torch.from_numpy(query.data),
            size=query.shape,
            check_invariants=False,
        )
    return query.to(matrix.device) @ matrix


def _query_matrix(movies: torch.Tensor, weights: torch.Tensor, n_movies: int) -> sp.csr_matrix:
    """The batch's weighted history as a sparse (batch × movies) matrix, without the zero weights of padding and
    of positions a rule does not use (protocol A keeps one movie of twenty); each row's columns sorted."""
    values = weights.numpy().ravel()
    used = values != 0
    rows = np.repeat(np.arange(movies.shape[0]), movies.shape[1])[used]
    query = sp.csr_matrix((values[used], (rows, movies.numpy().ravel()[used])), shape=(movies.shape[0], n_movies))
    query.sum_duplicates()
    return query


class EASE:
    """Embarrassingly Shallow Autoencoder (Steck 2019): ``B = I - P / diag(P)``, ``P = (XᵀX + λI)⁻¹``.

    ``cooccurrence`` (``XᵀX``, see :func:`item_cooccurrence`) may be shared with item-kNN; it is not changed. The
    solve is cubic in the number of movies and holds three dense movies × movies matrices; above ``max_bytes`` of
    them it is refused before it starts, saying how much it would need. The solve and the scoring run on
    ``device``.
    """

    def __init__(
        self,
        prep: Preprocessed,
        l2: float = EASE_L2,
        max_bytes: int | None = None,
        cooccurrence: torch.Tensor | None = None,
        device: torch.device | str = "cpu",
    ) -> None:
        self.name = "ease"
        self.query_rule = None
        self.l2 = l2
        max_bytes = EASE_MAX_BYTES if max_bytes is None else max_bytes
        needed = ease_bytes(prep.n_movies)
        if needed > max_bytes:
            raise ConfigError(
                f"EASE on {prep.n_movies:,} movies needs about {needed / 2**30:.0f} GiB (three dense "
                f"{prep.n_movies:,}² float32 matrices), over its {max_bytes / 2**30:.0f} GiB limit "
                "(rec_lib.evaluation.baselines.EASE_MAX_BYTES): evaluate on a catalogue of movies with more ratings, "
                "or raise the limit on a machine with that memory"
            )
        gram = item_cooccurrence(training_matrix(prep)) if cooccurrence is None else cooccurrence.clone()
        gram = gram.to(device)
        gram.diagonal().add_(l2)
        inverse = torch.cholesky_inverse(torch.linalg.cholesky(gram))
        del gram
        inverse = inverse.T.contiguous()  # LAPACK answers column-major; scoring gathers rows (P is symmetric)
        weights = inverse.div_(-inverse.diagonal().clone())
        weights.diagonal().zero_()
        self.weights = weights

    def score(self, movies: torch.Tensor, weights: torch.Tensor, split: str = "val") -> torch.Tensor:
        return _fused_rows(self.weights, movies, weights)


def ease_bytes(n_movies: int) -> int:
    """The memory EASE's solve holds: three dense ``n_movies²`` float32 matrices.

    >>> round(ease_bytes(59_047) / 2**30, 1)
    39.0
    """
    return 3 * n_movies * n_movies * 4


class ContentSimilarity:
    """Content-only: cosine similarity of movies' genres, title words (tf-idf) and release decade.

    Each of the three parts is L2-normalised and the concatenation divided by √3, so the similarity of two
    movies is the mean of the three parts' cosines. It needs no interaction at all, which makes it the
    baseline a movie nobody has rated yet can be scored by; it uses protocol B's fixed query rule.
    """

    name = "content"
    query_rule = None

    def __init__(self, movies: pd.DataFrame) -> None:
        parts = [_normalised_rows(part) for part in _content_parts(movies)]
        self.features = (sp.hstack(parts).tocsr() / np.sqrt(len(parts))).astype(np.float32).tocsr()

    def score(self, movies: torch.Tensor, weights: torch.Tensor, split: str = "val") -> torch.Tensor:
        query = _query_matrix(movies, weights, self.features.shape[0]) @ self.features
        return torch.from_numpy(np.asarray((query @ self.features.T).todense(), dtype=np.float32))


def _content_parts(movies: pd.DataFrame) -> list[sp.csr_matrix]:
    """Genres multi-hot, title words weighted by inverse document frequency, decade one-hot."""
    rows = len(movies)

    def one_hot(labels: list[list]) -> sp.csr_matrix:
        vocab = {label: i for i, label in enumerate(sorted({x for row in labels for x in row}))}
        cells = [(r, vocab[x]) for r, row in enumerate(labels) for x in set(row)]
        r, c = (np.array(v, dtype=np.int64) for v in zip(*cells, strict=True)) if cells else ([], [])
        return sp.csr_matrix((np.ones(len(cells), dtype=np.float32), (r, c)), shape=(rows, max(len(vocab), 1)))

    genres = one_hot([[g for g in gs if g != NO_GENRES] for gs in movies["genres"]])
    words = one_hot([title_words(t) for t in movies["title"]])
    document_frequency = np.asarray((words > 0).sum(axis=0)).ravel()
    words = words @ sp.diags(inverse_document_frequency(document_frequency, rows).astype(np.float32))
    years = movies["year"].astype("Int64")
    decades = one_hot([[] if pd.isna(y) else [int(y) // 10] for y in years])
    return [genres.tocsr(), words.tocsr(), decades]


def _normalised_rows(matrix: sp.csr_matrix) -> sp.csr_matrix:
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
    return sp.diags(1.0 / np.where(norms > 0, norms, 1.0)) @ matrix


class PopularNew:
    """Popularity among the new movies: how many ratings each had before the event.

    With ``revealed=k`` only the revealed interactions count (``popular-new``: what the other models are
    given; every new movie has ``k`` of them before an event, so it ranks at about chance). With ``None``
    every rating counts, revealed or not (``popular-new-live``: what a live counter knows, more than the
    other models are given).
    """

    query_rule = None

    def __init__(self, split: ColdStartSplit, revealed: int | None) -> None:
        self.name = "popular-new" if revealed is not None else "popular-new-live"
        counted = split.position >= 0
        if revealed is not None:
            counted &= split.position < revealed
        inter = split.prep.interactions
        column = np.searchsorted(split.new_movies, inter["movie_idx"].to_numpy()[counted])
        times = inter["timestamp"].to_numpy()[counted]
        order = np.lexsort((times, column))
        self.column, self.times = column[order], times[order]
        self.n_new = len(split.new_movies)

    def counts(self, event_times: np.ndarray) -> torch.Tensor:
        """(E, new movies) ratings of each new movie strictly before each event time."""
        out = np.zeros((len(event_times), self.n_new), dtype=np.float32)
        bounds = np.searchsorted(self.column, np.arange(self.n_new + 1))
        for c in np.flatnonzero(np.diff(bounds)):
            out[:, c] = np.searchsorted(self.times[bounds[c] : bounds[c + 1]], event_times, side="left")
        return torch.from_numpy(out)
