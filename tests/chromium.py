"""Headless Chromium driven by Selenium, started the way this machine allows (no network, no sandbox as root),
and :class:`Page`, the web page as a person uses it: the browser tests and tests/screenshots.py share both."""

from __future__ import annotations

import shutil
from pathlib import Path

FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-dev-shm-usage", "--hide-scrollbars",
)  # fmt: skip


def chromium_installed() -> bool:
    return bool(shutil.which("chromium") and shutil.which("chromedriver"))


def start_chromium(profile_dir: Path, width: int, height: int):
    """A new Chromium session with its own empty profile, its window ``width`` × ``height`` pixels."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in (*FLAGS, f"--user-data-dir={profile_dir}"):
        options.add_argument(flag)
    session = webdriver.Chrome(options=options, service=Service(executable_path=shutil.which("chromedriver")))
    session.set_window_size(width, height)
    session.implicitly_wait(0)
    return session


class Page:
    """The page as a person uses it, one method per thing they do."""

    def __init__(self, browser, site: str) -> None:
        from selenium.webdriver.support.ui import WebDriverWait

        self.browser, self.wait = browser, WebDriverWait(browser, 20)
        browser.get(site + "/")

    def find(self, selector: str):
        from selenium.webdriver.common.by import By

        return self.browser.find_element(By.CSS_SELECTOR, selector)

    def all(self, selector: str) -> list:
        from selenium.webdriver.common.by import By

        return self.browser.find_elements(By.CSS_SELECTOR, selector)

    def text(self, selector: str) -> str:
        return self.find(selector).text

    def log_in(self, name: str) -> None:
        from selenium.webdriver.common.keys import Keys

        box = self.find("#name")
        box.clear()
        box.send_keys(name, Keys.ENTER)
        self.wait.until(lambda b: self.find("#query").is_displayed() and self.text("#who").startswith("Logged in"))

    def search(self, query: str) -> None:
        from selenium.webdriver.common.keys import Keys

        box = self.find("#query")
        box.clear()
        box.send_keys(query, Keys.ENTER)
        self.wait.until(lambda b: "match" in self.text("#search-status"))

    def tick(self, query: str, movie_id: int) -> None:
        self.search(query)
        self.find(f'#matches input[data-movie-id="{movie_id}"]').click()

    def type_into(self, selector: str, text: str) -> None:
        box = self.find(selector)
        box.clear()
        box.send_keys(text)

    def recommend(self) -> list[str]:
        """Press Recommend and wait for the page's answer; the rows of the results table."""
        self.browser.execute_script("document.getElementById('results-status').textContent = ''")
        self.find("#recommend").click()
        self.wait.until(lambda b: self.text("#results-status") not in ("", "Working…"))
        return [row.text for row in self.all("#results tbody tr")]

    def cells(self, column: int) -> list[str]:
        return [cell.get_attribute("textContent") for cell in self.all(f"#results tbody td:nth-child({column})")]
