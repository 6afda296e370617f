"""The users–movies graph: training edges only, CSR both ways, features, builder errors."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from rec_lib.data.content import TITLE_HASH_DIMS, word_column
from rec_lib.data.loaders import NO_GENRES, load_folder
from rec_lib.data.preprocess import preprocess
from rec_lib.data.text import title_words
from rec_lib.errors import ConfigError, DataFormatError
from rec_lib.evaluation.baselines import ContentSimilarity
from rec_lib.pinsage.graph import (
    EMPTY_TITLE,
    MOVIE,
    USER,
    WATCHED,
    WATCHED_BY,
    FeatureVocab,
    GraphBuilder,
    MovieFeatures,
    build_graph,
    movie_features,
)


@pytest.fixture
def tiny(ml1m_dir: Path):
    prep = preprocess(load_folder(ml1m_dir))
    return prep, build_graph(prep)


def _edges_from_csr(csr) -> set[tuple[int, int]]:
    rows = torch.repeat_interleave(torch.arange(len(csr.indptr) - 1), csr.degrees())
    return set(zip(rows.tolist(), csr.indices.tolist(), strict=True))


def test_graph_has_training_edges_only_in_both_directions(tiny) -> None:
    prep, g = tiny
    train = prep.split("train")
    expected = set(zip(train["user_idx"], train["movie_idx"], strict=True))
    assert g.graph.num_nodes == {USER: prep.n_users, MOVIE: prep.n_movies}
    assert g.graph.num_edges(WATCHED) == g.graph.num_edges(WATCHED_BY) == len(train)
    assert _edges_from_csr(g.user_to_movies) == expected
    assert _edges_from_csr(g.movie_to_users) == {(m, u) for u, m in expected}
    held_out = prep.interactions[prep.interactions["split"] != "train"]
    assert not expected & set(zip(held_out["user_idx"], held_out["movie_idx"], strict=True))


def test_edge_data_follows_csr_edge_ids(tiny) -> None:
    prep, g = tiny
    csr = g.user_to_movies
    ratings = g.graph.relations[WATCHED].data["rating"][csr.edge_ids]
    train = prep.split("train").set_index(["user_idx", "movie_idx"])["rating"]
    rows = torch.repeat_interleave(torch.arange(g.n_users), csr.degrees())
    for user, movie, rating in zip(rows.tolist(), csr.indices.tolist(), ratings.tolist(), strict=True):
        assert train.loc[(user, movie)] == rating


def test_movie_features(tiny) -> None:
    prep, g = tiny
    f = g.features
    assert f.genres.shape == (prep.n_movies, len(f.vocab.genres))
    matrix_row = prep.movies.index[prep.movies["movie_id"] == 4][0]
    assert {f.vocab.genres[i] for i in torch.nonzero(f.genres[matrix_row]).flatten().tolist()} == {
        "Action",
        "Sci-Fi",
        "Thriller",
    }
    assert f.vocab.years[int(f.year_index[matrix_row])] == 1990, "1999 is encoded by its decade"

    def title(features: MovieFeatures) -> list[str]:
        start = int(features.title_offsets[matrix_row])
        last = matrix_row + 1 == prep.n_movies
        end = len(features.title_tokens) if last else int(features.title_offsets[matrix_row + 1])
        return [features.vocab.title_words[t] for t in features.title_tokens[start:end].tolist()]

    assert title(f) == [EMPTY_TITLE], "by default title words are not features"
    assert title(movie_features(prep.movies, FeatureVocab.of(prep.movies, min_word_movies=1))) == ["the", "matrix"]


def test_content_channel_is_the_content_baselines_similarity_with_title_words_hashed() -> None:
    movies = pd.DataFrame(
        {
            "title": ["Star Wars (1977)", "Star Trek (1979)", "Alien (1979)", "Aliens (1986)", "Heat", "Star Wars"],
            "year": [1977, 1979, 1979, 1986, None, 2015],
            "genres": [["Sci-Fi", "Action"], ["Sci-Fi"], ["Horror", "Sci-Fi"], ["Action"], [NO_GENRES], ["Sci-Fi"]],
        }
    )
    words = {word for title in movies["title"] for word in title_words(title)}
    assert len({word_column(word)[0] for word in words}) == len(words), "these words must not share a column"
    content = movie_features(movies).content.numpy()
    exact = ContentSimilarity(movies).features.toarray()
    assert content.shape[1] == len(FeatureVocab.of(movies).genres) + TITLE_HASH_DIMS + 3, "1970s, 1980s, 2010s"
    np.testing.assert_allclose(content @ content.T, exact @ exact.T, atol=1e-6)
    assert content[4, : len(FeatureVocab.of(movies).genres)].sum() == 0, "no genres listed is no genre"


def test_a_word_no_trained_title_had_still_brings_two_new_titles_together() -> None:
    trained = pd.DataFrame({"title": ["Heat (1995)"], "year": [1995], "genres": [["Action"]]})
    new = pd.DataFrame(
        {
            "title": ["Zorblax (2031)", "Zorblax Returns (2032)", "Quux (2033)"],
            "year": [2031, 2032, 2033],
            "genres": [["Drama"], ["Drama"], ["Drama"]],
        }
    )
    content = movie_features(new, FeatureVocab.of(trained)).content.numpy()
    same_decade = 1 / 3
    shared_word = (1 / math.sqrt(2)) / 3
    assert content[0] @ content[1] == pytest.approx(same_decade + shared_word, abs=1e-6)
    assert content[0] @ content[2] == pytest.approx(same_decade, abs=1e-6), "no genre known to the vocabulary"


def test_builder_names_unknown_keys_and_unregistered_columns() -> None:
    builder = GraphBuilder()
    builder.add_entities(pd.DataFrame({"user_id": [1, 2]}), "user_id", "user")
    builder.add_entities(pd.DataFrame({"movie_id": [10]}), "movie_id", "movie")
    with pytest.raises(DataFormatError, match=r"movie_id values not among the movie nodes: \[11\]"):
        builder.add_binary_relations(pd.DataFrame({"user_id": [1], "movie_id": [11]}), "user_id", "movie_id", "w")
    with pytest.raises(ConfigError, match="'item_id' is the primary key of no registered entity"):
        builder.add_binary_relations(pd.DataFrame({"user_id": [1], "item_id": [10]}), "user_id", "item_id", "w")
    with pytest.raises(DataFormatError, match="duplicate user_id 1"):
        builder.add_entities(pd.DataFrame({"user_id": [1, 1]}), "user_id", "user")
