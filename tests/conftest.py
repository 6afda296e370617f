"""Shared fixtures: tiny datasets written in each MovieLens layout, and paths to the real data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rec_lib.config import PROJECT_ROOT

REAL_DATA_DIR = PROJECT_ROOT.parent / "shared" / "data"
TIERS = ("unit", "integration", "notebooks")
"""Each test file lives in the folder of its tier: tests/unit, tests/integration (servers), tests/notebooks."""
SERVER_FIXTURES = {"mariadb", "milvus_server", "browser", "site"}
"""Fixtures that start a server or a browser: only the integration tier may ask for them."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test with its folder's tier; refuse a test outside the tier folders, and a server in the unit tier.

    ``make test-fast`` runs the unit tier; ``make test`` and CI run every tier. Tests of a performance contract
    (how many calls, threads, connections) also carry the ``perf`` marker.
    """
    for item in items:
        tier = item.path.parent.name
        if item.path.name.startswith("test_"):
            if tier not in TIERS or item.path.parent.parent != Path(__file__).parent:
                folders = "|".join(TIERS)
                raise pytest.UsageError(f"{item.path.name} is not in a tier folder: move it to tests/<{folders}>/")
            servers = SERVER_FIXTURES & set(getattr(item, "fixturenames", ()))
            if tier == "unit" and servers:
                names = ", ".join(sorted(servers))
                raise pytest.UsageError(f"{item.nodeid} uses {names}: move it to tests/integration/")
        else:
            tier = "unit"  # the doctests of rec_lib/
        item.add_marker(getattr(pytest.mark, tier))


def write(path: Path, text: str, encoding: str = "utf-8", newline: str = "\n") -> Path:
    """Write ``text`` (LF-separated lines) with the given encoding and line ending."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.replace("\n", newline).encode(encoding))
    return path


ML1M_MOVIES = """1::Toy Story (1995)::Animation|Children's|Comedy
2::Jumanji (1995)::Adventure|Children's|Fantasy
3::Misérables, Les (1995)::Drama|Musical
4::Matrix, The (1999)::Action|Sci-Fi|Thriller
"""
ML1M_USERS = """1::F::1::10::48067
2::M::56::16::70072
3::M::25::15::55117
"""
# user 1: four ratings, two at the same second; user 2: three; user 3: two (too few to split).
ML1M_RATINGS = """1::1::5::978300760
1::2::3::978300760
1::3::4::978300800
1::4::5::978300900
2::1::4::978200000
2::3::2::978200100
2::4::5::978200200
3::2::3::978100000
3::4::4::978100050
"""


@pytest.fixture
def ml1m_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "tiny-1m"
    write(folder / "movies.dat", ML1M_MOVIES, "latin-1")
    write(folder / "users.dat", ML1M_USERS, "latin-1")
    write(folder / "ratings.dat", ML1M_RATINGS, "latin-1")
    return folder


@pytest.fixture
def ml100k_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "tiny-100k"
    flags = {1: [3, 4, 5], 2: [2, 4, 8], 3: []}
    items = []
    titles = {1: "Toy Story (1995)", 2: "Jumanji (1995)", 3: "Café au lait (Métisse) (1993)"}
    for movie, title in titles.items():
        genre_flags = ["1" if g in flags[movie] else "0" for g in range(19)]
        if not flags[movie]:
            genre_flags[0] = "1"
        items.append("|".join([str(movie), title, "01-Jan-1995", "", "http://us.imdb.com/x", *genre_flags]))
    write(folder / "u.item", "\n".join(items) + "\n", "latin-1")
    write(folder / "u.user", "1|24|M|technician|85711\n2|53|F|other|94043\n", "latin-1")
    write(folder / "u.data", "1\t1\t5\t874965758\n1\t2\t3\t876893171\n2\t3\t4\t878542960\n2\t1\t2\t876893119\n")
    return folder


@pytest.fixture
def csv_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "tiny-csv"
    write(
        folder / "movies.csv",
        'movieId,title,genres\n1,Toy Story (1995),Adventure|Animation\n2,"City of Lost Children, The (Cité des '
        'enfants perdus, La) (1995)",Adventure|Drama\n3,Babylon 5,(no genres listed)\n',
        newline="\r\n",
    )
    write(
        folder / "ratings.csv",
        "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,2,3.5,964981247\n2,3,0.5,964982224\n",
        newline="\r\n",
    )
    return folder


@pytest.fixture
def real_data_dir() -> Path:
    """The real ml-latest-small beside the checkout; CI (REC_REQUIRE_REAL_DATA=1) fails instead of skipping."""
    if (REAL_DATA_DIR / "ml-latest-small" / "ratings.csv").is_file():
        return REAL_DATA_DIR
    if os.environ.get("REC_REQUIRE_REAL_DATA") == "1":
        pytest.fail(f"REC_REQUIRE_REAL_DATA=1 but {REAL_DATA_DIR}/ml-latest-small is missing")
    pytest.skip(f"real data not found at {REAL_DATA_DIR}/ml-latest-small")


@pytest.fixture(scope="session")
def mariadb(tmp_path_factory):
    """A MariaDB server on 127.0.0.1 for the whole session (see tests/servers.py)."""
    from servers import start_mariadb

    server = start_mariadb(tmp_path_factory.mktemp("mariadb"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def milvus_server(tmp_path_factory):
    """A Milvus server from the `milvus` package for the whole session (see tests/servers.py)."""
    from servers import start_milvus_server

    server = start_milvus_server(tmp_path_factory.mktemp("milvus"))
    yield server
    server.stop()
