"""Progress bars: off on request, and off everywhere under TQDM_DISABLE (headless reports)."""

from __future__ import annotations

import os
import subprocess
import sys

from rec_lib.progress import progress


def test_bars_can_be_switched_off() -> None:
    assert progress(range(2), False).disable is True


def test_tqdm_disable_wins_over_an_enabled_bar() -> None:
    """tqdm reads TQDM_DISABLE when it is imported, as in a report's kernel, so this runs in a fresh process."""
    script = "from rec_lib.progress import progress; print(progress(range(2), True).disable)"
    env = {**os.environ, "TQDM_DISABLE": "1"}
    assert subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True).stdout == "True\n"
    env.pop("TQDM_DISABLE")
    assert subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True).stdout == "False\n"
