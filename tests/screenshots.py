"""Screenshots of the product as a person sees it, for the README: the web page at a desktop's and a phone's width
after a recommendation, and the picker in a real JupyterLab after one.

    make screenshots        # after make demo, which loads the stores under artefacts/

It reads the stores ``make demo`` loaded (``--artefacts-dir``), ticks a few liked movies, and writes PNG files
to ``reports/screenshots/``. It starts JupyterLab and the API on free loopback ports and stops them at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from chromium import Page, start_chromium
from live_server import serve

from rec_lib.config import ARTEFACTS_DIR_ENV, PROJECT_ROOT, resolve_artefacts_dir
from rec_lib.serving.stores import StoreSettings, close_stores, open_loaded_stores

OUT_DIR = PROJECT_ROOT / "reports" / "screenshots"
LIKED = ["toy story (1995)", "finding nemo", "monsters, inc", "ratatouille", "up (2009)"]
"""A taste: five children's animations, ticked in this order."""
TOKEN = "screenshots"


def page_screenshots(settings: StoreSettings, out_dir: Path, profile: Path) -> list[Path]:
    written = []
    with serve(settings) as site:
        for name, (width, height) in {"page-desktop": (1400, 1000), "page-phone": (400, 800)}.items():
            browser = start_chromium(profile / name, width, height)
            try:
                page = Page(browser, site)
                page.log_in("Ada")
                for title in LIKED:
                    page.search(title)
                    page.all("#matches input")[0].click()
                page.recommend()
                time.sleep(0.5)
                written.append(out_dir / f"{name}.png")
                browser.save_screenshot(str(written[-1]))
            finally:
                browser.quit()
    return written


PICKER_NOTEBOOK = """from rec_lib.reports.picker import MoviePicker, PickerWidgets
from rec_lib.serving.recommend import Recommender
from rec_lib.serving.stores import StoreSettings, open_stores

picker = MoviePicker(Recommender(open_stores(StoreSettings.from_env())))
for title in {liked!r}:
    picker.add(picker.find(title))
widgets = PickerWidgets(picker)
widgets.refresh_liked()
widgets.layout()"""


def picker_screenshot(artefacts_dir: Path, out_dir: Path, profile: Path) -> Path:
    """The picker of notebook 05 in JupyterLab after Run All and Recommend."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    work = Path(tempfile.mkdtemp(prefix="picker-"))
    cells = [PICKER_NOTEBOOK.format(liked=LIKED), "widgets.on_recommend()"]
    notebook = {
        "cells": [{"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [], "source": c}
                  for c in cells],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "nbformat": 4, "nbformat_minor": 5,
    }  # fmt: skip
    (work / "picker.ipynb").write_text(json.dumps(notebook))
    settings = work / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false", "checkForUpdates": false}')
    port = _free_port()
    lab = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root", f"--port={port}",
         "--ip=127.0.0.1", f"--ServerApp.root_dir={work}", f"--IdentityProvider.token={TOKEN}",
         f"--LabApp.user_settings_dir={work / 'settings'}", f"--LabApp.workspaces_dir={work / 'workspaces'}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=work,
        env={**os.environ, ARTEFACTS_DIR_ENV: str(artefacts_dir)},
    )  # fmt: skip
    browser = start_chromium(profile / "lab", 1300, 2150)
    try:
        wait = WebDriverWait(browser, 180)
        _wait_for_port(port)
        browser.get(f"http://127.0.0.1:{port}/lab/tree/picker.ipynb?token={TOKEN}")
        wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, ".jp-Notebook .jp-Cell"))
        wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, ".jp-Notebook-ExecutionIndicator[data-status='idle']"))
        wait.until(lambda b: _click(b, "//div[contains(@class,'lm-MenuBar-itemLabel') and text()='Run']"))
        wait.until(lambda b: _click(b, "//div[contains(@class,'lm-Menu-itemLabel') and text()='Run All Cells']"))
        wait.until(
            lambda b: "recommendations." in b.page_source and b.find_elements(By.CSS_SELECTOR, ".widget-output img")
        )
        wait.until(lambda b: _type(b, ".widget-text input", "wall"))  # as a person does: it searches after a pause
        wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, ".widget-select select option"))
        browser.execute_script("document.querySelector('.jp-WindowedPanel-outer, .jp-Notebook').scrollTop = 0")
        time.sleep(1)
        path = out_dir / "picker-jupyterlab.png"
        browser.save_screenshot(str(path))
        return path
    finally:
        browser.quit()
        lab.terminate()
        lab.wait(timeout=60)


def _click(browser, xpath: str) -> bool:
    """Click the element at ``xpath``; False while JupyterLab is still drawing it (missing or replaced)."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.common.by import By

    try:
        browser.find_element(By.XPATH, xpath).click()
    except (NoSuchElementException, StaleElementReferenceException):
        return False
    return True


def _type(browser, selector: str, text: str) -> bool:
    """Click into the element at ``selector`` and type ``text``; False while it is missing or replaced."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.common.by import By

    try:
        box = browser.find_element(By.CSS_SELECTOR, selector)
        box.click()
        box.send_keys(text)
    except (NoSuchElementException, StaleElementReferenceException):
        return False
    return True


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_port(port: int, within_s: float = 120) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.5)
    raise RuntimeError(f"JupyterLab did not listen on port {port} within {within_s:g} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--artefacts-dir", default=None, help="where make demo loaded the stores (default artefacts/)")
    parser.add_argument("--out", type=Path, default=OUT_DIR)
    args = parser.parse_args()
    artefacts_dir = resolve_artefacts_dir(args.artefacts_dir)
    os.environ.pop("MILVUS_URI", None)
    os.environ.pop("MYSQL_URL", None)
    settings = StoreSettings.from_env(artefacts_dir)
    open_loaded_stores(settings)  # a clear error now if make demo has not loaded them
    close_stores(settings)
    args.out.mkdir(parents=True, exist_ok=True)
    profile = Path(tempfile.mkdtemp(prefix="chromium-"))
    written = [picker_screenshot(artefacts_dir, args.out, profile)]
    written += page_screenshots(settings, args.out, profile)
    for path in written:
        print(f"wrote {path.relative_to(PROJECT_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
