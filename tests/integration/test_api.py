"""The HTTP API with FastAPI's TestClient on the embedded stores: every endpoint and every error status."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from helpers import TRICKY_TITLES, store_data
from live_server import served_process

from rec_lib.serving.api import create_app
from rec_lib.serving.stores import StoreSettings, close_stores, load_stores, open_stores


@pytest.fixture
def client(tmp_path: Path):
    settings = StoreSettings(str(tmp_path / "milvus.db"), f"sqlite:///{tmp_path / 'movies.sqlite'}")
    load_stores(open_stores(settings), *store_data())
    with TestClient(create_app(settings)) as test_client:
        yield test_client
    close_stores(settings)


def test_health(client: TestClient) -> None:
    body = client.get("/health").json()
    assert body == {
        "status": "ok", "milvus": "milvus.db", "sql": "sqlite:///movies.sqlite", "movies": 90, "failing": {}
    }, "no absolute path of the embedded stores"  # fmt: skip


@pytest.mark.perf
def test_requests_do_not_ask_opentelemetry_for_providers(client: TestClient, monkeypatch) -> None:
    """FastAPI's native telemetry is off: with it on, every request looked up three OpenTelemetry providers
    (each reading the environment), though this app exports nothing."""
    from opentelemetry import _logs, metrics, trace

    asked: list[str] = []
    for module, name in ((trace, "get_tracer_provider"), (metrics, "get_meter_provider"),
                         (_logs, "get_logger_provider")):  # fmt: skip
        original = getattr(module, name)
        monkeypatch.setattr(module, name, lambda original=original, name=name: (asked.append(name), original())[1])
    assert client.post("/recommend", json={"liked": [3], "k": 2}).status_code == 200
    assert client.get("/movies/search", params={"q": "movie"}).status_code == 200
    assert asked == []


def test_search_get_and_random(client: TestClient) -> None:
    found = client.get("/movies/search", params={"q": "matrix, the"}).json()
    assert found == [{"movie_id": 8, "title": "Matrix, The (1999)", "year": 1988, "genres": ["G2"]}]
    assert [m["movie_id"] for m in client.get("/movies/search", params={"q": "Amélie"}).json()] == [3]
    assert len(client.get("/movies/search", params={"q": "movie", "limit": 5}).json()) == 5
    assert client.get("/movies/5").json()["title"] == TRICKY_TITLES[5]
    movies = client.get("/movies/random", params={"n": 7}).json()
    assert len({m["movie_id"] for m in movies}) == 7
    assert "G0" in client.get("/genres").json()


def test_recommend(client: TestClient) -> None:
    body = client.post("/recommend", json={"liked": [3, 6], "k": 5, "genres": ["G0"], "years": [1980, 2000]}).json()
    assert body["fallback"] is False and len(body["recommendations"]) == 5
    for item in body["recommendations"]:
        assert "G0" in item["genres"] and item["because_id"] in (3, 6)
        assert item["because"] == client.get(f"/movies/{item['because_id']}").json()["title"]
    popular = client.post("/recommend", json={"liked": [], "k": 3}).json()
    assert popular["fallback"] is True and [r["movie_id"] for r in popular["recommendations"]] == [1, 2, 3]
    assert all(r["because"] == "popular" and r["because_id"] is None for r in popular["recommendations"])


def test_a_set_ranks_the_same_in_any_order_and_a_history_does_not(client: TestClient) -> None:
    """The API's default reads the liked ids as a set, as recommend() does; mode "history" reads the latest last."""
    from rec_lib.serving.recommend import Recommender

    recommender = Recommender(client.app.state.stores)
    rng = np.random.default_rng(1)
    for draw in range(8):
        liked = rng.choice(np.arange(1, 31), size=int(rng.integers(2, 7)), replace=False).tolist()
        expected = recommender.recommend(liked, 10)["movie_id"].tolist()
        for _ in range(3):
            shuffled = rng.permutation(liked).tolist()
            body = client.post("/recommend", json={"liked": shuffled, "k": 10}).json()
            assert [r["movie_id"] for r in body["recommendations"]] == expected, draw
    liked = [4, 10, 3, 7, 5]
    ranked = {
        tuple(order): [
            r["movie_id"]
            for r in client.post("/recommend", json={"liked": order, "mode": "history"}).json()["recommendations"]
        ]
        for order in (liked, liked[::-1])
    }
    assert len(set(map(tuple, ranked.values()))) == 2, "a history changes with its order"
    assert ranked[tuple(liked)] == recommender.recommend(liked, 10, mode="history")["movie_id"].tolist()
    schema = client.get("/openapi.json").json()["components"]["schemas"]["RecommendRequest"]["properties"]["mode"]
    assert schema["enum"] == ["set", "history"] and schema["default"] == "set"


@pytest.mark.parametrize(
    ("method", "path", "payload", "status", "detail"),
    [
        ("get", "/movies/424242", None, 404, "unknown movie id 424242"),
        ("get", "/movies/abc", None, 422, None),
        ("get", "/movies/search?q=", None, 422, None),
        ("get", "/movies/search?q=a&limit=0", None, 422, None),
        ("get", "/movies/random?n=1000", None, 422, None),
        ("post", "/recommend", {"liked": [3, 999999]}, 404, "unknown movie ids: 999999"),
        ("post", "/recommend", {"liked": [3], "k": 0}, 422, None),
        ("post", "/recommend", {"liked": ["x"]}, 422, None),
        ("post", "/recommend", {"liked": [3], "years": [2000, 1990]}, 422, "the first year is after the last"),
        ("post", "/recommend", {"liked": [3], "genres": ["Nope"]}, 422, 'unknown genres ["Nope"]'),
        ("post", "/recommend", {"liked": [3], "mode": "timeline"}, 422, "'set' or 'history'"),
    ],
)
def test_errors_have_real_status_codes_and_json_bodies(client, method, path, payload, status, detail) -> None:
    response = client.request(method.upper(), path, json=payload)
    assert response.status_code == status
    body = response.json()
    assert "detail" in body
    if detail:
        assert detail in str(body["detail"])
    if status == 404 and path == "/recommend":
        assert body["unknown_ids"] == [999999]


def test_a_store_that_is_down_gives_503(client: TestClient) -> None:
    stores = client.app.state.stores
    stores.vectors.client.drop_alias(stores.settings.vector.alias)
    response = client.post("/recommend", json={"liked": [3]})
    assert response.status_code == 503 and "python -m rec_lib load" in response.json()["detail"]
    assert response.json()["store"] == "milvus"
    assert client.get("/health").status_code == 503
    stores.metadata.engine = sa.create_engine("sqlite:////nonexistent/dir/movies.sqlite")
    response = client.get("/movies/1")
    assert response.status_code == 503 and "SQL store sqlite:///movies.sqlite failed" in response.json()["detail"]
    assert "/" + str(Path.cwd()).strip("/") not in response.text, "no absolute path in an answer"


def test_sql_and_milvus_credentials_never_reach_an_answer(client: TestClient) -> None:
    from rec_lib.serving.metadata_store import MetadataStore

    stores = client.app.state.stores
    stores.metadata = MetadataStore("mysql+pymysql://rec:hunter2@127.0.0.1:1/movies?connect_timeout=1")
    for response in (client.get("/movies/1"), client.get("/health"), client.post("/recommend", json={})):
        assert response.status_code == 503, response.text
        body = response.json()
        assert "mysql+pymysql://127.0.0.1:1/movies" in body.get("detail", body.get("failing", {}).get("sql"))
        assert "hunter2" not in response.text and "rec:" not in response.text


def test_a_table_that_was_never_loaded_says_what_to_run(client: TestClient) -> None:
    with client.app.state.stores.metadata.engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE movies"))
    response = client.get("/movies/1")
    assert response.status_code == 503 and "python -m rec_lib load" in response.json()["detail"]


# Each input a careful probe sent: none may give a 500, a plain-text body or an unbounded echo.
PROBES = [
    ("get", "/movies/9223372036854775808", None, 422),
    ("get", "/movies/-9223372036854775809", None, 422),
    ("get", "/movies/" + "9" * 100, None, 422),
    ("get", "/movies/-1", None, 422),
    ("post", "/recommend", '{"liked": [], "years": [-1e20, 1e20]}', 422),
    ("post", "/recommend", '{"liked": [1], "years": [-1e20, 1e20]}', 422),
    ("post", "/recommend", '{"liked": [1], "years": [-100000000000000000000, 100000000000000000000]}', 422),
    ("post", "/recommend", '{"liked": [1], "years": [0, 2000]}', 422),
    ("post", "/recommend", '{"k": NaN}', 422),
    ("post", "/recommend", '{"k": Infinity}', 422),
    ("post", "/recommend", '{"liked": [1e400]}', 422),
    ("post", "/recommend", '{"liked": [9223372036854775808]}', 422),
    ("post", "/recommend", '{"liked": [true]}', 422),
    ("post", "/recommend", '{"liked": [3.0]}', 422),
    ("post", "/recommend", '{"liked": ' + str(list(range(10_000))) + "}", 422),
    ("post", "/recommend", '{"liked": [3], "genres": ["' + "x" * 20_000 + '"]}', 422),
    ("post", "/recommend", '{"liked": [3], "genres": ' + str(["G0"] * 51).replace("'", '"') + "}", 422),
    ("post", "/recommend", "{not json", 422),
    ("post", "/recommend", "[]", 422),
    ("post", "/recommend", '{"liked": [3], "years": [1990]}', 422),
    ("post", "/recommend", "x" * 100_000, 413),
    ("get", "/no/such/path", None, 404),
    ("put", "/recommend", "{}", 405),
]


@pytest.mark.parametrize(("method", "path", "body", "status"), PROBES, ids=lambda v: str(v)[:40])
def test_bad_requests_get_a_bounded_json_error(client, method, path, body, status) -> None:
    response = client.request(method.upper(), path, content=body, headers={"content-type": "application/json"})
    assert response.status_code == status, response.text[:500]
    assert response.headers["content-type"] == "application/json"
    assert "detail" in response.json()
    assert len(response.content) < 2_500, "an error echoes at most a bounded part of the input"


def test_validation_errors_name_the_field_and_count_every_problem(client: TestClient) -> None:
    as_json = {"content-type": "application/json"}
    body = client.post("/recommend", content='{"liked": [1], "years": [-1e20, 1e20]}', headers=as_json).json()
    assert body["problems"] == 2 and body["detail"][0]["loc"] == ["body", "years", 0]
    ids = client.post("/recommend", json={"liked": [-1] * 150}).json()
    assert ids["problems"] == 150 and len(ids["detail"]) == 10
    nan = client.post("/recommend", content='{"k": NaN}', headers=as_json).json()
    assert nan["detail"][0]["loc"] == ["body", "k"] and nan["detail"][0]["input"] == "NaN"


def test_a_chunked_body_over_the_limit_is_refused_too(client: TestClient) -> None:
    def chunks():
        for _ in range(100):
            yield b" " * 1024

    response = client.post("/recommend", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413 and response.json()["detail"] == "request body over 65536 bytes"


def test_every_answer_says_nosniff_and_the_page_has_a_content_security_policy(client: TestClient) -> None:
    for path in ("/", "/static/app.js", "/health", "/movies/424242", "/docs"):
        response = client.get(path)
        assert response.headers["x-content-type-options"] == "nosniff", path
    policy = client.get("/").headers["content-security-policy"]
    assert "default-src 'self'" in policy and "script-src 'self';" in policy and "unsafe-inline" not in policy


def test_docs_use_local_swagger_files_not_a_cdn(client: TestClient) -> None:
    page = client.get("/docs").text
    assert "cdn" not in page.lower() and "/static/swagger/swagger-ui-bundle.js" in page
    assert client.get("/static/swagger/swagger-ui-bundle.js").status_code == 200
    assert client.get("/static/swagger/swagger-ui.css").status_code == 200


def test_docs_and_web_page_areserved_process(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    schema = client.get("/openapi.json").json()
    assert {"/health", "/movies/search", "/movies/random", "/movies/{movie_id}", "/recommend"} <= set(schema["paths"])
    page = client.get("/")
    assert page.status_code == 200 and '<label for="name">' in page.text
    assert "localStorage" in client.get("/static/app.js").text
    assert "http" not in client.get("/static/style.css").text, "no CDN"


@pytest.mark.perf
def test_serve_workers_over_a_milvus_server_share_the_load(milvus_server, tmp_path: Path) -> None:
    """`serve --workers 2`: two processes, each with its own listening socket and store clients, both answering."""
    settings = StoreSettings(milvus_server.uri, f"sqlite:///{tmp_path / 'movies.sqlite'}")
    load_stores(open_stores(settings), *store_data())
    close_stores(settings)
    with served_process(tmp_path, {"MILVUS_URI": milvus_server.uri}, "--workers", "2") as (server, base):
        assert "with 2 worker(s)" in server.stdout.readline()
        children = [p for p in Path("/proc").glob("[0-9]*") if _parent(p) == server.pid]
        workers = [p for p in children if b"spawn_main" in (p / "cmdline").read_bytes()]
        assert len(workers) == 2, "one process per worker"
        with httpx.Client(base_url=base, timeout=10) as http:
            answers = [http.post("/recommend", json={"liked": [3, 6], "k": 5}) for _ in range(20)]
        assert all(a.status_code == 200 and len(a.json()["recommendations"]) == 5 for a in answers)
    assert server.returncode == 0


@pytest.mark.parametrize("flag, logged", [((), 3), (("--no-access-log",), 0)])
def test_serve_logs_a_line_per_request_unless_told_not_to(tmp_path: Path, flag: tuple[str, ...], logged: int) -> None:
    settings = StoreSettings(str(tmp_path / "milvus.db"), f"sqlite:///{tmp_path / 'movies.sqlite'}")
    load_stores(open_stores(settings), *store_data())
    close_stores(settings)
    with served_process(tmp_path, {}, *flag) as (server, base):
        for _ in range(3):
            assert httpx.get(base + "/movies/search", params={"q": "matrix"}).status_code == 200
    output = server.stdout.read()
    assert output.count("GET /movies/search?q=matrix HTTP/1.1") == logged, output[-2000:]


def _parent(proc: Path) -> int | None:
    try:
        return int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


@pytest.mark.perf
def test_served_processes_parse_http_and_loop_in_compiled_code() -> None:
    """`serve` runs uvicorn's httptools protocol (held to the guard's limits) and leaves the loop to uvicorn
    ("auto"), which takes uvloop when the serve extra installed it."""
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    from rec_lib.serving.guard import GuardedHttpToolsProtocol, server_config

    config = server_config("rec_lib.serving.api:create_app", factory=True, host="127.0.0.1", port=0)
    config.load()
    assert config.http_protocol_class is GuardedHttpToolsProtocol
    assert issubclass(GuardedHttpToolsProtocol, HttpToolsProtocol)
    assert config.get_loop_factory().__module__.startswith("uvloop")
