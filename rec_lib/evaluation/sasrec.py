"""SASRec (Kang & McAuley, ICDM 2018), the field's standard sequential recommender, as a baseline.

Causal self-attention over a user's latest ``max_len`` movies (learned positions, pre-norm blocks), trained with
cross-entropy over every movie at every position (the full-softmax variant that beats BERT4Rec on ml-1m:
Klenitskiy & Vasilev, RecSys 2023). Small datasets give one window per user too few steps an epoch, so each epoch
draws ``windows_per_user`` random windows from every user's training sequence. Training stops early on
validation HR@K under the timeline protocol, on the same split and the same evaluation as every other model.
It scores through the :class:`~rec_lib.evaluation.protocol.MovieScorer` interface: the history it is handed
(latest first) is its input sequence, every position present.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from rec_lib.contracts import QueryRule
from rec_lib.data.preprocess import Preprocessed
from rec_lib.evaluation.config import EvalConfig, SASRecConfig
from rec_lib.evaluation.protocol import Queries, build_queries, evaluate


class SASRecModel(nn.Module):
    """Movie ``i`` is token ``i + 1``; token 0 pads sequences on the left."""

    def __init__(self, n_movies: int, config: SASRecConfig) -> None:
        super().__init__()
        d = config.hidden_dims
        self.n_movies = n_movies
        self.items = nn.Embedding(n_movies + 1, d, padding_idx=0)
        self.positions = nn.Embedding(config.max_len, d)
        self.dropout = nn.Dropout(config.dropout)
        layer = nn.TransformerEncoderLayer(
            d, config.heads, dim_feedforward=d, dropout=config.dropout, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, config.blocks, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)
        nn.init.normal_(self.items.weight, std=d**-0.5)
        with torch.no_grad():
            self.items.weight[0].zero_()

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, L) tokens, left-padded → (B, L, d) states; state ``t`` has seen tokens up to ``t``."""
        length = tokens.shape[1]
        present = (tokens > 0).unsqueeze(-1)
        x = self.items(tokens) * math.sqrt(self.items.embedding_dim) + self.positions.weight[-length:]
        x = self.dropout(x) * present
        causal = nn.Transformer.generate_square_subsequent_mask(length, device=tokens.device)
        return self.norm(self.encoder(x, mask=causal, is_causal=True)) * present

    def logits(self, states: torch.Tensor) -> torch.Tensor:
        """Scores of every movie (tied to the input embeddings): ``(..., d) → (..., n_movies)``."""
        return states @ self.items.weight[1:].T


@dataclass
class SASRecResult:
    config: SASRecConfig
    best_epoch: int = -1
    best_val_hr: float = -1.0
    val_hr_by_epoch: list[float] = field(default_factory=list)
    seconds: float = 0.0
    model: SASRecModel | None = None


class SASRecScorer:
    """A trained SASRec as a :class:`~rec_lib.evaluation.protocol.MovieScorer`: the history (latest first, present
    where its weight is positive) is the input sequence; the last state scores every movie."""

    def __init__(self, model: SASRecModel, max_len: int, name: str = "sasrec") -> None:
        self.name = name
        self.model = model.eval()
        self.max_len = max_len
        self.query_rule = QueryRule((1.0,) * max_len)
        self.device = next(model.parameters()).device

    @torch.no_grad()
    def score(self, movies: torch.Tensor, weights: torch.Tensor, split: str = "val") -> torch.Tensor:
        present = weights[:, : self.max_len] > 0
        tokens = torch.where(present, movies[:, : self.max_len] + 1, 0).flip(1)  # oldest first, latest at the end
        states = self.model(tokens.to(self.device))
        return self.model.logits(states[:, -1])


def user_sequences(prep: Preprocessed) -> tuple[torch.Tensor, torch.Tensor]:
    """Every user's training movies in time order, flattened: (movies, start offset of each user's run)."""
    train = prep.split("train", ["user_idx", "movie_idx"])
    users = train["user_idx"].to_numpy()
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    return torch.tensor(train["movie_idx"].to_numpy()), torch.tensor(np.r_[starts, len(users)])


def draw_windows(
    movies: torch.Tensor, bounds: torch.Tensor, per_user: int, max_len: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """``per_user`` random windows of every user with two or more movies: (inputs, next-movie targets), each
    (W, max_len), left-padded with 0 (inputs are tokens, targets movie indices or -1)."""
    start, stop = bounds[:-1], bounds[1:]
    usable = (stop - start) >= 2
    start, stop = start[usable].repeat_interleave(per_user), stop[usable].repeat_interleave(per_user)
    # the window's last target: any position after the user's first movie
    end = start + 1 + (torch.rand(start.shape, generator=generator) * (stop - start - 1)).long()
    offsets = torch.arange(-max_len, 0)
    target_at = end[:, None] + 1 + offsets  # positions end-max_len+1 .. end
    input_at = target_at - 1
    valid = input_at >= start[:, None]
    inputs = torch.where(valid, movies[input_at.clamp(min=0)] + 1, 0)
    targets = torch.where(valid, movies[target_at.clamp(min=0, max=len(movies) - 1)], -1)
    return inputs, targets


def train_sasrec(
    prep: Preprocessed,
    config: SASRecConfig,
    *,
    queries: Queries | None = None,
    callbacks: list[Callable[[int, float, float], None]] | None = None,
    progress: bool = True,
) -> SASRecResult:
    """Train on ``prep``'s training split; keep the epoch with the best validation HR@K (protocol B)."""
    config.validate()
    torch.manual_seed(config.seed)
    auto = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(auto if config.device == "auto" else config.device)
    generator = torch.Generator().manual_seed(config.seed)
    movies, bounds = user_sequences(prep)
    model = SASRecModel(prep.n_movies, config).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    eval_config = EvalConfig(k=config.eval_k, history_len=config.max_len)
    val_queries = (queries or build_queries(prep, config.max_len)).sample(config.val_users, config.seed)
    result = SASRecResult(config)
    best_state, stale, started = None, 0, time.perf_counter()
    epochs = tqdm(range(config.num_epochs), desc="SASRec", unit="epoch", disable=not progress, leave=False)
    for epoch in epochs:
        model.train()
        inputs, targets = draw_windows(movies, bounds, config.windows_per_user, config.max_len, generator)
        order = torch.randperm(len(inputs), generator=generator)
        total = 0.0
        for first in range(0, len(order), config.batch_size):
            batch = order[first : first + config.batch_size]
            states = model(inputs[batch].to(device))
            wanted = targets[batch].to(device)
            kept = wanted >= 0
            loss = F.cross_entropy(model.logits(states[kept]), wanted[kept])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
        scorer = SASRecScorer(model, config.max_len)
        hr = evaluate(scorer, val_queries, "B", prep.n_movies, eval_config, splits=("val",))["val"].hr
        result.val_hr_by_epoch.append(hr)
        epochs.set_postfix(loss=f"{total / len(order):.3f}", val_hr=f"{hr:.4f}", refresh=False)
        for callback in callbacks or []:
            callback(epoch, total / len(order), hr)
        if hr > result.best_val_hr:
            result.best_val_hr, result.best_epoch, stale = hr, epoch, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            stale += 1
            if stale >= config.patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    result.model = model.eval()
    result.seconds = time.perf_counter() - started
    return result
