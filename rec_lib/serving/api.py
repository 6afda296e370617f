"""The original design's HTTP interface (FastAPI) and its web page, over the same recommender.

``python -m rec_lib serve`` (or ``make serve``) starts it on 127.0.0.1:8000. One pair of store
clients is opened per process when the app starts and shared by every request. Endpoints are coroutines that
hand only their blocking store calls to a pool of :data:`~rec_lib.serving.metadata_store.CONCURRENT_QUERIES`
threads and build the answer on the event loop: one thread hop per request, where a plain ``def`` endpoint
takes two (FastAPI then also validates the answer on the pool). Every error is JSON
with a real status code: 404 for an unknown movie or path, 422 for bad input (ids, years and K bounded to what
the stores hold; an error echoes at most :data:`MAX_ERRORS_SHOWN` problems, each cut to :data:`MAX_ECHO_CHARS`
and written as text, never a Python repr), 503 naming the store that is down or not loaded (``/health`` asks
both stores each time, :mod:`rec_lib.serving.health`). What every connection and request is held to (sizes,
timeouts, media types, headers) is :mod:`rec_lib.serving.guard`. No answer names a credential or an absolute
path (:mod:`rec_lib.serving.redact`).
OpenAPI docs are at ``/docs`` (Swagger UI served from the ``fastapi-offline`` package's files, no CDN);
the web page (plain HTML, CSS and JavaScript in ``rec_lib/serving/web``) at ``/``. The API has no
authentication: it listens on loopback unless told otherwise.
"""

from __future__ import annotations

import copy
import json
import math
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Literal

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

from rec_lib import __version__
from rec_lib.contracts import QUERY_MODES
from rec_lib.data.text import search_key
from rec_lib.errors import ConfigError, StoreUnavailableError, UnknownMoviesError
from rec_lib.serving.guard import DOCS_PATH, RequestGuard
from rec_lib.serving.health import HealthChecker
from rec_lib.serving.metadata_store import CONCURRENT_QUERIES, GENRE_SEPARATOR
from rec_lib.serving.recommend import MAX_K, MOVIE_ID_RANGE, YEAR_RANGE, RecommendConfig, Recommender
from rec_lib.serving.redact import as_text, scrub
from rec_lib.serving.stores import StoreSettings, open_stores

WEB_DIR = Path(__file__).parent / "web"
MAX_SEARCH = 100
MAX_RANDOM = 50
MAX_GENRES = 50
MAX_GENRE_CHARS = 64
MAX_ERRORS_SHOWN = 10
MAX_ECHO_CHARS = 100
MAX_DETAIL_CHARS = 600
NO_TELEMETRY = {"tracing": False, "metrics": False, "logs": False}
"""FastAPI's native OpenTelemetry off: this app exports no telemetry, and with it on FastAPI still asked
OpenTelemetry for its providers on every request, reading the environment each time (its share of the API's
CPU: reports/speed.md)."""
SWAGGER_PATH = "/static/swagger"

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
        default_factory=list,
        max_length=RecommendConfig.max_liked,
        description="MovieLens ids: in any order for mode 'set'; oldest first, the latest last, for mode 'history'",
    )
    mode: Literal[QUERY_MODES] = Field(
        "set",
        description="'set': movies a person ticked, in no order (the same ranking for any order); 'history': a "
        "viewer's timeline, where the latest movies count most",
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


MOVIE_ID_PATTERN = r"^[0-9]{1,19}$"
"""A movie id in a path: plain decimal digits (no sign, point, underscore or spaces), checked against the range."""


class Health(BaseModel):
    status: str = Field(description='"ok", or "unavailable" (with status 503) when a store fails')
    milvus: str = Field(description="where the vectors are (no credentials, no absolute path)")
    sql: str = Field(description="where the movie details are")
    movies: int | None = Field(description="movies in the vector store; null when it fails")
    failing: dict[str, str] = Field(
        default_factory=dict, description='each failing store ("milvus", "sql") and what is wrong with it'
    )


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
        app.state.health = HealthChecker(stores)
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
        redirect_slashes=False,  # a redirect would echo the Host header; /health/ is simply not found
    )

    @app.exception_handler(StoreUnavailableError)
    async def store_down(request: Request, exc: StoreUnavailableError) -> JSONResponse:
        return JSONResponse(status_code=503, content={"detail": _detail(exc), "store": exc.store})

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

    @app.get("/health", response_model=Health, responses={503: {"model": Health, "description": "a store fails"}})
    async def health(request: Request) -> Health | JSONResponse:
        checks = {check.store: check for check in await request.app.state.health.check()}
        milvus, sql = checks["milvus"], checks["sql"]
        failing = {store: check.problem for store, check in checks.items() if check.problem is not None}
        answer = Health(
            status="unavailable" if failing else "ok", milvus=milvus.where, sql=sql.where, movies=milvus.movies,
            failing=failing,
        )  # fmt: skip
        if failing:
            return JSONResponse(status_code=503, content=answer.model_dump())
        return answer

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
        request: Request,
        movie_id: Annotated[str, PathParam(pattern=MOVIE_ID_PATTERN, description="a MovieLens id")],
    ) -> Movie:
        if int(movie_id) > MOVIE_ID_RANGE[1]:
            raise RequestValidationError(
                [{"loc": ("path", "movie_id"), "msg": f"ids lie in {list(MOVIE_ID_RANGE)}", "type": "less_than_equal",
                  "input": movie_id}]
            )  # fmt: skip
        movie_id = int(movie_id)
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
            request.app.state.recommender.rank,
            body.liked,
            body.k,
            mode=body.mode,
            genres=body.genres,
            years=body.years,
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
    _examples_from_the_stores(app)
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


def _examples_from_the_stores(app: FastAPI) -> None:
    """OpenAPI examples drawn from what is loaded, so that each route's "Try it out" in /docs succeeds as shown:
    the two most-rated movies as the liked ids (and the first as the id to look up), a genre and a year span of
    the first, a word of its title as the search. With a store down the recommend example likes nothing."""
    schema_of = app.openapi

    def openapi() -> dict:
        schema = copy.deepcopy(schema_of())
        example, movie_id, query = {"liked": [], "k": 10}, None, None
        try:
            popular = app.state.stores.metadata.popular(2)
        except (StoreUnavailableError, AttributeError):
            popular = None
        if popular is not None and len(popular):
            first = popular.iloc[0]
            movie_id = int(first["movie_id"])
            example = {"liked": [int(i) for i in popular["movie_id"]], "k": 10}
            if first["genres"]:
                example["genres"] = [_genre_list(first["genres"])[0]]
            if not pd.isna(first["year"]):
                example["years"] = [int(first["year"]) - 30, int(first["year"]) + 30]
            query = next((word for word in search_key(first["title"]).split() if len(word) > 2), None)
        paths = schema["paths"]
        paths["/recommend"]["post"]["requestBody"]["content"]["application/json"]["example"] = example
        for path, name, value in (("/movies/{movie_id}", "movie_id", movie_id), ("/movies/search", "q", query)):
            for parameter in paths[path]["get"]["parameters"]:
                if parameter["name"] == name and value is not None:
                    parameter["example"] = str(value)
        return schema

    app.openapi = openapi


def _detail(exc: Exception) -> str:
    """An exception's message as an answer may show it: scrubbed and bounded."""
    return _clip(scrub(str(exc)), MAX_DETAIL_CHARS)


def _problem(problem: dict) -> dict:
    """One validation problem, bounded: where, what, and a short echo of the input, all as text."""
    return {
        "loc": [part if isinstance(part, int) else _clip(str(part), MAX_ECHO_CHARS) for part in problem["loc"]],
        "msg": _clip(str(problem.get("msg", "")), MAX_ECHO_CHARS),
        "type": as_text(str(problem.get("type", ""))),
        "input": _echo(problem.get("input")),
    }


def _echo(value: object) -> str:
    r"""Bad input as a short JSON string (NaN and infinities, which JSON cannot hold, included; bytes as text).

    >>> _echo(float("nan")), _echo([1e400]), _echo("x" * 500)[-3:]
    ('NaN', '[Infinity]', 'xx…')
    >>> print(_echo(b'{"a"'), _echo({chr(0xD800): 1}))
    "{\"a\"" {"\ud800": 1}
    """
    if isinstance(value, float) and not math.isfinite(value):
        return json.dumps(value)
    return _clip(json.dumps(value, default=_as_json, ensure_ascii=False), MAX_ECHO_CHARS)


def _as_json(value: object) -> object:
    """What JSON cannot hold, as text: bytes decoded (undecodable bytes replaced), anything else by ``str``."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes | bytearray) else str(value)


def _clip(text: str, limit: int) -> str:
    """``text`` made safe to encode (lone surrogates escaped) and cut to ``limit`` characters."""
    text = as_text(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"
