"""Loaders: every layout into one schema, and every kind of bad input named precisely."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from conftest import ML1M_MOVIES, ML1M_RATINGS, write
from rec_lib.data.loaders import load_folder, load_movielens
from rec_lib.errors import DataFormatError

SCHEMA = {"user_id": "int64", "movie_id": "int64", "rating": "float32", "timestamp": "int64"}


def test_ml1m_layout_latin1_titles_and_users(ml1m_dir: Path) -> None:
    data = load_folder(ml1m_dir)
    assert data.layout == "ml-1m"
    assert dict(data.ratings.dtypes.astype(str)) == SCHEMA
    assert len(data.ratings) == 9
    movies = data.movies.set_index("movie_id")
    assert movies.loc[3, "title"] == "Misérables, Les (1995)"
    assert movies.loc[4, "year"] == 1999
    assert movies.loc[1, "genres"] == ["Animation", "Children's", "Comedy"]
    assert data.users is not None and data.users.set_index("user_id").loc[2, "age"] == 56


def test_ml100k_layout_genre_flags_and_latin1(ml100k_dir: Path) -> None:
    data = load_folder(ml100k_dir)
    assert data.layout == "ml-100k"
    assert dict(data.ratings.dtypes.astype(str)) == SCHEMA
    movies = data.movies.set_index("movie_id")
    assert movies.loc[1, "genres"] == ["Animation", "Children's", "Comedy"]
    assert movies.loc[3, "genres"] == ["unknown"]
    assert movies.loc[3, "title"] == "Café au lait (Métisse) (1993)"
    assert movies.loc[3, "year"] == 1993
    assert data.users is not None and list(data.users["occupation"]) == ["technician", "other"]


def test_csv_layout_crlf_quoted_titles_and_missing_year(csv_dir: Path) -> None:
    data = load_folder(csv_dir)
    assert data.layout == "csv" and data.users is None
    movies = data.movies.set_index("movie_id")
    assert movies.loc[2, "title"] == "City of Lost Children, The (Cité des enfants perdus, La) (1995)"
    assert movies.loc[2, "year"] == 1995
    assert pd.isna(movies.loc[3, "year"]) and movies.loc[3, "genres"] == []
    assert not any(title.endswith("\r") for title in data.movies["title"])
    assert data.ratings["rating"].tolist() == [4.0, 3.5, 0.5]


def test_ml1m_with_crlf_line_endings(tmp_path: Path) -> None:
    folder = tmp_path / "crlf-1m"
    write(folder / "movies.dat", ML1M_MOVIES, "latin-1", newline="\r\n")
    write(folder / "users.dat", "1::F::1::10::48067\n2::M::56::16::70072\n3::M::25::15::55117\n", newline="\r\n")
    write(folder / "ratings.dat", ML1M_RATINGS, newline="\r\n")
    data = load_folder(folder)
    assert data.movies["genres"].iloc[0] == ["Animation", "Children's", "Comedy"]
    assert data.users is not None and data.users["zip"].iloc[0] == "48067"


def test_real_ml_latest_small(real_data_dir: Path) -> None:
    data = load_movielens("ml-latest-small", real_data_dir, download=False)
    assert len(data.ratings) == 100_836
    assert data.ratings["user_id"].nunique() == 610
    assert data.ratings["movie_id"].nunique() == 9_724
    assert len(data.movies) == 9_742


def _broken(folder: Path, name: str, text: str, encoding: str = "latin-1") -> Path:
    write(folder / name, text, encoding)
    return folder


@pytest.mark.parametrize(
    ("name", "text", "line", "problem"),
    [
        ("ratings.dat", "1::1::5::978300760\n1::2::3\n", 2, "expected 4 fields"),
        ("ratings.dat", "1::1::5::978300760\n1::2::3::4::5\n", 2, "expected 4 fields"),
        ("ratings.dat", "1::1::5::978300760\n1::two::3::978300761\n", 2, "movie_id 'two' is not an integer"),
        ("ratings.dat", "1::1::5::978300760\n1::2::3.5x::978300761\n", 2, "rating '3.5x'"),
        ("ratings.dat", "1::1::5::978300760\n\n1::2::3::978300761\n", 2, "expected 4 fields"),
        ("ratings.dat", "1::1::5::978300760\n1::2::9::978300761\n", 2, "outside (0, 5]"),
        (
            "ratings.dat",
            "1::1::5::978300760\n1::2::3::978300761\n1::1::4::978300762\n",
            3,
            "duplicate user_id=1, movie_id=1",
        ),
        ("ratings.dat", "1::1::5::978300760\n1::99::3::978300761\n", 2, "movie_id 99 is not in movies.dat"),
        ("ratings.dat", "1::1::5::978300760\n7::2::3::978300761\n", 2, "user_id 7 is not in users.dat"),
        ("movies.dat", "1::Toy Story (1995)::Comedy\n1::Again (1996)::Drama\n", 2, "duplicate movie_id=1"),
    ],
)
def test_ml1m_bad_input_names_file_and_line(ml1m_dir: Path, name: str, text: str, line: int, problem: str) -> None:
    _broken(ml1m_dir, name, text)
    with pytest.raises(DataFormatError) as caught:
        load_folder(ml1m_dir)
    assert caught.value.path.name == name
    assert caught.value.line == line
    assert problem in str(caught.value)
    assert f"{name}, line {line}" in str(caught.value)


def test_utf8_file_where_latin1_is_expected(ml1m_dir: Path) -> None:
    write(ml1m_dir / "movies.dat", ML1M_MOVIES, "utf-8")
    with pytest.raises(DataFormatError, match=r"movies.dat, line 3: is UTF-8 encoded.*latin-1"):
        load_folder(ml1m_dir)


def test_latin1_file_where_utf8_is_expected(csv_dir: Path) -> None:
    write(csv_dir / "movies.csv", "movieId,title,genres\n1,Toy Story (1995),Comedy\n2,Café (2001),Drama\n", "latin-1")
    with pytest.raises(DataFormatError, match=r"movies.csv, line 3: byte \d+ \(0xe9\) is not valid UTF-8"):
        load_folder(csv_dir)


def test_csv_missing_column_names_header(csv_dir: Path) -> None:
    write(csv_dir / "ratings.csv", "userId,movieId,timestamp\n1,1,964982703\n")
    with pytest.raises(DataFormatError, match=r"ratings.csv, line 1: header lacks column\(s\) \['rating'\]"):
        load_folder(csv_dir, "csv")


def test_csv_bad_float_and_unknown_movie(csv_dir: Path) -> None:
    write(csv_dir / "ratings.csv", "userId,movieId,rating,timestamp\n1,1,4.0,1\n1,2,good,2\n")
    with pytest.raises(DataFormatError, match=r"ratings.csv, line 3: rating 'good' is not a number"):
        load_folder(csv_dir)
    write(csv_dir / "ratings.csv", "userId,movieId,rating,timestamp\n1,1,4.0,1\n1,42,3.0,2\n")
    with pytest.raises(DataFormatError, match=r"line 3: movie_id 42 is not in movies.csv"):
        load_folder(csv_dir)


def test_missing_file_is_named(ml1m_dir: Path) -> None:
    (ml1m_dir / "users.dat").unlink()
    with pytest.raises(DataFormatError, match=r"users.dat: file is missing"):
        load_folder(ml1m_dir, "ml-1m")
    with pytest.raises(DataFormatError, match="holds no MovieLens layout"):
        load_folder(ml1m_dir)


@pytest.mark.parametrize(
    ("ratings", "line", "problem"),
    [
        ("userId,movieId,rating,timestamp\n", None, "holds a header but no data lines"),
        (
            "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n99999999999999999999999,2,3.5,964981247\n",
            3,
            "userId 99999999999999999999999 is outside the 64-bit integer range",
        ),
        (
            "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,2,3.5,96498",
            3,
            "the last line has no line end, so the file looks cut short",
        ),
    ],
)
def test_bad_ratings_files_are_refused_and_nothing_is_cached(
    csv_dir: Path, tmp_path: Path, ratings: str, line: int | None, problem: str
) -> None:
    from rec_lib.data.preprocess import run_preprocess

    (csv_dir / "ratings.csv").write_text(ratings)
    for _ in range(2):  # a rerun meets the same error: no half-made preprocess was cached
        with pytest.raises(DataFormatError) as caught:
            run_preprocess(data_dir=csv_dir.parent, artefacts_dir=tmp_path / "art", config=_csv_config(csv_dir))
        assert caught.value.path.name == "ratings.csv" and caught.value.line == line
        assert problem in str(caught.value)
    assert not list((tmp_path / "art").rglob("manifest.json"))


def _csv_config(folder: Path):
    from rec_lib.data.preprocess import PreprocessConfig

    return PreprocessConfig(dataset=folder.name)
