"""The original design's HTTP interface (FastAPI) and its web page, over the same recommender.

``python -m rec_lib serve`` (or ``make serve``) starts it on 127.0.0.1:8000. One pair of store
clients is opened when the app starts and shared by every request. Errors are JSON with real status
codes: 404 for an unknown movie, 422 for bad input, 503 when Milvus or SQL is down or not loaded.
OpenAPI docs are at ``/docs``; the web page (plain HTML, CSS and JavaScript in ``rec_lib/serving/web``) at ``/``.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path

import pandas as pd
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field, field_validator

from rec_lib import __version__
from rec_lib.errors import ConfigError, StoreUnavailableError, UnknownMoviesError
from rec_lib.serving.metadata_store import GENRE_SEPARATOR
from rec_lib.serving.recommend import MAX_K, RecommendConfig, Recommender
from rec_lib.serving.stores import StoreSettings, open_stores

WEB_DIR = Path(__file__).parent / "web"
MAX_SEARCH = 100
MAX_RANDOM = 50


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
    liked: list[int] = Field(default_factory=list, max_length=RecommendConfig.max_liked, description="MovieLens ids")
    k: int = Field(10, ge=1, le=MAX_K)
    genres: list[str] | None = Field(None, description="keep movies with any of these genres")
    years: tuple[int, int] | None = Field(None, description="inclusive year range [first, last]")

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
        "genres": [g for g in str(row["genres"]).split(GENRE_SEPARATOR) if g],
    }


def create_app(settings: StoreSettings | None = None) -> FastAPI:
    """The app over the stores of ``settings`` (from the environment by default), opened once at start-up."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        stores = open_stores(settings or StoreSettings.from_env())
        app.state.stores = stores
        app.state.recommender = Recommender(stores)
        yield

    app = FastAPI(
        title="rec_lib movie recommendations",
        description="PinSage movie vectors in Milvus, movie details in SQL.",
        version=__version__,
        lifespan=lifespan,
    )

    @app.exception_handler(StoreUnavailableError)
    async def store_down(request: Request, exc: StoreUnavailableError) -> JSONResponse:
        return JSONResponse(status_code=503, content={"detail": str(exc)})

    @app.exception_handler(UnknownMoviesError)
    async def unknown(request: Request, exc: UnknownMoviesError) -> JSONResponse:
        return JSONResponse(status_code=404, content={"detail": str(exc), "unknown_ids": exc.movie_ids})

    @app.exception_handler(ConfigError)
    async def bad_input(request: Request, exc: ConfigError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": str(exc)})

    @app.get("/health", response_model=Health)
    def health(request: Request) -> Health:
        stores = request.app.state.stores
        stores.metadata.ping()
        count = stores.vectors.count()
        return Health(status="ok", milvus=stores.vectors.uri, sql=stores.metadata.where, movies=count)

    @app.get("/movies/search", response_model=list[Movie])
    def search(
        request: Request,
        q: str = Query(..., min_length=1, max_length=200, description="part of a title"),
        limit: int = Query(20, ge=1, le=MAX_SEARCH),
    ) -> list[Movie]:
        return _movies(request.app.state.stores.metadata.search(q, limit))

    @app.get("/movies/random", response_model=list[Movie])
    def random_movies(request: Request, n: int = Query(10, ge=1, le=MAX_RANDOM)) -> list[Movie]:
        return _movies(request.app.state.stores.metadata.random(n))

    @app.get("/movies/{movie_id}", response_model=Movie)
    def movie(request: Request, movie_id: int) -> Movie:
        found = request.app.state.stores.metadata.movies([movie_id])
        if found.empty:
            raise HTTPException(status_code=404, detail=f"unknown movie id {movie_id}")
        return _movies(found)[0]

    @app.get("/genres", response_model=list[str])
    def genres(request: Request) -> list[str]:
        return request.app.state.recommender.known_genres()

    @app.post("/recommend", response_model=RecommendResponse)
    def recommend(request: Request, body: RecommendRequest) -> RecommendResponse:
        table = request.app.state.recommender.recommend(body.liked, body.k, genres=body.genres, years=body.years)
        items = [
            Recommendation(
                **_movie_fields(row),
                score=float(row["score"]),
                because_id=None if pd.isna(row["because_id"]) else int(row["because_id"]),
                because=row["because"],
            )
            for row in table.to_dict(orient="records")
        ]
        return RecommendResponse(recommendations=items, fallback=not body.liked)

    app.mount("/static", StaticFiles(directory=WEB_DIR), name="static")

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(WEB_DIR / "index.html")

    return app
