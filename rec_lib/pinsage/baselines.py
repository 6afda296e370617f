"""Baselines on the same split and protocols: most-popular, item-kNN (cosine) and EASE.

Each is a :class:`rec_lib.pinsage.evaluation.MovieScorer` fitted on the training interactions only, and
uses protocol B's fixed query rule; at test time its query history includes the validation movie.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from rec_lib.data.preprocess import Preprocessed
from rec_lib.pinsage.config import EASE_L2


def training_matrix(prep: Preprocessed) -> sp.csr_matrix:
    """Binary users × movies matrix of the training interactions."""
    train = prep.split("train")
    values = np.ones(len(train), dtype=np.float32)
    return sp.csr_matrix((values, (train["user_idx"], train["movie_idx"])), shape=(prep.n_users, prep.n_movies))


class MostPopular:
    """Every user gets the movies with the most training interactions."""

    name = "most-popular"
    query_rule = None

    def __init__(self, prep: Preprocessed) -> None:
        counts = np.asarray(training_matrix(prep).sum(axis=0)).ravel()
        self.popularity = torch.from_numpy(counts.astype(np.float32))

    def score(self, movies: torch.Tensor, weights: torch.Tensor, split: str = "val") -> torch.Tensor:
        return self.popularity.expand(movies.shape[0], -1).clone()


class ItemKNN:
    """Cosine similarity between movie columns of the interaction matrix, over all neighbours.

    ``s(j, i) = x_j · x_i / (|x_j| |x_i|)``, computed per query batch as a sparse product, so the
    movies × movies matrix is never materialised.
    """

    name = "item-knn"
    query_rule = None

    def __init__(self, prep: Preprocessed) -> None:
        matrix = training_matrix(prep)
        norms = np.sqrt(np.asarray(matrix.sum(axis=0)).ravel())
        normalised = matrix @ sp.diags(1.0 / np.maximum(norms, 1e-12))
        self._columns = normalised.T.tocsr().astype(np.float32)
        self._matrix = normalised.tocsr().astype(np.float32)

    def score(self, movies: torch.Tensor, weights: torch.Tensor, split: str = "val") -> torch.Tensor:
        batch = movies.shape[0]
        query = sp.csr_matrix(
            (weights.numpy().ravel(), (np.repeat(np.arange(batch), movies.shape[1]), movies.numpy().ravel())),
            shape=(batch, self._columns.shape[0]),
        )
        users = query @ self._columns
        return torch.from_numpy(np.asarray((users @ self._matrix).todense(), dtype=np.float32))


class EASE:
    """Embarrassingly Shallow Autoencoder (Steck 2019): ``B = I - P / diag(P)``, ``P = (XᵀX + λI)⁻¹``."""

    def __init__(self, prep: Preprocessed, l2: float = EASE_L2) -> None:
        self.name = "ease"
        self.query_rule = None
        self.l2 = l2
        matrix = training_matrix(prep)
        gram = torch.from_numpy((matrix.T @ matrix).toarray()).float()
        gram.diagonal().add_(l2)
        inverse = torch.cholesky_inverse(torch.linalg.cholesky(gram))
        weights = -inverse / inverse.diagonal()
        weights.diagonal().zero_()
        self.weights = weights.float()

    def score(self, movies: torch.Tensor, weights: torch.Tensor, split: str = "val") -> torch.Tensor:
        return torch.einsum("bh,bhn->bn", weights, self.weights[movies])
