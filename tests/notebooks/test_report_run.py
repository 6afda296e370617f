"""A full headless report run 01→06 on ml-latest-small, as `make demo` runs it."""

from __future__ import annotations

import json
from pathlib import Path

from rec_lib.data.content import TITLE_HASH_DIMS
from rec_lib.pinsage.checkpoint import CHECKPOINT_BEST, checkpoint_vocab
from rec_lib.reports.runner import NOTEBOOKS, baseline_from, compare, run_notebooks, write_summary


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
    product = [name for name, _ in seen if name != "06_cold_start"]
    assert product == list(NOTEBOOKS[:5]), "the product's lane runs in order"
    shown_at_05 = dict(seen)["05_recommend"]
    assert set(NOTEBOOKS[:5]) <= set(shown_at_05), "05's result is shown with everything it built on"
    assert observed["wall_seconds"] < sum(observed["seconds"].values()), "06 ran beside 02-05, not after them"
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
    assert "After 01, notebooks 02-05 and 06 ran side by side" in text
