"""The web page and /docs in headless Chromium, driven as a person does: log in, search, tick, filter, recommend,
switch user, type bad numbers, use the keyboard, read it at a phone's width, execute every /docs example."""

from __future__ import annotations

from pathlib import Path

import pytest
from chromium import Page, chromium_installed, start_chromium
from helpers import store_data
from live_server import serve
from servers import unavailable

from rec_lib.serving.stores import StoreSettings, close_stores, load_stores, open_stores


@pytest.fixture
def browser(tmp_path: Path):
    if not chromium_installed():
        unavailable("Chromium is not installed: apt-get install chromium chromium-driver")
    session = start_chromium(tmp_path / "chromium", 1400, 1000)
    yield session
    session.quit()


@pytest.fixture
def site(tmp_path: Path):
    settings = StoreSettings(str(tmp_path / "milvus.db"), f"sqlite:///{tmp_path / 'movies.sqlite'}")
    load_stores(open_stores(settings), *store_data())
    with serve(settings) as url:
        yield url
    close_stores(settings)


def test_search_tick_recommend_and_reload(browser, site: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 20)
    browser.get(site + "/")
    name = browser.find_element(By.ID, "name")
    name.send_keys("Ada", Keys.ENTER)
    wait.until(ec.visibility_of_element_located((By.ID, "query")))
    assert browser.find_element(By.ID, "who").text == "Logged in as Ada."

    def tick(query: str, movie_id: int) -> None:
        box = browser.find_element(By.ID, "query")
        box.clear()
        box.send_keys(query, Keys.ENTER)
        selector = f'#matches input[data-movie-id="{movie_id}"]'
        wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, selector))).click()

    tick("the matrix", 8)
    tick("amelie", 3)
    assert browser.find_element(By.ID, "liked-count").text == "(2)"
    browser.find_element(By.ID, "recommend").click()
    wait.until(lambda b: len(b.find_elements(By.CSS_SELECTOR, "#results tbody tr")) == 10)
    rows = [r.text for r in browser.find_elements(By.CSS_SELECTOR, "#results tbody tr")]
    assert all("Matrix, The" in r or "Amélie" in r for r in rows), "every row says which liked movie it came from"
    assert "10 recommendations for your 2 liked movies" in browser.find_element(By.ID, "results-status").text

    browser.refresh()
    wait.until(lambda b: b.find_element(By.ID, "liked-count").text == "(2)")
    liked = browser.find_elements(By.CSS_SELECTOR, "#liked input:checked")
    assert sorted(int(box.get_attribute("data-movie-id")) for box in liked) == [3, 8]
    assert browser.find_element(By.ID, "who").text == "Logged in as Ada."
    labels = {label.get_attribute("for") for label in browser.find_elements(By.CSS_SELECTOR, "label[for]")}
    assert {"name", "query", "k", "year-from", "year-to"} <= labels


def test_a_corrupt_saved_selection_is_discarded_and_the_page_still_opens(browser, site: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(site + "/")
    for corrupt in ("{not json", '{"a": 1}', '[[1, "x"], "oops"]'):
        browser.execute_script(
            "localStorage.setItem('rec_lib.user', 'Bo'); localStorage.setItem('rec_lib.liked.bo', arguments[0]);",
            corrupt,
        )
        browser.refresh()
        WebDriverWait(browser, 20).until(ec.visibility_of_element_located((By.ID, "query")))
        assert browser.find_element(By.ID, "who").text == "Logged in as Bo."
        assert browser.find_element(By.ID, "liked-count").text in ("", "(0)")
        assert "could not be read" in browser.find_element(By.ID, "search-status").text
        assert browser.execute_script("return localStorage.getItem('rec_lib.liked.bo')") is None


def test_api_docs_render_without_network(browser, site: str) -> None:
    """The tests run without a route to the internet: Swagger UI renders from the server's own files."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(site + "/docs")
    WebDriverWait(browser, 20).until(lambda b: b.find_elements(By.CSS_SELECTOR, ".swagger-ui .opblock"))
    paths = {e.text for e in browser.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")}
    assert {"/recommend", "/health"} <= paths


def test_switching_user_shows_nothing_of_the_previous_one(browser, site: str) -> None:
    page = Page(browser, site)
    page.log_in("bob")
    page.tick("matrix", 8)
    page.type_into("#k", "5")
    assert len(page.recommend()) == 5
    page.log_in("alice")
    assert page.text("#who") == "Logged in as alice."
    assert page.find("#query").get_attribute("value") == ""
    assert page.all("#matches li") == [] and page.all("#results tbody tr") == []
    assert page.text("#search-status") == page.text("#results-status") == ""
    assert page.text("#liked-count") == "(0)" and page.find("#k").get_attribute("value") == "10"
    page.log_in("  BOB ")
    assert page.text("#who") == "Logged in as BOB.", "names are trimmed"
    assert page.text("#liked-count") == "(1)", "and case does not make another person"
    assert page.all("#results tbody tr") == []


@pytest.mark.parametrize("typed", ["101", "-3", "2.5", "0", "abc", ""])
def test_a_bad_how_many_is_said_in_words_and_nothing_is_sent(browser, site: str, typed: str) -> None:
    page = Page(browser, site)
    page.log_in("carol")
    page.tick("matrix", 8)
    page.type_into("#k", typed)
    page.recommend()
    status = page.find("#results-status")
    assert status.text.startswith("How many: type a"), status.text
    assert "error" in status.get_attribute("class") and "422" not in status.text and "{" not in status.text
    assert page.all("#results tbody tr") == [], "nothing was asked of the server"
    in_view = "const r = document.getElementById('results-status').getBoundingClientRect(); " \
        "return r.top >= 0 && r.bottom <= window.innerHeight"  # fmt: skip
    assert browser.execute_script(in_view), "the message is where the person is looking"


def test_years_and_several_genres_filter_as_the_api_does(browser, site: str) -> None:
    page = Page(browser, site)
    page.log_in("dana")
    page.tick("matrix", 8)
    legend = page.text("#options fieldset:nth-of-type(2) legend")
    assert "any" in legend, "the page says how several genres combine"
    for genre in ("G0", "G1"):
        page.find(f'#genres input[value="{genre}"]').click()
    page.type_into("#year-from", "1983")
    page.type_into("#year-to", "1995")
    rows = page.recommend()
    assert rows, page.text("#results-status")
    assert all(1983 <= int(year) <= 1995 for year in page.cells(3))
    assert all({"G0", "G1"} & set(genres.split(", ")) for genres in page.cells(4))
    page.type_into("#year-from", "2000")
    page.type_into("#year-to", "1990")
    page.recommend()
    assert page.text("#results-status") == "Years: the first year (2000) is after the last (1990)."


def test_changing_the_selection_marks_results_stale(browser, site: str) -> None:
    page = Page(browser, site)
    page.log_in("erin")
    page.tick("matrix", 8)
    page.recommend()
    assert "stale" not in page.find("#results").get_attribute("class")
    page.tick("amelie", 3)
    assert "stale" in page.find("#results").get_attribute("class")
    assert "press Recommend to update" in page.text("#results-status")


def test_keyboard_only_enter_ticks_and_results_come_into_view(browser, site: str) -> None:
    from selenium.webdriver.common.keys import Keys

    page = Page(browser, site)
    page.log_in("fay")
    page.search("matrix")
    page.find("#query").send_keys(Keys.TAB)  # to the Search button
    browser.switch_to.active_element.send_keys(Keys.TAB)  # to the best match
    focused = browser.switch_to.active_element
    assert focused.get_attribute("type") == "checkbox"
    focused.send_keys(Keys.ENTER)
    page.wait.until(lambda b: page.text("#liked-count") == "(1)")
    page.find("#k").send_keys(Keys.ENTER)  # Enter in a field of the options submits them
    page.wait.until(lambda b: len(page.all("#results tbody tr")) == 10)
    top = browser.execute_script(
        "return [document.querySelector('#results tbody tr').getBoundingClientRect().top, window.innerHeight]"
    )
    assert 0 <= top[0] < top[1] - 100, f"the results are brought into view: {top}"


def test_at_a_phones_width_nothing_scrolls_sideways_and_every_column_reads(browser, site: str) -> None:
    browser.set_window_size(400, 800)
    page = Page(browser, site)
    page.log_in("gus")
    page.tick("amelie", 3)
    assert len(page.recommend()) == 10
    widths = browser.execute_script(
        "return [document.documentElement.scrollWidth, document.documentElement.clientWidth,"
        " document.getElementById('results').getBoundingClientRect().width]"
    )
    assert widths[0] <= widths[1] and widths[2] <= widths[1], f"no horizontal scroll at 400 px: {widths}"
    cells = browser.execute_script(
        "return [...document.querySelectorAll('#results tbody tr:first-child td')].map(td => "
        "[getComputedStyle(td, '::before').content, td.textContent, td.getBoundingClientRect().right])"
    )
    labels = [label.strip('"') for label, _, _ in cells]
    assert labels == ["#", "Title", "Year", "Genres", "Score", "Because you liked"]
    assert cells[-1][1].startswith("Amélie") and all(right <= widths[1] for _, _, right in cells)


def test_every_docs_example_succeeds_when_executed_as_shown(browser, site: str) -> None:
    """Try it out → Execute on every route in Swagger UI, as a person would: each answers 2xx."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(site + "/docs")
    wait = WebDriverWait(browser, 20)
    wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, ".swagger-ui .opblock"))
    statuses, answered = {}, ".live-responses-table tbody .response-col_status"
    for index in range(len(browser.find_elements(By.CSS_SELECTOR, ".opblock"))):
        block = browser.find_elements(By.CSS_SELECTOR, ".opblock")[index]
        route = block.find_element(By.CSS_SELECTOR, ".opblock-summary-path").text
        block.find_element(By.CSS_SELECTOR, ".opblock-summary").click()
        wait.until(lambda b, block=block: block.find_elements(By.CSS_SELECTOR, ".try-out__btn"))
        block.find_element(By.CSS_SELECTOR, ".try-out__btn").click()
        wait.until(lambda b, block=block: block.find_elements(By.CSS_SELECTOR, ".execute"))
        block.find_element(By.CSS_SELECTOR, ".execute").click()
        wait.until(lambda b, block=block: block.find_elements(By.CSS_SELECTOR, answered))
        statuses[route] = block.find_element(By.CSS_SELECTOR, answered).text
    assert len(statuses) == 6 and all(status.startswith("2") for status in statuses.values()), statuses
