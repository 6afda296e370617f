"""The users–movies bipartite graph: a small heterograph on torch tensors, and its builder.

:class:`GraphBuilder` follows DGL's ``PandasGraphBuilder``: register entity tables by their
primary key, then relations between keys, then build.

>>> users = pd.DataFrame({"user_id": [10, 20]})
>>> movies = pd.DataFrame({"movie_id": [1, 2, 3]})
>>> ratings = pd.DataFrame({"user_id": [10, 20, 20], "movie_id": [3, 1, 3], "rating": [4.0, 5.0, 3.0]})
>>> builder = GraphBuilder()
>>> builder.add_entities(users, "user_id", "user")
>>> builder.add_entities(movies, "movie_id", "movie")
>>> builder.add_binary_relations(ratings, "user_id", "movie_id", "watched", edge_columns=("rating",))
>>> builder.add_binary_relations(ratings, "movie_id", "user_id", "watched-by", edge_columns=("rating",))
>>> g = builder.build()
>>> g.num_nodes, g.num_edges("watched")
({'user': 2, 'movie': 3}, 3)
>>> g.csr("watched-by").indptr.tolist(), g.csr("watched-by").indices.tolist()
([0, 1, 1, 3], [1, 0, 1])
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd
import torch

from rec_lib.data.content import content_vectors
from rec_lib.data.loaders import NO_GENRES
from rec_lib.data.preprocess import Preprocessed
from rec_lib.data.text import title_words
from rec_lib.errors import ConfigError, DataFormatError

USER, MOVIE = "user", "movie"
WATCHED, WATCHED_BY = "watched", "watched-by"


@dataclass(frozen=True)
class CSR:
    """Compressed sparse rows: the neighbours of row ``r`` are ``indices[indptr[r]:indptr[r + 1]]``."""

    indptr: torch.Tensor
    indices: torch.Tensor
    edge_ids: torch.Tensor
    """For each CSR position, the edge's id in its relation (to find edge data)."""

    def degrees(self) -> torch.Tensor:
        return self.indptr[1:] - self.indptr[:-1]

    def to(self, device: torch.device | str) -> CSR:
        return CSR(self.indptr.to(device), self.indices.to(device), self.edge_ids.to(device))


@dataclass
class Relation:
    """One edge type: ``src_type --name--> dst_type`` with per-edge data."""

    name: str
    src_type: str
    dst_type: str
    src: torch.Tensor
    dst: torch.Tensor
    data: dict[str, torch.Tensor] = field(default_factory=dict)


@dataclass
class HeteroGraph:
    """Node counts, node data and relations, with CSR views built on first use."""

    num_nodes: dict[str, int]
    relations: dict[str, Relation]
    node_data: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)
    _csr: dict[str, CSR] = field(default_factory=dict, repr=False)

    def num_edges(self, relation: str) -> int:
        return int(self.relations[relation].src.numel())

    def csr(self, relation: str) -> CSR:
        """Out-neighbours per source node of ``relation``, sorted by source then destination."""
        if relation not in self._csr:
            rel = self.relations[relation]
            # one stable sort of a packed (source, destination) key, not a two-key lexsort (reports/scale.md)
            order = torch.sort(rel.src * self.num_nodes[rel.dst_type] + rel.dst, stable=True).indices
            counts = torch.bincount(rel.src, minlength=self.num_nodes[rel.src_type])
            indptr = torch.zeros(len(counts) + 1, dtype=torch.int64)
            indptr[1:] = torch.cumsum(counts, 0)
            self._csr[relation] = CSR(indptr=indptr, indices=rel.dst[order].contiguous(), edge_ids=order)
        return self._csr[relation]

    def to_dgl(self):
        """The same graph as a DGL heterograph (needs the DGL stack: dgl 2.1.0 on torch 2.2.1)."""
        import dgl

        graph = dgl.heterograph(
            {(r.src_type, r.name, r.dst_type): (r.src, r.dst) for r in self.relations.values()},
            num_nodes_dict=dict(self.num_nodes),
        )
        for rel in self.relations.values():
            for key, value in rel.data.items():
                graph.edges[rel.name].data[key] = value
        for ntype, data in self.node_data.items():
            for key, value in data.items():
                graph.nodes[ntype].data[key] = value
        return graph


class GraphBuilder:
    """Build a :class:`HeteroGraph` from pandas tables, in the style of DGL's ``PandasGraphBuilder``."""

    def __init__(self) -> None:
        self._entities: dict[str, tuple[str, pd.Index]] = {}
        self._type_of_key: dict[str, str] = {}
        self._relations: dict[str, Relation] = {}

    def add_entities(self, frame: pd.DataFrame, primary_key: str, name: str) -> None:
        """Register node type ``name``; node ``i`` is row ``i`` of ``frame``."""
        keys = pd.Index(frame[primary_key])
        if keys.has_duplicates:
            raise DataFormatError(f"<{name} table>", f"duplicate {primary_key} {keys[keys.duplicated()][0]}")
        self._entities[name] = (primary_key, keys)
        self._type_of_key[primary_key] = name

    def add_binary_relations(
        self,
        frame: pd.DataFrame,
        source_key: str,
        destination_key: str,
        name: str,
        *,
        edge_columns: tuple[str, ...] = (),
    ) -> None:
        """Register relation ``name`` with one edge per row of ``frame``, from ``source_key`` to ``destination_key``."""
        src_type = self._node_type(source_key)
        dst_type = self._node_type(destination_key)
        src = self._positions(frame[source_key], src_type, name)
        dst = self._positions(frame[destination_key], dst_type, name)
        data = {column: torch.tensor(frame[column].to_numpy()) for column in edge_columns}
        self._relations[name] = Relation(name, src_type, dst_type, src, dst, data)

    def build(self) -> HeteroGraph:
        return HeteroGraph(
            num_nodes={name: len(keys) for name, (_, keys) in self._entities.items()},
            relations=dict(self._relations),
        )

    def _node_type(self, key: str) -> str:
        if key not in self._type_of_key:
            raise ConfigError(f"column {key!r} is the primary key of no registered entity ({list(self._type_of_key)})")
        return self._type_of_key[key]

    def _positions(self, values: pd.Series, node_type: str, relation: str) -> torch.Tensor:
        key, index = self._entities[node_type]
        positions = index.get_indexer(values)
        if (positions < 0).any():
            unknown = pd.unique(values[positions < 0])[:10].tolist()
            raise DataFormatError(f"<{relation} relation>", f"{key} values not among the {node_type} nodes: {unknown}")
        return torch.from_numpy(positions.astype(np.int64))


MIN_TITLE_WORD_MOVIES: int | None = None
"""A title word gets an embedding only if at least this many trained movies have it in their title; None leaves
title words out of the features. On cold-val a word held by a few movies acts as a second id, memorised from
them: without title words PinSage ranked the new movies at HR@10 0.110 (0 revealed) and 0.147 (3 revealed), with
every word 0.101 and 0.113, with words of at least 5 movies 0.111 and 0.121 (one seed each)."""
YEAR_BUCKET = 10
"""Years are encoded by decade. A per-year embedding is learned from the few movies of each recent year, which
had little time to collect ratings; on cold-val it ranked new movies by their year's training popularity (the
model without title words: HR@10 0.110 as trained, 0.152 with the new movies' years made equal)."""


@dataclass(frozen=True)
class FeatureVocab:
    """What the model's feature embeddings have rows for: genres, years and title words seen in training.

    Index 0 of ``years`` is the unknown year (stored as 0); index 0 of ``title_words`` stands for a title
    with no known word. ``title_frequency`` counts, for every word of the ``titles`` trained movies' titles,
    how many of them hold it: the idf of the content channel (:func:`rec_lib.data.content.content_vectors`).
    A trained model keeps its vocabulary in the checkpoint, so a movie added later is encoded exactly like the
    movies it was trained on.
    """

    genres: tuple[str, ...]
    years: tuple[int, ...]
    title_words: tuple[str, ...]
    title_frequency: tuple[tuple[str, int], ...] = ()
    titles: int = 0

    @classmethod
    def of(cls, movies: pd.DataFrame, min_word_movies: int | None = MIN_TITLE_WORD_MOVIES) -> FeatureVocab:
        """The vocabulary of ``movies`` (genres, title, year columns): their decades, and the title words in at
        least ``min_word_movies`` of them (None: no title word)."""
        counts = Counter(word for title in movies["title"] for word in set(title_words(title)))
        words: set[str] = set()
        if min_word_movies is not None:
            words = {word for word, count in counts.items() if count >= min_word_movies}
        years = movies["year"].astype("Int64").dropna().unique()
        return cls(
            genres=tuple(sorted({g for genres in movies["genres"] for g in genres})),
            years=(0, *sorted({int(y) // YEAR_BUCKET * YEAR_BUCKET for y in years})),
            title_words=(EMPTY_TITLE, *sorted(words - {EMPTY_TITLE})),
            title_frequency=tuple(sorted(counts.items())),
            titles=len(movies),
        )

    def to_dict(self) -> dict:
        return {
            "genres": list(self.genres),
            "years": list(self.years),
            "title_words": list(self.title_words),
            "title_frequency": dict(self.title_frequency),
            "titles": self.titles,
        }

    @classmethod
    def from_dict(cls, values: dict) -> FeatureVocab:
        return cls(
            tuple(values["genres"]),
            tuple(int(y) for y in values["years"]),
            tuple(values["title_words"]),
            tuple(sorted((word, int(count)) for word, count in values.get("title_frequency", {}).items())),
            int(values.get("titles", 0)),
        )

    def year_positions(self, years: pd.Series) -> np.ndarray:
        """Each year's index: its decade's, the nearest known decade for one the vocabulary lacks, 0 when unknown.

        >>> FeatureVocab((), (0, 1990, 2000), ("<empty>",)).year_positions(pd.Series([2009, 1994, 2018, None])).tolist()
        [2, 1, 2, 0]
        """
        known = np.asarray(self.years[1:], dtype=np.float64)
        values = years.astype("Float64").to_numpy(dtype=np.float64, na_value=np.nan)
        values = np.floor(values / YEAR_BUCKET) * YEAR_BUCKET
        positions = np.zeros(len(values), dtype=np.int64)
        present = ~np.isnan(values)
        if known.size and present.any():
            nearest = np.abs(values[present, None] - known[None, :]).argmin(axis=1)
            positions[present] = nearest + 1
        return positions


EMPTY_TITLE = "<empty>"


@dataclass(frozen=True)
class MovieFeatures:
    """Model inputs per movie node: genres multi-hot, year bucket and title bag of words, under one vocabulary."""

    genres: torch.Tensor
    """(n_movies, n_genres) float multi-hot; genres outside the vocabulary are left out."""
    year_index: torch.Tensor
    """(n_movies,) index into ``vocab.years``; 0 means unknown year."""
    title_tokens: torch.Tensor
    """Token ids of all titles, concatenated (for ``nn.EmbeddingBag``); words outside the vocabulary are left out."""
    title_offsets: torch.Tensor
    """(n_movies,) start of each title in ``title_tokens``."""
    vocab: FeatureVocab
    content: torch.Tensor
    """(n_movies, content dims) the fixed content vectors (:func:`rec_lib.data.content.content_vectors`)."""

    @property
    def n_movies(self) -> int:
        return int(self.year_index.numel())

    def to(self, device: torch.device | str) -> MovieFeatures:
        return MovieFeatures(
            self.genres.to(device),
            self.year_index.to(device),
            self.title_tokens.to(device),
            self.title_offsets.to(device),
            self.vocab,
            self.content.to(device),
        )


@dataclass
class UserMovieGraph:
    """The training graph with both relations, and the movie features."""

    graph: HeteroGraph
    features: MovieFeatures
    trained: torch.Tensor
    """(n_movies,) bool: movies with a training interaction (see :func:`trained_movies`)."""

    @property
    def n_users(self) -> int:
        return self.graph.num_nodes[USER]

    @property
    def n_movies(self) -> int:
        return self.graph.num_nodes[MOVIE]

    @cached_property
    def movie_to_users(self) -> CSR:
        return self.graph.csr(WATCHED_BY)

    @cached_property
    def user_to_movies(self) -> CSR:
        return self.graph.csr(WATCHED)


def movie_features(movies: pd.DataFrame, vocab: FeatureVocab | None = None) -> MovieFeatures:
    """The feature tensors of ``movies`` (row ``i`` is movie node ``i``) under ``vocab`` (default: their own)."""
    vocab = vocab or FeatureVocab.of(movies)
    genre_pos = {g: i for i, g in enumerate(vocab.genres)}
    genres = torch.zeros(len(movies), len(vocab.genres))
    for row, names in enumerate(movies["genres"]):
        genres[row, [genre_pos[g] for g in names if g in genre_pos]] = 1.0
    token_pos = {tok: i for i, tok in enumerate(vocab.title_words)}
    tokens = [[token_pos[w] for w in title_words(t) if w in token_pos] or [0] for t in movies["title"]]
    lengths = torch.tensor([len(toks) for toks in tokens], dtype=torch.int64)
    offsets = torch.zeros(len(tokens), dtype=torch.int64)
    offsets[1:] = torch.cumsum(lengths, 0)[:-1]
    year_index = vocab.year_positions(movies["year"])
    listed = torch.tensor([g != NO_GENRES for g in vocab.genres], dtype=torch.float32)
    content = content_vectors(
        (genres * listed).numpy(),
        list(movies["title"]),
        year_index - 1,
        len(vocab.years) - 1,
        dict(vocab.title_frequency),
        vocab.titles,
    )
    return MovieFeatures(
        genres=genres,
        year_index=torch.from_numpy(year_index),
        title_tokens=torch.tensor([tok for toks in tokens for tok in toks], dtype=torch.int64),
        title_offsets=offsets,
        vocab=vocab,
        content=torch.from_numpy(content),
    )


TRAINING_GRAPH = ("train",)
TEST_TIME_GRAPH = ("train", "val")
FULL_GRAPH = ("train", "val", "test")
"""Which splits' interactions are edges: training (and validation targets), test targets, the product."""


def build_graph(
    prep: Preprocessed, splits: tuple[str, ...] = TRAINING_GRAPH, vocab: FeatureVocab | None = None
) -> UserMovieGraph:
    """The users–movies graph of the interactions in ``splits``, with rating and timestamp on every edge.

    Training and validation use the training interactions; the test target's vectors come from the
    graph of every interaction before it (training + validation), and the product's from all of them:
    PinSage is inductive, so a bigger graph needs no retraining. The features are encoded under ``vocab``
    (a trained model's, see :func:`rec_lib.pinsage.train.load_checkpoint`); by default that of the movies
    with a training interaction, whatever ``splits`` is, so every graph of one dataset encodes alike.
    """
    train = prep.rows(splits, ["user_idx", "movie_idx", "rating", "timestamp"])
    builder = GraphBuilder()
    builder.add_entities(prep.users, "user_idx", USER)
    builder.add_entities(prep.movies, "movie_idx", MOVIE)
    builder.add_binary_relations(train, "user_idx", "movie_idx", WATCHED, edge_columns=("rating", "timestamp"))
    builder.add_binary_relations(train, "movie_idx", "user_idx", WATCHED_BY, edge_columns=("rating", "timestamp"))
    graph = builder.build()
    trained = trained_movies(prep)
    features = movie_features(prep.movies, vocab or FeatureVocab.of(prep.movies[trained.numpy()]))
    graph.node_data[MOVIE] = {"genres": features.genres, "year_index": features.year_index}
    return UserMovieGraph(graph=graph, features=features, trained=trained)


def trained_movies(prep: Preprocessed) -> torch.Tensor:
    """(n_movies,) bool: the movies with a training interaction, the ones a model learns an id embedding for."""
    known = np.zeros(prep.n_movies, dtype=bool)
    known[prep.split("train", ["movie_idx"])["movie_idx"].to_numpy()] = True
    return torch.from_numpy(known)
