"""The learned set rule: fitted in torch, served in numpy, order-free, and better than the fixed rule where the
fixed rule's assumptions are wrong."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from rec_lib.contracts import (
    Embeddings,
    FittedSetRule,
    QueryRule,
    SetRule,
    load_embeddings,
    save_embeddings,
    set_rows,
)
from rec_lib.errors import ConfigError, RecLibError
from rec_lib.pinsage.set_rule import SetRuleFitConfig, SetRuleModel, fit_set_rule

pytestmark = pytest.mark.unit


def planted(seed: int = 0, n_movies: int = 120, dim: int = 8, n_users: int = 300):
    """Movies 0-29 are what everyone likes, but their per-movie bias is the lowest and only the last vector
    dimension (scaled down) tells them apart: the fixed rule, trusting the bias, ranks them last."""
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(n_movies, dim)).astype(np.float32) * 0.3
    liked_pool = np.arange(30)
    vectors[:, -1] = 0.0
    vectors[liked_pool, -1] = 0.2
    bias = np.zeros(n_movies, dtype=np.float32)
    bias[liked_pool] = -2.0
    liked = [rng.choice(liked_pool, size=int(rng.integers(4, 15)), replace=False) for _ in range(n_users)]
    return vectors, bias, liked


def liked_share_of_top_10(
    rule: SetRule | FittedSetRule, vectors: np.ndarray, bias: np.ndarray, liked: list[np.ndarray]
) -> float:
    """The share of the top 10 for three ticks that are movies everyone likes."""
    fitted = rule if isinstance(rule, FittedSetRule) else FittedSetRule(rule)
    stored = np.concatenate([vectors, bias[:, None]], 1)
    pooled = fitted.pooled_rows(stored)
    found = []
    for movies in liked:
        scores = stored @ fitted.rule.query(pooled[movies[:3]])[0]
        scores[movies[:3]] = -np.inf
        found.append(np.mean(np.argsort(-scores)[:10] < 30))
    return float(np.mean(found))


@pytest.mark.parametrize("transform", [False, True], ids=["per-dimension weights", "full transform"])
def test_the_fitted_rule_learns_what_the_fixed_rule_gets_wrong(transform: bool) -> None:
    vectors, bias, liked = planted()
    config = SetRuleFitConfig(batch_size=64, max_steps=400, check_every=25, seed=0, transform=transform)
    fitted = fit_set_rule(vectors, bias, liked[:200], config)
    learned, held_out = fitted.rule, liked[200:]
    assert learned.learned and len(learned.prior_vector) == vectors.shape[1]
    assert len(learned.dim_weights) == (0 if transform else vectors.shape[1]) and learned.transformed == transform
    assert liked_share_of_top_10(SetRule(), vectors, bias, held_out) < 0.1, "the fixed rule trusts the bias"
    assert liked_share_of_top_10(fitted, vectors, bias, held_out) > 0.9, "the learned rule finds the liked movies"
    assert learned.bias_weight < 0.5, "it learned to discount the bias"
    again = fit_set_rule(vectors, bias, liked[:200], config)
    assert again.rule == learned, "the same seed fits the same rule"
    if transform:
        np.testing.assert_array_equal(again.transform, fitted.transform)


@pytest.mark.parametrize("transform", [False, True], ids=["per-dimension weights", "full transform"])
def test_the_served_query_is_the_fitted_models_to_1e5_in_any_order(transform: bool) -> None:
    vectors, bias, _ = planted(seed=1)
    config = SetRuleFitConfig(batch_size=32, max_steps=60, check_every=20, seed=3, transform=transform)
    model = SetRuleModel(vectors.shape[1], config)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.3)
    fitted = model.fitted()
    rule, stored = fitted.rule, np.concatenate([vectors, bias[:, None]], 1)
    pooled = set_rows(stored, vectors @ fitted.transform) if transform else stored
    np.testing.assert_array_equal(fitted.pooled_rows(stored), pooled.astype(np.float32))
    rng = np.random.default_rng(0)
    ticks = np.stack([rng.choice(len(stored), size=6, replace=False) for _ in range(20)])
    present = (np.arange(6)[None, :] < rng.integers(1, 7, size=(20, 1))).astype(np.float32)
    with torch.no_grad():
        trained = model.queries(torch.from_numpy(stored[ticks]), torch.from_numpy(present)).numpy()
    np.testing.assert_allclose(rule.queries(pooled[ticks], present), trained, atol=1e-5, rtol=1e-5)
    for row in range(20):
        picked = ticks[row][present[row] > 0]
        for order in (picked, picked[::-1], rng.permutation(picked)):
            np.testing.assert_allclose(rule.query(pooled[order])[0], trained[row], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("transform", [False, True], ids=["per-dimension weights", "full transform"])
def test_a_learned_rule_travels_in_the_export_and_as_json_exactly(tmp_path, transform: bool) -> None:
    vectors, bias, liked = planted(seed=2)
    config = SetRuleFitConfig(batch_size=32, max_steps=50, check_every=25, transform=transform)
    fitted = fit_set_rule(vectors, bias, liked, config)
    assert SetRule.from_dict(json.loads(json.dumps(fitted.rule.as_dict()))) == fitted.rule
    assert SetRule.from_dict({"prior_ticks": 3.0}) == SetRule(3.0), "a rule published before learned rules"
    ids = np.arange(1, len(vectors) + 1)
    embeddings = Embeddings(
        ids, vectors, bias, QueryRule.latest(), "f", {}, set_rule=fitted.rule, set_transform=fitted.transform
    )
    save_embeddings(embeddings, tmp_path)
    loaded = load_embeddings(tmp_path)
    assert loaded.set_rule == fitted.rule
    if transform:
        np.testing.assert_array_equal(loaded.set_transform, fitted.transform)
        np.testing.assert_array_equal(loaded.set_vectors(), vectors @ fitted.transform)
    else:
        assert loaded.set_transform is None and loaded.set_vectors() is None


def test_the_ablations_fit_only_the_parts_switched_on() -> None:
    vectors, bias, liked = planted(seed=3)
    config = SetRuleFitConfig(batch_size=32, max_steps=50, check_every=25, dim_weights=False, prior_vector=False)
    rule = fit_set_rule(vectors, bias, liked, config).rule
    assert rule.dim_weights == () and rule.prior_vector == ()
    assert fit_set_rule(vectors, bias, liked, replace(config, prior_vector=True)).rule.prior_vector != ()


def test_a_rule_that_does_not_fit_the_vectors_is_refused() -> None:
    vectors, bias, _ = planted()
    with pytest.raises(RecLibError, match="no user has two liked movies"):
        fit_set_rule(vectors, bias, [])
    with pytest.raises(ConfigError, match="dim_weights has 3 values for 2-d vectors"):
        SetRule(dim_weights=(1.0, 1.0, 1.0)).query(np.ones((2, 3), dtype=np.float32))
    with pytest.raises(ConfigError, match="must be as long as each other"):
        SetRule(dim_weights=(1.0,), prior_vector=(1.0, 2.0))
    with pytest.raises(ConfigError, match="positive gain"):
        SetRule(gain=0.0)
    with pytest.raises(ConfigError, match="prior_vector must be finite"):
        SetRule(prior_vector=(float("nan"),))
    with pytest.raises(ConfigError, match="in place of dim_weights"):
        SetRule(dim_weights=(1.0,), transformed=True)
    with pytest.raises(ConfigError, match="exactly when its rule is transformed"):
        FittedSetRule(SetRule(transformed=True))
    ids = np.arange(1, len(vectors) + 1)
    with pytest.raises(RecLibError, match="exactly when its set rule is transformed"):
        Embeddings(ids, vectors, bias, QueryRule.latest(), "f", {}, set_rule=SetRule(transformed=True)).validate()
    with pytest.raises(RecLibError, match="finite 8 × 8 matrix"):
        Embeddings(
            ids, vectors, bias, QueryRule.latest(), "f", {}, set_rule=SetRule(transformed=True),
            set_transform=np.eye(7, dtype=np.float32),
        ).validate()  # fmt: skip
