"""The PinSage model: input projection + SAGE layers + a residual, scored by dot product plus bias."""

from __future__ import annotations

import torch
from torch import nn

from rec_lib.pinsage.graph import MovieFeatures
from rec_lib.pinsage.layers import MovieInputProjector, SAGENet
from rec_lib.pinsage.sampler import Block


class PinSageModel(nn.Module):
    """Movie representations from sampled neighbourhoods, trained with a max-margin loss.

    ``score(a, b) = h_a · h_b + bias_a + bias_b``, and the loss is ``max(0, 1 + score(h, neg) - score(h, pos))``.
    """

    def __init__(
        self, features: MovieFeatures, n_movies: int, hidden_dims: int, num_layers: int, dropout: float = 0.5
    ) -> None:
        super().__init__()
        self.projector = MovieInputProjector(features, n_movies, hidden_dims)
        self.sage = SAGENet(hidden_dims, num_layers, dropout)
        self.bias = nn.Parameter(torch.zeros(n_movies))

    def representation(self, blocks: list[Block]) -> torch.Tensor:
        """Vectors of the output nodes of ``blocks``: their own input vector plus the SAGE output."""
        h_input = self.projector(blocks[0].src_nodes)
        return self.projector(blocks[-1].dst_nodes) + self.sage(blocks, h_input)

    def pair_scores(self, h: torch.Tensor, nodes: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Scores of pairs (a, b) given as positions into ``h`` whose global ids are ``nodes``."""
        return (h[a] * h[b]).sum(1) + self.bias[nodes[a]] + self.bias[nodes[b]]

    def forward(
        self,
        blocks: list[Block],
        heads: torch.Tensor,
        positives: torch.Tensor,
        negatives: torch.Tensor,
        *,
        shared_negatives: bool = False,
    ) -> torch.Tensor:
        """Mean max-margin loss of a batch.

        With ``shared_negatives`` every head is scored against every negative of the batch (the PinSage
        paper shares one set of negatives per minibatch), else against its own negative only.
        """
        h = self.representation(blocks)
        nodes = blocks[-1].dst_nodes
        positive = self.pair_scores(h, nodes, heads, positives)
        if shared_negatives:
            negative = h[heads] @ h[negatives].T + self.bias[nodes[heads]][:, None] + self.bias[nodes[negatives]]
            return (negative - positive[:, None] + 1.0).clamp(min=0.0).mean()
        negative = self.pair_scores(h, nodes, heads, negatives)
        return (negative - positive + 1.0).clamp(min=0.0).mean()
