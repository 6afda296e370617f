"""The movie picker: search titles, keep a list of liked movies, filter, recommend.

:class:`MoviePicker` is the logic with plain methods, usable and testable without Jupyter.
:class:`PickerWidgets` builds the ipywidgets around one picker and wires their events to handlers
that only call the picker and show what it returns; notebook 05 just displays it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from html import escape

import pandas as pd

from rec_lib.data.preprocess import Preprocessed
from rec_lib.errors import RecLibError
from rec_lib.serving.recommend import MAX_K, YEAR_RANGE, Recommender

DEFAULT_K = 10
SEARCH_LIMIT = 20
SEARCH_DEBOUNCE_S = 0.3
"""How long the picker waits after the last keystroke before it searches."""


TASTE_PROFILES: dict[str, tuple[str, ...]] = {
    "children's animation": ("toy story", "finding nemo", "monsters, inc", "ratatouille", "up (2009)"),
    "1970s-80s science fiction": (
        "alien",
        "blade runner",
        "star wars episode iv",
        "close encounters",
        "the terminator",
    ),
    "dark 1990s crime": ("pulp fiction", "reservoir dogs", "se7en", "goodfellas", "fargo"),
}
"""Three tastes whose recommendations a movie fan can judge: titles searched as the picker does, ticked in order."""


class PickerError(RecLibError):
    """Something the person using the picker did that cannot work; the message says what to do instead."""


@dataclass
class PickerState:
    liked: list[int] = field(default_factory=list)
    mode: str = "set"
    """How the liked list is read: "set" (ticked in no order), or "history" (a MovieLens user's latest movies,
    oldest first) from :meth:`MoviePicker.start_from_user` until the list is edited."""
    genres: tuple[str, ...] = ()
    years: tuple[int, int] | None = None
    k: int = DEFAULT_K


class MoviePicker:
    """Search → select → recommend over one recommender (and so one pair of stores)."""

    def __init__(self, recommender: Recommender) -> None:
        self.recommender = recommender
        self.metadata = recommender.stores.metadata
        self.state = PickerState()
        self.last_search = pd.DataFrame()
        self.last_result = pd.DataFrame()

    def search(self, query: str, limit: int = SEARCH_LIMIT) -> pd.DataFrame:
        """Titles containing ``query`` (case, accents and "Matrix, The" word order do not matter), popular first."""
        self.last_search = self.metadata.search(query, limit)
        return self.last_search

    def find(self, query: str) -> int:
        """The most-rated movie matching ``query``; :class:`PickerError` when none does."""
        found = self.search(query, limit=1)
        if found.empty:
            raise PickerError(f"no movie title matches “{query}”")
        return int(found["movie_id"].iloc[0])

    def add(self, movie_id: int) -> None:
        if not self.metadata.movies([movie_id]).shape[0]:
            raise PickerError(f"movie id {movie_id} is not in the catalogue")
        if movie_id not in self.state.liked:
            self.state.liked.append(int(movie_id))
            self.state.mode = "set"

    def remove(self, movie_id: int) -> None:
        if movie_id not in self.state.liked:
            raise PickerError(f"movie id {movie_id} is not among the liked movies")
        self.state.liked.remove(movie_id)
        self.state.mode = "set"

    def clear(self) -> None:
        self.state.liked.clear()
        self.state.mode = "set"

    def start_from_user(self, prep: Preprocessed, user_id: int, n: int = 5) -> list[int]:
        """Replace the liked list with a MovieLens user's ``n`` latest training movies, read as a history (the latest
        counts most) until the list is edited."""
        train = prep.split("train", ["user_id", "movie_id"])
        history = train.loc[train["user_id"] == user_id, "movie_id"]
        if history.empty:
            raise PickerError(f"user {user_id} has no training ratings in {prep.manifest.get('dataset')}")
        self.state.liked = [int(i) for i in history.to_numpy()[-n:]]
        self.state.mode = "history"
        return self.state.liked

    def set_filters(self, genres: list[str] | tuple[str, ...] = (), years: tuple[int, int] | None = None) -> None:
        self.state.genres = tuple(genres)
        self.state.years = years

    def liked_movies(self) -> pd.DataFrame:
        return self.metadata.movies(self.state.liked)[["movie_id", "title", "year", "genres"]]

    def recommend(self, k: int | None = None) -> pd.DataFrame:
        """Recommendations for the liked movies under the filters (popular movies when nothing is liked)."""
        if k is not None:
            self.state.k = k
        self.last_result = self.recommender.recommend(
            self.state.liked, self.state.k, mode=self.state.mode, genres=self.state.genres, years=self.state.years
        )
        return self.last_result


@dataclass(frozen=True)
class TasteSamples:
    """Recommendations for a few tastes: what each ticked, which titles the catalogue lacks, and the top K side by
    side (one column per taste, "Title (year)" per rank)."""

    ticked: dict[str, list[str]]
    missing: dict[str, list[str]]
    table: pd.DataFrame

    def summary(self) -> str:
        """One line per taste: the titles ticked, and any the catalogue lacks."""
        lines = []
        for name, missing in self.missing.items():
            line = f"{name}: " + ("; ".join(self.ticked.get(name, [])) or "nothing found")
            lines.append(line + (f" (not in the catalogue: {', '.join(missing)})" if missing else ""))
        return "\n".join(lines)


def taste_samples(
    recommender: Recommender, profiles: dict[str, tuple[str, ...]] = TASTE_PROFILES, k: int = DEFAULT_K
) -> TasteSamples:
    """Tick each profile's titles in a fresh picker (the best match of each; titles without a match are listed in
    ``missing``) and recommend ``k`` for it, as a person using the picker would."""
    ticked, missing, columns = {}, {}, {}
    for name, titles in profiles.items():
        picker = MoviePicker(recommender)
        missing[name] = []
        for title in titles:
            try:
                picker.add(picker.find(title))
            except PickerError:
                missing[name].append(title)
        if not picker.state.liked:
            continue
        ticked[name] = picker.liked_movies()["title"].tolist()
        result = picker.recommend(k)
        columns[name] = [_title_year(row.title, row.year) for row in result.itertuples()]
    table = pd.DataFrame({name: pd.Series(titles, dtype=object) for name, titles in columns.items()})
    table.index = pd.RangeIndex(1, len(table) + 1, name="rank")
    return TasteSamples(ticked, missing, table)


def _title_year(title: str, year) -> str:
    """``Title (year)`` unless the title already ends with its year.

    >>> _title_year("Up", 2009), _title_year("Up (2009)", 2009), _title_year("Up", None)
    ('Up (2009)', 'Up (2009)', 'Up')
    """
    return title if pd.isna(year) or title.endswith(f"({int(year)})") else f"{title} ({int(year)})"


class PickerWidgets:
    """The ipywidgets front of a :class:`MoviePicker`: build, wire, and show results or errors.

    Search runs as the person types (after a pause of ``debounce_s`` in a live kernel; at once without an
    event loop, as in tests) and selects the best match; an empty box says nothing. Removing a movie selects
    nothing else. Any change to the liked movies or the filters clears the results shown, which no longer
    answer them.
    """

    def __init__(
        self, picker: MoviePicker, year_range: tuple[int, int] = (1900, 2030), debounce_s: float = SEARCH_DEBOUNCE_S
    ) -> None:
        import ipywidgets as w

        self.picker = picker
        self.debounce_s = debounce_s
        self._pending_search: asyncio.TimerHandle | None = None
        wide = w.Layout(width="36em")
        self.search_box = w.Text(description="Title", placeholder="type part of a title, e.g. matrix", layout=wide)
        self.matches = w.Select(description="Matches", options=[], rows=8, layout=wide)
        self.add_button = w.Button(description="Add to liked", icon="plus")
        self.liked = w.Select(description="Liked", options=[], rows=6, layout=wide)
        self.remove_button = w.Button(description="Remove", icon="minus")
        self.genre_note = w.HTML(
            "<b>Genres</b>: a movie passes if it has <i>any</i> of the ticked genres; none ticked means every genre."
        )
        self.genre_boxes = [
            w.Checkbox(description=genre, value=False, indent=False, layout=w.Layout(width="11em"))
            for genre in picker.recommender.known_genres()
        ]
        self.use_years = w.Checkbox(description="Filter by year", value=False, indent=False)
        years = {
            "min": YEAR_RANGE[0], "max": YEAR_RANGE[1], "disabled": True, "layout": w.Layout(width="10em"),
            "style": {"description_width": "3em"},
        }  # fmt: skip
        self.year_from = w.BoundedIntText(description="From", value=year_range[0], **years)
        self.year_to = w.BoundedIntText(description="To", value=year_range[1], **years)
        self.k = w.IntSlider(description="How many", min=1, max=MAX_K, value=DEFAULT_K)
        self.recommend_button = w.Button(description="Recommend", button_style="primary", icon="film")
        self.status = w.HTML()
        self.output = w.Output()
        self.results_shown = False
        """Whether :attr:`output` holds the answer to the current selection and filters."""
        self.search_box.observe(self._schedule_search, names="value")
        self.add_button.on_click(self.on_add)
        self.remove_button.on_click(self.on_remove)
        self.recommend_button.on_click(self.on_recommend)
        self.use_years.observe(self._years_switched, names="value")
        for control in (*self.genre_boxes, self.year_from, self.year_to, self.k):
            control.observe(self._filters_changed, names="value")

    @property
    def selected_genres(self) -> tuple[str, ...]:
        return tuple(box.description for box in self.genre_boxes if box.value)

    def layout(self):
        import ipywidgets as w

        return w.VBox(
            [
                self.search_box,
                w.HBox([self.matches, self.add_button]),
                w.HBox([self.liked, self.remove_button]),
                self.genre_note,
                w.GridBox(self.genre_boxes, layout=w.Layout(grid_template_columns="repeat(5, 11em)")),
                w.HBox([self.use_years, self.year_from, self.year_to]),
                w.HBox([self.k, self.recommend_button]),
                self.status,
                self.output,
            ]
        )

    def _say(self, message: str, error: bool = False) -> None:
        colour = "#b00020" if error else "#333333"
        self.status.value = f'<span style="color:{colour}">{escape(message)}</span>' if message else ""

    def refresh_liked(self) -> None:
        liked = self.picker.liked_movies()
        self.liked.options = [(row.title, int(row.movie_id)) for row in liked.itertuples()]
        self.liked.index = None  # a new list of options selects its first; the person has chosen nothing

    def _schedule_search(self, change=None) -> None:
        if self._pending_search is not None:
            self._pending_search.cancel()
            self._pending_search = None
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is None or self.debounce_s <= 0:
            self.on_search()
        else:
            self._pending_search = loop.call_later(self.debounce_s, self.on_search)

    def on_search(self, change=None) -> None:
        self._pending_search = None
        query = self.search_box.value.strip()
        if not query:
            self.matches.options = []
            self._say("")
            return
        found = self.picker.search(query)
        self.matches.options = [(row.title, int(row.movie_id)) for row in found.itertuples()]
        if found.empty:
            self._say(f"No movie title matches “{query}”.", error=True)
            return
        self.matches.index = 0
        best = "the best match is selected" if len(found) > 1 else "it is selected"
        self._say(f"{len(found)} matches for “{query}”; {best}: press Add to liked.")

    def on_add(self, button=None) -> None:
        if self.matches.value is None:
            self._say("Select a movie among the matches first.", error=True)
            return
        self.picker.add(self.matches.value)
        self.refresh_liked()
        self._selection_changed()

    def on_remove(self, button=None) -> None:
        if self.liked.value is None:
            self._say("Select a liked movie to remove first.", error=True)
            return
        self.picker.remove(self.liked.value)
        self.refresh_liked()
        self._selection_changed()

    def _clear_results(self) -> None:
        self.output.clear_output()
        self.results_shown = False

    def _selection_changed(self) -> None:
        self._clear_results()
        self._say(f"{len(self.picker.state.liked)} liked movies. Press Recommend for recommendations.")

    def _years_switched(self, change=None) -> None:
        self.year_from.disabled = self.year_to.disabled = not self.use_years.value
        self._filters_changed()

    def _reading(self) -> str:
        """How the liked list was read, in words."""
        if not self.picker.state.liked:
            return "Nothing liked yet: these are the most popular movies."
        if self.picker.state.mode == "history":
            return "Read as this viewer's history: the latest movies count most."
        return "Your liked movies count alike, in any order."

    def _filters_changed(self, change=None) -> None:
        self._clear_results()
        self._say("The filters changed: press Recommend for new recommendations.")

    def on_recommend(self, button=None) -> None:
        from IPython.display import display

        from rec_lib.reports.figures import recommendation_scores

        years = (self.year_from.value, self.year_to.value) if self.use_years.value else None
        if years is not None and years[0] > years[1]:
            self._say(f"Years: the first year ({years[0]}) is after the last ({years[1]}).", error=True)
            return
        self.picker.set_filters(list(self.selected_genres), years)
        try:
            result = self.picker.recommend(self.k.value)
        except RecLibError as exc:
            self._say(str(exc), error=True)
            return
        self._say(f"{len(result)} recommendations. {self._reading()}")
        self._clear_results()
        with self.output:
            display(result[["title", "year", "genres", "score", "because"]])
            if len(result):
                display(recommendation_scores(result))
        self.results_shown = True
