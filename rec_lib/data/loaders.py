"""Read MovieLens files of every layout into one tidy schema.

* ``ratings``: ``user_id`` int64, ``movie_id`` int64, ``rating`` float32, ``timestamp`` int64
  (seconds since the epoch), in file order.
* ``movies``: ``movie_id`` int64, ``title`` str (as in the file), ``year`` Int64 (parsed from the
  title, missing when the title has none), ``genres`` list[str].
* ``users`` (ml-1m and ml-100k only): ``user_id``, ``gender``, ``age``, ``occupation``, ``zip``.

Every problem raises :class:`DataFormatError` with the file, the line and what is wrong: a short
or long line, a value of the wrong type, a wrong encoding, a duplicate id, a rating of an unknown
movie or user. Nothing is dropped.
"""

from __future__ import annotations

import csv
import io
import itertools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from rec_lib.config import DEFAULT_DATASET, resolve_data_dir
from rec_lib.data.datasets import Layout, detect_layout, locate_dataset
from rec_lib.data.text import YEAR_AT_END
from rec_lib.errors import DataFormatError

ML1M_GENRES = (
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
)
"""The genre names of MovieLens-1M (and of ml-100k, which adds "unknown" first)."""
ML100K_GENRES = ("unknown", *ML1M_GENRES)
NO_GENRES = "(no genres listed)"
_FIELD_SEP = "\x1f"  # stands in for '::', which the C parser cannot split on


@dataclass
class MovieLensData:
    """One dataset in the tidy schema, with the files it came from."""

    name: str
    layout: Layout
    ratings: pd.DataFrame
    movies: pd.DataFrame
    users: pd.DataFrame | None
    files: dict[str, Path] = field(default_factory=dict)


@dataclass(frozen=True)
class _TableFormat:
    columns: tuple[str, ...]
    int_columns: tuple[str, ...]
    float_columns: tuple[str, ...]
    separator: str
    encoding: str
    header: bool
    quoted: bool
    optional_columns: tuple[str, ...] = ()
    """Columns that may be empty; every other field must be present and non-empty."""


def load_movielens(
    name: str = DEFAULT_DATASET,
    data_dir: str | Path | None = None,
    *,
    download: bool = True,
) -> MovieLensData:
    """Find (or download) dataset ``name`` under the data dir and load it."""
    folder, layout = locate_dataset(name, resolve_data_dir(data_dir), download=download)
    return load_folder(folder, layout, name=name)


def load_folder(folder: Path, layout: Layout | None = None, *, name: str | None = None) -> MovieLensData:
    """Load the dataset in ``folder``; the layout is detected from its files when not given."""
    folder = Path(folder)
    layout = layout or detect_layout(folder)
    if layout is None:
        raise DataFormatError(folder, "holds no MovieLens layout (ratings.dat, u.data or ratings.csv with movies)")
    loader = {"ml-1m": _load_ml1m, "ml-100k": _load_ml100k, "csv": _load_csv}[layout]
    data = loader(folder)
    data.name = name or folder.name
    _check_references(data)
    return data


def parse_years(titles: pd.Series) -> pd.Series:
    """The release year at the end of each title, or <NA>.

    >>> parse_years(pd.Series(["Toy Story (1995)", "Fawlty Towers (1975-1979)", "Babylon 5"])).tolist()
    [1995, 1975, <NA>]
    """
    return pd.to_numeric(titles.str.strip().str.extract(YEAR_AT_END, expand=False)).astype("Int64")


def _load_ml1m(folder: Path) -> MovieLensData:
    dat = {"separator": "::", "encoding": "latin-1", "header": False, "quoted": False, "float_columns": ()}
    ratings_path, movies_path, users_path = (folder / n for n in ("ratings.dat", "movies.dat", "users.dat"))
    ratings = _read_table(
        ratings_path,
        _TableFormat(
            ("user_id", "movie_id", "rating", "timestamp"), ("user_id", "movie_id", "rating", "timestamp"), **dat
        ),
    )
    movies = _read_table(movies_path, _TableFormat(("movie_id", "title", "genres"), ("movie_id",), **dat))
    users = _read_table(
        users_path,
        _TableFormat(("user_id", "gender", "age", "occupation", "zip"), ("user_id", "age"), **dat),
    )
    movies["genres"] = _split_genres(movies["genres"])
    return _assemble("ml-1m", ratings, movies, users, ratings_path, movies_path, users_path)


def _load_ml100k(folder: Path) -> MovieLensData:
    ratings_path, movies_path, users_path = (folder / n for n in ("u.data", "u.item", "u.user"))
    common = {"encoding": "latin-1", "header": False, "quoted": False, "float_columns": ()}
    ratings = _read_table(
        ratings_path,
        _TableFormat(
            ("user_id", "movie_id", "rating", "timestamp"),
            ("user_id", "movie_id", "rating", "timestamp"),
            separator="\t",
            **common,
        ),
    )
    item_columns = ("movie_id", "title", "release_date", "video_release_date", "imdb_url", *ML100K_GENRES)
    movies = _read_table(
        movies_path,
        _TableFormat(
            item_columns,
            ("movie_id", *ML100K_GENRES),
            separator="|",
            optional_columns=("release_date", "video_release_date", "imdb_url"),
            **common,
        ),
    )
    flags = movies[list(ML100K_GENRES)].to_numpy(dtype=bool)
    names = np.array(ML100K_GENRES, dtype=object)
    movies = movies[["movie_id", "title"]].copy()
    movies["genres"] = [list(names[row]) for row in flags]
    users = _read_table(
        users_path,
        _TableFormat(("user_id", "age", "gender", "occupation", "zip"), ("user_id", "age"), separator="|", **common),
    )
    return _assemble("ml-100k", ratings, movies, users, ratings_path, movies_path, users_path)


_CSV = {"separator": ",", "encoding": "utf-8", "header": True}
CSV_RATINGS = _TableFormat(
    ("userId", "movieId", "rating", "timestamp"), ("userId", "movieId", "timestamp"), ("rating",), quoted=False, **_CSV
)
CSV_MOVIES = _TableFormat(("movieId", "title", "genres"), ("movieId",), (), quoted=True, **_CSV)


def _load_csv(folder: Path) -> MovieLensData:
    ratings_path, movies_path = folder / "ratings.csv", folder / "movies.csv"
    ratings = _read_table(ratings_path, CSV_RATINGS).rename(columns={"userId": "user_id", "movieId": "movie_id"})
    movies = _read_table(movies_path, CSV_MOVIES).rename(columns={"movieId": "movie_id"})
    movies["genres"] = _split_genres(movies["genres"])
    return _assemble("csv", ratings, movies, None, ratings_path, movies_path, None)


def read_movies_csv(path: Path) -> pd.DataFrame:
    """A file in MovieLens ``movies.csv`` format as movie_id, title, year, genres (a list), strictly checked.

    Every field must be present and non-empty (a movie without genres says ``(no genres listed)``), ids
    unique integers; a problem raises :class:`DataFormatError` naming the file and line.
    """
    movies = _read_table(Path(path), CSV_MOVIES).rename(columns={"movieId": "movie_id"})
    movies = movies.astype({"movie_id": "int64"})
    movies["genres"] = _split_genres(movies["genres"])
    movies.insert(2, "year", parse_years(movies["title"]))
    _check_unique(movies, ["movie_id"], Path(path), header=True)
    return movies


def read_ratings_csv(path: Path) -> pd.DataFrame:
    """A file in MovieLens ``ratings.csv`` format as user_id, movie_id, rating, timestamp, strictly checked."""
    ratings = _read_table(Path(path), CSV_RATINGS).rename(columns={"userId": "user_id", "movieId": "movie_id"})
    ratings = ratings.astype({"user_id": "int64", "movie_id": "int64", "rating": "float32", "timestamp": "int64"})
    _check_ratings_values(ratings, Path(path), header=True)
    _check_unique(ratings, ["user_id", "movie_id"], Path(path), header=True)
    return ratings


def _assemble(
    layout: Layout,
    ratings: pd.DataFrame,
    movies: pd.DataFrame,
    users: pd.DataFrame | None,
    ratings_path: Path,
    movies_path: Path,
    users_path: Path | None,
) -> MovieLensData:
    ratings = ratings[["user_id", "movie_id", "rating", "timestamp"]].astype(
        {"user_id": "int64", "movie_id": "int64", "rating": "float32", "timestamp": "int64"}
    )
    _check_ratings_values(ratings, ratings_path, header=layout == "csv")
    movies = movies[["movie_id", "title", "genres"]].astype({"movie_id": "int64"})
    movies.insert(2, "year", parse_years(movies["title"]))
    _check_unique(movies, ["movie_id"], movies_path, header=layout == "csv")
    _check_unique(ratings, ["user_id", "movie_id"], ratings_path, header=layout == "csv")
    files = {"ratings": ratings_path, "movies": movies_path}
    if users is not None and users_path is not None:
        users = users.astype({"user_id": "int64"})
        _check_unique(users, ["user_id"], users_path, header=False)
        files["users"] = users_path
    return MovieLensData(name="", layout=layout, ratings=ratings, movies=movies, users=users, files=files)


def _split_genres(raw: pd.Series) -> pd.Series:
    return raw.map(lambda text: [] if text in ("", NO_GENRES) else text.split("|"))


def _first_line(header: bool) -> int:
    return 2 if header else 1


def _check_ratings_values(ratings: pd.DataFrame, path: Path, header: bool) -> None:
    bad = ~ratings["rating"].between(0.0, 5.0, inclusive="right")
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataFormatError(
            path, f"rating {ratings['rating'].iloc[row]} is outside (0, 5]", line=row + _first_line(header)
        )


def _has_duplicates(frame: pd.DataFrame, key: list[str]) -> bool:
    """Whether two rows share ``key``: one sort of the key packed into an int64 (a few times faster than hashing
    at 25M ratings, and fastest on files already ordered by their first column), hashing when it does not pack.

    >>> _has_duplicates(pd.DataFrame({"user_id": [1, 1, 2], "movie_id": [5, 6, 5]}), ["user_id", "movie_id"])
    False
    >>> _has_duplicates(pd.DataFrame({"user_id": [1, 2, 1], "movie_id": [5, 6, 5]}), ["user_id", "movie_id"])
    True
    >>> _has_duplicates(pd.DataFrame({"user_id": [-1, -1], "movie_id": [5, 5]}), ["user_id", "movie_id"])
    True
    """
    columns = [frame[k].to_numpy() for k in key]
    packed = None
    if len(frame) and all(column.dtype == np.int64 for column in columns):
        if len(columns) == 1:
            packed = columns[0]
        elif len(columns) == 2 and min(c.min() for c in columns) >= 0 and columns[0].max() < 2**31:
            packed = (columns[0] << 32) | columns[1] if columns[1].max() < 2**32 else None
    if packed is None:
        return bool(frame.duplicated(subset=key).any())
    ordered = np.sort(packed, kind="stable")
    return bool((ordered[1:] == ordered[:-1]).any())


def _check_unique(frame: pd.DataFrame, key: list[str], path: Path, header: bool) -> None:
    if not _has_duplicates(frame, key):
        return
    duplicated = frame.duplicated(subset=key, keep=False).to_numpy()
    rows = np.flatnonzero(duplicated)
    first = [frame[k].iloc[rows[0]] for k in key]
    same = rows[(frame.iloc[rows][key] == first).all(axis=1).to_numpy()]
    lines = ", ".join(str(r + _first_line(header)) for r in same[:5])
    label = ", ".join(f"{k}={v}" for k, v in zip(key, first, strict=True))
    raise DataFormatError(path, f"duplicate {label} on lines {lines}", line=int(same[1] + _first_line(header)))


def _check_references(data: MovieLensData) -> None:
    header = data.layout == "csv"
    unknown_movie = ~data.ratings["movie_id"].isin(data.movies["movie_id"]).to_numpy()
    if unknown_movie.any():
        row = int(np.flatnonzero(unknown_movie)[0])
        missing = sorted(set(data.ratings["movie_id"].to_numpy()[unknown_movie].tolist()))
        raise DataFormatError(
            data.files["ratings"],
            f"movie_id {data.ratings['movie_id'].iloc[row]} is not in {data.files['movies'].name} "
            f"({len(missing)} unknown movie ids: {missing[:10]})",
            line=row + _first_line(header),
        )
    if data.users is not None:
        unknown_user = ~data.ratings["user_id"].isin(data.users["user_id"]).to_numpy()
        if unknown_user.any():
            row = int(np.flatnonzero(unknown_user)[0])
            raise DataFormatError(
                data.files["ratings"],
                f"user_id {data.ratings['user_id'].iloc[row]} is not in {data.files['users'].name}",
                line=row + _first_line(header),
            )


def _check_encoding(path: Path, raw: bytes, encoding: str) -> None:
    """Refuse ``raw`` when it is not valid ``encoding``, or is clearly in another encoding (UTF-8 in a latin-1
    layout)."""
    if raw.isascii():
        return
    if encoding == "utf-8":
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = raw.count(b"\n", 0, exc.start) + 1
            raise DataFormatError(
                path,
                f"byte {exc.start} (0x{raw[exc.start]:02x}) is not valid UTF-8; this file must be UTF-8",
                line=line,
            ) from exc
        return
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return
    first = next(i for i, byte in enumerate(raw) if byte > 0x7F)
    line = raw.count(b"\n", 0, first) + 1
    raise DataFormatError(
        path, f"is UTF-8 encoded, but this layout's files are {encoding}; re-encode it to {encoding}", line=line
    )


def _read_table(path: Path, spec: _TableFormat) -> pd.DataFrame:
    """Parse one delimited file into strings, then convert typed columns, naming any bad line."""
    if not path.is_file():
        raise DataFormatError(path, "file is missing")
    raw = path.read_bytes()
    _check_encoding(path, raw, spec.encoding)
    if raw and not raw.endswith(b"\n"):
        raise DataFormatError(
            path,
            "the last line has no line end, so the file looks cut short (an interrupted download or copy); "
            "fetch the file again, or end the line if it is complete",
            line=raw.count(b"\n") + 1,
        )
    separator = spec.separator
    if separator == "::":
        raw = raw.replace(b"::", _FIELD_SEP.encode())
        separator = _FIELD_SEP
    options = {
        "sep": separator,
        "header": 0 if spec.header else None,
        "names": None if spec.header else list(spec.columns),
        "keep_default_na": False,
        "na_values": [""],
        "skip_blank_lines": False,
        "quoting": csv.QUOTE_MINIMAL if spec.quoted else csv.QUOTE_NONE,
        "engine": "c",
        "encoding": spec.encoding,
    }
    typed = _read_typed(raw, spec, options)
    if typed is not None:
        return typed
    try:
        frame = pd.read_csv(io.BytesIO(raw), dtype=str, **options)
    except pd.errors.ParserError as exc:
        raise DataFormatError(path, _parser_problem(str(exc), len(spec.columns)), line=_parser_line(str(exc))) from exc
    except pd.errors.EmptyDataError as exc:
        raise DataFormatError(path, "file is empty") from exc
    first = _first_line(spec.header)
    if spec.header:
        missing = [c for c in spec.columns if c not in frame.columns]
        if missing:
            raise DataFormatError(path, f"header lacks column(s) {missing}; expected {','.join(spec.columns)}", line=1)
        frame = frame[list(spec.columns)]
    if frame.empty:
        raise DataFormatError(path, "holds a header but no data lines" if spec.header else "file is empty")
    required = [c for c in spec.columns if c not in spec.optional_columns]
    empty = frame[required].isna()
    short = empty.any(axis=1).to_numpy()
    if short.any():
        row = int(np.flatnonzero(short)[0])
        missing = [c for c in required if empty[c].iloc[row]]
        raise DataFormatError(
            path,
            f"expected {len(spec.columns)} fields ({', '.join(spec.columns)}); {', '.join(missing)} missing or empty",
            line=row + first,
        )
    for column in spec.optional_columns:
        frame[column] = frame[column].fillna("")
    for column in spec.int_columns:
        frame[column] = _convert(frame[column], path, column, first, integer=True)
    for column in spec.float_columns:
        frame[column] = _convert(frame[column], path, column, first, integer=False)
    return frame


def _read_typed(raw: bytes, spec: _TableFormat, options: dict) -> pd.DataFrame | None:
    """The fast path: numbers parsed straight into int64 / float64 columns (a fraction of the memory of strings,
    which matters at 25M ratings). Returns None when anything looks wrong (a parse error, an empty required field,
    a non-finite number, a missing header column); the string path then finds and names the bad line."""
    if spec.optional_columns:
        return None
    dtypes = {c: "int64" for c in spec.int_columns} | {c: "float64" for c in spec.float_columns}
    dtypes |= {c: str for c in spec.columns if c not in dtypes}
    try:
        frame = pd.read_csv(io.BytesIO(raw), dtype=dtypes, **options)
    except (ValueError, OverflowError, pd.errors.ParserError, pd.errors.EmptyDataError):
        return None
    if list(frame.columns) != list(spec.columns) or frame.empty or frame.isna().to_numpy().any():
        return None
    floats = frame[list(spec.float_columns)].to_numpy()
    if floats.size and not np.isfinite(floats).all():
        return None
    return frame


def _convert(values: pd.Series, path: Path, column: str, first_line: int, *, integer: bool) -> pd.Series:
    numbers = pd.to_numeric(values, errors="coerce")
    as_float = numbers.to_numpy(dtype="float64", na_value=np.nan)
    bad = ~np.isfinite(as_float)
    if integer:
        bad = bad | (np.nan_to_num(as_float) % 1 != 0)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        kind = "an integer" if integer else "a number"
        raise DataFormatError(path, f"{column} {values.iloc[row]!r} is not {kind}", line=row + first_line)
    if not integer:
        return numbers.astype("float64")
    too_large = np.abs(as_float) >= 2.0**63
    if too_large.any():
        row = int(np.flatnonzero(too_large)[0])
        raise DataFormatError(
            path, f"{column} {values.iloc[row]} is outside the 64-bit integer range", line=row + first_line
        )
    return numbers.astype("int64")


def _parser_line(message: str) -> int | None:
    words = message.replace(",", " ").split()
    for before, value in itertools.pairwise(words):
        if before == "line" and value.isdigit():
            return int(value)
    return None


def _parser_problem(message: str, expected: int) -> str:
    saw = message.rsplit("saw", 1)[-1].strip() if "saw" in message else "a different number of"
    return f"expected {expected} fields, found {saw}"
