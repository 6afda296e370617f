"""The web page in headless Chromium: log in, search, tick two movies, recommend, reload, selection kept."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from helpers import store_data
from live_server import serve
from servers import unavailable

from rec_lib.serving.stores import StoreSettings, close_stores, load_stores, open_stores


@pytest.fixture
def browser(tmp_path: Path):
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver:
        unavailable("Chromium is not installed: apt-get install chromium chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                 f"--user-data-dir={tmp_path / 'chromium'}"):  # fmt: skip
        options.add_argument(flag)
    session = webdriver.Chrome(options=options, service=Service(executable_path=driver))
    session.implicitly_wait(0)
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
    assert {"name", "query", "k", "genre"} <= labels


def test_a_corrupt_saved_selection_is_discarded_and_the_page_still_opens(browser, site: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(site + "/")
    for corrupt in ("{not json", '{"a": 1}', '[[1, "x"], "oops"]'):
        browser.execute_script(
            "localStorage.setItem('rec_lib.user', 'Bo'); localStorage.setItem('rec_lib.liked.Bo', arguments[0]);",
            corrupt,
        )
        browser.refresh()
        WebDriverWait(browser, 20).until(ec.visibility_of_element_located((By.ID, "query")))
        assert browser.find_element(By.ID, "who").text == "Logged in as Bo."
        assert browser.find_element(By.ID, "liked-count").text in ("", "(0)")
        assert "could not be read" in browser.find_element(By.ID, "search-status").text
        assert browser.execute_script("return localStorage.getItem('rec_lib.liked.Bo')") is None


def test_api_docs_render_without_network(browser, site: str) -> None:
    """The tests run without a route to the internet: Swagger UI renders from the server's own files."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(site + "/docs")
    WebDriverWait(browser, 20).until(lambda b: b.find_elements(By.CSS_SELECTOR, ".swagger-ui .opblock"))
    paths = {e.text for e in browser.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")}
    assert {"/recommend", "/health"} <= paths
