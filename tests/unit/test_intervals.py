"""PinSage's paired intervals on the timeline table, from the per-user results each committed row keeps."""

import json

import numpy as np
import pytest

from rec_lib.errors import RecLibError
from rec_lib.experiments.intervals import GAINS, HITS, timeline_intervals, timeline_models


def _row(hits, **extra) -> dict:
    return {HITS: hits, GAINS: [h * 0.5 for h in hits], **extra}


def test_seeds_are_averaged_per_user_before_the_paired_difference() -> None:
    models = {
        "pinsage": [_row([1, 1, 0, 1]), _row([1, 0, 0, 1])],  # per user 1, 0.5, 0, 1
        "ease": [_row([0, 0, 0, 1])],
    }
    line = timeline_intervals(models, resamples=500).iloc[0]
    assert (line["against"], line["seeds"], line["their_seeds"]) == ("ease", 2, 1)
    assert line["hr"] == pytest.approx((1 + 0.5 + 0 + 0) / 4)
    assert line["ndcg"] == pytest.approx(line["hr"] * 0.5)
    assert line["hr_low"] <= line["hr"] <= line["hr_high"] and line["hr_low"] >= 0.0
    models["sasrec"] = [_row([1, 0, 1])]
    with pytest.raises(RecLibError, match="different users"):
        timeline_intervals(models)
    with pytest.raises(RecLibError, match="no per-user results for pinsage"):
        timeline_intervals({"ease": models["ease"]})


def test_the_committed_files_are_read_by_model(tmp_path) -> None:
    def write(suffix: str, rows: list[dict]) -> None:
        (tmp_path / f"syn{suffix}.json").write_text(json.dumps({"rows": rows}))

    write("", [_row([1, 0], name="defaults", seed=0), _row([0, 0], name="no bias", seed=0)])
    write("-sasrec", [_row([0, 1], seed=0), {"seed": 0, "protocol": "A", "split": "test"}])
    write("-baseline-grid", [_row([1, 1], model="ease", chosen=True), _row([0, 0], model="ease", chosen=False)])
    models = timeline_models(tmp_path, "syn")
    assert {name: len(rows) for name, rows in models.items()} == {"pinsage": 1, "sasrec": 1, "ease, tuned": 1}
    assert np.array_equal(models["ease, tuned"][0][HITS], [1, 1])


def test_the_intervals_command_reads_the_committed_files_and_writes_its_table(tmp_path, monkeypatch, capsys) -> None:
    from rec_lib.cli import main

    tuning = tmp_path / "tuning"
    tuning.mkdir()
    (tuning / "syn.json").write_text(json.dumps({"rows": [_row([1, 1, 0], name="defaults", seed=s) for s in (0, 1)]}))
    (tuning / "syn-baselines.json").write_text(json.dumps({"rows": [_row([0, 1, 0], model="ease")]}))
    monkeypatch.setenv("REC_REPORTS_DIR", str(tmp_path))
    assert main(["intervals", "--dataset", "syn", "--resamples", "200"]) == 0
    written = json.loads((tuning / "syn-intervals.json").read_text())
    assert written["metadata"] == {"dataset": "syn", "resamples": 200}
    (line,) = written["rows"]
    assert line["against"] == "ease" and line["hr"] == pytest.approx(1 / 3) and line["seeds"] == 2
    assert "ease" in capsys.readouterr().out
