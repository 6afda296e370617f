"""The scaled scoring paths of item-kNN and EASE against their plain definitions, on the real ml-latest-small."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from rec_lib.evaluation.baselines import EASE, ItemKNN, training_matrix
from rec_lib.evaluation.protocol import build_queries, evaluate_all


class _PerBatchSparseItemKNN:
    """The scoring item-kNN used before the dense/top-k paths (a per-batch sparse product through users), in
    float64 like the similarities of those paths so that exactly tied cosines stay tied: the reference the new
    paths must reproduce."""

    name, query_rule = "item-knn", None

    def __init__(self, prep) -> None:
        import scipy.sparse as sp

        matrix = training_matrix(prep)
        norms = np.sqrt(np.asarray(matrix.sum(axis=0)).ravel())
        normalised = matrix.astype(np.float64) @ sp.diags(1.0 / np.maximum(norms, 1e-12))
        self.columns, self.matrix = normalised.T.tocsr(), normalised.tocsr()

    def score(self, movies: torch.Tensor, weights: torch.Tensor, split: str = "val") -> torch.Tensor:
        import scipy.sparse as sp

        batch = movies.shape[0]
        query = sp.csr_matrix(
            (weights.numpy().ravel(), (np.repeat(np.arange(batch), movies.shape[1]), movies.numpy().ravel())),
            shape=(batch, self.columns.shape[0]),
        )
        return torch.from_numpy(np.asarray(((query @ self.columns) @ self.matrix).todense(), dtype=np.float32))


def test_scaled_scoring_paths_give_the_same_metrics_on_ml_latest_small(real_data_dir, tmp_path) -> None:
    from rec_lib.data.preprocess import run_preprocess

    prep = run_preprocess(data_dir=real_data_dir, artefacts_dir=tmp_path)
    queries = build_queries(prep, 20)

    def table(scorer) -> pd.DataFrame:
        return evaluate_all([scorer], queries, prep.n_movies).drop(columns="model")

    reference = table(_PerBatchSparseItemKNN(prep))
    pd.testing.assert_frame_equal(table(ItemKNN(prep)), reference)
    pd.testing.assert_frame_equal(table(ItemKNN(prep, max_dense_bytes=0, neighbours=prep.n_movies)), reference)
    ease = EASE(prep)

    class GatheredEASE:  # the earlier (batch × history × movies) gather of the same weights
        name, query_rule = "ease", None

        def score(self, movies, weights, split="val"):
            return torch.einsum("bh,bhn->bn", weights, ease.weights[movies])

    pd.testing.assert_frame_equal(table(ease), table(GatheredEASE()))
