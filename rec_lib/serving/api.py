"""The original design's HTTP interface (FastAPI) and its web page, over the same recommender.

``python -m rec_lib serve`` (or ``make serve``) starts it on 127.0.0.1:8000. One pair of store
clients is opened per process when the app starts and shared by every request. Endpoints are coroutines that
hand only their blocking store calls to a pool of :data:`~rec_lib.serving.metadata_store.CONCURRENT_QUERIES`
threads and build the answer on the event loop: one thread hop per request, where a plain ``def`` endpoint
takes two (FastAPI then also validates the answer on the pool). Every error is JSON
with a real status code: 404 for an unknown movie or path, 413 for a body over :data:`MAX_BODY_BYTES`,
422 for bad input (ids, years and K bounded to what the stores hold; an error echoes at most
:data:`MAX_ERRORS_SHOWN` problems, each cut to :data:`MAX_ECHO_CHARS`), 503 when Milvus or SQL is down
or not loaded. No answer names a credential or an absolute path (:mod:`rec_lib.serving.redact`).
OpenAPI docs are at ``/docs`` (Swagger UI served from the ``fastapi-offline`` package's files, no CDN);
the web page (plain HTML, CSS and JavaScript in ``rec_lib/serving/web``) at ``/``. The API has no
authentication: it listens on loopback unless told otherwise.
"""

from __future__ import annotations

import json
import logging
import math
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

import pandas as pd
from anyio.to_thread import current_default_thread_limiter
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field, StringConstraints, field_validator
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rec_lib import __version__
from rec_lib.errors import ConfigError, StoreUnavailableError, UnknownMoviesError
from rec_lib.serving.metadata_store import CONCURRENT_QUERIES, GENRE_SEPARATOR
from rec_lib.serving.recommend import MAX_K, MOVIE_ID_RANGE, YEAR_RANGE, RecommendConfig, Recommender
from rec_lib.serving.redact import scrub
from rec_lib.serving.stores import StoreSettings, open_stores

WEB_DIR = Path(__file__).parent / "web"
MAX_SEARCH = 100
MAX_RANDOM = 50
MAX_GENRES = 50
MAX_GENRE_CHARS = 64
MAX_BODY_BYTES = 64 * 1024
"""The largest request body read: 200 liked ids and every genre fit in a few KB."""
MAX_ERRORS_SHOWN = 10
MAX_ECHO_CHARS = 100
MAX_DETAIL_CHARS = 600
PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
"""The Content-Security-Policy of every answer but /docs: only this server's own files, no inline code."""
DOCS_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
"""Swagger UI starts from an inline script; its files are still this server's own."""
NO_TELEMETRY = {"tracing": False, "metrics": False, "logs": False}
"""FastAPI's native OpenTelemetry off: this app exports no telemetry, and with it on FastAPI still asked
OpenTelemetry for its providers on every request (reading the environment each time: 6.5 % of the API's CPU
in a profile under load)."""
DOCS_PATH = "/docs"
SWAGGER_PATH = "/static/swagger"

log = logging.getLogger("rec_lib.api")

MovieId = Annotated[int, Field(strict=True, ge=MOVIE_ID_RANGE[0], le=MOVIE_ID_RANGE[1])]
Year = Annotated[int, Field(strict=True, ge=YEAR_RANGE[0], le=YEAR_RANGE[1])]
Genre = Annotated[str, StringConstraints(min_length=1, max_length=MAX_GENRE_CHARS)]


class Movie(BaseModel):
    movie_id: int
    title: str
    year: int | None
    genres: list[str]


class Recommendation(Movie):
    score: float
    because_id: int | None = Field(description="the liked movie this one is most similar to; null for fallbacks")
    because: str = Field(description="that liked movie's title, or 'popular' when nothing was liked")


class RecommendRequest(BaseModel):
    liked: list[MovieId] = Field(
        default_factory=list, max_length=RecommendConfig.max_liked, description="MovieLens ids, the latest pick last"
    )
    k: int = Field(10, strict=True, ge=1, le=MAX_K)
    genres: list[Genre] | None = Field(None, max_length=MAX_GENRES, description="keep movies with any of these")
    years: tuple[Year, Year] | None = Field(None, description="inclusive year range [first, last]")

    @field_validator("years")
    @classmethod
    def _ordered(cls, years: tuple[int, int] | None) -> tuple[int, int] | None:
        if years is not None and years[0] > years[1]:
            raise ValueError("the first year is after the last")
        return years


class RecommendResponse(BaseModel):
    recommendations: list[Recommendation]
    fallback: bool = Field(description="true when nothing was liked and these are the most popular movies")


class Health(BaseModel):
    status: str
    milvus: str
    sql: str
    movies: int


def _movies(frame: pd.DataFrame) -> list[Movie]:
    return [Movie(**_movie_fields(row)) for row in frame.to_dict(orient="records")]


def _movie_fields(row: dict) -> dict:
    year = row.get("year")
    return {
        "movie_id": int(row["movie_id"]),
        "title": row["title"],
        "year": None if pd.isna(year) else int(year),
        "genres": _genre_list(str(row["genres"])),
    }


def _genre_list(genres: str) -> list[str]:
    """The stored ``A|B`` genre string as a list.

    >>> _genre_list("Comedy|Drama"), _genre_list("")
    (['Comedy', 'Drama'], [])
    """
    return [g for g in genres.split(GENRE_SEPARATOR) if g]


def create_app(settings: StoreSettings | None = None) -> FastAPI:
    """The app over the stores of ``settings`` (from the environment by default), opened once per process.

    Called without arguments it is also the factory that ``serve --workers N`` runs in every worker.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        current_default_thread_limiter().total_tokens = CONCURRENT_QUERIES
        stores = open_stores(settings or StoreSettings.from_env())
        app.state.stores = stores
        app.state.recommender = Recommender(stores)
        yield

    app = FastAPI(
        title="rec_lib movie recommendations",
        description="PinSage movie vectors in Milvus, movie details in SQL. No authentication: keep it on loopback "
        "or behind a proxy that authenticates.",
        version=__version__,
        lifespan=lifespan,
        telemetry=NO_TELEMETRY,
        docs_url=None,
        redoc_url=None,
    )

    @app.exception_handler(StoreUnavailableError)
    async def store_down(request: Request, exc: StoreUnavailableError) -> JSONResponse:
        return JSONResponse(status_code=503, content={"detail": _detail(exc)})

    @app.exception_handler(UnknownMoviesError)
    async def unknown(request: Request, exc: UnknownMoviesError) -> JSONResponse:
        return JSONResponse(status_code=404, content={"detail": _detail(exc), "unknown_ids": exc.movie_ids})

    @app.exception_handler(ConfigError)
    async def bad_input(request: Request, exc: ConfigError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": _detail(exc)})

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = exc.errors()
        return JSONResponse(
            status_code=422,
            content={"detail": [_problem(p) for p in problems[:MAX_ERRORS_SHOWN]], "problems": len(problems)},
        )

    @app.get("/health", response_model=Health)
    async def health(request: Request) -> Health:
        stores = request.app.state.stores
        await run_in_threadpool(stores.metadata.ping)
        count = await run_in_threadpool(stores.vectors.count)
        return Health(status="ok", milvus=stores.vectors.where, sql=stores.metadata.where, movies=count)

    @app.get("/movies/search", response_model=list[Movie])
    async def search(
        request: Request,
        q: str = Query(..., min_length=1, max_length=200, description="part of a title"),
        limit: int = Query(20, ge=1, le=MAX_SEARCH),
    ) -> list[Movie]:
        rows = await run_in_threadpool(request.app.state.stores.metadata.search_rows, q, limit)
        return [Movie(movie_id=r.movie_id, title=r.title, year=r.year, genres=_genre_list(r.genres)) for r in rows]

    @app.get("/movies/random", response_model=list[Movie])
    async def random_movies(request: Request, n: int = Query(10, ge=1, le=MAX_RANDOM)) -> list[Movie]:
        return _movies(await run_in_threadpool(request.app.state.stores.metadata.random, n))

    @app.get("/movies/{movie_id}", response_model=Movie)
    async def movie(
        request: Request, movie_id: Annotated[int, PathParam(ge=MOVIE_ID_RANGE[0], le=MOVIE_ID_RANGE[1])]
    ) -> Movie:
        found = (await run_in_threadpool(request.app.state.stores.metadata.details, [movie_id])).get(movie_id)
        if found is None:
            raise HTTPException(status_code=404, detail=f"unknown movie id {movie_id}")
        return Movie(movie_id=movie_id, title=found.title, year=found.year, genres=_genre_list(found.genres))

    @app.get("/genres", response_model=list[str])
    async def genres(request: Request) -> list[str]:
        return await run_in_threadpool(request.app.state.recommender.known_genres)

    @app.post("/recommend", response_model=RecommendResponse)
    async def recommend(request: Request, body: RecommendRequest) -> RecommendResponse:
        ranked = await run_in_threadpool(
            request.app.state.recommender.rank, body.liked, body.k, genres=body.genres, years=body.years
        )
        items = [
            Recommendation(
                movie_id=movie_id, title=title, year=year, genres=_genre_list(genres), score=score,
                because_id=because_id, because=because,
            )
            for movie_id, title, year, genres, score, because_id, because in zip(
                ranked.movie_id, ranked.title, ranked.year, ranked.genres, ranked.score, ranked.because_id,
                ranked.because, strict=True,
            )
        ]  # fmt: skip
        return RecommendResponse(recommendations=items, fallback=not body.liked)

    _mount_docs(app)
    app.mount("/static", StaticFiles(directory=WEB_DIR), name="static")

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(WEB_DIR / "index.html")

    app.add_middleware(RequestGuard)
    return app


def _mount_docs(app: FastAPI) -> None:
    """Swagger UI 5 (it reads OpenAPI 3.1, which FastAPI writes) at /docs, from the files the fastapi-offline
    package ships, so it works offline."""
    from importlib.resources import files

    app.mount(SWAGGER_PATH, StaticFiles(directory=str(files("fastapi_offline") / "static")), name="swagger")

    @app.get(DOCS_PATH, include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url,
            title=f"{app.title} · docs",
            swagger_js_url=f"{SWAGGER_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{SWAGGER_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{SWAGGER_PATH}/favicon.png",
        )


def _detail(exc: Exception) -> str:
    """An exception's message as an answer may show it: scrubbed and bounded."""
    return _clip(scrub(str(exc)), MAX_DETAIL_CHARS)


def _problem(problem: dict) -> dict:
    """One validation problem, bounded: where, what, and a short echo of the input."""
    return {
        "loc": [part if isinstance(part, int) else _clip(str(part), MAX_ECHO_CHARS) for part in problem["loc"]],
        "msg": _clip(str(problem.get("msg", "")), MAX_ECHO_CHARS),
        "type": str(problem.get("type", "")),
        "input": _echo(problem.get("input")),
    }


def _echo(value: object) -> str:
    """Bad input as a short JSON-ish string (NaN and infinities, which JSON cannot hold, included).

    >>> _echo(float("nan")), _echo([1e400]), _echo("x" * 500)[-3:]
    ('NaN', '[Infinity]', 'xx…')
    """
    if isinstance(value, float) and not math.isfinite(value):
        return json.dumps(value)
    try:
        text = json.dumps(value, default=str, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return _clip(text, MAX_ECHO_CHARS)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class RequestGuard:
    """ASGI middleware around every request: bodies over :data:`MAX_BODY_BYTES` get a 413 before any parsing,
    every answer gets ``nosniff`` and a Content-Security-Policy, and an unexpected exception becomes a JSON error
    whose log line is scrubbed (no paths, no credentials) instead of a plain-text traceback."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length", b"0")
        if not declared.isdigit() or int(declared) > MAX_BODY_BYTES:
            await _send_json(send, 413, _too_large())
            return
        body, complete = await _read_body(receive)
        if not complete:
            await _send_json(send, 413, _too_large())
            return
        started = False
        policy = DOCS_POLICY if scope["path"] == DOCS_PATH else PAGE_POLICY

        async def replay() -> Message:
            nonlocal body
            if body is None:
                return await receive()
            message, body = {"type": "http.request", "body": body, "more_body": False}, None
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message = {**message, "headers": [*message.get("headers", []), *_security_headers(policy)]}
            await send(message)

        try:
            await self.app(scope, replay, guarded_send)
        except Exception as exc:  # the last resort: a JSON answer and a scrubbed log line
            log.error("%s %s failed: %s: %s", scope["method"], scope["path"], type(exc).__name__, scrub(str(exc)))
            if not started:
                await _send_json(send, 500, {"detail": f"internal error ({type(exc).__name__}); see the server log"})


def _too_large() -> dict:
    return {"detail": f"request body over {MAX_BODY_BYTES} bytes"}


async def _read_body(receive: Receive) -> tuple[bytes | None, bool]:
    """The whole request body if it stays within the limit; ``(None, True)`` when the client went away."""
    chunks, size, more = [], 0, True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None, True
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None, False
        chunks.append(chunk)
        more = message.get("more_body", False)
    return b"".join(chunks), True


def _security_headers(policy: str) -> list[tuple[bytes, bytes]]:
    return [(b"x-content-type-options", b"nosniff"), (b"content-security-policy", policy.encode())]


async def _send_json(send: Send, status: int, content: dict) -> None:
    body = json.dumps(content).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers + _security_headers(PAGE_POLICY)})
    await send({"type": "http.response.body", "body": body})
