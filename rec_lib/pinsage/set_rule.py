"""The learned set rule: :class:`~rec_lib.contracts.SetRule`'s gain, prior, bias weight, per-dimension weights (or a
full transform) and prior direction fitted to how training users' liked movies go together, over frozen PinSage
vectors.

A training example is one user: ``m`` of their liked movies (``m`` drawn from 1 to ``max_ticks``, the movies drawn
without replacement, so in no order) are the ticks, and all their other liked movies are the targets. The rule
turns the ticks into one query; every movie is scored by its inner product with ``[h_i, b_i]``, the ticks masked,
and the loss is the multinomial log-likelihood of the targets under the softmax over the catalogue (Mult-VAE's,
Liang et al., WWW 2018), averaged over targets. The rule starts as the fixed rule and stops when the loss on a
share of the users kept out of fitting has not improved for ``patience`` checks; it is then exactly a
:class:`~rec_lib.contracts.FittedSetRule`, so serving pools a set with numpy alone (a transform through each movie's
transformed vector, stored beside its vector).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from rec_lib.contracts import SET_PRIOR_TICKS, FittedSetRule, SetRule
from rec_lib.data.preprocess import Preprocessed
from rec_lib.errors import RecLibError
from rec_lib.evaluation.likedset import LIKED_RATING
from rec_lib.progress import progress


@dataclass(frozen=True)
class SetRuleFitConfig:
    """How the set rule is fitted; ``dim_weights``, ``transform`` and ``prior_vector`` switch those parts on."""

    max_ticks: int = 10
    batch_size: int = 256
    lr: float = 0.01
    max_steps: int = 2000
    check_every: int = 50
    patience: int = 3
    check_share: float = 0.1
    """Share of the users kept out of fitting, whose loss decides when to stop."""
    check_batches: int = 4
    dim_weights: bool = True
    transform: bool = False
    """A full d × d transform of the pooled ticks (from the identity) in place of the per-dimension weights."""
    prior_vector: bool = True
    seed: int = 0


def liked_lists(prep: Preprocessed, min_rating: float = LIKED_RATING) -> list[np.ndarray]:
    """Each user's movies rated at least ``min_rating`` (users with at least two, so a tick leaves a target)."""
    inter = prep.interactions
    liked = inter[inter["rating"].to_numpy() >= min_rating]
    grouped = liked.groupby("user_idx", sort=True)["movie_idx"]
    return [movies.to_numpy() for _, movies in grouped if len(movies) >= 2]


class SetRuleModel(torch.nn.Module):
    """:class:`SetRule`'s query in torch, with its parameters on a scale Adam can move."""

    def __init__(self, dim: int, config: SetRuleFitConfig) -> None:
        super().__init__()
        self.log_gain = torch.nn.Parameter(torch.zeros(()))
        self.log_prior_ticks = torch.nn.Parameter(torch.tensor(float(np.log(SET_PRIOR_TICKS))))
        self.log_bias_weight = torch.nn.Parameter(torch.zeros(()))
        self.dim_weights = torch.nn.Parameter(torch.ones(dim)) if config.dim_weights and not config.transform else None
        self.transform = torch.nn.Parameter(torch.eye(dim)) if config.transform else None
        self.prior_vector = torch.nn.Parameter(torch.zeros(dim)) if config.prior_vector else None

    def queries(self, ticked: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """(B, d + 1) queries for (B, m, d + 1) stored rows of the ticks, ``present`` (B, m) marking real ones."""
        ticks = present.sum(1, keepdim=True)
        weights = torch.exp(self.log_gain) * present / (ticks + torch.exp(self.log_prior_ticks))
        pooled = self.mix((weights.unsqueeze(-1) * ticked[:, :, :-1]).sum(1))
        if self.prior_vector is not None:
            pooled = pooled + self.prior_vector
        return torch.cat([pooled, torch.exp(self.log_bias_weight).expand(len(pooled), 1)], 1)

    def mix(self, pooled: torch.Tensor) -> torch.Tensor:
        """The (B, d) pooled ticks transformed or weighed per dimension (as they are with neither)."""
        if self.transform is not None:
            return pooled @ self.transform
        return pooled if self.dim_weights is None else pooled * self.dim_weights

    @torch.no_grad()
    def fitted(self) -> FittedSetRule:
        """The fitted rule, its values float32 as the queries it makes."""

        def values(parameter: torch.Tensor | None) -> tuple[float, ...]:
            return () if parameter is None else tuple(float(v) for v in parameter.float().numpy())

        rule = SetRule(
            prior_ticks=float(torch.exp(self.log_prior_ticks).float()),
            gain=float(torch.exp(self.log_gain).float()),
            bias_weight=float(torch.exp(self.log_bias_weight).float()),
            dim_weights=values(self.dim_weights),
            prior_vector=values(self.prior_vector),
            transformed=self.transform is not None,
        )
        transform = None if self.transform is None else self.transform.detach().float().cpu().numpy().copy()
        return FittedSetRule(rule, transform)


def fit_set_rule(
    vectors: np.ndarray | torch.Tensor,
    bias: np.ndarray | torch.Tensor,
    liked: list[np.ndarray],
    config: SetRuleFitConfig | None = None,
    *,
    show_progress: bool = False,
) -> FittedSetRule:
    """The set rule fitted to ``liked`` (each user's liked movie rows) over the frozen ``vectors`` and ``bias``."""
    config = config or SetRuleFitConfig()
    model = SetRuleModel(np.shape(vectors)[1], config)
    return fit_set_rule_model(model, vectors, bias, liked, config, show_progress=show_progress).fitted()


def fit_set_rule_model(
    model: SetRuleModel,
    vectors: np.ndarray | torch.Tensor,
    bias: np.ndarray | torch.Tensor,
    liked: list[np.ndarray],
    config: SetRuleFitConfig,
    *,
    show_progress: bool = False,
) -> SetRuleModel:
    """``model`` (a fresh :class:`SetRuleModel`, or a variant of its query) fitted as :func:`fit_set_rule` does,
    left at its best check."""
    if not liked:
        raise RecLibError(
            f"no user has two liked movies (rated at least {LIKED_RATING:g}: a tick and a target) to fit the set "
            "rule on"
        )
    stored = torch.cat([torch.as_tensor(vectors).float(), torch.as_tensor(bias).float()[:, None]], 1)
    rng = np.random.default_rng(config.seed)
    torch.manual_seed(config.seed)
    order = rng.permutation(len(liked))
    kept = max(1, round(config.check_share * len(liked)))
    checking = [liked[i] for i in order[:kept]]
    fitting = [liked[i] for i in order[kept:]] or checking
    check_rng = np.random.default_rng([config.seed, 1])
    check_batches = [_examples(checking, stored.shape[0], config, check_rng) for _ in range(config.check_batches)]
    optimiser = torch.optim.Adam(model.parameters(), lr=config.lr)
    best, best_state, waited = float("inf"), {k: v.clone() for k, v in model.state_dict().items()}, 0
    for step in progress(range(config.max_steps), show_progress, desc="set rule", unit="step"):
        loss = _loss(model, stored, *_examples(fitting, stored.shape[0], config, rng))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if (step + 1) % config.check_every:
            continue
        with torch.no_grad():
            checked = float(np.mean([_loss(model, stored, *batch).item() for batch in check_batches]))
        if checked < best:
            best, best_state, waited = checked, {k: v.clone() for k, v in model.state_dict().items()}, 0
        else:
            waited += 1
            if waited >= config.patience:
                break
    model.load_state_dict(best_state)
    return model


def _examples(
    users: list[np.ndarray], n_movies: int, config: SetRuleFitConfig, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A batch of users' ticks (B, max_ticks), which are present, and their other liked movies as (B, n) targets."""
    ticks = np.zeros((config.batch_size, config.max_ticks), dtype=np.int64)
    present = np.zeros((config.batch_size, config.max_ticks), dtype=np.float32)
    targets = torch.zeros(config.batch_size, n_movies)
    for row, user in enumerate(rng.integers(len(users), size=config.batch_size)):
        movies = rng.permutation(users[user])
        m = int(rng.integers(1, min(config.max_ticks, len(movies) - 1) + 1))
        ticks[row, :m], present[row, :m] = movies[:m], 1.0
        targets[row, torch.from_numpy(movies[m:])] = 1.0
    return torch.from_numpy(ticks), torch.from_numpy(present), targets


def _loss(
    model: SetRuleModel, stored: torch.Tensor, ticks: torch.Tensor, present: torch.Tensor, targets: torch.Tensor
) -> torch.Tensor:
    """The targets' mean negative log-likelihood under the softmax over every movie but the ticks."""
    scores = model.queries(stored[ticks], present) @ stored.T
    masked = torch.zeros_like(scores, dtype=torch.bool).scatter_(1, ticks, present.bool())
    log_p = torch.log_softmax(scores.masked_fill(masked, float("-inf")), 1)
    return -((log_p.masked_fill(masked, 0.0) * targets).sum(1) / targets.sum(1)).mean()
