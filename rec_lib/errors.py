"""Exceptions that name the file, line, id or setting at fault."""

from __future__ import annotations

from pathlib import Path


class RecLibError(Exception):
    """Base class of every error rec_lib raises on purpose."""


class DataFormatError(RecLibError):
    """A data file breaks its format: the message names the file, the line and the problem."""

    def __init__(self, path: Path | str, problem: str, line: int | None = None) -> None:
        self.path = Path(path)
        self.line = line
        self.problem = problem
        where = f"{self.path}, line {line}" if line is not None else str(self.path)
        super().__init__(f"{where}: {problem}")


class DatasetNotFoundError(RecLibError):
    """A dataset is neither on disk nor downloadable; the message says what to place where."""


class ChecksumMismatchError(RecLibError):
    """A downloaded archive does not match its published checksum."""


class ConfigError(RecLibError):
    """A setting has a value rec_lib cannot use; the message names the setting."""


class InvalidVectorsError(RecLibError):
    """Vectors that must not reach the vector store (NaN, infinite, wrong dimension); names the movie ids."""

    def __init__(self, problem: str, movie_ids: list[int]) -> None:
        self.movie_ids = list(movie_ids)
        shown = ", ".join(str(i) for i in self.movie_ids[:20])
        more = f" and {len(self.movie_ids) - 20} more" if len(self.movie_ids) > 20 else ""
        super().__init__(f"{problem}: movie ids {shown}{more}")


class UnknownMoviesError(RecLibError):
    """Movie ids that the stores do not hold; names them."""

    def __init__(self, movie_ids: list[int]) -> None:
        self.movie_ids = list(movie_ids)
        super().__init__(f"unknown movie ids: {', '.join(str(i) for i in self.movie_ids)}")


LOAD_ADVICE = (
    "load the stores with python -m rec_lib load (while serve holds a Milvus Lite data dir, stop it first, or "
    "serve that dir through python -m rec_lib milvus-lite and MILVUS_URI so a load can run beside it); "
    "a running serve answers again as soon as the store is back"
)
"""What every "not loaded" message advises: it works whether or not ``serve`` is running."""


class StoreUnavailableError(RecLibError):
    """A store (Milvus or SQL) cannot be reached or is not loaded; names the store and what to do.

    ``store`` is ``"milvus"`` or ``"sql"`` when known: what /health and the API's 503 answers name as failing.
    """

    def __init__(self, message: str, store: str | None = None) -> None:
        super().__init__(message)
        self.store = store


class CollectionMissingError(StoreUnavailableError):
    """The Milvus collection asked for does not exist (never loaded, or dropped by a reload)."""


class StoreBusyError(StoreUnavailableError):
    """A Milvus Lite data dir is already open in another process."""


class ConsistencyError(RecLibError):
    """Milvus and SQL disagree about which movies exist or about the vector dimension."""
