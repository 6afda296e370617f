"""Split rules, short users, index maps and the artefact cache."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rec_lib.data.loaders import load_folder
from rec_lib.data.preprocess import (
    PreprocessConfig,
    chronological_order,
    load_preprocessed,
    preprocess,
    run_preprocess,
    tie_hash,
)
from rec_lib.errors import ConfigError


def _split_of(prep, user_id: int) -> dict[int, str]:
    rows = prep.interactions[prep.interactions["user_id"] == user_id]
    return dict(zip(rows["movie_id"], rows["split"].astype(str), strict=True))


def test_last_is_test_second_last_is_val_with_ties_by_movie_id(ml1m_dir: Path) -> None:
    prep = preprocess(load_folder(ml1m_dir), PreprocessConfig(ties="movie-id"))
    # user 1: movies 1 and 2 share a second; 2 (larger id) counts as later, but both stay in train.
    assert _split_of(prep, 1) == {1: "train", 2: "train", 3: "val", 4: "test"}
    assert _split_of(prep, 2) == {1: "train", 3: "val", 4: "test"}


def test_tie_at_the_end_is_broken_by_movie_id_whatever_the_file_order(ml1m_dir: Path) -> None:
    data = load_folder(ml1m_dir)
    tie = pd.DataFrame(
        {"user_id": [2, 2, 2], "movie_id": [2, 1, 3], "rating": [3.0] * 3, "timestamp": [978300000] * 2 + [978200000]}
    )
    data.ratings = pd.concat([data.ratings[data.ratings["user_id"] != 2], tie]).astype(data.ratings.dtypes)
    by_id = PreprocessConfig(ties="movie-id")
    forward = preprocess(data, by_id)
    data.ratings = data.ratings.iloc[::-1].reset_index(drop=True)
    backward = preprocess(data, by_id)
    assert _split_of(forward, 2) == _split_of(backward, 2)
    assert _split_of(forward, 2) == {3: "train", 1: "val", 2: "test"}


def test_the_hash_tie_rule_orders_a_second_by_a_fixed_hash_not_by_id(ml1m_dir: Path) -> None:
    """A user with three ratings in one second (and one earlier): the hash order, whatever the file order."""
    data = load_folder(ml1m_dir)
    same_second = [(5, 4, 978300000), (5, 1, 978300000), (5, 3, 978300000), (5, 2, 978200000)]
    rows = pd.DataFrame(same_second, columns=["user_id", "movie_id", "timestamp"]).assign(rating=4.0)
    data.ratings = pd.concat([data.ratings, rows[data.ratings.columns]]).astype(data.ratings.dtypes)
    expected = [2, *sorted([4, 1, 3], key=lambda movie: int(tie_hash(np.array([5]), np.array([movie]))[0]))]
    config = PreprocessConfig()
    assert config.ties == "hash", "the hash is the default"
    orders = []
    for shuffle in range(3):
        data.ratings = data.ratings.sample(frac=1.0, random_state=shuffle).reset_index(drop=True)
        user = preprocess(data, config).interactions.query("user_id == 5")
        orders.append(user["movie_id"].tolist())
    assert orders == [expected] * 3, "the same on every run and file order"
    assert any("ordered by a fixed hash of (user, movie)" in note for note in preprocess(data).stats.notes())
    by_id = preprocess(data, PreprocessConfig(ties="movie-id")).interactions.query("user_id == 5")["movie_id"].tolist()
    assert by_id == [2, 1, 3, 4], "the earlier rule, kept for comparisons"
    assert expected[1:] != [1, 3, 4], "here the hash order is not the id order"
    with pytest.raises(ConfigError, match="ties='time'"):
        PreprocessConfig(ties="time").validate()


def test_short_users_kept_in_train_and_reported(ml1m_dir: Path) -> None:
    prep = preprocess(load_folder(ml1m_dir))
    assert _split_of(prep, 3) == {2: "train", 4: "train"}
    assert prep.stats.short_users == 1 and prep.stats.short_user_ratings == 2
    assert prep.stats.evaluated_users == 2 and prep.stats.val == 2 and prep.stats.test == 2
    assert any("1 users with fewer than 3 ratings (2 ratings): kept in training only" in n for n in prep.stats.notes())


def test_short_users_dropped_on_request(ml1m_dir: Path) -> None:
    prep = preprocess(load_folder(ml1m_dir), PreprocessConfig(short_users="drop"))
    assert 3 not in set(prep.interactions["user_id"])
    assert prep.stats.users == 2 and prep.stats.short_users == 1
    assert any("dropped" in n for n in prep.stats.notes())


def test_index_maps_are_contiguous_and_consistent(ml1m_dir: Path) -> None:
    prep = preprocess(load_folder(ml1m_dir))
    assert prep.users["user_idx"].tolist() == list(range(prep.n_users))
    assert prep.movies["movie_idx"].tolist() == list(range(prep.n_movies))
    joined = prep.interactions.merge(prep.movies, on="movie_idx", suffixes=("", "_m"))
    assert (joined["movie_id"] == joined["movie_id_m"]).all()
    joined = prep.interactions.merge(prep.users, on="user_idx", suffixes=("", "_u"))
    assert (joined["user_id"] == joined["user_id_u"]).all()


def test_rows_of_splits_are_the_interactions_in_order_with_the_columns_asked_for(ml1m_dir: Path) -> None:
    prep = preprocess(load_folder(ml1m_dir))
    inter = prep.interactions
    history = prep.rows(("train", "val"), ["user_idx", "movie_idx", "split"])
    expected = inter.loc[inter["split"] != "test", ["user_idx", "movie_idx", "split"]].reset_index(drop=True)
    pd.testing.assert_frame_equal(history, expected)
    pd.testing.assert_frame_equal(prep.split("test"), inter[inter["split"] == "test"].reset_index(drop=True))
    with pytest.raises(ConfigError, match="split='valid'"):
        prep.rows(("train", "valid"))


def test_unrated_movies_are_reported(ml1m_dir: Path) -> None:
    (ml1m_dir / "movies.dat").write_text(
        (ml1m_dir / "movies.dat").read_text("latin-1") + "5::Unseen (2000)::Drama\n", encoding="latin-1"
    )
    prep = preprocess(load_folder(ml1m_dir))
    assert prep.stats.movies_unrated == 1 and prep.stats.movies_in_catalogue == 5
    assert 5 not in set(prep.movies["movie_id"])


def test_invalid_settings_name_the_setting() -> None:
    with pytest.raises(ConfigError, match="min_user_interactions=2"):
        PreprocessConfig(min_user_interactions=2).validate()
    with pytest.raises(ConfigError, match="short_users='keep'"):
        PreprocessConfig(short_users="keep").validate()  # type: ignore[arg-type]


def test_artefacts_are_cached_and_reused(ml1m_dir: Path, tmp_path: Path) -> None:
    config = PreprocessConfig(dataset=ml1m_dir.name)
    first = run_preprocess(config, data_dir=ml1m_dir.parent, artefacts_dir=tmp_path / "art")
    manifest = first.path / "manifest.json"
    written = manifest.stat().st_mtime_ns
    again = run_preprocess(config, data_dir=ml1m_dir.parent, artefacts_dir=tmp_path / "art")
    assert again.path == first.path and manifest.stat().st_mtime_ns == written
    pd.testing.assert_frame_equal(again.interactions, first.interactions)

    content = json.loads(manifest.read_text())
    assert content["dataset"] == ml1m_dir.name and content["layout"] == "ml-1m"
    assert set(content["files"]) == {"ratings.dat", "movies.dat", "users.dat"}
    assert content["counts"]["ratings"] == 9 and content["parameters"]["min_user_interactions"] == 3
    assert content["code_version"]["rec_lib"] and content["fingerprint"]

    dropped = run_preprocess(
        PreprocessConfig(dataset=ml1m_dir.name, short_users="drop"),
        data_dir=ml1m_dir.parent,
        artefacts_dir=tmp_path / "art",
    )
    assert dropped.path != first.path

    with (ml1m_dir / "ratings.dat").open("a", encoding="latin-1") as handle:
        handle.write("3::1::2::978100100\n")
    changed = run_preprocess(config, data_dir=ml1m_dir.parent, artefacts_dir=tmp_path / "art")
    assert changed.path != first.path and changed.stats.ratings == 10

    forced = run_preprocess(config, data_dir=ml1m_dir.parent, artefacts_dir=tmp_path / "art", force=True)
    assert forced.path == changed.path
    assert load_preprocessed(forced.path).stats == changed.stats


def test_real_ml_latest_small_counts(real_data_dir: Path, tmp_path: Path) -> None:
    prep = run_preprocess(PreprocessConfig("ml-latest-small"), data_dir=real_data_dir, artefacts_dir=tmp_path)
    assert (prep.stats.users, prep.stats.movies_rated, prep.stats.ratings) == (610, 9_724, 100_836)
    assert prep.stats.movies_unrated == 18
    assert prep.stats.val == prep.stats.test == 610


def test_dropping_every_user_is_a_clear_error_not_an_empty_split(ml1m_dir: Path) -> None:
    config = PreprocessConfig(short_users="drop", min_user_interactions=1000)
    with pytest.raises(ConfigError, match=r"ratings.dat: no ratings left to split \(short_users='drop' removed all"):
        preprocess(load_folder(ml1m_dir), config)


@pytest.mark.parametrize(
    ("users", "time_span", "movies"),
    [(1_000, 2**30, 2**16), (200_000, 2**30, 90_000), (8, 2**62, 50)],
    ids=["one packed key", "movie order then packed user and time", "lexsort"],
)
def test_chronological_order_is_lexsorts_order_on_every_path(users: int, time_span: int, movies: int) -> None:
    rng = np.random.default_rng(0)
    n = 20_000
    user_idx = rng.integers(0, users, n)
    user_idx[0] = users - 1
    timestamps = rng.integers(0, 50, n) * (time_span // 50) - 10**9
    movie_idx = rng.integers(0, movies, n)
    movie_idx[0] = movies - 1
    expected = np.lexsort((movie_idx, timestamps, user_idx))
    assert chronological_order(user_idx, timestamps, movie_idx).tolist() == expected.tolist()
