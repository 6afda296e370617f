"""The synthetic generator writes the exact ml-1m format, at the requested shape, repeatably."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rec_lib.data.loaders import ML1M_GENRES, load_folder
from rec_lib.data.synthetic import SyntheticConfig, generate_ml1m
from rec_lib.errors import ConfigError

SMALL = SyntheticConfig(n_users=200, n_movies=300, n_ratings=12_000, seed=7)


def test_files_match_the_ml1m_format_line_by_line(tmp_path: Path) -> None:
    folder = generate_ml1m(tmp_path / "syn", SMALL)
    patterns = {
        "ratings.dat": re.compile(rb"^\d+::\d+::[1-5]::\d{9,10}$"),
        "movies.dat": re.compile(rb"^\d+::[^\n]+ \(\d{4}\)::[A-Za-z'|-]+$"),
        "users.dat": re.compile(rb"^\d+::[MF]::(1|18|25|35|45|50|56)::([0-9]|1[0-9]|20)::\d{5}$"),
    }
    for name, pattern in patterns.items():
        raw = (folder / name).read_bytes()
        assert b"\r" not in raw and raw.endswith(b"\n")
        for line in raw.splitlines():
            assert pattern.match(line), (name, line)
    movies = (folder / "movies.dat").read_bytes()
    assert "é".encode("latin-1") in movies, "latin-1 titles are exercised"
    genres = {g for line in movies.decode("latin-1").splitlines() for g in line.rsplit("::", 1)[1].split("|")}
    assert genres <= set(ML1M_GENRES)


def test_shape_structure_and_repeatability(tmp_path: Path) -> None:
    data = load_folder(generate_ml1m(tmp_path / "a", SMALL))
    assert len(data.ratings) == SMALL.n_ratings
    assert data.ratings["user_id"].nunique() == SMALL.n_users
    assert data.ratings["movie_id"].nunique() == SMALL.n_movies, "every movie is rated"
    per_user = data.ratings.groupby("user_id").size()
    assert per_user.min() >= SMALL.min_ratings_per_user
    popularity = data.ratings.groupby("movie_id").size().sort_values(ascending=False)
    top_decile = popularity.iloc[: len(popularity) // 10].sum() / popularity.sum()
    assert top_decile > 0.2, "popularity has a long tail (a uniform catalogue would give 0.1)"
    assert data.ratings.duplicated(["user_id", "timestamp"]).mean() > 0.1, "ties on time are common"
    again = generate_ml1m(tmp_path / "b", SMALL)
    assert (again / "ratings.dat").read_bytes() == (tmp_path / "a" / "ratings.dat").read_bytes()


@pytest.mark.slow
def test_default_shape_is_ml1m(tmp_path: Path) -> None:
    data = load_folder(generate_ml1m(tmp_path / "ml1m-shaped"))
    assert len(data.ratings) == 1_000_209
    assert data.ratings["user_id"].nunique() == 6_040
    assert data.ratings["movie_id"].nunique() == 3_706


def test_impossible_shapes_name_the_setting() -> None:
    with pytest.raises(ConfigError, match="n_ratings=10"):
        SyntheticConfig(n_users=5, n_movies=50, n_ratings=10).validate()


def test_scale_paths_draw_exactly_what_the_whole_matrix_draws() -> None:
    """The pieces that keep ml-25m's shape within memory give what the users × movies matrices gave: each pair's
    affinity, chunked, equals the full matrix's entry; each user's top movies by partition are a full sort's."""
    import numpy as np

    from rec_lib.data import synthetic

    rng = np.random.default_rng(0)
    tastes = rng.dirichlet(np.full(len(ML1M_GENRES), 0.3), size=40)
    genres = rng.random((70, len(ML1M_GENRES))) < 0.2
    genres[np.arange(70), rng.integers(0, len(ML1M_GENRES), 70)] = True
    users, movies = rng.integers(0, 40, 500), rng.integers(0, 70, 500)
    pairs = synthetic._pair_affinity(tastes, genres, users, movies, chunk=64)
    np.testing.assert_allclose(pairs, synthetic._affinity(tastes, genres)[users, movies], rtol=1e-12)
    scores = rng.gumbel(size=(40, 70))
    for row in scores:
        for k in (1, 9, 70):
            assert set(synthetic._largest(row, k).tolist()) == set(np.argsort(-row)[:k].tolist())


def test_lines_are_written_in_chunks_as_one_file(tmp_path: Path) -> None:
    from rec_lib.data import synthetic

    lines = [f"{i}::line" for i in range(25)]
    synthetic._write_lines(tmp_path / "out.dat", iter(lines), chunk=4)
    assert (tmp_path / "out.dat").read_text() == "\n".join(lines) + "\n"
    assert not (tmp_path / "out.dat.tmp").exists()


def test_the_tables_do_not_depend_on_how_many_threads_draw_them(monkeypatch) -> None:
    """Each block of users draws from its own stream of the seed, so threads change the speed, not the data."""
    import pandas as pd

    from rec_lib.data import synthetic

    monkeypatch.setattr(synthetic, "BLOCK_SCORES", 20 * SMALL.n_movies)
    assert synthetic._block_rows(SMALL.n_movies) == 20, "ten blocks of users"
    alone, threaded = synthetic.generate_tables(SMALL, workers=1), synthetic.generate_tables(SMALL, workers=4)
    pd.testing.assert_frame_equal(alone.ratings, threaded.ratings)
    pd.testing.assert_frame_equal(alone.movies, threaded.movies)
    pd.testing.assert_frame_equal(alone.users, threaded.users)
