"""The store set-ups the integration tests run on: the embedded stores, MariaDB, and a Milvus server."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import sqlalchemy as sa

from rec_lib.serving.stores import StoreSettings
from rec_lib.serving.vector_store import VectorStoreConfig

BACKENDS = ["embedded", "mariadb", "milvus-server"]
_aliases = itertools.count()


def settings_for(backend: str, tmp_path: Path, request) -> StoreSettings:
    """Store settings for one of :data:`BACKENDS`; a server backend starts its server, so only the integration tier
    may ask for one."""
    if backend != "embedded" and request.node.path.parent.name != "integration":
        pytest.fail(f"{request.node.nodeid} starts a {backend} server: move it to tests/integration/")
    milvus_uri, sql_url = str(tmp_path / "milvus.db"), f"sqlite:///{tmp_path / 'movies.sqlite'}"
    if backend == "mariadb":
        server = request.getfixturevalue("mariadb")
        sql_url = server.url
        engine = sa.create_engine(sql_url)
        with engine.begin() as conn:
            conn.execute(sa.text("DROP TABLE IF EXISTS movies"))
        engine.dispose()
    if backend == "milvus-server":
        milvus_uri = request.getfixturevalue("milvus_server").uri
    # a fresh alias per test keeps tests independent on the shared Milvus server
    return StoreSettings(milvus_uri, sql_url, VectorStoreConfig(alias=f"movies_t{next(_aliases)}"))
