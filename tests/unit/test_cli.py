"""The CLI mirrors the notebooks and reports errors in one readable line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from rec_lib.cli import main


def test_preprocess_prints_statistics(ml1m_dir: Path, tmp_path: Path, capsys) -> None:
    code = main(
        [
            "preprocess",
            "--dataset",
            ml1m_dir.name,
            "--data-dir",
            str(ml1m_dir.parent),
            "--artefacts-dir",
            str(tmp_path / "art"),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "ratings" in out and " 9" in out
    assert "note: 1 users with fewer than 3 ratings" in out


def test_pipeline_runs_every_step_without_notebooks(ml1m_dir: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.delenv("MILVUS_URI", raising=False)
    monkeypatch.delenv("MYSQL_URL", raising=False)
    assert (
        main(
            [
                "pipeline",
                "--dataset",
                ml1m_dir.name,
                "--data-dir",
                str(ml1m_dir.parent),
                "--artefacts-dir",
                str(tmp_path / "art"),
                "--hidden-dims",
                "8",
                "--num-epochs",
                "1",
                "--batches-per-epoch",
                "2",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "graph: 3 users, 4 movies, 5 training edges each way" in out
    assert "consistent:" in out and "recommendations for liked movies" in out


def test_errors_are_one_line_and_exit_2(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "rec_lib",
            "preprocess",
            "--dataset",
            "ml-1m",
            "--data-dir",
            str(tmp_path),
            "--no-download",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: Dataset 'ml-1m' is not in")
    assert "Traceback" not in result.stderr


def test_synthesize_writes_ml1m_files(tmp_path: Path) -> None:
    assert (
        main(["synthesize", "--out", str(tmp_path / "s"), "--users", "30", "--movies", "60", "--ratings", "900"]) == 0
    )
    assert {p.name for p in (tmp_path / "s").iterdir()} == {"ratings.dat", "movies.dat", "users.dat"}


def test_train_then_evaluate_prints_one_table_and_writes_json(ml1m_dir: Path, tmp_path: Path, capsys) -> None:
    common = [
        "--dataset",
        ml1m_dir.name,
        "--data-dir",
        str(ml1m_dir.parent),
        "--artefacts-dir",
        str(tmp_path / "a"),
        "--hidden-dims",
        "8",
        "--num-epochs",
        "1",
        "--batches-per-epoch",
        "2",
        "--batch-size",
        "4",
        "--device",
        "cpu",
    ]
    assert main(["train", *common]) == 0
    assert "epoch 1: loss" in capsys.readouterr().out
    out_file = tmp_path / "eval.json"
    run = ["--dataset", ml1m_dir.name, "--artefacts-dir", str(tmp_path / "a")]
    assert main(["evaluate", *run, "--out", str(out_file), "--ease-l2", "1"]) == 0
    printed = capsys.readouterr().out
    for model in ("pinsage", "most-popular", "item-knn", "ease"):
        assert model in printed
    import json

    rows = json.loads(out_file.read_text())["rows"]
    assert {(r["model"], r["protocol"], r["split"]) for r in rows} >= {("pinsage", "B", "test"), ("ease", "A", "val")}


def test_evaluate_without_training_says_what_to_do(ml1m_dir: Path, tmp_path: Path, capsys) -> None:
    code = main(
        [
            "evaluate",
            "--dataset",
            ml1m_dir.name,
            "--artefacts-dir",
            str(tmp_path / "empty"),
        ]
    )
    assert code == 2
    assert "train first (notebook 02 or python -m rec_lib train)" in capsys.readouterr().err


def test_export_load_recommend(ml1m_dir: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.delenv("MILVUS_URI", raising=False)
    monkeypatch.delenv("MYSQL_URL", raising=False)
    common = ["--dataset", ml1m_dir.name, "--data-dir", str(ml1m_dir.parent), "--artefacts-dir", str(tmp_path / "a")]
    small = ["--hidden-dims", "8", "--num-epochs", "1", "--batches-per-epoch", "2", "--batch-size", "4"]
    assert main(["train", *common, *small, "--device", "cpu"]) == 0
    run = ["--dataset", ml1m_dir.name, "--artefacts-dir", str(tmp_path / "a")]
    assert main(["load", *run]) == 2
    assert "export first (python -m rec_lib export)" in capsys.readouterr().err
    assert main(["export", *run, "--device", "cpu"]) == 0
    assert "finite" in capsys.readouterr().out
    assert main(["load", *run]) == 0
    loaded = capsys.readouterr().out
    assert "consistent:" in loaded and "FLAT" in loaded
    assert main(["recommend", "--artefacts-dir", str(tmp_path / "a"), "--liked", "1", "-k", "2"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["title", "year", "genres", "score", "because"]
    assert len(table) == 3
    assert main(["recommend", "--artefacts-dir", str(tmp_path / "a"), "--liked", "424242"]) == 2
    assert "unknown movie ids: 424242" in capsys.readouterr().err


def test_training_flags_parse_every_field_type(tmp_path: Path) -> None:
    """Booleans can be switched off, choices are checked, numbers keep their type."""
    import argparse

    import pytest

    from rec_lib.cli import _parser, _train_config

    parser = _parser()
    args = parser.parse_args(
        ["train", "--use-bias", "False", "--logq-correction", "no", "--lr", "0.01", "--hidden-dims", "32",
         "--loss", "margin", "--query-pooling", "fixed"]
    )  # fmt: skip
    config = _train_config(args)
    assert config.use_bias is False and config.logq_correction is False
    assert config.lr == 0.01 and config.hidden_dims == 32 and isinstance(config.hidden_dims, int)
    assert config.loss == "margin" and config.query_pooling == "fixed"
    assert _train_config(parser.parse_args(["train", "--use-bias", "TRUE"])).use_bias is True
    for bad in (["--use-bias", "maybe"], ["--loss", "hinge"], ["--hidden-dims", "2.5"]):
        with pytest.raises(SystemExit):
            parser.parse_args(["train", *bad])
    assert isinstance(parser.parse_args(["train"]).use_bias, bool)
    with pytest.raises(argparse.ArgumentTypeError):
        from rec_lib.cli import parse_bool

        parse_bool("2")


def _serve(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    import os

    clean = {k: v for k, v in os.environ.items() if k not in ("MILVUS_URI", "MYSQL_URL", "REC_ARTEFACTS_DIR")}
    return subprocess.run(
        [sys.executable, "-m", "rec_lib", "serve", "--port", "9", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env={**clean, **(env or {})},
    )


def test_serve_refuses_a_dir_with_nothing_loaded_and_creates_nothing(tmp_path: Path) -> None:
    typo = tmp_path / "artefacts-typo"
    result = _serve("--artefacts-dir", str(typo))
    assert result.returncode == 2 and "serving on" not in result.stdout
    assert result.stderr.startswith("error: nothing is loaded here: ") and "python -m rec_lib load" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and str(tmp_path) not in result.stderr
    assert not typo.exists(), "no empty stores were created"


def _loaded_artefacts(folder: Path) -> None:
    script = (
        "import sys; sys.path.insert(0, 'tests'); from helpers import store_data; "
        "from rec_lib.serving.stores import *; e, r = store_data(); "
        f"load_stores(open_stores(StoreSettings.from_env({str(folder)!r})), e, r)"
    )
    subprocess.run([sys.executable, "-c", script], check=True, cwd=Path(__file__).parents[2])


def test_serve_on_a_busy_lite_data_dir_prints_only_the_clear_error(tmp_path: Path) -> None:
    from helpers import lite_dir_held

    _loaded_artefacts(tmp_path)
    with lite_dir_held(tmp_path / "milvus.db"):
        result = _serve("--artefacts-dir", str(tmp_path))
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("error: the Milvus Lite data dir milvus.db is open in another process")
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_serve_with_workers_needs_a_milvus_server(tmp_path: Path) -> None:
    _loaded_artefacts(tmp_path)
    result = _serve("--artefacts-dir", str(tmp_path), "--workers", "2")
    assert result.returncode == 2 and "--workers 2 needs a Milvus server" in result.stderr
    assert "serving on" not in result.stdout


def test_serve_beyond_loopback_warns_that_there_is_no_authentication(tmp_path: Path) -> None:
    from servers import free_port

    _loaded_artefacts(tmp_path)
    clean = {k: v for k, v in __import__("os").environ.items() if k not in ("MILVUS_URI", "MYSQL_URL")}
    server = subprocess.Popen(
        [sys.executable, "-m", "rec_lib", "serve", "--artefacts-dir", str(tmp_path), "--host", "0.0.0.0",
         "--port", str(free_port())],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean,
    )  # fmt: skip
    try:
        assert server.stdout.readline().startswith("serving milvus.db and sqlite:///movies.sqlite on http://0.0.0.0")
    finally:
        server.terminate()
        _, err = server.communicate(timeout=30)
    assert "warning: listening on 0.0.0.0: the API has no authentication" in err
