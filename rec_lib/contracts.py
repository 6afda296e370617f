"""What training hands to serving, readable by both without torch or a store client: the embeddings file and
the query rule.

The model scores a candidate movie ``i`` for a query movie ``j`` as ``h_j · h_i + b_i``
(:class:`rec_lib.evaluation.protocol.EmbeddingScorer`). A vector database ranks by a plain inner product,
so the stored vector of a movie is ``[h_i, b_i]`` and a query is ``[h_j, 1]``: the inner product is
then exactly the model's score (:func:`store_vectors`, :func:`query_vectors`).

An export lives beside its run: ``<run dir>/embeddings.npz`` (movie ids, vectors, biases) and
``<run dir>/embeddings.json`` (fingerprint, config, counts). :mod:`rec_lib.pinsage.export` writes it.

Several liked movies become one query vector by one rule per way of reading them (:data:`QUERY_MODES`): a
viewer's history by the model's :class:`QueryRule` (carried in the file; protocol B), a person's ticked set by
:class:`SetRule` (the liked-set protocol). Evaluation and ``recommend()`` both use them, so the product ranks
exactly as evaluated.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from rec_lib.errors import ConfigError, InvalidVectorsError, RecLibError
from rec_lib.files import write_atomically, write_json

QUERY_MODES = ("set", "history")
"""How a list of liked movies is read: a set of ticks in no order (the picker, the page, the API's default), or a
viewer's history, the latest last (``start_from_user``, the API's ``mode="history"``)."""
SET_PRIOR_TICKS = 8.0
""":attr:`SetRule.prior_ticks` of the product, chosen on the liked-set protocol's validation users: the least prior
within their noise of the best (``rec_lib.experiments.likedset.chosen_prior_ticks``; the grid in reports/tuning)."""
EMBEDDINGS_NAME = "embeddings.npz"
EMBEDDINGS_META_NAME = "embeddings.json"


@dataclass(frozen=True)
class HistoryAttention:
    """Weights that depend on what a viewer watched: the latest movie attends over the history.

    Position ``j`` of a history (latest first) gains the logit ``u · h_j + (h_0 Q) · (h_j K) / sqrt(r)`` on top of
    its recency weight, ``h`` being the first ``len(u)`` dimensions of each movie's vector (the graph part, not the
    content part) and ``r`` the width of ``Q`` and ``K``. Learned with the model (``TrainConfig.query_encoder``).

    >>> attention = HistoryAttention((1.0, 0.0), ((0.0,), (0.0,)), ((0.0,), (0.0,)))
    >>> attention.logits(np.array([[[2.0, 0.0], [0.0, 1.0]]])).tolist()
    [[2.0, 0.0]]
    """

    relevance: tuple[float, ...]
    """``u``: how much each movie draws the query towards itself, whatever came last."""
    query_map: tuple[tuple[float, ...], ...]
    """``Q``, (d, r): what the latest movie looks for."""
    key_map: tuple[tuple[float, ...], ...]
    """``K``, (d, r): what each history movie offers."""

    def __post_init__(self) -> None:
        d = len(self.relevance)
        for name in ("query_map", "key_map"):
            matrix = np.asarray(getattr(self, name), dtype=np.float64)
            if matrix.ndim != 2 or matrix.shape[0] != d or matrix.shape[1] < 1 or not np.isfinite(matrix).all():
                raise ConfigError(f"a history attention's {name} must be a finite ({d}, r) matrix")
        if len(self.query_map[0]) != len(self.key_map[0]) or not np.isfinite(self.relevance).all():
            raise ConfigError("a history attention needs finite relevance and query and key maps of one width")

    @property
    def dims(self) -> int:
        """How many leading dimensions of a movie's vector it reads."""
        return len(self.relevance)

    def logits(self, history: np.ndarray) -> np.ndarray:
        """(B, H) logits for (B, H, D ≥ d) history vectors, latest first."""
        h = np.asarray(history, dtype=np.float64)[..., : self.dims]
        if h.shape[-1] != self.dims:
            raise ConfigError(f"the history attention reads {self.dims}-d vectors, got {h.shape[-1]}-d ones")
        query_map, key_map = np.asarray(self.query_map), np.asarray(self.key_map)
        looked_for = h[:, 0] @ query_map
        offered = h @ key_map
        return h @ np.asarray(self.relevance) + np.einsum("br,bhr->bh", looked_for, offered) / np.sqrt(
            query_map.shape[1]
        )

    def as_dict(self) -> dict:
        return {
            "relevance": [float(v) for v in self.relevance],
            "query_map": [[float(v) for v in row] for row in self.query_map],
            "key_map": [[float(v) for v in row] for row in self.key_map],
        }

    @classmethod
    def from_dict(cls, values: dict) -> HistoryAttention:
        return cls(
            tuple(float(v) for v in values["relevance"]),
            tuple(tuple(float(v) for v in row) for row in values["query_map"]),
            tuple(tuple(float(v) for v in row) for row in values["key_map"]),
        )


@dataclass(frozen=True)
class QueryRule:
    """Weights for a list of movies, latest first, by recency and, with ``attention``, by what they are; the query is
    their weighted mean.

    Only the first ``len(position_weights)`` movies count; the weights of those present are
    normalised to sum to one, so ``[Σ w_j h_j, 1] · [h_i, b_i] = Σ w_j (h_j · h_i) + b_i``. With
    :class:`HistoryAttention` the weight of position ``j`` is ``∝ position_weight_j · exp(attention logit_j)``.

    >>> [round(float(w), 3) for w in QueryRule.decay(3, 0.5).weights(2)]
    [0.667, 0.333]
    >>> QueryRule.latest().weights(4).tolist()
    [1.0]
    """

    position_weights: tuple[float, ...]
    attention: HistoryAttention | None = None

    def __post_init__(self) -> None:
        weights = np.asarray(self.position_weights, dtype=np.float64)
        if weights.ndim != 1 or weights.size == 0 or not np.isfinite(weights).all() or (weights < 0).any():
            raise ConfigError(f"a query rule needs finite, non-negative weights, got {self.position_weights!r}")
        if weights[0] <= 0:
            raise ConfigError("a query rule must give the latest movie a positive weight")

    @classmethod
    def decay(cls, length: int, decay: float) -> QueryRule:
        """``w_age ∝ decay ** age`` over the latest ``length`` movies (protocol B's fixed rule)."""
        return cls(tuple(float(decay**age) for age in range(length)))

    @classmethod
    def latest(cls) -> QueryRule:
        """The latest movie alone (protocol A)."""
        return cls((1.0,))

    @property
    def length(self) -> int:
        return len(self.position_weights)

    @property
    def attends(self) -> bool:
        """Whether the weights depend on the movies' vectors, not on their positions alone."""
        return self.attention is not None

    def weights(self, n: int) -> np.ndarray:
        """Normalised recency weights of the latest ``min(n, length)`` of ``n`` movies, latest first."""
        return self.masked_weights(np.ones((1, max(n, 0)), dtype=np.float32))[0, : min(max(n, 0), self.length)]

    def masked_weights(self, present: np.ndarray, history: np.ndarray | None = None) -> np.ndarray:
        """The weights over each row's present positions of (B, H) histories (latest first), summing to one; an
        attending rule needs the (B, H, D) ``history`` vectors too.

        >>> [round(float(w), 3) for w in QueryRule((2.0, 1.0, 1.0)).masked_weights(np.array([[1, 0, 1]]))[0]]
        [0.667, 0.0, 0.333]
        """
        present = np.asarray(present, dtype=np.float32)
        position = np.zeros(present.shape[1], dtype=np.float32)
        used = min(self.length, present.shape[1])
        position[:used] = self.position_weights[:used]
        weighted = position[None, :] * present
        if self.attention is not None and present.shape[1] > 0:
            if history is None:
                raise ConfigError("an attending query rule weighs a history by its movies' vectors: pass them")
            logits = np.where(weighted > 0, self.attention.logits(history), -np.inf)
            top = logits.max(axis=1, keepdims=True)
            weighted = (weighted * np.exp(logits - np.where(np.isfinite(top), top, 0.0))).astype(np.float32)
        return weighted / np.maximum(weighted.sum(axis=1, keepdims=True), 1e-12)

    def query(self, latest_first: np.ndarray) -> np.ndarray:
        """The query ``[Σ w_j h_j, 1]`` for stored rows ``[h_j, b_j]`` given latest first."""
        rows = np.asarray(latest_first[: self.length], dtype=np.float32)
        weights = self.masked_weights(np.ones((1, len(rows)), dtype=np.float32), rows[None, :, :-1])[0]
        return query_vectors((weights @ rows)[None, :])

    def as_dict(self) -> dict:
        """Plain JSON-ready values (:meth:`from_saved` reads them back exactly)."""
        values: dict = {"position_weights": [float(w) for w in self.position_weights]}
        if self.attention is not None:
            values["attention"] = self.attention.as_dict()
        return values

    @classmethod
    def from_saved(cls, values: dict | list) -> QueryRule:
        """The rule :meth:`as_dict` wrote, or the plain list of recency weights saved before attention existed."""
        if isinstance(values, list):
            return cls(tuple(float(w) for w in values))
        attention = values.get("attention")
        return cls(
            tuple(float(w) for w in values["position_weights"]),
            None if attention is None else HistoryAttention.from_dict(attention),
        )


@dataclass(frozen=True)
class SetRule:
    """A person's ticked movies as a set: every tick weighs the same, so any order gives the same query.

    The query for ``m`` ticks is ``[g · s(m) · (w ⊙ mean_j h_j) + u, c]`` with ``s(m) = m / (m + prior_ticks)``:
    the fewer the ticks, the more the prior counts against them, the prior being the per-movie bias (weighed by
    ``c``) and the catalogue direction ``u``. The fixed rule has ``g = c = 1``, ``w = 1`` and ``u = 0``
    (``prior_ticks = 0`` is then the plain mean); the learned rule (:mod:`rec_lib.pinsage.set_rule`) fits all of
    them to training users' liked movies. A ``transformed`` rule has a full ``d × d`` transform ``W`` in place of
    ``w``: it pools the ticks' rows ``[h_j W, b_j]`` (:attr:`Embeddings.set_vectors`, stored beside ``[h_j, b_j]``),
    since ``mean_j(h_j) W = mean_j(h_j W)``. Either way the query is a mean over the ticks, so the order cannot count.

    >>> rule = SetRule(prior_ticks=1.0)
    >>> [[round(float(w), 3) for w in row] for row in rule.masked_weights(np.array([[1, 1, 0], [1, 0, 0]]))]
    [[0.333, 0.333, 0.0], [0.5, 0.0, 0.0]]
    >>> bool((rule.query(np.eye(3)[[0, 1]]) == rule.query(np.eye(3)[[1, 0]])).all())
    True
    >>> SetRule(0.0, dim_weights=(2.0, 1.0), prior_vector=(0.0, 1.0), bias_weight=0.5).query(np.eye(3)[[0]])
    array([[2. , 1. , 0.5]], dtype=float32)
    """

    prior_ticks: float = SET_PRIOR_TICKS
    gain: float = 1.0
    """``g``: how much the ticks count against the prior."""
    bias_weight: float = 1.0
    """``c``: how much the per-movie bias counts."""
    dim_weights: tuple[float, ...] = ()
    """``w``, one weight per vector dimension; empty means every dimension weighs 1."""
    prior_vector: tuple[float, ...] = ()
    """``u``, a direction in the movies' space added to every query; empty means none."""
    transformed: bool = False
    """Whether :meth:`queries` is handed the ticks' transformed rows ``[h_j W, b_j]`` (see :func:`set_rows`)."""

    def __post_init__(self) -> None:
        if not np.isfinite(self.prior_ticks) or self.prior_ticks < 0:
            raise ConfigError(f"a set rule's prior_ticks must be finite and non-negative, got {self.prior_ticks!r}")
        if not (np.isfinite(self.gain) and self.gain > 0 and np.isfinite(self.bias_weight) and self.bias_weight >= 0):
            raise ConfigError(
                f"a set rule needs a finite positive gain and a finite non-negative bias_weight, got "
                f"{self.gain!r} and {self.bias_weight!r}"
            )
        for name in ("dim_weights", "prior_vector"):
            if not np.isfinite(np.asarray(getattr(self, name), dtype=np.float64)).all():
                raise ConfigError(f"a set rule's {name} must be finite")
        if self.dim_weights and self.prior_vector and len(self.dim_weights) != len(self.prior_vector):
            raise ConfigError(
                f"a set rule's dim_weights ({len(self.dim_weights)}) and prior_vector ({len(self.prior_vector)}) "
                "must be as long as each other"
            )
        if self.transformed and self.dim_weights:
            raise ConfigError("a transformed set rule has its transform in place of dim_weights, not both")

    @property
    def learned(self) -> bool:
        """Whether anything beyond ``prior_ticks`` differs from the fixed rule."""
        changed = self.dim_weights or self.prior_vector or self.transformed
        return bool(changed) or (self.gain, self.bias_weight) != (1.0, 1.0)

    def masked_weights(self, present: np.ndarray) -> np.ndarray:
        """Each row's weights over its present ticks of a (B, m) array: ``g · s(m) / m`` each."""
        present = np.asarray(present, dtype=np.float32)
        ticks = present.sum(axis=1, keepdims=True)
        return self.gain * present / np.maximum(ticks + self.prior_ticks, 1e-12)

    def queries(self, ticked: np.ndarray, present: np.ndarray | None = None) -> np.ndarray:
        """The (B, d + 1) queries for (B, m, d + 1) stored rows ``[h_j, b_j]`` of the ticked movies (for a
        transformed rule ``[h_j W, b_j]``), each row's present ticks marked in ``present`` (default all), in any
        order."""
        ticked = np.asarray(ticked, dtype=np.float32)
        present = np.ones(ticked.shape[:2], dtype=np.float32) if present is None else present
        dim = ticked.shape[2] - 1
        for name in ("dim_weights", "prior_vector"):
            if getattr(self, name) and len(getattr(self, name)) != dim:
                raise ConfigError(f"the set rule's {name} has {len(getattr(self, name))} values for {dim}-d vectors")
        weights = self.masked_weights(present)
        pooled = np.einsum("bm,bmd->bd", weights, ticked[:, :, :dim]).astype(np.float32)
        if self.dim_weights:
            pooled *= np.asarray(self.dim_weights, dtype=np.float32)
        if self.prior_vector:
            pooled += np.asarray(self.prior_vector, dtype=np.float32)
        bias = np.full((len(pooled), 1), self.bias_weight, dtype=np.float32)
        return np.concatenate([pooled, bias], axis=1)

    def query(self, ticked: np.ndarray) -> np.ndarray:
        """The (1, d + 1) query for stored rows ``[h_j, b_j]`` of the ticked movies, in any order."""
        return self.queries(np.asarray(ticked, dtype=np.float32)[None])

    def as_dict(self) -> dict:
        """Plain JSON-ready values (:meth:`from_dict` reads them back exactly)."""
        return {
            "prior_ticks": float(self.prior_ticks),
            "gain": float(self.gain),
            "bias_weight": float(self.bias_weight),
            "dim_weights": [float(w) for w in self.dim_weights],
            "prior_vector": [float(u) for u in self.prior_vector],
            "transformed": self.transformed,
        }

    @classmethod
    def from_dict(cls, values: dict) -> SetRule:
        """The rule :meth:`as_dict` wrote; the fields a rule saved before them lack take the fixed rule's values."""
        return cls(
            prior_ticks=float(values["prior_ticks"]),
            gain=float(values.get("gain", 1.0)),
            bias_weight=float(values.get("bias_weight", 1.0)),
            dim_weights=tuple(float(w) for w in values.get("dim_weights", ())),
            prior_vector=tuple(float(u) for u in values.get("prior_vector", ())),
            transformed=bool(values.get("transformed", False)),
        )


def transformed_vectors(vectors: np.ndarray, transform: np.ndarray | None) -> np.ndarray | None:
    """``h W`` (float32) for (N, d) vectors ``h`` and a (d, d) transform ``W``; None without a transform."""
    if transform is None:
        return None
    return (np.asarray(vectors, dtype=np.float32) @ np.asarray(transform, dtype=np.float32)).astype(np.float32)


def set_rows(stored: np.ndarray, set_vectors: np.ndarray) -> np.ndarray:
    """``[h_j W, b_j]``, the rows a transformed set rule pools, from stored rows ``[h_j, b_j]`` and ``h_j W``.

    >>> set_rows(np.array([[1.0, 2.0, 0.5]]), np.array([[3.0, 4.0]]))
    array([[3. , 4. , 0.5]], dtype=float32)
    """
    return np.concatenate([set_vectors, np.asarray(stored)[..., -1:]], axis=-1).astype(np.float32)


@dataclass(frozen=True, eq=False)
class FittedSetRule:
    """A set rule as fitted, with its (d, d) transform ``W`` when it is ``transformed`` (else None).

    >>> fitted = FittedSetRule(SetRule(0.0, transformed=True), np.array([[0.0, 1.0], [1.0, 0.0]], np.float32))
    >>> fitted.pooled_rows(np.array([[1.0, 2.0, 0.5]]))
    array([[2. , 1. , 0.5]], dtype=float32)
    """

    rule: SetRule
    transform: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.rule.transformed != (self.transform is not None):
            raise ConfigError("a fitted set rule has a transform exactly when its rule is transformed")

    def set_vectors(self, vectors: np.ndarray) -> np.ndarray | None:
        """Each movie's ``h W`` (float32), kept beside ``h`` in the store; None for a rule without a transform."""
        return transformed_vectors(vectors, self.transform)

    def pooled_rows(self, stored: np.ndarray) -> np.ndarray:
        """The rows :attr:`rule` pools, for every movie's stored row ``[h, b]``."""
        stored = np.asarray(stored, dtype=np.float32)
        return stored if self.transform is None else set_rows(stored, self.set_vectors(stored[:, :-1]))


@dataclass
class Embeddings:
    """One vector and one bias per movie, in the model's row order, with the MovieLens ids."""

    movie_ids: np.ndarray
    """int64, (N,)"""
    vectors: np.ndarray
    """float32, (N, hidden_dims)"""
    bias: np.ndarray
    """float32, (N,)"""
    query_rule: QueryRule
    """How a viewer's history becomes one query (what evaluation's protocol B used)."""
    fingerprint: str
    """Identifies the model: its run and the exact checkpoint it came from."""
    metadata: dict
    set_rule: SetRule = field(default_factory=SetRule)
    """How a person's ticked set becomes one query (the one the liked-set protocol's validation chose for the
    dataset)."""
    set_transform: np.ndarray | None = None
    """float32, (hidden_dims, hidden_dims): the set rule's transform ``W`` when it is transformed, else None."""

    @property
    def dim(self) -> int:
        return self.vectors.shape[1]

    @property
    def fitted_set_rule(self) -> FittedSetRule:
        return FittedSetRule(self.set_rule, self.set_transform)

    def set_vectors(self) -> np.ndarray | None:
        """``h W`` per movie for a transformed set rule (the store keeps it beside ``[h, b]``), else None."""
        return self.fitted_set_rule.set_vectors(self.vectors)

    def store_vectors(self) -> np.ndarray:
        """``[h, b]`` per movie: what goes into the vector store."""
        return store_vectors(self.vectors, self.bias)

    def validate(self) -> None:
        """Refuse NaN, infinite or wrongly shaped vectors, naming the movie ids at fault."""
        validate_vectors(self.movie_ids, self.vectors, self.dim)
        validate_vectors(self.movie_ids, self.bias[:, None], 1)
        if self.set_rule.transformed != (self.set_transform is not None):
            raise RecLibError("an export has a set transform exactly when its set rule is transformed")
        if self.set_transform is not None and (
            np.shape(self.set_transform) != (self.dim, self.dim) or not np.isfinite(self.set_transform).all()
        ):
            raise RecLibError(f"the set transform must be a finite {self.dim} × {self.dim} matrix")
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


def save_embeddings(embeddings: Embeddings, directory: Path) -> Path:
    """Write ``embeddings.npz`` and ``embeddings.json`` atomically (never half-written)."""
    arrays = Path(directory) / EMBEDDINGS_NAME
    write_atomically(
        arrays,
        lambda handle: np.savez(
            handle,
            movie_ids=embeddings.movie_ids,
            vectors=embeddings.vectors,
            bias=embeddings.bias,
            query_rule=np.asarray(embeddings.query_rule.position_weights, dtype=np.float64),
            query_rule_json=np.asarray(json.dumps(embeddings.query_rule.as_dict())),
            set_rule=np.asarray(json.dumps(embeddings.set_rule.as_dict())),
            **({} if embeddings.set_transform is None else {"set_transform": embeddings.set_transform}),
        ),
    )
    meta = {
        **embeddings.metadata,
        "fingerprint": embeddings.fingerprint,
        "count": len(embeddings.movie_ids),
        "dim": embeddings.dim,
    }
    write_json(Path(directory) / EMBEDDINGS_META_NAME, meta)
    return arrays


def load_embeddings(directory: Path) -> Embeddings:
    """The export saved in ``directory`` (a run dir), validated."""
    arrays, meta = Path(directory) / EMBEDDINGS_NAME, Path(directory) / EMBEDDINGS_META_NAME
    if not arrays.is_file() or not meta.is_file():
        raise RecLibError(f"{arrays} is missing: export first (python -m rec_lib export)")
    metadata = json.loads(meta.read_text())
    with np.load(arrays) as data:
        if "query_rule" not in data:
            raise RecLibError(f"{arrays} predates query rules: export again (python -m rec_lib export)")
        embeddings = Embeddings(
            movie_ids=data["movie_ids"],
            vectors=data["vectors"],
            bias=data["bias"],
            query_rule=_saved_query_rule(data),
            fingerprint=metadata.pop("fingerprint"),
            metadata=metadata,
            set_rule=_saved_set_rule(data),
            set_transform=data.get("set_transform"),
        )
    embeddings.validate()
    return embeddings


def saved_set_transform(directory: Path) -> np.ndarray | None:
    """The set transform of the export in ``directory`` (a run dir); None when it has none or there is no export."""
    arrays = Path(directory) / EMBEDDINGS_NAME
    if not arrays.is_file():
        return None
    with np.load(arrays) as data:
        return data.get("set_transform")


def _saved_query_rule(data) -> QueryRule:
    """The history rule an export holds (an export from before attention holds only its recency weights)."""
    if "query_rule_json" in data:
        return QueryRule.from_saved(json.loads(str(data["query_rule_json"])))
    return QueryRule(tuple(float(w) for w in data["query_rule"]))


def _saved_set_rule(data) -> SetRule:
    """The set rule an export holds (an export from before learned rules holds only ``set_prior_ticks``)."""
    if "set_rule" in data:
        return SetRule.from_dict(json.loads(str(data["set_rule"])))
    return SetRule(float(data["set_prior_ticks"])) if "set_prior_ticks" in data else SetRule()
