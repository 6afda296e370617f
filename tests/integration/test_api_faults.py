"""The API under hostile bytes and broken stores, one test per finding of the wider fault probe.

Every answer the app can give is JSON 4xx/503 (never a 500), echoes are text (no Python repr, no driver class),
/health asks both stores each time, and a SQLite file that is truncated, corrupted, replaced or removed is noticed
and read again once it is good, without a restart. Connection-level bounds (a whole request within a deadline,
header size and count, open connections) are checked on a real uvicorn server held to small limits.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from helpers import store_data
from live_server import serve

from rec_lib.serving.api import create_app
from rec_lib.serving.guard import LIMITS, ServeLimits
from rec_lib.serving.stores import StoreSettings, close_stores, load_stores, open_stores

JSON = {"content-type": "application/json"}
RECOVERY_S = 5.0
"""How soon the API must answer 200 again once a store is good again."""


@pytest.fixture
def loaded(tmp_path: Path) -> Iterator[StoreSettings]:
    settings = StoreSettings(str(tmp_path / "milvus.db"), f"sqlite:///{tmp_path / 'movies.sqlite'}")
    load_stores(open_stores(settings), *store_data())
    yield settings
    close_stores(settings)


@pytest.fixture
def client(loaded: StoreSettings) -> Iterator[TestClient]:
    with TestClient(create_app(loaded), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def sqlite_file(loaded: StoreSettings) -> Path:
    return Path(loaded.sql_url.removeprefix("sqlite:///"))


def assert_json_error(response, status: int) -> dict:
    assert response.status_code == status, response.text[:300]
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert "detail" in body
    for leak in ("b'", "sqlite3.", "OperationalError", "DatabaseError", "Traceback", "\\x00"):
        assert leak not in response.text, f"{leak!r} in {response.text[:300]}"
    return body


# -- 1. lone surrogates -------------------------------------------------------------------------------------------

SURROGATE_BODIES = [
    '{"liked":[1],"genres":["\\ud800"]}',
    '{"liked":["\\ud800"]}',
    '{"liked":[1],"k":"\\ud800"}',
    '{"liked":[1],"years":["\\ud800","x"]}',
    '"\\ud800"',
    '{"liked":[{"\\ud800":1}]}',
]


@pytest.mark.parametrize("body", SURROGATE_BODIES)
def test_a_lone_surrogate_anywhere_in_the_body_is_a_422_that_echoes_it_escaped(client, body: str) -> None:
    response = client.post("/recommend", content=body.encode(), headers=JSON)
    answer = assert_json_error(response, 422)
    assert "\\ud800" in json.dumps(answer), "the echo shows the surrogate as an escape"


def test_a_lone_surrogate_in_a_query_or_path_is_a_4xx(client) -> None:
    assert client.get("/movies/search", params={"q": "%ED%A0%80"}).status_code == 200
    assert_json_error(client.get("/movies/%ED%A0%80"), 422)


# -- 2 and 3. /health and recovery of the SQL store ---------------------------------------------------------------


def wait_for(client: TestClient, path: str, status: int, within_s: float = RECOVERY_S):
    deadline = time.monotonic() + within_s
    while True:
        response = client.get(path)
        if response.status_code == status or time.monotonic() > deadline:
            return response
        time.sleep(0.1)


def truncate(path: Path, backup: Path) -> None:
    path.write_bytes(b"")


def corrupt(path: Path, backup: Path) -> None:
    path.write_bytes(b"not a database at all " * 500)


def replace_with_empty_database(path: Path, backup: Path) -> None:
    import sqlite3

    other = path.with_suffix(".other")
    sqlite3.connect(other).close()
    os.replace(other, path)


def remove(path: Path, backup: Path) -> None:
    path.unlink()


@pytest.mark.parametrize("fault", [truncate, corrupt, replace_with_empty_database, remove], ids=lambda f: f.__name__)
@pytest.mark.parametrize("restore", ["copied over", "moved in"])
def test_a_broken_sqlite_file_is_reported_by_health_and_read_again_once_restored(
    client, sqlite_file: Path, tmp_path: Path, fault: Callable, restore: str
) -> None:
    backup = tmp_path / "backup.sqlite"
    shutil.copy2(sqlite_file, backup)
    assert client.get("/movies/1").status_code == 200 and client.get("/health").status_code == 200
    fault(sqlite_file, backup)

    health = wait_for(client, "/health", 503)
    body = health.json()
    assert health.status_code == 503 and body["status"] == "unavailable", body
    assert list(body["failing"]) == ["sql"] and body["movies"] == 90, "Milvus still answers"
    assert "sqlite:///movies.sqlite" in body["failing"]["sql"] and "python -m rec_lib load" in body["failing"]["sql"]
    for path in ("/movies/1", "/movies/search?q=matrix", "/genres"):
        answer = assert_json_error(client.get(path), 503)
        assert answer["store"] == "sql" and answer["detail"] == body["failing"]["sql"], "one check, one message"

    if restore == "copied over" and sqlite_file.exists():
        shutil.copyfile(backup, sqlite_file)  # the same inode, rewritten
    else:
        staged = tmp_path / "staged.sqlite"
        shutil.copy2(backup, staged)
        os.replace(staged, sqlite_file)  # a new inode
    assert wait_for(client, "/health", 200).json()["status"] == "ok"
    assert client.get("/movies/1").status_code == 200
    assert client.get("/movies/search", params={"q": "matrix"}).json()[0]["movie_id"] == 8
    assert sqlite_file.read_bytes() == backup.read_bytes(), "the API changed nothing in the file"


def test_a_file_removed_while_connections_are_pooled_is_noticed_at_once(client, sqlite_file: Path) -> None:
    """Pooled connections keep a deleted file's inode open; they must not go on answering from it."""
    for _ in range(20):
        assert client.get("/movies/search", params={"q": "movie"}).status_code == 200
    moved = sqlite_file.with_suffix(".away")
    os.replace(sqlite_file, moved)
    answer = assert_json_error(client.get("/movies/search", params={"q": "movie"}), 503)
    assert "the database file is missing" in answer["detail"]
    os.replace(moved, sqlite_file)
    assert client.get("/movies/search", params={"q": "movie"}).status_code == 200


def test_health_answers_within_its_timeout_when_a_store_hangs(client, monkeypatch) -> None:
    import threading

    from rec_lib.serving.health import HEALTH_TIMEOUT_S

    release = threading.Event()
    calls: list[int] = []
    stores = client.app.state.stores

    def hang() -> int:
        calls.append(1)
        release.wait(30)
        return 0

    monkeypatch.setattr(stores.vectors, "check", hang)
    try:
        started = time.monotonic()
        first = client.get("/health")
        second = client.get("/health")
        took = time.monotonic() - started
    finally:
        release.set()
    assert first.status_code == second.status_code == 503
    assert list(first.json()["failing"]) == ["milvus"]
    assert f"did not answer within {HEALTH_TIMEOUT_S:g} s" in first.json()["failing"]["milvus"]
    assert took < 2 * HEALTH_TIMEOUT_S + 3
    assert len(calls) == 1, "a check still running is awaited again, not started twice"


def test_a_dropped_collection_makes_health_name_milvus(client) -> None:
    stores = client.app.state.stores
    stores.vectors.client.drop_alias(stores.settings.vector.alias)
    body = client.get("/health").json()
    assert list(body["failing"]) == ["milvus"] and "python -m rec_lib load" in body["failing"]["milvus"]


# -- 5 to 8: media types, headers, redirects, reprs, strict paths (through the app) --------------------------------


def test_a_bogus_range_is_ignored_and_the_whole_file_served(client) -> None:
    whole = client.get("/static/app.js")
    for value in ("bytes=999999-", "bytes=abc", "bytes=5-1"):
        response = client.get("/static/app.js", headers={"range": value})
        assert response.status_code == 200 and response.content == whole.content, value


def test_a_trailing_slash_is_not_found_and_never_redirects_to_the_host_header(client) -> None:
    response = client.get("/health/", headers={"host": "evil.example"}, follow_redirects=False)
    assert_json_error(response, 404)
    assert "location" not in response.headers and "evil.example" not in response.text


@pytest.mark.parametrize(
    ("body", "content_type"),
    [(b'{"liked": [1]}', "text/plain"), (b"liked=1", "application/x-www-form-urlencoded"), (b"{}", "")],
)
def test_a_body_that_is_not_declared_json_is_a_415(client, body: bytes, content_type: str) -> None:
    headers = {"content-type": content_type} if content_type else {}
    answer = assert_json_error(client.post("/recommend", content=body, headers=headers), 415)
    assert "application/json" in answer["detail"]


def test_a_compressed_body_is_a_415_not_silently_misread(client) -> None:
    import gzip

    body = gzip.compress(b'{"liked": [1]}')
    response = client.post("/recommend", content=body, headers={**JSON, "content-encoding": "gzip"})
    assert "Content-Encoding" in assert_json_error(response, 415)["detail"]


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"liked": [3], "genres": ["Nope"]}, 'unknown genres ["Nope"]'),
        ({"liked": [3], "genres": ["Comedy\u0000"]}, 'unknown genres ["Comedy\\u0000"]'),
    ],
)
def test_messages_echo_text_not_python_reprs(client, payload: dict, expected: str) -> None:
    assert expected in assert_json_error(client.post("/recommend", json=payload), 422)["detail"]


@pytest.mark.parametrize("path", ["/movies/1.0", "/movies/+1", "/movies/1_000", "/movies/%201", "/movies/01e2"])
def test_movie_ids_in_paths_are_plain_digits(client, path: str) -> None:
    assert_json_error(client.get(path), 422)


def test_movie_ids_in_paths_stay_in_range_and_leading_zeros_are_the_same_id(client) -> None:
    assert_json_error(client.get(f"/movies/{2**63}"), 422)
    assert client.get("/movies/0003").json()["movie_id"] == 3


@pytest.mark.parametrize("path", ["/health", "/movies/1", "/", "/static/app.js", "/genres"])
def test_head_is_answered_wherever_get_is_without_a_body(client, path: str) -> None:
    got, head = client.get(path), client.head(path)
    assert head.status_code == got.status_code == 200 and head.content == b""
    assert head.headers["content-type"] == got.headers["content-type"]


def test_every_answer_has_referrer_policy_and_cache_control(client) -> None:
    for path in ("/", "/static/app.js", "/health", "/movies/424242", "/docs"):
        response = client.get(path)
        assert response.headers["referrer-policy"] == "no-referrer", path
        assert response.headers["cache-control"], path
    assert client.get("/health").headers["cache-control"] == "no-cache"


def test_an_unexpected_error_is_a_json_500_that_names_no_exception_class(client, monkeypatch, caplog) -> None:
    """The last resort: should a bug slip through, the answer is JSON and the log line is scrubbed."""
    stores = client.app.state.stores
    monkeypatch.setattr(stores.metadata, "search_rows", lambda q, limit: 1 / 0)
    response = client.get("/movies/search", params={"q": "x"})
    assert response.status_code == 500 and response.json() == {"detail": "internal error; see the server log"}
    assert "ZeroDivisionError" in caplog.text


# -- 4 and 5: what the protocol enforces, over real sockets --------------------------------------------------------

SMALL = ServeLimits(request_timeout_s=1.0, max_head_bytes=4096, max_headers=20, max_connections=8)


@pytest.fixture
def small_server(loaded: StoreSettings) -> Iterator[tuple[str, int]]:
    with serve(loaded, SMALL) as base:
        host, port = base.removeprefix("http://").split(":")
        yield host, int(port)


def exchange(address: tuple[str, int], payload: bytes, *, read_s: float = 5.0, sock: socket.socket | None = None):
    """Send ``payload`` and read until the server closes (or ``read_s`` passes): (status, headers, body, closed)."""
    sock = sock or socket.create_connection(address)
    with sock:
        if payload:
            sock.sendall(payload)
        return read_answer(sock, read_s)


def read_answer(sock: socket.socket, read_s: float):
    sock.settimeout(read_s)
    data, closed = b"", False
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                closed = True
                break
            data += chunk
    except TimeoutError:
        pass
    except ConnectionResetError:
        closed = True
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1]) if lines[0] else None
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return status, headers, body, closed


def test_a_body_shorter_than_declared_gets_a_408_and_the_connection_is_closed(small_server) -> None:
    started = time.monotonic()
    request = b"POST /recommend HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 20\r\n\r\n"
    status, headers, body, closed = exchange(small_server, request + b'{"liked": [1]', read_s=10)
    assert status == 408 and closed and headers["content-type"] == "application/json"
    assert json.loads(body)["detail"] == "the request did not arrive within 1 s"
    assert time.monotonic() - started < SMALL.request_timeout_s + 3


def test_headers_sent_a_byte_at_a_time_are_cut_off_at_the_deadline(small_server) -> None:
    request = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100
    started = time.monotonic()
    with socket.create_connection(small_server) as sock:
        sock.settimeout(0.2)
        for byte in request:
            try:
                sock.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                break
            time.sleep(0.05)
            if time.monotonic() - started > 10:
                break
        status, _, body, closed = read_answer(sock, 5)
    assert status == 408 and closed, body
    assert time.monotonic() - started < SMALL.request_timeout_s + 3


def test_an_idle_connection_that_never_sends_is_closed_at_the_deadline(small_server) -> None:
    status, _, body, closed = exchange(small_server, b"", read_s=SMALL.request_timeout_s + 3)
    assert closed and status == 408 and json.loads(body)["detail"].startswith("the request did not arrive")


def test_connections_past_the_bound_are_answered_503_and_closed(small_server) -> None:
    held = [socket.create_connection(small_server) for _ in range(SMALL.max_connections)]
    try:
        time.sleep(0.2)
        status, headers, body, closed = exchange(small_server, b"", read_s=0.9)
        assert status == 503 and closed and headers["content-type"] == "application/json", body
        assert "open connections" in json.loads(body)["detail"]
    finally:
        for sock in held:
            sock.close()
    time.sleep(0.3)
    assert exchange(small_server, b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")[0] == 200


@pytest.mark.parametrize(
    "head",
    [
        b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 16 * 1024 * 1024 + b"\r\n\r\n",
        b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(10_000)) + b"\r\n",
        b"GET /" + b"a" * 10_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    ],
    ids=["16 MB value", "10,000 headers", "long URL"],
)
def test_oversized_heads_get_a_431_before_they_are_read_whole(small_server, head: bytes) -> None:
    with socket.create_connection(small_server) as sock:
        sent = 0
        try:
            for start in range(0, len(head), 65536):
                sock.sendall(head[start : start + 65536])
                sent += 65536
        except (BrokenPipeError, ConnectionResetError):
            pass
        status, headers, body, closed = read_answer(sock, 5)
    assert status == 431 and closed and headers["content-type"] == "application/json", body
    if len(head) > 1024 * 1024:
        assert sent < len(head) // 2, "the connection is refused long before the whole head is sent"


def test_unfinished_huge_headers_do_not_grow_the_server(loaded: StoreSettings) -> None:
    """Ten connections each sending 16 MB of one header that never ends: each is cut at the head limit."""
    import resource

    with serve(loaded, LIMITS) as base:
        address = (base.removeprefix("http://").split(":")[0], int(base.rsplit(":", 1)[1]))
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        statuses = []
        for _ in range(10):
            with socket.create_connection(address) as sock:
                try:
                    sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ")
                    for _ in range(256):
                        sock.sendall(b"a" * 65536)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                statuses.append(read_answer(sock, 5)[0])
        grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert statuses == [431] * 10
    assert grown_mb < 50, f"peak memory grew by {grown_mb:.0f} MB"


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"POST /recommend HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 13 \r\n\r\n"
        b'{"liked":[3]}',
        b"POST /recommend HTTP/1.1\r\nHost: x\r\nContent-Type: application/json; charset=utf-8\r\n"
        b'Content-Length: 13\r\n\r\n{"liked":[3]}',
    ],
    ids=["trailing space in Content-Length", "charset parameter"],
)
def test_well_formed_requests_with_harmless_variations_are_answered(small_server, request_bytes: bytes) -> None:
    status, _, body, _ = exchange(small_server, request_bytes, read_s=3)
    assert status == 200 and len(json.loads(body)["recommendations"]) == 10


def test_a_websocket_upgrade_is_served_as_plain_http(small_server) -> None:
    request = (
        b"GET /health HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    status, headers, body, _ = exchange(small_server, request, read_s=2)
    assert status == 200 and json.loads(body)["status"] == "ok"
    assert headers["x-content-type-options"] == "nosniff" and "content-security-policy" in headers


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GARBAGE\r\n\r\n", 400),
        (b"GET /\xe9t\xe9 HTTP/1.1\r\nHost: x\r\n\r\n", None),
        (b"POST /recommend HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", 400),
        (b"POST /recommend HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 9\r\n\r\n", 400),
    ],
    ids=["garbage", "raw non-ASCII in the URL", "bad Content-Length", "two Content-Lengths"],
)
def test_malformed_http_is_answered_in_json(small_server, request_bytes: bytes, status: int | None) -> None:
    answered, headers, body, _ = exchange(small_server, request_bytes, read_s=3)
    assert answered is not None and 400 <= answered < 500 and (status is None or answered == status), body
    assert headers["content-type"] == "application/json" and "detail" in json.loads(body)
