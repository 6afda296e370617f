"""The movie picker's logic and its widget handlers, headless."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import store_data

from rec_lib.reports.picker import MoviePicker, PickerError, PickerWidgets
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
    with pytest.raises(PickerError, match="no movie title matches “zzz”"):
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
    tick_genres(widgets, "G2")
    widgets.recommend_button.click()
    result = picker.last_result
    assert len(result) == 4 and all("G2" in g.split("|") for g in result["genres"])
    assert "4 recommendations" in widgets.status.value
    tick_genres(widgets)
    widgets.use_years.value = True
    widgets.year_from.value = widgets.year_to.value = 2100
    widgets.recommend_button.click()
    assert "0 recommendations" in widgets.status.value


def tick_genres(widgets: PickerWidgets, *genres: str) -> None:
    for box in widgets.genre_boxes:
        box.value = box.description in genres


@pytest.fixture
def widgets(picker: MoviePicker) -> PickerWidgets:
    return PickerWidgets(picker)


def test_remove_selects_nothing_so_a_second_remove_deletes_nothing(widgets: PickerWidgets) -> None:
    for query in ("matrix", "tokyo", "amelie"):
        widgets.search_box.value = query
        widgets.add_button.click()
    assert [value for _, value in widgets.liked.options] == [8, 7, 3]
    assert widgets.liked.value is None, "adding selects nothing in the liked list either"
    widgets.liked.value = 8
    widgets.remove_button.click()
    assert [value for _, value in widgets.liked.options] == [7, 3] and widgets.liked.value is None
    widgets.remove_button.click()
    assert [value for _, value in widgets.liked.options] == [7, 3], "nothing removed that the person did not choose"
    assert "Select a liked movie to remove first" in widgets.status.value


def test_results_are_cleared_when_the_selection_or_a_filter_changes(widgets: PickerWidgets, monkeypatch) -> None:
    cleared: list[int] = []
    monkeypatch.setattr(widgets.output, "clear_output", lambda *args, **kwargs: cleared.append(1))
    widgets.search_box.value = "matrix"
    widgets.add_button.click()
    changes = [
        lambda: (setattr(widgets.search_box, "value", "tokyo"), widgets.add_button.click()),
        lambda: (setattr(widgets.liked, "value", 7), widgets.remove_button.click()),
        lambda: tick_genres(widgets, "G1"),
        lambda: setattr(widgets.use_years, "value", True),
        lambda: setattr(widgets.year_to, "value", 1995),
        lambda: setattr(widgets.k, "value", 3),
    ]
    for change in changes:
        widgets.recommend_button.click()
        assert widgets.results_shown, widgets.status.value
        cleared.clear()
        change()
        assert cleared and not widgets.results_shown, "results for an earlier selection or filter do not stay"
        assert "press recommend" in widgets.status.value.lower()


def test_search_runs_as_the_person_types_and_selects_the_best_match(widgets: PickerWidgets) -> None:
    widgets.search_box.value = "movie"
    assert len(widgets.matches.options) == 20 and widgets.matches.index == 0
    assert "the best match is selected" in widgets.status.value
    widgets.add_button.click()
    assert widgets.picker.state.liked == [widgets.matches.options[0][1]]
    widgets.search_box.value = "   "
    assert widgets.matches.options == () and widgets.status.value == "", "an empty box says nothing"
    widgets.search_box.value = "zzz"
    assert "No movie title matches “zzz”" in widgets.status.value


def test_search_waits_for_a_pause_in_typing_in_a_live_kernel(picker: MoviePicker) -> None:
    """With an event loop running (as in a Jupyter kernel), keystrokes within the pause make one search."""
    import asyncio

    searches: list[str] = []
    widgets = PickerWidgets(picker, debounce_s=0.05)
    original = widgets.picker.search
    widgets.picker.search = lambda query, limit=20: (searches.append(query), original(query, limit))[1]

    async def type_title() -> None:
        for end in range(1, 7):
            widgets.search_box.value = "matrix"[:end]
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.2)

    asyncio.run(type_title())
    assert searches == ["matrix"] and widgets.matches.value == 8


def test_years_are_off_and_look_off_until_ticked_and_a_reversed_range_is_refused(widgets: PickerWidgets) -> None:
    assert widgets.year_from.disabled and widgets.year_to.disabled
    widgets.use_years.value = True
    assert not widgets.year_from.disabled and not widgets.year_to.disabled
    widgets.year_from.value, widgets.year_to.value = 1990, 1999
    widgets.recommend_button.click()
    assert widgets.picker.last_result["year"].between(1990, 1999).all()
    widgets.year_from.value = 2000
    widgets.recommend_button.click()
    assert "the first year (2000) is after the last (1999)" in widgets.status.value


def test_several_genres_are_ticks_that_combine_as_any(widgets: PickerWidgets) -> None:
    assert "any" in widgets.genre_note.value
    assert {box.description for box in widgets.genre_boxes} == {"G0", "G1", "G2", "Shared"}
    widgets.search_box.value = "matrix"
    widgets.add_button.click()
    widgets.k.value = 30
    tick_genres(widgets, "G0", "G1")
    widgets.recommend_button.click()
    genres = [set(g.split("|")) for g in widgets.picker.last_result["genres"]]
    assert all(g & {"G0", "G1"} for g in genres) and {"G0", "G1"} <= set().union(*genres)


def chart_texts(figure) -> tuple[list[str], str, tuple[float, float]]:
    axis = figure.axes[0]
    legend = axis.get_legend()
    return ([t.get_text() for t in legend.get_texts()] if legend else [], axis.get_xlabel(), axis.get_xlim())


def test_the_chart_shows_whole_titles_an_axis_from_zero_and_says_what_popular_scores_are(picker) -> None:
    from rec_lib.reports.figures import recommendation_scores

    picker.add(picker.find("amelie"))
    legend, xlabel, (left, _) = chart_texts(recommendation_scores(picker.recommend(10)))
    assert any(text.replace("\n", " ").endswith("(Fabuleux destin d'Amélie Poulain, Le) (2001)") for text in legend)
    assert all(text.startswith("because you liked") for text in legend) and left == 0
    assert xlabel.startswith("score")
    picker.clear()
    legend, xlabel, (left, _) = chart_texts(recommendation_scores(picker.recommend(5)))
    assert legend == [] and xlabel.startswith("number of ratings") and left == 0


def test_start_from_a_movielens_user(picker: MoviePicker, tmp_path: Path) -> None:
    from helpers import synthetic

    prep, _ = synthetic(tmp_path)
    user = int(prep.users["user_id"].iloc[0])
    liked = picker.start_from_user(prep, user, n=3)
    train = prep.split("train")
    assert liked == train.loc[train["user_id"] == user, "movie_id"].tolist()[-3:]
    with pytest.raises(PickerError, match="user -1 has no training ratings"):
        picker.start_from_user(prep, -1)


def test_a_ticked_list_is_a_set_and_a_users_start_is_a_history_until_edited(picker: MoviePicker, tmp_path) -> None:
    from helpers import synthetic

    for movie_id in (3, 6, 9):
        picker.add(movie_id)
    forward = picker.recommend(5)["movie_id"].tolist()
    picker.clear()
    for movie_id in (9, 3, 6):
        picker.add(movie_id)
    assert picker.state.mode == "set" and picker.recommend(5)["movie_id"].tolist() == forward, "any order"
    prep, _ = synthetic(tmp_path)
    user = int(prep.interactions["user_id"].iloc[0])
    latest = picker.start_from_user(prep, user, n=3)
    assert picker.state.mode == "history"
    as_history = picker.recommender.recommend(latest, 5, mode="history")["movie_id"].tolist()
    assert picker.recommend(5)["movie_id"].tolist() == as_history
    picker.remove(latest[0])
    assert picker.state.mode == "set", "an edited list is the person's own set"


def test_taste_samples_tick_each_profile_and_list_what_the_catalogue_lacks(picker: MoviePicker) -> None:
    from rec_lib.reports.picker import taste_samples

    profiles = {"arthouse": ("amelie", "the matrix", "no such film"), "nothing": ("no such film",)}
    samples = taste_samples(picker.recommender, profiles, k=4)
    assert samples.missing == {"arthouse": ["no such film"], "nothing": ["no such film"]}
    assert list(samples.table.columns) == ["arthouse"] and samples.table.index.tolist() == [1, 2, 3, 4]
    expected = picker.recommender.recommend([3, 8], 4)
    assert samples.table["arthouse"].tolist() == expected["title"].tolist(), "titles that end with their year"
    assert len(samples.ticked["arthouse"]) == 2
    assert samples.summary().splitlines()[1] == "nothing: nothing found (not in the catalogue: no such film)"
