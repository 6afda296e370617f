"""The PinSage model: input projection + SAGE layers + a residual, scored by dot product plus bias.

A movie's vector is ``h = x + SAGE(neighbourhood)``; with a ``temperature`` (the softmax loss) it is
L2-normalised and scaled by ``1/sqrt(temperature)``, so a dot product is a cosine over the temperature.
The score of a candidate ``i`` for a query ``q`` is ``q · h_i + b_i``. With a ``content_weight`` the vectors
that evaluation and serving score with (:meth:`PinSageModel.scoring_vectors`) also carry each movie's fixed
content vector (genres, title words, decade), which adds that weight times the content cosine to the score:
a late fusion with the content model, which is what ranks a movie nobody has rated yet among its peers.
Movies without a training interaction share one "unseen" id embedding and bias (:class:`MovieIds`),
learned from the catalogue's movies that have no training interaction (uniform negatives draw them) and,
when set, from id dropout; so the model gives a vector to a movie it never saw from its features and
whatever neighbourhood it has. A query from several movies is their weighted mean under the model's
:class:`~rec_lib.contracts.QueryRule`: recency weights over the latest ``history_len`` movies,
fixed (``0.9 ** age``) or learned with the rest of the model, and, with ``attention_dims``, weights that depend on
the movies too (:class:`~rec_lib.contracts.HistoryAttention`: the latest movie attends over the history), learned
with the model from a start where they are all zero, so training begins at the recency rule.
"""

from __future__ import annotations

import math
from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import nn

from rec_lib.contracts import HistoryAttention, QueryRule
from rec_lib.pinsage.config import TrainConfig
from rec_lib.pinsage.graph import MovieFeatures, UserMovieGraph
from rec_lib.pinsage.layers import MovieIds, MovieInputProjector, SAGENet
from rec_lib.pinsage.sampler import Block, SequenceBatch


class PinSageModel(nn.Module):
    """Movie representations from sampled neighbourhoods, a per-movie bias and a query rule."""

    def __init__(
        self,
        features: MovieFeatures,
        known: torch.Tensor,
        hidden_dims: int,
        num_layers: int,
        dropout: float = 0.5,
        *,
        temperature: float | None = None,
        use_bias: bool = True,
        query_rule: QueryRule | None = None,
        learn_query: bool = False,
        id_dropout: float = 0.0,
        drop_neighbourhood: bool = True,
        new_movie_loss: float = 0.0,
        content_weight: float = 0.0,
        attention_dims: int = 0,
    ) -> None:
        super().__init__()
        self.drop_neighbourhood = drop_neighbourhood
        self.new_movie_loss = new_movie_loss
        self.content_weight = content_weight
        self.register_buffer("content", features.content.float(), persistent=False)
        self.projector = MovieInputProjector(features, MovieIds(known, features.n_movies, id_dropout), hidden_dims)
        self.sage = SAGENet(hidden_dims, num_layers, dropout)
        self.scale = None if temperature is None else 1.0 / math.sqrt(temperature)
        if use_bias:
            self.bias = nn.Parameter(torch.zeros(self.ids.n_rows))
        else:
            self.register_buffer("bias", torch.zeros(self.ids.n_rows))
        rule = query_rule or QueryRule.latest()
        logits = torch.log(torch.tensor(rule.position_weights, dtype=torch.float32))
        if learn_query:
            self.position_logits = nn.Parameter(logits)
        else:
            self.register_buffer("position_logits", logits)
        self.attention = HistoryAttentionLayer(hidden_dims, attention_dims) if attention_dims else None

    def representation(self, blocks: list[Block]) -> torch.Tensor:
        """Vectors of the output nodes of ``blocks``: their own input vector plus the SAGE output.

        While training, this draws the step's dropped movies (:meth:`MovieIds.resample`); with
        ``drop_neighbourhood`` a dropped movie also reads no neighbours, as a movie with no interactions does
        when it is scored, so the step trains exactly what a brand-new movie gets: its features and the
        unseen id.
        """
        if self.training and self.ids.dropout > 0.0:
            self.ids.resample()
            if self.drop_neighbourhood:
                blocks = [_without_neighbours(block, self.ids.is_dropped(block.dst_nodes)) for block in blocks]
        h_input = self.projector(blocks[0].src_nodes)
        z = self.projector(blocks[-1].dst_nodes) + self.sage(blocks, h_input)
        return z if self.scale is None else F.normalize(z, dim=1) * self.scale

    def scoring_vectors(self, blocks: list[Block]) -> torch.Tensor:
        """What evaluation, export and serving score the output nodes of ``blocks`` with:
        ``[h, sqrt(content_weight) * c]``, the representation and the fixed content vector, so that
        ``q · v_i = q_h · h_i + content_weight * q_c · c_i`` for a query pooled from such vectors.
        Without a content weight it is the representation alone; training scores ``h`` alone either way.
        """
        h = self.representation(blocks)
        if self.content_weight == 0.0:
            return h
        content = self.content[blocks[-1].dst_nodes] * math.sqrt(self.content_weight)
        return torch.cat([h, content.to(h.dtype)], dim=1)

    def brand_new_representation(self, movies: torch.Tensor) -> torch.Tensor:
        """Vectors of ``movies`` as if nobody had rated them: the unseen id and no neighbours at any layer,
        what a movie added with no interactions gets when it is scored."""
        unseen = torch.full_like(movies, self.ids.unseen)
        projected = self.projector.project(movies, self.projector.id_embedding(unseen))
        alone = Block(
            src_nodes=movies,
            dst_index=torch.arange(movies.numel(), device=movies.device),
            neighbour_index=torch.zeros(movies.numel(), 1, dtype=torch.int64, device=movies.device),
            weights=torch.zeros(movies.numel(), 1, device=movies.device),
        )
        z = projected + self.sage([alone] * len(self.sage.convs), projected)
        return z if self.scale is None else F.normalize(z, dim=1) * self.scale

    @property
    def ids(self) -> MovieIds:
        return self.projector.ids

    def movie_bias(self, movies: torch.Tensor) -> torch.Tensor:
        """The bias of each movie node: its own, or the shared unseen one (see :class:`MovieIds`)."""
        return self.bias[self.ids(movies)]

    def biases(self) -> torch.Tensor:
        """(n_movies,) every movie node's bias as evaluation and serving use it, on the CPU."""
        with torch.no_grad():
            return self.bias[self.ids.rows].detach().cpu().clone()

    def query_rule(self) -> QueryRule:
        """The recency weights (and the attention, if any) as a plain rule, for evaluation and ``recommend()``."""
        attention = None if self.attention is None else self.attention.exported()
        return QueryRule(tuple(torch.softmax(self.position_logits.detach().cpu(), 0).tolist()), attention)

    def pool(self, history: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Queries ``Σ w_j h_j`` from (B, H, d) history vectors (latest first), weights softmaxed over present
        positions."""
        length = history.shape[1]
        logits = self.position_logits[:length].expand_as(mask)
        if self.attention is not None:
            logits = logits + self.attention(history)
        weights = torch.softmax(logits.masked_fill(mask == 0, -math.inf), dim=1).nan_to_num(0.0)
        return (weights.unsqueeze(-1) * history).sum(1)

    def pair_scores(self, h: torch.Tensor, nodes: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Scores of pairs (a, b) given as positions into ``h`` whose global ids are ``nodes``."""
        return (h[a] * h[b]).sum(1) + self.movie_bias(nodes[a]) + self.movie_bias(nodes[b])

    def forward(
        self,
        blocks: list[Block],
        heads: torch.Tensor,
        positives: torch.Tensor,
        negatives: torch.Tensor,
        *,
        shared_negatives: bool = False,
    ) -> torch.Tensor:
        """Mean max-margin loss of a batch of movie pairs (the ``pairs`` objective).

        ``score(a, b) = h_a · h_b + bias_a + bias_b`` and the loss is ``max(0, 1 + score(h, neg) - score(h, pos))``.
        With ``shared_negatives`` every head is scored against every negative of the batch (the PinSage
        paper shares one set of negatives per minibatch), else against its own negative only.
        """
        h = self.representation(blocks)
        nodes = blocks[-1].dst_nodes
        positive = self.pair_scores(h, nodes, heads, positives)
        if shared_negatives:
            head_bias = self.movie_bias(nodes[heads])[:, None]
            negative = h[heads] @ h[negatives].T + head_bias + self.movie_bias(nodes[negatives])
            return (negative - positive[:, None] + 1.0).clamp(min=0.0).mean()
        negative = self.pair_scores(h, nodes, heads, negatives)
        return (negative - positive + 1.0).clamp(min=0.0).mean()

    def sequence_logits(
        self, batch: SequenceBatch, log_q: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, C) scores of every candidate for every pooled history, history movies masked to -inf, and the pooled
        queries they were scored with.

        ``log_q`` (C,) is subtracted: the log of how often each candidate is drawn (Yi et al., RecSys 2019),
        so popular movies are not pushed down merely for being sampled as negatives more often.
        """
        h = self.representation(batch.blocks)
        query = self.pool(h[batch.history], batch.history_mask)
        logits = self._candidate_logits(batch, query, h[batch.candidates], self.movie_bias(batch.candidate_ids), log_q)
        return logits, query

    @staticmethod
    def _candidate_logits(
        batch: SequenceBatch,
        query: torch.Tensor,
        candidates: torch.Tensor,
        bias: torch.Tensor,
        log_q: torch.Tensor | None,
    ) -> torch.Tensor:
        logits = query @ candidates.T + bias
        if log_q is not None:
            logits = logits - log_q
        return logits.masked_fill(batch.seen_candidates(), -math.inf)

    def brand_new_logits(
        self, batch: SequenceBatch, query: torch.Tensor, log_q: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(B, C) candidate logits with every candidate as a brand-new movie (:meth:`brand_new_representation`)
        for the pooled ``query`` of a real history: the cold-start question, which new movie this user picks."""
        candidates = self.brand_new_representation(batch.candidate_ids)
        return self._candidate_logits(batch, query, candidates, self.bias[self.ids.unseen], log_q)

    def sequence_loss(self, batch: SequenceBatch, loss: str, log_q: torch.Tensor | None = None) -> torch.Tensor:
        """Next-engagement loss of pooled histories: sampled softmax, or max-margin against every candidate.

        With ``new_movie_loss`` > 0 (softmax only) the same softmax over brand-new candidates
        (:meth:`brand_new_logits`) is added with that weight, so the feature path learns to rank movies
        nobody has rated for a real user's history, while every movie keeps its own id in the main term.
        """
        logits, query = self.sequence_logits(batch, log_q)
        if loss == "softmax":
            total = F.cross_entropy(logits, batch.targets)
            if self.new_movie_loss > 0.0:
                cold = self.brand_new_logits(batch, query, log_q)
                total = total + self.new_movie_loss * F.cross_entropy(cold, batch.targets)
            return total
        positive = logits.gather(1, batch.targets[:, None])
        others = torch.ones_like(logits, dtype=torch.bool).scatter(1, batch.targets[:, None], False)
        others &= torch.isfinite(logits)
        hinge = (logits - positive + 1.0).clamp(min=0.0)
        return (hinge * others).sum() / others.sum().clamp(min=1)


class HistoryAttentionLayer(nn.Module):
    """The trainable :class:`~rec_lib.contracts.HistoryAttention`: logits ``u · h_j + (h_0 Q) · (h_j K) / sqrt(r)``.

    ``u`` and ``K`` start at zero (and ``Q`` small and random, so ``K`` gets a gradient): the first step pools by
    recency alone.
    """

    def __init__(self, dims: int, rank: int) -> None:
        super().__init__()
        self.relevance = nn.Parameter(torch.zeros(dims))
        self.query_map = nn.Parameter(torch.randn(dims, rank) / math.sqrt(dims))
        self.key_map = nn.Parameter(torch.zeros(dims, rank))

    def forward(self, history: torch.Tensor) -> torch.Tensor:
        """(B, H) logits for (B, H, d) history vectors, latest first."""
        looked_for = history[:, 0] @ self.query_map
        offered = history @ self.key_map
        scale = 1.0 / math.sqrt(self.query_map.shape[1])
        return history @ self.relevance + torch.einsum("br,bhr->bh", looked_for, offered) * scale

    def exported(self) -> HistoryAttention:
        """The same attention as plain numbers, for evaluation and serving (computed there with numpy)."""

        def rows(matrix: torch.Tensor) -> tuple[tuple[float, ...], ...]:
            return tuple(tuple(row) for row in matrix.detach().cpu().double().tolist())

        return HistoryAttention(
            tuple(self.relevance.detach().cpu().double().tolist()), rows(self.query_map), rows(self.key_map)
        )


def _without_neighbours(block: Block, isolated: torch.Tensor) -> Block:
    """``block`` with the neighbour weights of its ``isolated`` destination nodes set to zero."""
    return replace(block, weights=block.weights.masked_fill(isolated.unsqueeze(1), 0))


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
        attention_dims=config.attention_dims if config.query_encoder == "attention" else 0,
    )
