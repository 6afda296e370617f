"""What a message may say about where the stores are: no credentials and no absolute paths.

Store locations appear in error messages, in ``/health``, in the CLI's output and in the server's log.
Every one of them goes through :func:`public_location`; :func:`scrub` is the last line of defence for
text from elsewhere (a driver's error message) before it leaves the API.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s'\"]*@")
_SQLITE_FILE = re.compile(r"sqlite:///(?P<path>[^\s'\"]+)")
_ABSOLUTE_PATH = re.compile(r"(?<![\w:/.~-])/(?:[^\s/'\"():]+/)+(?P<name>[^\s/'\"():]*)")


def public_path(path: str | Path) -> str:
    """A local path as messages show it: relative to the working directory when it lies there or beside it (so a
    notebook in ``notebooks/`` shows ``../artefacts/milvus.db``, a path that works where the person is), else its
    name alone.

    >>> public_path("/nowhere/else/milvus.db")
    'milvus.db'
    """
    resolved = Path(path).resolve()
    cwd = Path.cwd().resolve()
    for base, prefix in ((cwd, ""), (cwd.parent, "../")):
        if base != Path(base.anchor) and resolved.is_relative_to(base):
            return prefix + str(resolved.relative_to(base))
    return resolved.name


def public_location(location: str) -> str:
    """A store URI or URL without user, password or query string, and without an absolute path.

    >>> public_location("http://user:secret@milvus.internal:19530/?token=abc")
    'http://milvus.internal:19530/'
    >>> public_location("mysql+pymysql://rec:pw@127.0.0.1:3306/movies?charset=utf8mb4")
    'mysql+pymysql://127.0.0.1:3306/movies'
    >>> public_location("sqlite:////srv/data/movies.sqlite")
    'sqlite:///movies.sqlite'
    >>> public_location("/srv/data/milvus.db")
    'milvus.db'
    """
    sqlite = _SQLITE_FILE.fullmatch(location)
    if sqlite:
        return f"sqlite:///{public_path(sqlite['path'])}"
    if "://" not in location:
        return public_path(location)
    parts = urlsplit(location)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def as_text(text: str) -> str:
    """``text`` with lone UTF-16 surrogates (which JSON can carry but UTF-8 cannot encode) written as escapes.

    >>> as_text("Comedy\\ud800!")
    'Comedy\\\\ud800!'
    """
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def scrub(text: str) -> str:
    """``text`` with URL credentials removed and absolute paths cut to their last part.

    >>> scrub("cannot reach http://u:p@h:19530 with /home/me/artefacts/milvus.db")
    'cannot reach http://h:19530 with …/milvus.db'
    >>> scrub("SQL store sqlite:////tmp/x/movies.sqlite failed")
    'SQL store sqlite:///…/movies.sqlite failed'
    """
    text = _USERINFO.sub(r"\g<scheme>", as_text(text))
    text = _SQLITE_FILE.sub(lambda m: "sqlite:///" + _cut(m["path"]), text)
    return _ABSOLUTE_PATH.sub(lambda m: "…/" + m["name"], text)


def _cut(path: str) -> str:
    return "…/" + Path(path).name if path.startswith("/") else path
