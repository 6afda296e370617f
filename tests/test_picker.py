"""The movie picker's logic and its widget handlers, headless."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import store_data

from rec_lib.serving.picker import MoviePicker, PickerError, PickerWidgets
from rec_lib.serving.recommend import POPULAR, Recommender
from rec_lib.serving.stores import StoreSettings, close_stores, load_stores, open_stores


@pytest.fixture
def picker(tmp_path: Path):
    settings = StoreSettings(str(tmp_path / "milvus.db"), f"sqlite:///{tmp_path / 'movies.sqlite'}")
    stores = open_stores(settings)
    load_stores(stores, *store_data())
    yield MoviePicker(Recommender(stores))
    close_stores(settings)


def test_search_add_remove_recommend(picker: MoviePicker) -> None:
    assert picker.find("Matrix, The") == picker.find("the MATRIX") == 8
    assert picker.find("amelie") == 3
    picker.add(3)
    picker.add(6)
    picker.add(3)
    assert picker.state.liked == [3, 6]
    picker.remove(6)
    picker.add(9)
    result = picker.recommend(5)
    assert len(result) == 5 and set(result["because_id"]) <= {3, 9}
    assert picker.liked_movies()["movie_id"].tolist() == [3, 9]
    picker.set_filters(["G1"], (1980, 1989))
    filtered = picker.recommend()
    assert all("G1" in g.split("|") for g in filtered["genres"]) and filtered["year"].between(1980, 1989).all()


def test_bad_input_says_what_to_do(picker: MoviePicker) -> None:
    with pytest.raises(PickerError, match="no movie title matches 'zzz'"):
        picker.find("zzz")
    with pytest.raises(PickerError, match="not in the catalogue"):
        picker.add(10**6)
    with pytest.raises(PickerError, match="not among the liked"):
        picker.remove(3)
    picker.clear()
    assert (picker.recommend(3)["because"] == POPULAR).all()


def test_widget_handlers_headless(picker: MoviePicker) -> None:
    widgets = PickerWidgets(picker)
    widgets.add_button.click()
    assert "Select a movie among the matches first" in widgets.status.value
    widgets.search_box.value = "zzz nothing"
    assert widgets.matches.options == () and "No movie title matches" in widgets.status.value
    widgets.search_box.value = "matrix"
    assert widgets.matches.options == (("Matrix, The (1999)", 8),)
    widgets.matches.value = 8
    widgets.add_button.click()
    widgets.search_box.value = "tokyo"
    widgets.matches.value = 7
    widgets.add_button.click()
    assert [value for _, value in widgets.liked.options] == [8, 7]
    widgets.liked.value = 7
    widgets.remove_button.click()
    assert [value for _, value in widgets.liked.options] == [8]
    widgets.k.value = 4
    widgets.genres.value = ("G2",)
    widgets.recommend_button.click()
    result = picker.last_result
    assert len(result) == 4 and all("G2" in g.split("|") for g in result["genres"])
    assert "4 recommendations" in widgets.status.value
    widgets.genres.value = ()
    widgets.use_years.value = True
    widgets.years.value = (2100, 2100)
    widgets.recommend_button.click()
    assert "0 recommendations" in widgets.status.value


def test_start_from_a_movielens_user(picker: MoviePicker, tmp_path: Path) -> None:
    from helpers import synthetic

    prep, _ = synthetic(tmp_path)
    user = int(prep.users["user_id"].iloc[0])
    liked = picker.start_from_user(prep, user, n=3)
    train = prep.split("train")
    assert liked == train.loc[train["user_id"] == user, "movie_id"].tolist()[-3:]
    with pytest.raises(PickerError, match="user -1 has no training ratings"):
        picker.start_from_user(prep, -1)
