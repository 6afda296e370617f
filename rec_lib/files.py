"""Writing files so that a reader sees the whole new file or the old one, never half of one.

Every artefact rec_lib writes (checkpoints, vectors, run records, tables, reports, generated data) goes
through :func:`atomic_write`: the content is written to a hidden temporary file in the same folder, then
renamed over the target, which is atomic on one file system.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


@contextmanager
def atomic_write(path: Path) -> Iterator[IO[bytes]]:
    """A binary handle whose content replaces ``path`` when the block ends without an error.

    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "a.txt"
    >>> with atomic_write(target) as out:
    ...     _ = out.write(b"whole")
    >>> target.read_text(), sorted(p.name for p in target.parent.iterdir())
    ('whole', ['a.txt'])
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with tmp.open("wb") as handle:
            yield handle
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_atomically(path: Path, write: Callable[[IO[bytes]], Any]) -> Path:
    """``write(handle)`` into :func:`atomic_write` of ``path`` (for writers such as ``torch.save`` or ``np.savez``)."""
    with atomic_write(path) as handle:
        write(handle)
    return Path(path)


def write_text(path: Path, text: str) -> Path:
    """``text`` as UTF-8, atomically."""
    return write_atomically(path, lambda handle: handle.write(text.encode("utf-8")))


def write_json(path: Path, payload: Any) -> Path:
    """``payload`` as indented JSON with a final newline, atomically."""
    return write_text(path, json.dumps(payload, indent=2) + "\n")
