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
