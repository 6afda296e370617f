"""Regression reports: the comparison with a baseline, accepting a baseline, and a full headless run 01→05."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rec_lib.cli import main
from rec_lib.errors import RecLibError
from rec_lib.pinsage.content import TITLE_HASH_DIMS
from rec_lib.pinsage.train import CHECKPOINT_BEST, checkpoint_vocab
from rec_lib.reports.runner import NOTEBOOKS, Baseline, Check, baseline_from, compare, run_notebooks, write_summary


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


@pytest.mark.notebooks
def test_every_notebook_runs_headlessly_into_a_report(real_data_dir: Path, tmp_path: Path, monkeypatch) -> None:
    """Notebooks 01→06 on ml-latest-small with the smoke profile, as `make demo` runs them with the default one."""
    monkeypatch.delenv("MILVUS_URI", raising=False)
    monkeypatch.delenv("MYSQL_URL", raising=False)
    out = tmp_path / "report"
    seen: list[tuple[str, list[str]]] = []
    observed = run_notebooks(
        "ml-latest-small", "smoke", out, data_dir=str(real_data_dir), artefacts_dir=str(tmp_path / "a"),
        after_each=lambda name, recorded, seconds: seen.append((name, list(recorded))),
    )  # fmt: skip
    assert list(observed["seconds"]) == list(NOTEBOOKS)
    assert seen[4] == ("05_recommend", list(NOTEBOOKS[:5])), "05's result is shown before 06 starts"
    assert observed["checked"]["n_ratings"] == 100_836
    assert observed["checked"]["consistent"] is True and observed["checked"]["milvus_count"] == 9_724
    assert observed["checked"]["n_recommendations"] == 10
    train = observed["notebooks"]["02_train"]
    rows = {(r["model"], r["protocol"], r["split"]): r for r in train["metrics"]}
    assert observed["checked"]["pinsage_test_hr_B"] == rows["pinsage", "B", "test"]["hr"]
    assert len({(r["model"], r["protocol"], r["split"]) for r in train["metrics"]}) == 4 * 2 * 2
    assert train["config"]["hidden_dims"] == 16 and train["batches_per_s"] > 0
    assert train["search_ran"] is False, "a report shows the committed search, it does not re-run it"
    export = observed["notebooks"]["03_export_embeddings"]
    vocab = checkpoint_vocab(Path(train["run_dir"]) / CHECKPOINT_BEST)
    content_dims = len(vocab.genres) + TITLE_HASH_DIMS + len(vocab.years) - 1
    assert (export["n_vectors"], export["dim"]) == (9_724, 16 + content_dims), "hidden 16 and the content channel"
    assert export["run_dir"] == train["run_dir"], "03 exports the run 02 trained"
    assert {row["query"] for row in export["neighbours"]} >= {"Toy Story (1995)", "Matrix, The (1999)"}
    load = observed["notebooks"]["04_load"]
    assert load["index_type"] == "FLAT" and load["sql_count"] == 9_724
    assert not {r["movie_id"] for r in load["sample_recommendations"]} & {1, 260, 1196}
    recommend = observed["notebooks"]["05_recommend"]
    assert [m["title"] for m in recommend["liked"]] == [
        "Toy Story (1995)", "Star Wars: Episode IV - A New Hope (1977)", "Matrix, The (1999)",
    ]  # fmt: skip
    cold = observed["notebooks"]["06_cold_start"]
    assert cold["cold_new_movies"] > 0 and cold["cold_events"] > 0
    models = {"pinsage", "content", "popular-new", "popular-new-live", "item-knn", "ease"}
    assert set(cold["cold_hr"]) == {f"{m}@{k}" for m in models for k in (0, 1, 3, 10)}
    hr = cold["cold_hr"]
    assert hr["item-knn@0"] == hr["ease@0"] == hr["popular-new@0"], "with nothing revealed they rank at chance"
    assert hr["content@0"] == hr["content@10"] and hr["popular-new-live@0"] == hr["popular-new-live@10"]
    assert hr["content@0"] > hr["item-knn@0"], "features tell new movies apart"
    for name in NOTEBOOKS:
        assert (out / "notebooks" / f"{name}.ipynb").is_file() and (out / "html" / f"{name}.html").is_file()
    assert len(list((out / "figures").glob("*.png"))) >= 4
    assert json.loads((out / "metrics.json").read_text())["checked"] == observed["checked"]
    summary = write_summary(out, observed, compare(observed, baseline_from(observed, None, "self")), out / "b.json")
    text = summary.read_text()
    assert "**PASSED**" in text and "## Sample recommendations" in text and "| 05_recommend |" in text


def test_the_demo_shows_the_warm_result_before_the_cold_start_notebook(capsys) -> None:
    from rec_lib.cli import _warm_result_before_cold_start

    recorded = {
        "02_train": {"pinsage_test_hr_B": 0.1377},
        "05_recommend": {
            "liked": [{"title": "Toy Story (1995)"}, {"title": "Up (2009)"}],
            "recommendations": [{"title": f"Movie {i}", "because": "Up (2009)"} for i in range(12)],
        },
    }
    _warm_result_before_cold_start("04_load", recorded, {"02_train": 600.0})
    assert capsys.readouterr().out == ""
    _warm_result_before_cold_start("05_recommend", recorded, {"02_train": 600.0})
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "PinSage test HR@10 (a viewer's recent history): 0.138"
    assert out[1] == "sample recommendations for someone who likes Toy Story (1995), Up (2009):"
    assert out[2] == "   1. Movie 0  (because you liked Up (2009))" and len(out) == 2 + 10 + 1
    assert out[-1].startswith("now notebook 06") and "about 12 minutes" in out[-1]
