"""A test's folder is its tier: conftest refuses a test outside the tier folders and a server in the unit tier."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).parents[1]


def _run(tmp_path: Path, files: dict[str, str]) -> subprocess.CompletedProcess:
    root = tmp_path / "tests"
    root.mkdir(parents=True)
    shutil.copy(TESTS / "conftest.py", root / "conftest.py")
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--collect-only", str(root)]
    return subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=120)


def test_a_test_outside_the_tier_folders_is_refused(tmp_path: Path) -> None:
    done = _run(tmp_path, {"test_loose.py": "def test_x():\n    pass\n"})
    assert done.returncode != 0 and "is not in a tier folder" in done.stdout + done.stderr


def test_a_unit_test_that_asks_for_a_server_is_refused(tmp_path: Path) -> None:
    done = _run(tmp_path, {"unit/test_db.py": "def test_x(mariadb):\n    pass\n"})
    assert done.returncode != 0 and "move it to tests/integration/" in done.stdout + done.stderr
    fine = _run(tmp_path / "again", {"integration/test_db.py": "def test_x(mariadb):\n    pass\n"})
    assert fine.returncode == 0, fine.stdout + fine.stderr
