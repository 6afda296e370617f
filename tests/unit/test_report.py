"""Regression reports: the comparison with a baseline, accepting a baseline, and a full headless run 01→05."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rec_lib.cli import main
from rec_lib.errors import RecLibError
from rec_lib.reports.runner import Baseline, Check, baseline_from, compare


def metrics(hr: float = 0.07, seconds: float = 100.0, consistent: bool = True) -> dict:
    return {
        "dataset": "ml-latest-small",
        "profile": "smoke",
        "created_at": "2026-11-28T00:00:00+00:00",
        "seconds": {"02_train": seconds},
        "checked": {"pinsage_test_hr_B": hr, "consistent": consistent, "milvus_count": 9724},
        "notebooks": {},
    }


BASELINE = Baseline(
    {
        "pinsage_test_hr_B": Check(0.07, 0.01, "higher"),
        "consistent": Check(1.0, 0.0, "equal"),
        "milvus_count": Check(9724, 0, "equal"),
    },
    {"02_train": 300.0},
)


def test_a_passing_metrics_file_passes() -> None:
    result = compare(metrics(hr=0.0605, seconds=299), BASELINE)
    assert result.passed and not result.failures()


@pytest.mark.parametrize(
    ("changed", "failure"),
    [
        ({"hr": 0.059}, "pinsage_test_hr_B: 0.059 vs baseline 0.07 (≥ 0.0600)"),
        ({"seconds": 301}, "02_train seconds: 301 vs baseline 300.0 (≤ 300)"),
        ({"consistent": False}, "consistent: False vs baseline 1.0 (= 1.0000 ± 0.0)"),
    ],
)
def test_a_failing_metrics_file_fails_with_a_readable_diff(changed: dict, failure: str) -> None:
    result = compare(metrics(**changed), BASELINE)
    assert not result.passed
    assert result.failures() == [failure]
    assert "**FAIL**" in result.markdown()


def test_a_missing_metric_fails() -> None:
    observed = metrics()
    del observed["checked"]["milvus_count"]
    assert compare(observed, BASELINE).failures() == ["milvus_count: None vs baseline 9724 (= 9724 ± 0)"]


def test_accepting_keeps_tolerances_and_writes_a_reviewable_file(tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.json").write_text(json.dumps(metrics(hr=0.08, seconds=50)))
    target = tmp_path / "baseline.json"
    BASELINE.write(target)
    assert main(["report", "--accept", str(run), "--baseline", str(target)]) == 0
    accepted = Baseline.read(target)
    assert accepted.metrics["pinsage_test_hr_B"] == Check(0.08, 0.01, "higher")
    assert accepted.metrics["consistent"].direction == "equal"
    assert accepted.max_seconds == {"02_train": 150.0}
    assert accepted.source == str(run)
    assert "review it with git diff" in capsys.readouterr().out
    fresh = baseline_from(metrics(), None, "x")
    assert fresh.metrics["milvus_count"] == Check(9724.0, 0.0, "equal")
    assert fresh.max_seconds["02_train"] == 300.0
    with pytest.raises(RecLibError, match="no baseline at"):
        Baseline.read(tmp_path / "nowhere.json")


def test_the_demo_shows_the_warm_result_before_the_cold_start_notebook(capsys) -> None:
    from rec_lib.cli import _warm_result_before_cold_start

    recorded = {
        "02_train": {"pinsage_test_hr_B": 0.1377},
        "05_recommend": {
            "liked": [{"title": "Toy Story (1995)"}, {"title": "Up (2009)"}],
            "recommendations": [{"title": f"Movie {i}", "because": "Up (2009)"} for i in range(12)],
        },
    }
    seconds = {"02_train": 1200.0, "03_export_embeddings": 30.0, "04_load": 20.0}
    _warm_result_before_cold_start("04_load", recorded, seconds)
    assert capsys.readouterr().out == ""
    seconds["05_recommend"] = 10.0
    _warm_result_before_cold_start("05_recommend", recorded, seconds)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "PinSage test HR@10 (a viewer's recent history): 0.138"
    assert out[1] == "sample recommendations for someone who likes Toy Story (1995), Up (2009):"
    assert out[2] == "   1. Movie 0  (because you liked Up (2009))" and len(out) == 2 + 10 + 1
    assert out[-1].startswith("notebook 06") and "beside notebooks 02-05: about 1-5 more minutes" in out[-1]
    recorded["06_cold_start"] = {"cold_events": 1}
    _warm_result_before_cold_start("05_recommend", recorded, seconds)
    assert len(capsys.readouterr().out.splitlines()) == 2 + 10, "nothing to wait for once 06 has ended"


def test_a_failing_notebook_stops_the_lane_beside_it(tmp_path: Path, monkeypatch) -> None:
    """03 fails while 06 trains beside it: 06 is stopped at once, and the failure raised is 03's."""
    from rec_lib.reports import runner

    ran: list[tuple[str, int | None]] = []

    def execute(name, out_dir, parameters, cell_timeout_s, notebook_timeout_s, threads=None, cancel=None):
        ran.append((name, threads))
        if name == "03_export_embeddings":
            raise RecLibError("03 failed")
        if name == "06_cold_start":
            assert cancel.wait(30), "06 was not told to stop"
            raise RecLibError("06 was stopped")
        return out_dir / f"{name}.ipynb"

    monkeypatch.setattr(runner, "_execute", execute)
    monkeypatch.setattr(runner, "read_notebook", lambda path: {})
    monkeypatch.setattr(runner, "_render", lambda executed, out_dir: None)
    monkeypatch.setattr(runner, "lane_threads", lambda: 3)
    with pytest.raises(RecLibError, match="03 failed"):
        runner.run_notebooks("ml-latest-small", "smoke", tmp_path)
    assert ran[0] == ("01_preprocess", None), "01 runs first, on every core"
    assert set(ran[1:]) == {("02_train", 3), ("03_export_embeddings", 3), ("06_cold_start", 3)}, "04 never starts"
    assert not (tmp_path / "metrics.json").exists()


def test_each_lane_gets_an_equal_share_of_the_cores(monkeypatch) -> None:
    from rec_lib.reports import runner

    monkeypatch.setattr(runner.os, "sched_getaffinity", lambda pid: set(range(5)), raising=False)
    assert runner.lane_threads() == 2
    monkeypatch.setattr(runner.os, "sched_getaffinity", lambda pid: {0}, raising=False)
    assert runner.lane_threads() == 1
