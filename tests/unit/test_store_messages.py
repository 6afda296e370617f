"""What messages say about where the stores are: paths that work from where the person is, never absolute."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rec_lib.serving.redact import public_location, public_path
from rec_lib.serving.vector_store import busy_advice


@pytest.fixture
def in_notebooks(tmp_path: Path, monkeypatch) -> Path:
    """A project with notebooks/ and artefacts/, the working directory being notebooks/ (as a kernel's is)."""
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "artefacts" / "milvus.db").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "notebooks")
    return tmp_path


def test_both_stores_are_shown_the_same_way_relative_to_where_the_person_is(in_notebooks: Path) -> None:
    artefacts = in_notebooks / "artefacts"
    assert public_path(artefacts / "milvus.db") == "../artefacts/milvus.db"
    assert public_location(f"sqlite:///{artefacts / 'movies.sqlite'}") == "sqlite:///../artefacts/movies.sqlite"
    assert public_path(in_notebooks / "notebooks" / "x.db") == "x.db"
    assert public_path("/srv/far/away/milvus.db") == "milvus.db", "a path far from here shows its name alone"


def test_the_busy_lite_dir_advice_names_a_data_dir_that_works_as_printed(in_notebooks: Path) -> None:
    data_dir = in_notebooks / "artefacts" / "milvus.db"
    advice = busy_advice(str(data_dir))
    suggested = re.search(r"--data-dir (\S+)", advice)[1]
    assert (Path.cwd() / suggested).resolve() == data_dir.resolve()
    assert str(in_notebooks) not in advice, "no absolute path"


def test_an_idle_milvus_connection_pings_no_more_often_than_a_grpc_server_allows(tmp_path: Path) -> None:
    """pymilvus pings every 10 s even with no call in flight; a Lite server answered an idle kernel's connection
    with GOAWAY too_many_pings error lines. The channel the store opens must not ping an idle connection."""
    from rec_lib.serving.vector_store import VectorStore

    store = VectorStore(str(tmp_path / "milvus.db"))
    try:
        handler = store.client._get_connection()
        assert handler._grpc_options["grpc.keepalive_permit_without_calls"] == 0
        assert handler._grpc_options["grpc.keepalive_time_ms"] >= 300_000, "gRPC servers' default minimum"
    finally:
        store.close()
