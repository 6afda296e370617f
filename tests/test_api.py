"""The HTTP API with FastAPI's TestClient on the embedded stores: every endpoint and every error status."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from helpers import TRICKY_TITLES, store_data

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
    assert body["status"] == "ok" and body["movies"] == 90 and body["sql"].startswith("sqlite:///")


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
        ("post", "/recommend", {"liked": [3], "genres": ["Nope"]}, 422, "unknown genres ['Nope']"),
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
    assert response.status_code == 503 and "load it first" in response.json()["detail"]
    assert client.get("/health").status_code == 503
    stores.metadata.engine = sa.create_engine("sqlite:////nonexistent/dir/movies.sqlite")
    response = client.get("/movies/1")
    assert response.status_code == 503 and "SQL store sqlite:////nonexistent" in response.json()["detail"]


def test_docs_and_web_page_are_served(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    schema = client.get("/openapi.json").json()
    assert {"/health", "/movies/search", "/movies/random", "/movies/{movie_id}", "/recommend"} <= set(schema["paths"])
    page = client.get("/")
    assert page.status_code == 200 and '<label for="name">' in page.text
    assert "localStorage" in client.get("/static/app.js").text
    assert "http" not in client.get("/static/style.css").text, "no CDN"
