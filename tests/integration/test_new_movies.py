"""add-movies: vectors for movies the model never saw, added to loaded stores in one consistent step."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from helpers import PLANTED
from store_backends import BACKENDS, settings_for

from rec_lib.cli import main
from rec_lib.contracts import load_embeddings
from rec_lib.data.loaders import load_folder, read_movies_csv, read_ratings_csv
from rec_lib.data.synthetic import generate_ml1m
from rec_lib.errors import DataFormatError
from rec_lib.experiments.runs import find_run
from rec_lib.pinsage.new_movies import check_new_movies, new_movie_vectors
from rec_lib.reports.picker import MoviePicker
from rec_lib.serving.api import create_app
from rec_lib.serving.metadata_store import catalogue_rows, movie_rows
from rec_lib.serving.recommend import ExactRecommender, Recommender
from rec_lib.serving.stores import add_to_stores, close_stores, load_stores, open_stores

NEW_IDS = (100_001, 100_002)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path, Path]:
    """A small trained and exported run on planted-cluster data: (data dir, artefacts dir, dataset folder)."""
    root = tmp_path_factory.mktemp("new-movies")
    folder = generate_ml1m(root / "data" / "planted", PLANTED)
    common = ["--dataset", "planted", "--artefacts-dir", str(root / "art")]
    train = ["train", *common, "--data-dir", str(root / "data"), "--no-download", "--device", "cpu"]
    small = ["--hidden-dims", "16", "--num-epochs", "3", "--batches-per-epoch", "40", "--batch-size", "64"]
    assert main([*train, *small]) == 0
    assert main(["export", *common, "--device", "cpu"]) == 0
    return root / "data", root / "art", folder


def _new_movies(folder: Path, out: Path) -> tuple[Path, Path]:
    """Two new movies, each a copy of a planted movie's genres, rated by that movie's first ten raters."""
    data = load_folder(folder)
    lines, ratings = ["movieId,title,genres"], ["userId,movieId,rating,timestamp"]
    for new_id, model_id in zip(NEW_IDS, data.movies["movie_id"].iloc[[0, 1]], strict=True):
        genres = data.movies.set_index("movie_id").loc[model_id, "genres"]
        lines.append(f'{new_id},"Brand New {new_id} (2031)",{"|".join(genres) or "(no genres listed)"}')
        raters = data.ratings[data.ratings["movie_id"] == model_id].head(10)
        ratings += [f"{u},{new_id},4.0,{2_000_000_000 + i}" for i, u in enumerate(raters["user_id"])]
    movies_csv, ratings_csv = out / "new_movies.csv", out / "new_ratings.csv"
    movies_csv.write_text("\n".join(lines) + "\n")
    ratings_csv.write_text("\n".join(ratings) + "\n")
    return movies_csv, ratings_csv


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_added_movie_is_recommended_for_movies_its_vector_is_close_to(
    trained, backend: str, tmp_path: Path, request
) -> None:
    _, artefacts, folder = trained
    run = find_run("planted", artefacts)
    settings = settings_for(backend, tmp_path, request)
    stores = open_stores(settings)
    try:
        load_stores(stores, load_embeddings(run.directory), movie_rows(run.load_data()))
        movies_csv, ratings_csv = _new_movies(folder, tmp_path)
        new = new_movie_vectors(
            run.directory, run.load_data(), read_movies_csv(movies_csv), read_ratings_csv(ratings_csv), device="cpu"
        )
        assert new.movie_ids.tolist() == list(NEW_IDS) and len(new.first_ratings) == 20 and new.already_trained == []
        report = add_to_stores(stores, new.movie_ids, new.stored, catalogue_rows(new.movies, new.first_ratings))
        assert report.consistency.ok and report.movies == run.load_data().n_movies + 2

        ids = stores.vectors.movie_ids()
        stored = np.stack([v for _, v in sorted(stores.vectors.fetch(ids.tolist()).items())])
        exact = ExactRecommender(ids, stored, stores.vectors.query_rule())
        new_id = NEW_IDS[0]
        liked = max(
            (i for i in ids.tolist() if i not in NEW_IDS),
            key=lambda i: -list(exact.recommend([i], len(ids) - 1)).index(new_id),
        )
        assert new_id in exact.recommend([liked], 10).tolist(), "the new movie is among its nearest movie's top 10"
        recommended = Recommender(stores).recommend([liked], 10)
        assert new_id in recommended["movie_id"].tolist()
        assert recommended.set_index("movie_id").loc[new_id, "title"] == f"Brand New {new_id} (2031)"

        if backend == "embedded":
            _shown_like_any_other(stores, settings, new_id, liked)

        again = new_movie_vectors(
            run.directory, run.load_data(), read_movies_csv(movies_csv), read_ratings_csv(ratings_csv), device="cpu"
        )
        np.testing.assert_array_equal(again.stored, new.stored)
        second = add_to_stores(stores, again.movie_ids, again.stored, catalogue_rows(again.movies, again.first_ratings))
        assert second.consistency.ok and second.movies == report.movies, "adding the same movies again changes nothing"
        np.testing.assert_allclose(stores.vectors.fetch([new_id])[new_id], new.stored[0], rtol=1e-6)
    finally:
        close_stores(settings)


def _shown_like_any_other(stores, settings, new_id: int, liked: int) -> None:
    """The picker and the HTTP API (what the page calls) find, show and use an added movie."""
    picker = MoviePicker(Recommender(stores))
    assert picker.search("brand new")["movie_id"].tolist() == list(NEW_IDS)
    picker.add(new_id)
    assert picker.recommend(5)["movie_id"].notna().all() and new_id in picker.liked_movies()["movie_id"].tolist()
    with TestClient(create_app(settings)) as client:
        assert [m["movie_id"] for m in client.get("/movies/search", params={"q": "Brand New"}).json()] == list(NEW_IDS)
        assert client.get(f"/movies/{new_id}").json()["title"] == f"Brand New {new_id} (2031)"
        answer = client.post("/recommend", json={"liked": [liked], "k": 10})
        assert answer.status_code == 200 and new_id in [m["movie_id"] for m in answer.json()["recommendations"]]
        assert client.post("/recommend", json={"liked": [new_id], "k": 5}).status_code == 200


def _add(artefacts: Path, *files: Path) -> list[str]:
    args = ["add-movies", "--dataset", "planted", "--artefacts-dir", str(artefacts), "--device", "cpu"]
    args += ["--file", str(files[0])]
    if len(files) > 1:
        args += ["--ratings", str(files[1])]
    return args


def test_add_movies_cli_adds_and_refuses_bad_files_without_writing(
    trained, tmp_path: Path, capsys, monkeypatch
) -> None:
    monkeypatch.delenv("MILVUS_URI", raising=False)
    monkeypatch.delenv("MYSQL_URL", raising=False)
    _, artefacts, folder = trained
    assert main(["load", "--dataset", "planted", "--artefacts-dir", str(artefacts)]) == 0
    movies_csv, ratings_csv = _new_movies(folder, tmp_path)
    assert main(_add(artefacts, movies_csv, ratings_csv)) == 0
    out = capsys.readouterr().out
    assert f"added 2 movies with 20 first ratings: {list(NEW_IDS)}" in out and "consistent:" in out

    from rec_lib.serving.stores import StoreSettings

    stores = open_stores(StoreSettings.from_env(artefacts))
    before = (stores.vectors.collection(), stores.vectors.count(), stores.metadata.count())
    existing_title = load_folder(folder).movies["title"].iloc[0]
    bad = {
        "missing column": ("movieId,title\n5,Some Movie (2000)\n", "header lacks column(s) ['genres']", 1),
        "duplicate id": (
            "movieId,title,genres\n200001,A (2030),Drama\n200001,B (2030),Drama\n",
            "duplicate movie_id=200001 on lines 2, 3",
            3,
        ),
        "another title": ("movieId,title,genres\n200001,A (2030),Drama\n1,Not It (2030),Drama\n", existing_title, 3),
        "empty genres": ("movieId,title,genres\n200001,A (2030),\n", "genres missing or empty", 2),
        "empty title": ('movieId,title,genres\n200001,"",Drama\n', "title missing or empty", 2),
    }
    for name, (text, problem, line) in bad.items():
        path = tmp_path / f"{name.replace(' ', '_')}.csv"
        path.write_text(text)
        assert main(_add(artefacts, path)) == 2, name
        err = capsys.readouterr().err
        assert f"{path}, line {line}:" in err and problem in err, (name, err)
    stray = tmp_path / "stray_ratings.csv"
    stray.write_text("userId,movieId,rating,timestamp\n1,100001,4.0,1\n1,5,4.0,2\n")
    assert main(_add(artefacts, movies_csv, stray)) == 2
    err = capsys.readouterr().err
    assert f"{stray}, line 3:" in err and "movieId 5 is not among the movies of new_movies.csv" in err
    nan_rating = tmp_path / "nan_ratings.csv"
    nan_rating.write_text("userId,movieId,rating,timestamp\n1,100001,nan,1\n")
    assert main(_add(artefacts, movies_csv, nan_rating)) == 2
    assert f"{nan_rating}, line 2:" in capsys.readouterr().err
    after = (stores.vectors.collection(), stores.vectors.count(), stores.metadata.count())
    assert after == before, "a refused file writes nothing"
    close_stores()


def test_collision_check_names_the_line_and_both_titles(tmp_path: Path) -> None:
    movies = pd.DataFrame({"movie_id": [7, 8], "title": ["Fine (2030)", "Clash (2030)"]})
    titles = pd.Series({8: "Original (1990)"})
    with pytest.raises(
        DataFormatError, match=r"line 3: movieId 8 is already 'Original \(1990\)'.*not 'Clash \(2030\)'"
    ):
        check_new_movies(movies, titles, tmp_path / "new.csv")
    check_new_movies(movies, pd.Series({8: "Clash (2030)"}), tmp_path / "new.csv")
