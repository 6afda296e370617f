"""The one atomic write, and where committed results are read from."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rec_lib.experiments.coldstart import reference_rows
from rec_lib.experiments.tuning import load_search
from rec_lib.files import atomic_write, write_json


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = write_json(tmp_path / "table.json", {"rows": [1]})
    with pytest.raises(RuntimeError), atomic_write(target) as out:
        out.write(b'{"rows": [')
        raise RuntimeError("the writer died half-way")
    assert json.loads(target.read_text()) == {"rows": [1]}
    assert [p.name for p in tmp_path.iterdir()] == ["table.json"]


def test_committed_results_are_read_from_the_reports_dir_setting(tmp_path: Path, monkeypatch) -> None:
    rows = [{"model": "content", "revealed": 0, "hr": 0.16, "split": "cold-test"}]
    write_json(tmp_path / "coldstart" / "d.json", {"rows": rows})
    monkeypatch.setenv("REC_REPORTS_DIR", str(tmp_path))
    assert reference_rows("d").to_dict(orient="records") == rows
    assert reference_rows("absent") is None
    assert load_search("absent").empty
